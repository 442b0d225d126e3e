"""A real ``stepweave run`` exports its trace over OTLP/HTTP when OTEL_* variables say so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrator.telemetry.testing import OTLPReceiver

FLOW = """\
name: traced
steps:
  - id: hello
    tool: shell
    args: {argv: [echo, hello]}
  - id: done
    tool: wait
    args: {seconds: 0}
    needs: hello
"""

_CLEAN = ("OTEL_", "STEPWEAVE_", "OPENAI_")


def _stepweave(args: list[str], cwd: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEAN)}
    env.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_stepweave_run_sends_its_trace_to_an_otlp_receiver(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    with OTLPReceiver() as receiver:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_SERVICE_NAME": "otel-e2e",
        }
        proc = _stepweave(["run", "flow.yaml"], tmp_path, {**env, "XDG_DATA_HOME": str(tmp_path)})
        assert proc.returncode == 0, proc.stderr
        # The process has exited: whatever it exported is in (flushed at exit, not by a timer).
        spans = receiver.spans
        metrics = receiver.metrics
    by_name = {s.name: s for s in spans}
    assert set(by_name) == {"run traced", "task shell", "task wait"}, sorted(by_name)
    run = by_name["run traced"]
    assert run.service == "otel-e2e"
    assert run.attributes["stepweave.workflow.name"] == "traced"
    assert run.attributes["stepweave.run.status"] == "succeeded"
    assert run.parent_span_id == "" and run.status == 1
    for name in ("task shell", "task wait"):
        task = by_name[name]
        assert task.trace_id == run.trace_id and task.parent_span_id == run.span_id
        assert task.attributes["stepweave.task.status"] == "succeeded"
    assert by_name["task shell"].attributes["stepweave.task.id"] == "hello"
    assert by_name["task shell"].end_ns <= by_name["task wait"].start_ns  # `done` needs `hello`
    assert {"stepweave.task.duration", "stepweave.task.queue_wait", "stepweave.run.duration"} <= metrics


def test_without_otel_variables_the_cli_imports_no_opentelemetry(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    probe = "import sys, orchestrator.cli as c; c.configure_from_env(); print('opentelemetry' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CLEAN)}
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "False"


DEVICE_FLOW = """\
name: remote
steps:
  - id: far
    tool: work
    args: {seconds: 0}
    target: any-device
"""
AGENT_TOOLS = Path(__file__).resolve().parents[1] / "devices" / "agent_tools.py"


def test_local_agent_processes_export_into_the_runs_trace(tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(DEVICE_FLOW)
    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "fleet"}
        args = ["run", "flow.yaml", "--tools", str(AGENT_TOOLS), "--local-agents", "1", "--no-journal"]
        proc = _stepweave(args, tmp_path, env)
        assert proc.returncode == 0, proc.stderr
        # The agent process exports when it is stopped, which the run does not wait for.
        spans = receiver.wait_for_spans(lambda got: any(s.name == "device call work" for s in got))
    by_name = {s.name: s for s in spans}
    run, attempt = by_name["run remote"], by_name["task work"]
    dispatch, call = by_name["dispatch work"], by_name["device call work"]
    assert {s.trace_id for s in spans} == {run.trace_id}
    assert (attempt.parent_span_id, dispatch.parent_span_id, call.parent_span_id) == (
        run.span_id,
        attempt.span_id,
        dispatch.span_id,
    )
    assert call.attributes["stepweave.device.id"] == dispatch.attributes["stepweave.device.id"] == "local-1"
