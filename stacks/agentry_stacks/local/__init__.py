"""The embedded local environment: a stack's workflow in moto, its functions in-process."""

from agentry_stacks.local.environment import LocalApiError, LocalEnvironment, LocalEnvironmentError
from agentry_stacks.local.progress import EventKind, LocalEvent
from agentry_stacks.local.run import exit_code, run_goal

__all__ = [
    "EventKind",
    "LocalApiError",
    "LocalEnvironment",
    "LocalEnvironmentError",
    "LocalEvent",
    "exit_code",
    "run_goal",
]
