"""The two systems every benchmark compares, by the names the table and CLI use."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from .baseline import run_baseline
from .engine import run_stepweave
from .workloads import Workload

__all__ = ["SYSTEMS", "System"]

#: Runs a workload once on a fresh executor and returns its makespan in seconds.
System = Callable[[Workload], Coroutine[Any, Any, float]]

#: Baseline first: in each repetition it runs just before stepweave, so drift hits both.
SYSTEMS: dict[str, System] = {"baseline": run_baseline, "stepweave": run_stepweave}
