# ruff: noqa: E741, RUF007, B905
"""Naive document-order baseline: Markdown in, plan DAG (PRED.json) out.

Usage:
    python baseline_docorder.py GUIDE.md [PRED.json]        # default: stdout
    python baseline_docorder.py --dir GUIDES_DIR PRED_DIR   # PRED_DIR/<guide stem>.json

It looks only at the Markdown (never at gold):
* nodes: every heading and every numbered list item outside fenced code, plus
  paragraphs starting "Step N" / "**Step N", in document order; a node's lines run
  from its own line to the last non-blank line before the next node;
* edges: one unconditional chain start -> n1 -> ... -> nk -> end;
* commands: inside fenced code blocks, the "$ "-prompt lines if the block has any,
  otherwise every non-blank line that is not a "#" comment and does not continue a
  line ending in a backslash; all are mutating=false, where="local".
Text before the first node (attribution comment, front matter, intro) gets no node.
"""

import json
import re
import sys
from pathlib import Path

HEADING = re.compile(r"^ {0,3}#{1,6}\s+\S")
NUMBERED = re.compile(r"^\s*\d+[.)]\s+\S")
STEP = re.compile(r"^\s*(\*\*)?step\s+\d+", re.I)
FENCE = re.compile(r"^\s*(```|~~~)")


def parse(text):
    lines = text.split("\n")
    units, blocks, fence, block = [], [], None, None
    front = len(lines) > 2 and lines[2].strip() == "---"  # YAML front matter after the 2-line header
    for i, line in enumerate(lines, 1):
        if front:
            if i > 3 and line.strip() == "---":
                front = False
            continue
        mt = FENCE.match(line)
        if fence:
            if mt and mt.group(1) == fence:
                fence = None
                blocks.append(block)
            else:
                block.append((i, line))
            continue
        if mt:
            fence, block = mt.group(1), []
            continue
        if HEADING.match(line) or NUMBERED.match(line) or STEP.match(line):
            units.append(i)
    if fence:
        blocks.append(block)
    return lines, units, blocks


def commands(blocks):
    out = []
    for block in blocks:
        prompt = [(i, l) for i, l in block if l.strip().startswith("$ ")]
        if prompt:
            out += [(i, l.strip()[2:].strip()) for i, l in prompt]
            continue
        prev = ""
        for i, l in block:
            s = l.strip()
            if s and not s.startswith("#") and not prev.rstrip().endswith("\\"):
                out.append((i, s))
            prev = l if s else prev
    return out


def baseline(text, name):
    lines, units, blocks = parse(text)
    nodes = [{"node": "start", "description": "start", "input_edges": [], "output_edges": []}]
    for k, first in enumerate(units):
        last = (units[k + 1] - 1) if k + 1 < len(units) else len(lines)
        while last > first and not lines[last - 1].strip():
            last -= 1
        nodes.append(
            {
                "node": f"N{k + 1}",
                "description": lines[first - 1].strip()[:120],
                "lines": [first, last],
                "commands": [],
                "input_edges": [],
                "output_edges": [],
            }
        )
    for ln, txt in commands(blocks):
        for n in nodes[1:]:
            if n["lines"][0] <= ln <= n["lines"][1]:
                n["commands"].append({"line": ln, "text": txt, "mutating": False, "where": "local"})
    nodes.append({"node": "end", "description": "end", "input_edges": [], "output_edges": []})
    for a, b in zip(nodes, nodes[1:]):
        e = f"edge_{a['node']}_{b['node']}"
        a["output_edges"].append({"edge": e, "condition": "none"})
        b["input_edges"].append({"edge": e})
    return {"guide": name, "nodes": nodes}


def main(argv):
    if len(argv) == 3 and argv[0] == "--dir":
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        for g in sorted(Path(argv[1]).glob("*.md")):
            (out / f"{g.stem}.json").write_text(json.dumps(baseline(g.read_text(), g.name), indent=1) + "\n")
    elif len(argv) in (1, 2):
        doc = json.dumps(baseline(Path(argv[0]).read_text(), Path(argv[0]).name), indent=1) + "\n"
        if len(argv) == 2:
            Path(argv[1]).write_text(doc)
        else:
            sys.stdout.write(doc)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
