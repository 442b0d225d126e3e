"""Families of control-flow phrasings, on invented guides (not the text of any scored guide).

Each test writes a small guide in a wording of its own and checks the edges the plan gets,
so a rule that only fits one guide's sentence fails here.
"""

from __future__ import annotations

from planners.tsg.plan import build_plan


def edges(text: str) -> set[tuple[str, str, bool, bool]]:
    """(src title, dst title, conditional, loop) by the first word of each step's title."""
    plan = build_plan(text)
    title = {n.id: n.title.split()[0] for n in plan.nodes} | {"start": "start", "end": "end"}
    return {(title[e.src], title[e.dst], bool(e.condition), e.loop) for e in plan.edges}


QUOTED_JUMPS = """# Queue backlog

## Inspect the backlog

Print the queue depth:

```bash
rabbitmqctl list_queues name messages
```

Depending on the answer:
- more than 10k messages → skip to "Scale workers".
- the consumers are gone → jump to “Revive consumers.” below.

## Scale workers

```bash
kubectl scale deployment/worker --replicas=8
```

Proceed with "verify".

## Revive consumers

```bash
kubectl rollout restart deployment/worker
```

## Verify

```bash
rabbitmqctl list_queues name messages
```

Repeat from "Inspect the…" until the depth is below 1k.
"""


def test_quoted_section_names_after_a_jump_verb_are_jumps_and_repeat_from_is_a_loop() -> None:
    got = edges(QUOTED_JUMPS)
    assert ("Inspect", "Scale", True, False) in got
    assert ("Inspect", "Revive", True, False) in got  # curly quotes, trailing period, "below"
    assert ("Scale", "Verify", False, False) in got  # "Proceed with" a lower-case name
    assert ("Scale", "Revive", False, False) not in got
    assert ("Verify", "Inspect", True, True) in got  # a loop back to the section, not a self-loop
    assert not any(src == dst for src, dst, _, _ in got)


def test_a_quoted_name_that_is_no_heading_makes_no_edge() -> None:
    text = QUOTED_JUMPS.replace('skip to "Scale workers"', 'go to "the dashboard"')
    got = edges(text)
    assert ("Inspect", "Scale", True, False) not in got or ("Inspect", "Scale", False, False) not in got
    assert all(dst != "the" for _, dst, _, _ in got)


LIST_THEN_MOVE = """# Cache misses

## Warm the cache

1. Drain the oldest shard:

   ```bash
   cachectl drain shard-0
   ```

2. Load the hot keys again:

   ```bash
   cachectl warm --hot
   ```

Move on to "Watch hit rate".

## Flush everything

```bash
cachectl flush --all
```

## Watch hit rate

```bash
cachectl stats
```
"""


def test_a_move_after_a_numbered_list_routes_its_last_item() -> None:
    got = edges(LIST_THEN_MOVE)
    assert ("Load", "Watch", False, False) in got
    assert ("Load", "Flush", False, False) not in got


TABLE = """# Slow API

## Quick checks

{intro}

| Check | Run |
|-------|-----|
| Pods | `kubectl get pods -n api -o wide` |
| Events | `kubectl get events -n api --sort-by=.lastTimestamp` |

## Restart

```bash
kubectl rollout restart deployment/api -n api
```
"""


def test_a_table_of_commands_yields_its_commands_on_their_rows() -> None:
    together = build_plan(TABLE.format(intro="Run these at the same time; neither changes anything:"))
    lines = {c.line: c.text for n in together.nodes for c in n.commands}
    assert lines[9].startswith("kubectl get pods") and lines[10].startswith("kubectl get events")
    got = edges(TABLE.format(intro="Run these at the same time; neither changes anything:"))
    assert ("start", "Pods:", False, False) in got and ("start", "Events:", False, False) in got
    ordered = build_plan(TABLE.format(intro="Look at the following:"))
    first = ordered.nodes[0]
    assert [(c.line, c.text.split()[2]) for c in first.commands] == [(9, "pods"), (10, "events")]


def test_a_reference_table_of_values_is_no_step() -> None:
    text = TABLE.replace("`kubectl get pods -n api -o wide`", "`Pending`").replace(
        "`kubectl get events -n api --sort-by=.lastTimestamp`", "`CrashLoopBackOff`"
    )
    plan = build_plan(text.format(intro="What the states mean:"))
    assert [n.title.split()[0] for n in plan.nodes] == ["Restart"]
