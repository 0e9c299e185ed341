"""What ``pulumi up`` runs: the stack's typed config, its agents and toolsets, the program."""

__all__: list[str] = []
