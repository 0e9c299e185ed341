"""Agentry's reusable Pulumi components and the pure functions behind them.

- ``components/``: ComponentResources, one per module (they declare resources);
- ``lib/``: pure helpers (IAM documents, Bedrock grants, event patterns, the recovery state
  machine's definition, naming): no resources, tested directly;
- ``bundle``: the Lambda artifact, a reproducible zip of the distributions a stack ships, its
  wheels installed from the hashed lock ``bundle_lock`` reads and writes.
"""

__all__: list[str] = []
