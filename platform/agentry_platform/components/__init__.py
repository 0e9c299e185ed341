"""Pulumi ComponentResources: every module here declares resources (one component per module).

``keys``, ``table``, ``bus``, ``queue``, ``function``, ``topic``, ``recovery_state_machine``,
``http_api``, ``alarms``, ``toolset``.
"""

__all__: list[str] = []
