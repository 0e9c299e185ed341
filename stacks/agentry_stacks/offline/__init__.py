"""Offline tooling over the stack program: recording mocks and plan, the graph, policy check."""

__all__: list[str] = []
