"""The pack's rules, one module per AWS service family."""

__all__: list[str] = []
