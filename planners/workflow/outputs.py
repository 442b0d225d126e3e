"""A workflow's ``outputs``: named values computed from the results once the run has ended.

An output is any JSON-like value whose strings may hold ``${{ … }}``: a single expression
(``${{ steps.disk.output.stdout }}``) or a whole structure (``{disk: …, pages: …}``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from orchestrator import ExpressionError, RunResult, TaskStatus
from orchestrator.expressions import CompiledValue, compile_value, plain_data

from .problems import Problem, WorkflowFileError, did_you_mean
from .yaml_source import SourceMap

__all__ = ["evaluate_outputs", "output_problems", "result_scope"]


def output_problems(
    outputs: Mapping[str, Any], step_ids: Collection[str], source_map: SourceMap
) -> list[Problem]:
    """What is wrong with the output expressions, knowable before the run."""
    problems: list[Problem] = []
    for name, value in outputs.items():
        where = ("outputs", name)
        try:
            compiled = compile_value(value)
        except ExpressionError as exc:
            problems.append(source_map.problem(where, f"output {name!r}: {exc}"))
            continue
        for ref in sorted(compiled.refs - set(step_ids)):
            hint = did_you_mean(ref, step_ids)
            problems.append(
                source_map.problem(where, f"output {name!r} references unknown step {ref!r}", hint=hint)
            )
        if "item" in compiled.roots:
            problems.append(
                source_map.problem(
                    where, f"output {name!r} uses 'item', which exists only inside a for_each step"
                )
            )
    return problems


def result_scope(result: RunResult) -> dict[str, dict[str, Any]]:
    """``steps.<id>.output/.status/.error`` as the scheduler exposes them to expressions."""
    return {
        task_id: {
            "output": plain_data(task.output),
            "status": task.status.value,
            "error": task.error.message if task.error else None,
        }
        for task_id, task in result.tasks.items()
    }


def evaluate_outputs(
    outputs: Mapping[str, Any], result: RunResult, inputs: Mapping[str, Any], source_map: SourceMap
) -> dict[str, Any]:
    """Every output's value; ``WorkflowFileError`` names each output that cannot be computed."""
    scope = {"steps": result_scope(result), "inputs": plain_data(dict(inputs))}
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in outputs.items():
        compiled: CompiledValue | None = None
        try:
            compiled = compile_value(value)
            values[name] = compiled.render(scope)
        except ExpressionError as exc:
            hint = _unfinished(compiled, result) if compiled is not None else None
            problems.append(source_map.problem(("outputs", name), f"output {name!r}: {exc}", hint=hint))
    if problems:
        raise WorkflowFileError(problems)
    return values


def _unfinished(compiled: CompiledValue, result: RunResult) -> str | None:
    """Usually an output fails because a step it reads did not succeed: say which."""
    notes = [
        f"step {ref!r} {result.tasks[ref].status.value}"
        for ref in sorted(compiled.refs)
        if ref in result.tasks and result.tasks[ref].status is not TaskStatus.SUCCEEDED
    ]
    if not notes:
        return None
    return ", ".join(notes) + "; guard with `| default(…)` or a condition on .status"
