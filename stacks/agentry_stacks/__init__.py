"""Agentry environments: stack config, the Pulumi program, offline plan, local environment, CLI."""
