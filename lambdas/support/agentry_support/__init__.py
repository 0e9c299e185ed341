"""An example toolset beside the flight demo: a support agent's tools over an orders table.

Agent definitions name it ``agentry_support:registry``. Its table is declared by the
``infrastructure.py`` hook beside this package (never shipped), which also grants the worker
exactly what these tools do to it.
"""

from agentry_support.tools import ORDERS_TABLE_VARIABLE, registry

__version__ = "0.1.0"

__all__ = ["ORDERS_TABLE_VARIABLE", "__version__", "registry"]
