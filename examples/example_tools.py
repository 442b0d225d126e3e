"""Tools the example workflows load with ``--tools examples/example_tools.py``.

Any module works the same way: every ``@tool`` function in it becomes a step type.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter

from tools import ToolContext, tool

_calls: Counter[str] = Counter()


@tool
def count_words(text: str, top: int = 3) -> dict[str, object]:
    """Count the words of a text.

    Args:
        text: The text to count.
        top: How many of the most common words to report.
    """
    words = re.findall(r"[a-z']+", text.lower())
    return {"words": len(words), "top": [w for w, _ in Counter(words).most_common(top)]}


@tool(retries=3)
async def flaky_service(ctx: ToolContext, name: str, failures: int = 2) -> dict[str, object]:
    """Call a service that refuses the first ``failures`` connections (to show retries).

    Args:
        name: The service to call.
        failures: How many calls fail before one succeeds.
    """
    _calls[name] += 1
    await asyncio.sleep(0.05)
    if _calls[name] <= failures:
        raise ConnectionError(f"{name}: connection refused (attempt {ctx.attempt})")
    return {"service": name, "healthy": True, "attempts": ctx.attempt}


@tool
async def summarize(counts: list[dict[str, object]], names: list[str]) -> dict[str, object]:
    """Combine per-file word counts into one report.

    Args:
        counts: The per-file results, in the order of ``names``.
        names: The file names.
    """
    per_file = {name: count["words"] for name, count in zip(names, counts, strict=True)}
    return {
        "files": len(per_file),
        "total_words": sum(int(str(v)) for v in per_file.values()),
        "per_file": per_file,
    }
