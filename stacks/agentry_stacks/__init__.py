"""Agentry environments: stack config, the Pulumi program, offline plan, local environment, CLI."""

__all__: list[str] = []
