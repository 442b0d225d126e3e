"""Troubleshooting guides (TSGs): Markdown runbooks compiled into workflows, linted, run safely.

```python
from planners.tsg import load_guide, compile_guide, lint_guide
guide = load_guide("runbook.md")
compiled = compile_guide(guide)          # independent checks in parallel, branches as `when`
print(compiled.to_yaml())                # a workflow file, commented with the guide's lines
for finding in lint_guide(guide):        # StepFly's defect families, with line numbers
    print(finding)
```

Modules, one concept each: ``markdown`` (markdown-it-py → section tree), ``commands``
(code blocks → commands), ``shell`` (reading shell text as the shell does), ``classify``
(read-only / mutating / interactive) with its tables in ``rules``, ``options`` (option
parsing) and ``scripts`` (sed, awk, SQL), ``literal`` (guide text never becomes an
expression), ``placeholders`` (``$NAME``, ``${NAME}``, ``<name>`` → inputs),
``conditions`` (control-flow phrases, measurable tests), ``steps`` (the step tree),
``compiler`` (→ ``compiled``: the workflow and its YAML), ``lint``, ``judge`` (deciding
conditions at run time), ``assist`` (``--llm`` for prose), ``tools`` (``tsg_judge``,
``tsg_manual``, ``tsg_repeat``) and ``workflow_tools`` (those tools for ``stepweave run``).
"""

from .assist import assist_guide
from .compiled import CompiledGuide, CompiledStep
from .compiler import compile_guide
from .errors import GuideError
from .judge import ConditionJudge, Judgement, LLMJudge, OperatorAsk
from .lint import Finding, lint_guide
from .steps import Guide, GuideStep, load_guide, parse_guide
from .tools import tsg_tools

__all__ = [
    "CompiledGuide",
    "CompiledStep",
    "ConditionJudge",
    "Finding",
    "Guide",
    "GuideError",
    "GuideStep",
    "Judgement",
    "LLMJudge",
    "OperatorAsk",
    "assist_guide",
    "compile_guide",
    "lint_guide",
    "load_guide",
    "parse_guide",
    "tsg_tools",
]
