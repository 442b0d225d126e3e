"""Guide text stays text: ``${{``, ``${%`` and ``${#`` written in a runbook never become expressions.

A compiled step's arguments are evaluated as ``${{ … }}`` templates at run time. Commands
and prose come from the runbook (or an LLM, or an alert), so whatever they contain must
reach the tool as written: each opening delimiter is replaced by an expression that
evaluates to that delimiter (``${{ '${{' }}``), in one pass, so the result is literal
both in the compiled workflow and in its YAML.
"""

from __future__ import annotations

import re

__all__ = ["literal"]

_OPENERS = re.compile(r"\$\{([{%#])")


def literal(text: str) -> str:
    """``text`` with every expression/statement/comment opener escaped to evaluate to itself."""
    return _OPENERS.sub(lambda m: "${{ '${" + m.group(1) + "' }}", text)
