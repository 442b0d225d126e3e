"""YAML workflows: the file format automation authors write, and its loader.

```yaml
name: nightly-health
inputs:
  host: {type: string, default: "127.0.0.1"}
defaults: {timeout: 30, retries: 1}
steps:
  - id: disk
    tool: shell
    args: {argv: ["df", "-P", "/"]}
  - id: page
    tool: shell
    when: ${{ steps.disk.output.exit_code != 0 }}
    args: {argv: ["echo", "paging"]}
outputs:
  disk_report: ${{ steps.disk.output.stdout }}
```

Modules, one concept each: ``yaml_source`` (YAML with line numbers), ``inputs``, ``steps``,
``model`` (``Workflow``), ``validation`` (pydantic errors → problems), ``checks`` (graph and
reference problems), ``outputs``, ``loader`` and ``problems`` (``Problem``, the error).
"""

from .loader import load_workflow, parse_workflow, workflow_json_schema
from .model import Workflow
from .problems import Problem, WorkflowFileError

__all__ = [
    "Problem",
    "Workflow",
    "WorkflowFileError",
    "load_workflow",
    "parse_workflow",
    "workflow_json_schema",
]
