"""Reading workflow files: ``load_workflow``, ``parse_workflow`` and the JSON Schema for editors."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from .model import Workflow
from .problems import Problem, WorkflowFileError
from .validation import validation_problems
from .yaml_source import read_yaml

__all__ = ["load_workflow", "parse_workflow", "workflow_json_schema"]

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Read and parse a workflow file; ``WorkflowFileError`` lists every problem with its line."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise WorkflowFileError(
            [Problem(file, None, None, None, f"cannot read the file: {reason}")]
        ) from None
    return parse_workflow(text, source=file)


def parse_workflow(text: str, source: str | None = None) -> Workflow:
    """Parse workflow YAML from a string; ``source`` names it in error messages.

    Checks the file's shape (YAML syntax, keys, types); call ``Workflow.problems()`` for
    what needs the whole workflow (references, cycles, tools).
    """
    document = read_yaml(text, source)
    source_map = document.source_map
    if not isinstance(document.data, dict):
        kind = "a list" if isinstance(document.data, list) else f"a single value ({document.data!r})"
        problem = source_map.problem(
            (), f"a workflow file must be a mapping, not {kind}", hint="start with `name:` and `steps:`"
        )
        raise WorkflowFileError([problem])
    try:
        workflow = Workflow.model_validate(document.data)
    except ValidationError as exc:
        raise WorkflowFileError(validation_problems(exc, document.data, source_map, Workflow)) from None
    workflow._source_map = source_map
    return workflow


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema of the file format, for editors (``stepweave schema > workflow.schema.json``)."""
    schema = Workflow.model_json_schema()
    return {"$schema": _JSON_SCHEMA_DIALECT, **schema}
