"""Pulumi ComponentResources: every module here declares resources (one component per module).

``keys``, ``table``, ``bus``, ``queue``, ``function``, ``topic``, ``recovery_state_machine``,
``http_api``, ``alarms``, ``operations`` (dashboard and operational alarms), ``schedule``,
``toolset``; ``_options`` holds the replacement order and protection every child uses.
"""

__all__: list[str] = []
