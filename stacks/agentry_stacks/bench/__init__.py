"""``agentry bench``: what a step costs, end to end, against its floor and the baseline.

- ``store_cost``: per step kind, at each history length and with a long goal, the DynamoDB
  units, bytes and calls of one step against its floor and the whole-item baseline;
- ``pipeline``: a scripted agent on the local environment, unchained and chained, every AWS
  request per step in the steady state and the run's fixed cost apart;
- ``startup``: each handler's cold import from the unpacked bundle, with and without bytecode;
- ``cost``: dollars per million steps from the printed price table;
- ``report``: the JSON the command prints (its schema), ``render``: tables and the README's.
"""

from __future__ import annotations

from agentry_stacks.bench.run import run_bench

__all__ = ["run_bench"]
