"""The order in which devices are offered a task: least loaded first, ties to the longest unpicked.

A pick used to score every device. On a busy fleet (every device holding a task) no device
is idle, so a pick scored the whole fleet: ~1.5 ms at 1,000 devices, three times the
dispatch latency of a 2-agent fleet (benchmarks/devices_scale.py). The registry now keeps
the devices that could take a task (alive, with a free slot) sorted by their score, so a
pick walks from the best and stops at the first device that fits the task: one step when
the fleet is uniform, however large it is.

A rank is ``(load ratio, in-flight tasks, pick sequence, device id)``: the score a pick
compares, then the order of the last picks (a pick or an arrival takes the next sequence
number), then the id so that two ranks are never equal. Devices with the same load ratio
thus form one group, in last-pick order, and the groups are in load order. A device is
re-ranked whenever a part of its rank changes (``_Device`` does it in its setters).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

__all__ = ["Rank", "Ranking"]

#: (max(in_flight, load) / window, in_flight, pick sequence, device id)
Rank = tuple[float, int, int, str]


class Ranking:
    """Ranks of the selectable devices, kept sorted (a list with binary search).

    Moving a rank costs a binary search and a memmove of the list's pointers: well under a
    microsecond at 1,000 devices, and heartbeats that do not change a device's load move
    nothing.
    """

    __slots__ = ("_ranks",)

    def __init__(self) -> None:
        self._ranks: list[Rank] = []

    def move(self, old: Rank | None, new: Rank | None) -> None:
        """Replace ``old`` (``None``: was not ranked) with ``new`` (``None``: not selectable)."""
        if old == new:
            return
        if old is not None:
            index = bisect_left(self._ranks, old)
            if index == len(self._ranks) or self._ranks[index] != old:
                # A registry bug, not bad input: going on would corrupt every later pick.
                raise RuntimeError(f"device rank {old} is not in the ranking")
            del self._ranks[index]
        if new is not None:
            insort(self._ranks, new)

    def __iter__(self) -> Iterator[Rank]:
        """Best first. Do not move ranks while iterating."""
        return iter(self._ranks)

    def __len__(self) -> int:
        return len(self._ranks)
