"""Reading workflow files: ``load_workflow``, ``parse_workflow`` and the JSON Schema for editors."""

from __future__ import annotations

import os
from typing import Any

from pydantic import ValidationError

from .model import Workflow
from .problems import WorkflowFileError
from .validation import validation_problems
from .yaml_source import paused_gc, read_text, read_yaml

__all__ = ["load_workflow", "parse_workflow", "workflow_json_schema"]

_JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Read and parse a workflow file; ``WorkflowFileError`` lists every problem with its line.

    Files over 32 MiB are refused (``$STEPWEAVE_MAX_YAML_BYTES`` raises the cap).
    """
    file = os.fspath(path)
    text = read_text(file)
    return parse_workflow(text, source=file)


def parse_workflow(text: str, source: str | None = None) -> Workflow:
    """Parse workflow YAML from a string; ``source`` names it in error messages.

    Checks the file's shape (YAML syntax, keys, types); call ``Workflow.problems()`` for
    what needs the whole workflow (references, cycles, tools).
    """
    with paused_gc():  # validation builds as many objects as reading (see paused_gc)
        return _parse(text, source)


def _parse(text: str, source: str | None) -> Workflow:
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
    # The loader alone knows where a workflow came from; a pydantic private attribute keeps
    # it out of the schema and out of model_dump.
    workflow._source_map = source_map  # noqa: SLF001 - the one writer of Workflow's origin
    return workflow


def workflow_json_schema() -> dict[str, Any]:
    """JSON Schema of the file format, for editors (``stepweave schema > workflow.schema.json``)."""
    schema = Workflow.model_json_schema()
    return {"$schema": _JSON_SCHEMA_DIALECT, **schema}
