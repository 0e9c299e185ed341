"""Lambda entry points (see ``contract.Handler``)."""
