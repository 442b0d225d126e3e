"""Score a predicted plan DAG against a gold plan DAG (Python 3.11, stdlib only).

Usage:
    python score.py GOLD.json PRED.json [--json]
    python score.py --dir GOLD_DIR PRED_DIR [--json]   # PRED_DIR/<same name>.json

Both files are StepFly PlanDAG JSON ({"nodes": [...]}) extended with provenance:
every node except "start"/"end" has "lines": [FIRST, LAST] (1-based lines of the saved
guide), "commands": [{"line", "mutating", "where"}], and edges are given by
"output_edges": [{"edge", "condition"}] (target resolved through the targets'
"input_edges", else from the name "edge_<src>_<dst>").  A condition of "none", "",
or null means unconditional.  Gold also has "gates": [{"remedy", "requires", ...}].
Pred node names are arbitrary; pred must use the names "start" and "end".

Metrics (per guide; the total row is micro-averaged, i.e. counts are summed over
guides before dividing):

Node mapping. Each pred node with "lines" maps to the gold step whose range holds
the most of its lines (ties: the earliest gold step); no overlap -> unmapped.
start/end map to start/end.
(1) node_p / node_r / node_f1. TP = number of distinct gold steps that at least one
    pred node maps to (a maximum one-to-one matching).  node_r = TP / gold steps,
    node_p = TP / pred nodes.  A gold step split into k pred nodes gives 1 TP and
    k-1 false positives; a pred node spanning several steps finds only one of them;
    pred nodes on intro/background text are unmapped false positives.
(2) edge_p / edge_r / edge_f1. Pred edges are mapped through the node mapping.
    Unmapped pred nodes are bridged (A->U->B becomes A->B, conditional if any hop
    is); edges that become self-loops (split steps, "repeat" loops) are dropped on
    both sides.  Both graphs are then reduced: back edges (edges to a step that
    starts earlier in the guide than their source: loops, "go back to" jumps) are set
    aside, and an UNCONDITIONAL forward edge u->v is removed when v is also reachable
    from u through >= 2 unconditional forward edges (transitive reduction that keeps
    every conditional edge, so early exits and branches survive).  The back edges
    are added back and the (src, dst) sets are compared.  start/end edges count.
(3) cond_r. Of the gold reduced edges that carry a condition, the fraction whose
    mapped pred edge exists and also carries a condition.
(4) cmd_p / cmd_r: commands matched by exact start line.  mut_acc: among matched
    commands, fraction with the same "mutating" flag.  unsafe (must be 0): gold
    mutating commands that pred (a) lists as non-mutating, or (b) lists inside a
    pred node reachable from pred "start" through unconditional edges only, when
    the command's gold step is a gated remedy (listed under gold "gates").
    Commands pred omits are recall misses, not unsafe.
(5) where_acc: among matched commands, fraction with the same "where".
Undefined ratios (0/0) print as "-" and are null in --json.
"""

import json
import sys
from pathlib import Path

NONE = {"", "none", "null", "n/a"}


def is_cond(c):
    return c is not None and str(c).strip().lower() not in NONE


def load(path):
    doc = json.loads(Path(path).read_text())
    nodes = {n["node"]: n for n in doc["nodes"]}
    target = {}
    for n in doc["nodes"]:
        for e in n.get("input_edges") or []:
            target[e["edge"]] = n["node"]
    edges = {}
    for n in doc["nodes"]:
        for e in n.get("output_edges") or []:
            dst = target.get(e["edge"])
            prefix = f"edge_{n['node']}_"
            if dst is None and e["edge"].startswith(prefix) and e["edge"][len(prefix) :] in nodes:
                dst = e["edge"][len(prefix) :]
            if dst is None:
                print(f"warning: {path}: cannot resolve edge {e['edge']}", file=sys.stderr)
                continue
            key = (n["node"], dst)
            edges[key] = edges.get(key, False) or is_cond(e.get("condition"))
    steps = {k: tuple(v["lines"]) for k, v in nodes.items() if k not in ("start", "end") and v.get("lines")}
    others = [k for k in nodes if k not in steps and k not in ("start", "end")]
    cmds = {}
    for k, v in nodes.items():
        for c in v.get("commands") or []:
            cmds.setdefault(int(c["line"]), (bool(c.get("mutating")), c.get("where"), k))
    gated = {g["remedy"] for g in doc.get("gates") or []}
    if "gates" not in doc:
        gated = {k for k, v in nodes.items() if v.get("kind") == "remedy"}
    return {"steps": steps, "others": others, "edges": edges, "cmds": cmds, "gated": gated}


def map_nodes(pred, gold):
    order = sorted(gold["steps"], key=lambda g: gold["steps"][g])
    m = {"start": "start", "end": "end"}
    for p, (a, b) in pred["steps"].items():
        best, best_ov = None, 0
        for g in order:
            ga, gb = gold["steps"][g]
            ov = min(b, gb) - max(a, ga) + 1
            if ov > best_ov:
                best, best_ov = g, ov
        m[p] = best
    for p in pred["others"]:
        m[p] = None
    return m


def mapped_edges(pred, m):
    succ = {}
    for (u, v), c in pred["edges"].items():
        succ.setdefault(u, []).append((v, c))
    out = {}
    for u in succ:
        if m.get(u) is None:
            continue
        stack, seen = [(v, c) for v, c in succ[u]], set()
        while stack:
            v, c = stack.pop()
            if m.get(v) is not None:
                if m[v] != m[u]:
                    key = (m[u], m[v])
                    out[key] = out.get(key, False) or c
                continue
            if (v, c) in seen:
                continue
            seen.add((v, c))
            stack.extend((w, c or c2) for w, c2 in succ.get(v, []))
    return out


def reduce_graph(edges, pos):
    """Set back edges aside, drop unconditional edges implied by unconditional paths."""
    back = {(u, v) for (u, v) in edges if pos(v) < pos(u)}
    fwd = {e: c for e, c in edges.items() if e not in back}
    usucc = {}
    for (u, v), c in fwd.items():
        if not c:
            usucc.setdefault(u, set()).add(v)

    def reach_long(u, v):  # v reachable from u by >= 2 unconditional forward edges
        stack, seen = [w for w in usucc.get(u, ()) if w != v], set()
        while stack:
            w = stack.pop()
            if w in seen:
                continue
            seen.add(w)
            if v in usucc.get(w, ()):
                return True
            stack.extend(usucc.get(w, ()))
        return False

    red = {e: c for e, c in fwd.items() if c or not reach_long(*e)}
    red.update({e: edges[e] for e in back})
    return red


def uncond_reachable(pred):
    succ = {}
    for (u, v), c in pred["edges"].items():
        if not c:
            succ.setdefault(u, []).append(v)
    seen, stack = {"start"}, ["start"]
    while stack:
        for v in succ.get(stack.pop(), []):
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


def score(gold_path, pred_path):
    gold = load(gold_path)
    pred = (
        load(pred_path)
        if pred_path and Path(pred_path).exists()
        else {"steps": {}, "others": [], "edges": {}, "cmds": {}, "gated": set()}
    )
    m = map_nodes(pred, gold)
    hit = {m[p] for p in pred["steps"] if m[p] is not None}
    c = {
        "node_tp": len(hit),
        "node_pred": len(pred["steps"]) + len(pred["others"]),
        "node_gold": len(gold["steps"]),
    }
    gpos = {g: gold["steps"][g][0] for g in gold["steps"]}
    pos = lambda n: -1 if n == "start" else (10**9 if n == "end" else gpos.get(n, 10**8))  # noqa: E731
    gold_e = reduce_graph({e: v for e, v in gold["edges"].items() if e[0] != e[1]}, pos)
    pred_e = reduce_graph(mapped_edges(pred, m), pos)
    c.update(edge_tp=len(gold_e.keys() & pred_e.keys()), edge_pred=len(pred_e), edge_gold=len(gold_e))
    gc = [e for e, v in gold_e.items() if v]
    c.update(cond_hit=sum(1 for e in gc if pred_e.get(e)), cond_gold=len(gc))
    both = gold["cmds"].keys() & pred["cmds"].keys()
    c.update(
        cmd_tp=len(both),
        cmd_pred=len(pred["cmds"]),
        cmd_gold=len(gold["cmds"]),
        mut_ok=sum(gold["cmds"][ln][0] == pred["cmds"][ln][0] for ln in both),
        where_ok=sum(gold["cmds"][ln][1] == pred["cmds"][ln][1] for ln in both),
    )
    free = uncond_reachable(pred)
    unsafe = []
    for ln in sorted(both):
        g_mut, _, g_step = gold["cmds"][ln]
        p_mut, _, p_node = pred["cmds"][ln]
        if not g_mut:
            continue
        if not p_mut:
            unsafe.append({"line": ln, "reason": "marked non-mutating"})
        elif g_step in gold["gated"] and p_node in free:
            unsafe.append({"line": ln, "reason": f"gate of {g_step} not enforced"})
    c["unsafe"] = len(unsafe)
    c["unsafe_list"] = unsafe
    return c


def ratio(n, d):
    return n / d if d else None


def f1(p, r):
    return None if p is None or r is None else (2 * p * r / (p + r) if p + r else 0.0)


def metrics(c):
    np_, nr = ratio(c["node_tp"], c["node_pred"]), ratio(c["node_tp"], c["node_gold"])
    ep, er = ratio(c["edge_tp"], c["edge_pred"]), ratio(c["edge_tp"], c["edge_gold"])
    return {
        "node_p": np_,
        "node_r": nr,
        "node_f1": f1(np_, nr),
        "edge_p": ep,
        "edge_r": er,
        "edge_f1": f1(ep, er),
        "cond_r": ratio(c["cond_hit"], c["cond_gold"]),
        "cmd_p": ratio(c["cmd_tp"], c["cmd_pred"]),
        "cmd_r": ratio(c["cmd_tp"], c["cmd_gold"]),
        "mut_acc": ratio(c["mut_ok"], c["cmd_tp"]),
        "where_acc": ratio(c["where_ok"], c["cmd_tp"]),
        "unsafe": c["unsafe"],
    }


COLS = [
    "node_p",
    "node_r",
    "node_f1",
    "edge_p",
    "edge_r",
    "edge_f1",
    "cond_r",
    "cmd_p",
    "cmd_r",
    "mut_acc",
    "where_acc",
    "unsafe",
]


def table(rows):
    fmt = lambda v: "-" if v is None else (str(v) if isinstance(v, int) else f"{v:.3f}")  # noqa: E731
    w = max([len(r[0]) for r in rows] + [5])
    lines = [f"{'guide':<{w}} " + " ".join(f"{h:>9}" for h in COLS)]
    for name, mt in rows:
        lines.append(f"{name:<{w}} " + " ".join(f"{fmt(mt[h]):>9}" for h in COLS))
    return "\n".join(lines)


def main(argv):
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    if len(argv) == 3 and argv[0] == "--dir":
        pairs = [(g, Path(argv[2]) / g.name) for g in sorted(Path(argv[1]).glob("*.json"))]
    elif len(argv) == 2:
        pairs = [(Path(argv[0]), Path(argv[1]))]
    else:
        sys.exit(__doc__.split("\n\n")[1])
    per, total = {}, {}
    for g, p in pairs:
        if not p.exists():
            print(f"warning: missing prediction {p} (scored as empty)", file=sys.stderr)
        c = score(g, p)
        per[g.stem] = c
        for k, v in c.items():
            if k != "unsafe_list":
                total[k] = total.get(k, 0) + v
    if as_json:
        out = {
            "guides": {
                k: {
                    **metrics(c),
                    "counts": {x: y for x, y in c.items() if x != "unsafe_list"},
                    "unsafe_list": c["unsafe_list"],
                }
                for k, c in per.items()
            },
            "total": {**metrics(total), "counts": total},
        }
        print(json.dumps(out, indent=1))
    else:
        rows = [(k, metrics(c)) for k, c in per.items()]
        if len(per) > 1:
            rows.append(("TOTAL (micro)", metrics(total)))
        print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
