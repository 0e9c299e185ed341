"""Lambda entry points (see ``contract.Handler``)."""

__all__: list[str] = []
