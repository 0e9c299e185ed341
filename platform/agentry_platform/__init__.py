"""Agentry's reusable Pulumi components and the pure functions behind them.

Components (one per module): ``keys``, ``table``, ``bus``, ``queue``, ``function``, ``topic``,
``workflow``, ``http_api``, ``alarms``. Pure functions (no resources): ``naming``, ``iam``,
``bedrock``, ``patterns``, ``recovery``. The Lambda artifact: ``bundle``.
"""
