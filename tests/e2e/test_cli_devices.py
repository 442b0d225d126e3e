"""`stepweave broker`, `stepweave agent` and `stepweave run --broker/--local-agents`, as
separate real processes talking through a real broker (Mosquitto when installed)."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.devices import LocalBroker, find_mosquitto, write_password_file

from .test_cli import ROOT, cli, json_lines, stepweave_command

FLOW = "examples/devices/fleet-health.yaml"
TOOLS = "examples/devices/device_tools.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def background(*args: str, ready: str, stream: str) -> Iterator[subprocess.Popen[str]]:
    """Start a `stepweave` process and return once it printed ``ready`` on ``stream``."""
    reader: threading.Thread | None = None
    process = subprocess.Popen(
        [*stepweave_command(), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        start_new_session=True,
    )
    try:
        pipe = process.stdout if stream == "stdout" else process.stderr
        assert pipe is not None
        # A thread reads lines into a queue: select() on a buffered pipe misses lines the
        # buffer already holds (two lines arriving together looked like silence).
        lines: queue.Queue[str] = queue.Queue()
        source = pipe

        def read_lines() -> None:
            for line in source:
                lines.put(line)

        reader = threading.Thread(target=read_lines, daemon=True)
        reader.start()
        seen: list[str] = []
        deadline = time.monotonic() + 30
        while not any(ready in line for line in seen):
            try:
                seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(
                    f"{args[0]} did not print {ready!r} in 30 s (exit status {process.poll()}): {seen}"
                ) from None
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if reader is not None:
            reader.join(timeout=10)  # it ends at EOF: the process has exited
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()


def outputs_of(stdout: str) -> dict[str, object]:
    last = json_lines(stdout)[-1]
    assert last["event"] == "workflow_outputs"
    outputs: dict[str, object] = last["outputs"]
    return outputs


def test_run_with_local_agents_spreads_checks_over_them() -> None:
    proc = cli("run", FLOW, "--tools", TOOLS, "--local-agents", "2", "--local-label", "site=lab", "--json")
    assert proc.returncode == 0, proc.stderr
    outputs = outputs_of(proc.stdout)
    assert outputs["healthy"] is True
    per_device = outputs["checks_per_device"]
    assert isinstance(per_device, dict)
    assert set(per_device) <= {"local-1", "local-2"} and sum(per_device.values()) == 5


def test_run_of_a_device_workflow_without_a_broker_says_what_to_pass() -> None:
    proc = cli("run", FLOW, "--tools", TOOLS)
    assert proc.returncode == 2
    assert "step 'check' runs on a device" in proc.stderr and "--broker" in proc.stderr


def test_local_agents_without_the_label_the_steps_need_fail_clearly() -> None:
    # No agent is labelled site=lab: the checks wait for a capable device, then fail.
    proc = cli("run", FLOW, "--tools", TOOLS, "--local-agents", "1", "--json", timeout=90)
    assert proc.returncode == 1
    assert "check" in proc.stderr and "site" in proc.stderr


def test_broker_agent_and_run_as_separate_commands(tmp_path: Path) -> None:
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "lab-7", "--label", "site=lab", "--tools", TOOLS,
            ready="agent lab-7 online", stream="stderr",
        ),
    ):  # fmt: skip
        proc = cli(
            "run", FLOW, "--tools", TOOLS, "--broker", url, "--json", "--set", 'checks=["disk","load"]'
        )
    assert proc.returncode == 0, proc.stderr
    outputs = outputs_of(proc.stdout)
    assert outputs["checks_per_device"] == {"lab-7": 2}
    started = [e for e in json_lines(proc.stdout) if e["event"] == "task_started"]
    assert {e["task_id"] for e in started} >= {"check[0]", "check[1]", "summary"}


def test_agent_needs_a_broker_and_valid_labels() -> None:
    env_free = cli("agent", "--id", "x", "--tools", TOOLS)
    assert env_free.returncode == 2 and "no broker" in env_free.stderr
    bad_label = cli(
        "agent", "--id", "x", "--tools", TOOLS, "--broker", "mqtt://127.0.0.1:1", "--label", "oops"
    )
    assert bad_label.returncode == 2 and "expected key=value" in bad_label.stderr


def test_a_network_broker_needs_credentials() -> None:
    """Review finding 6: `broker --host 0.0.0.0` was anonymous, so anyone could run `shell`."""
    port = str(free_port())
    refused = cli("broker", "--host", "0.0.0.0", "--port", port, timeout=30)
    assert refused.returncode == 2
    assert "refusing to listen on 0.0.0.0 without credentials" in refused.stderr
    assert "--password-file" in refused.stderr and "stepweave broker ready" not in refused.stdout
    # An agent offering tools that change things will not serve a network broker anonymously.
    anonymous = cli("agent", "--broker", f"mqtt://192.0.2.1:{port}", "--id", "x", "--tools", TOOLS)
    assert anonymous.returncode == 1 and "without logging in" in anonymous.stderr


@pytest.mark.skipif(find_mosquitto() is None, reason="password files need Mosquitto (amqtt has none)")
def test_a_broker_with_a_password_file_refuses_anonymous_clients_and_no_password_is_printed(
    tmp_path: Path,
) -> None:
    """Findings 6 and 13: a password-protected network broker, and agents that never print the password."""
    secret = "s3cret-Pw-4711"
    passwords = tmp_path / "passwd"
    write_password_file(passwords, {"lab-7": secret, "orchestrator": secret + "o"})
    port = free_port()
    with background(
        "broker", "--host", "0.0.0.0", "--port", str(port), "--password-file", str(passwords),
        ready="stepweave broker ready", stream="stdout",
    ):  # fmt: skip
        good = f"mqtt://lab-7:{secret}@127.0.0.1:{port}"
        log = tmp_path / "agent.log"
        with log.open("w") as sink:
            agent = subprocess.Popen(
                [*stepweave_command(), "agent", "--broker", good, "--id", "lab-7", "--tools", TOOLS],
                cwd=ROOT,
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "COLUMNS": "200", "STEPWEAVE_LOG_LEVEL": "DEBUG"},
            )
            try:
                deadline = time.monotonic() + 30
                while "agent lab-7 online" not in log.read_text():
                    assert agent.poll() is None and time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
            finally:
                agent.send_signal(signal.SIGINT)
                agent.wait(timeout=20)
        output = log.read_text()
        assert f"agent lab-7 online at mqtt://lab-7@127.0.0.1:{port}" in output
        # Anonymous, and wrong password: refused, and the wrong password is not echoed either.
        anonymous = cli("agent", "--broker", f"mqtt://127.0.0.1:{port}", "--id", "lab-8", "--tools", TOOLS)
        assert anonymous.returncode == 1 and "refused" in anonymous.stderr
        wrong = cli(
            "agent", "--broker", f"mqtt://lab-7:{secret}x@127.0.0.1:{port}", "--id", "lab-7", "--tools", TOOLS
        )
        assert wrong.returncode == 1 and "refused" in wrong.stderr
    for text in (output, anonymous.stdout, anonymous.stderr, wrong.stdout, wrong.stderr):
        assert secret not in text, text


def test_device_and_device_label_pin_the_devices_a_run_uses() -> None:
    """`--device ID` and `--device-label k=v` restrict `run` to those devices (other agents idle)."""
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "lab-7", "--label", "site=lab", "--tools", TOOLS,
            ready="agent lab-7 online", stream="stderr",
        ),
        background(
            "agent", "--broker", url, "--id", "lab-8", "--label", "site=lab", "--label", "rack=2",
            "--tools", TOOLS, ready="agent lab-8 online", stream="stderr",
        ),
    ):  # fmt: skip
        checks = '["disk","load","memory"]'
        by_id = cli("run", FLOW, "--tools", TOOLS, "--broker", url, "--json", "--set", f"checks={checks}",
                    "--device", "lab-7")  # fmt: skip
        by_label = cli("run", FLOW, "--tools", TOOLS, "--broker", url, "--json", "--set", f"checks={checks}",
                       "--device-label", "rack=2")  # fmt: skip
    assert by_id.returncode == 0, by_id.stderr
    assert outputs_of(by_id.stdout)["checks_per_device"] == {"lab-7": 3}
    assert by_label.returncode == 0, by_label.stderr
    assert outputs_of(by_label.stdout)["checks_per_device"] == {"lab-8": 3}


def test_device_options_need_a_broker_and_exist_on_ask_and_tsg_run() -> None:
    alone = cli("run", FLOW, "--tools", TOOLS, "--device", "lab-7", "--local-agents", "0")
    assert alone.returncode == 2 and "runs on a device" in alone.stderr
    local = cli("run", "examples/health-check.yaml", "--device", "lab-7")
    assert local.returncode == 2 and "--device and --device-label pick devices" in local.stderr
    for command in (["ask"], ["tsg", "run"]):
        helped = cli(*command, "--help")
        assert helped.returncode == 0 and "--device-label" in helped.stdout and "--device " in helped.stdout


AGENT_TOOLS = "tests/orchestrator/devices/agent_tools.py"
DEVICE_ONLY = """\
name: device-only
steps:
  - id: mark
    tool: work
    target: any-device
    args: {seconds: SECONDS}
outputs:
  pid: ${{ steps.mark.output.pid }}
"""


def test_a_workflow_of_device_only_tools_validates_and_runs_against_the_fleet(tmp_path: Path) -> None:
    """Issue 13 item 1: the orchestrator does not have `work`; the agent's announcement is the contract."""
    flow = tmp_path / "flow.yaml"
    flow.write_text(DEVICE_ONLY.replace("SECONDS", "0.01"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEVICE_ONLY.replace("SECONDS", "'soon'").replace("{seconds", "{journal: 1, seconds"))
    nowhere = tmp_path / "nowhere.yaml"
    nowhere.write_text(
        DEVICE_ONLY.replace("tool: work", "tool: read_file").replace("{seconds: SECONDS}", "{path: x}")
    )
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "edge-1", "--label", "site=edge", "--tools", AGENT_TOOLS,
            ready="agent edge-1 online", stream="stderr",
        ),
    ):  # fmt: skip
        without = cli("validate", str(flow))
        validated = cli("validate", str(flow), "--broker", url)
        ran = cli("run", str(flow), "--broker", url, "--json", "--no-journal")
        refused = cli("validate", str(bad), "--broker", url)
        offered_nowhere = cli("run", str(nowhere), "--broker", url, "--no-journal")
    assert without.returncode == 1 and "unknown tool 'work'" in without.stdout + without.stderr
    assert validated.returncode == 0, validated.stderr
    assert "1 step, valid" in validated.stdout
    assert ran.returncode == 0, ran.stderr
    assert isinstance(outputs_of(ran.stdout)["pid"], int)
    assert refused.returncode == 1
    problems = refused.stdout + refused.stderr
    assert "seconds" in problems and "'soon' is not of type 'number'" in problems, problems
    assert "journal" in problems and "not of type 'string'" in problems, problems
    assert offered_nowhere.returncode == 1
    assert "step 'mark': no live device offers tool 'read_file'" in offered_nowhere.stderr
    assert "edge-1 (work)" in offered_nowhere.stderr and "nowhere.yaml:3:" in offered_nowhere.stderr


def test_a_refused_broker_connection_fails_fast_and_says_so(tmp_path: Path) -> None:
    """Issue 17 item 9: nothing listening used to cost a silent 10 s."""
    flow = tmp_path / "flow.yaml"
    flow.write_text(DEVICE_ONLY.replace("SECONDS", "0.01"))
    url = f"mqtt://127.0.0.1:{free_port()}"
    proc = cli("validate", str(flow), "--broker", url)
    assert proc.returncode == 1
    assert "connection refused" in proc.stderr and "is the broker running" in proc.stderr, proc.stderr
    assert "within" not in proc.stderr  # not the connect timeout's message: it did not wait


@pytest.mark.skipif(find_mosquitto() is None, reason="the warning differs when Mosquitto is missing")
def test_broker_kind_amqtt_does_not_claim_mosquitto_is_missing() -> None:
    """Issue 17 item 9: `broker --kind amqtt` warned "Mosquitto is not installed" when it is."""
    from orchestrator.devices.broker import amqtt_warning

    assert "Mosquitto is not installed" not in amqtt_warning()
    assert "--kind amqtt" in amqtt_warning() and "development only" in amqtt_warning()


def wait_for_text(path: Path, process: subprocess.Popen[str], text: str, within: float = 30) -> str:
    """The file's content once it holds ``text`` (the process must keep running meanwhile)."""
    deadline = time.monotonic() + within
    while text not in (content := path.read_text()):
        assert process.poll() is None, f"exited {process.returncode}: {content}"
        assert time.monotonic() < deadline, f"no {text!r} within {within} s: {content}"
        time.sleep(0.05)
    return content


def test_devices_lists_the_fleet_and_watch_follows_it(tmp_path: Path) -> None:
    """Issue 13 item 2: `stepweave devices` (table, --json, --watch --json) against real agents."""
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    watched = tmp_path / "watch.jsonl"
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "lab-1", "--label", "site=lab", "--tools", TOOLS,
            ready="agent lab-1 online", stream="stderr",
        ),
    ):  # fmt: skip
        with background(
            "agent", "--broker", url, "--id", "edge-1", "--label", "site=edge", "--max-concurrency", "2",
            "--tools", AGENT_TOOLS, ready="agent edge-1 online", stream="stderr",
        ):  # fmt: skip
            table = cli("devices", "--broker", url)
            listed = cli("devices", "--broker", url, "--json")
            pinned = cli("devices", "--broker", url, "--json", "--device-label", "site=edge")
            with watched.open("w") as sink:
                watch = subprocess.Popen(
                    [*stepweave_command(), "devices", "--broker", url, "--json", "--watch"],
                    cwd=ROOT, stdout=sink, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
                )  # fmt: skip
            try:
                wait_for_text(watched, watch, '"id": "lab-1"')
                # Leaving the block stops edge-1: the watch reports it lost.
            except BaseException:
                watch.kill()
                raise
        try:
            seen = wait_for_text(watched, watch, '"state": "lost"')
        finally:
            os.killpg(watch.pid, signal.SIGINT)
            watch.wait(timeout=20)
    assert table.returncode == 0, table.stderr
    assert "lab-1" in table.stdout and "site=lab" in table.stdout and "health_check" in table.stdout
    assert "edge-1" in table.stdout and "2 of 2 alive" in table.stdout
    assert listed.returncode == 0, listed.stderr
    records = {r["id"]: r for r in json_lines(listed.stdout)}
    assert set(records) == {"lab-1", "edge-1"}
    edge = records["edge-1"]
    assert edge["state"] == "alive" and edge["labels"] == {"site": "edge"} and edge["tools"] == ["work"]
    assert edge["max_concurrency"] == 2 and edge["in_flight"] == 0 and edge["load"] == 0
    assert edge["protocol"] == "1.2" and edge["seconds_since_heartbeat"] < 10
    assert [r["id"] for r in json_lines(pinned.stdout)] == ["edge-1"]
    updates = [r for r in json_lines(seen) if r["id"] == "edge-1"]
    assert [r["state"] for r in updates] == ["alive", "lost"]
    assert watch.returncode == 130


def test_devices_needs_a_broker() -> None:
    proc = cli("devices")
    assert proc.returncode == 2 and "no broker" in proc.stderr


LAB_TOOLS = "tests/orchestrator/devices/lab_tools.py"


async def test_ask_plans_over_the_fleet_and_replans_when_a_device_goes_away() -> None:
    """Issue 13 item 3: `ask --broker` with tools only the devices have (scripted model).

    The model is shown every tool with where it runs. Between the prompt and the plan the
    device offering `health_check` shuts down: the plan that uses it goes back to the model
    (nothing waits for the missing device), and the new plan runs on the device left. A
    tool announced read-only (`probe`) runs unasked; `work` is not announced read-only, so
    without a terminal or --allow it is refused.
    """
    from planners.llm.testing import OpenAITestServer, RecordedRequest, ScriptedReply

    from .test_cli_ask import ask, server_env

    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    planner_calls: list[RecordedRequest] = []
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "lab-1", "--label", "site=lab", "--tools", AGENT_TOOLS,
            "--tools", LAB_TOOLS, ready="agent lab-1 online", stream="stderr",
        ),
        background(
            "agent", "--broker", url, "--id", "edge-1", "--label", "site=edge", "--tools", TOOLS,
            ready="agent edge-1 online", stream="stderr",
        ) as edge,
    ):  # fmt: skip

        def respond(record: RecordedRequest) -> ScriptedReply:
            if "You are the joiner" in record.text:
                return ScriptedReply.finish("lab-1 answered the probe")
            planner_calls.append(record)
            if len(planner_calls) == 1:
                # The device goes away while the model "thinks" (its offline status is out).
                os.killpg(edge.pid, signal.SIGINT)
                edge.wait(timeout=20)
                return ScriptedReply.plan([{"id": "t1", "tool": "health_check", "args": {"check": "disk"}}])
            if len(planner_calls) == 2:
                first = re.search(r"numbered from t([0-9]+)", record.text)
                n = int(first.group(1)) if first else 1
                return ScriptedReply.plan(
                    [
                        {"id": f"t{n}", "tool": "probe"},
                        {"id": f"t{n + 1}", "tool": "work", "args": {"seconds": 0.01}, "deps": [f"t{n}"]},
                    ]
                )
            return ScriptedReply.plan([])  # after the refused step: nothing more to do

        async with OpenAITestServer(responder=respond) as server:
            code, stdout, stderr = await ask(
                "Which lab device answers?", "--broker", url, "--json", env=server_env(server)
            )
    assert len(planner_calls) >= 2, stderr
    prompt = planner_calls[0].text
    assert "## probe" in prompt and "Where: runs on lab-1 (site=lab)" in prompt, prompt
    assert "## health_check" in prompt and "Where: runs on edge-1 (site=edge)" in prompt, prompt
    # A repair (the plan was checked against the live fleet) or a replan (its task failed).
    assert "no live device offers" in planner_calls[1].text, planner_calls[1].text
    lines = json_lines(stdout)
    ended = {e["task_id"]: e for e in lines if e["event"] == "task_ended"}
    probes = [e for e in ended.values() if e["status"] == "succeeded" and e["output"].get("device")]
    assert [e["output"]["device"] for e in probes] == ["lab-1"], stdout
    assert code == 1 and "1 step(s) were not approved" in stderr, stderr
    assert lines[-1]["answer"] == "lab-1 answered the probe"


def test_tsg_run_checks_the_guide_against_the_fleet_before_running(tmp_path: Path) -> None:
    """Issue 13 item 1 for `tsg run --broker`: a command no live device can run fails first."""
    port = free_port()
    url = f"mqtt://127.0.0.1:{port}"
    database = tmp_path / "metrics.db"
    with (
        background("broker", "--port", str(port), ready="stepweave broker ready", stream="stdout"),
        background(
            "agent", "--broker", url, "--id", "edge-1", "--tools", AGENT_TOOLS,
            ready="agent edge-1 online", stream="stderr",
        ),
    ):  # fmt: skip
        proc = cli(
            "tsg", "run", "examples/tsg/disk-usage.md", "--broker", url, "--yes",
            "--set", f"DATA_DIR={tmp_path}", "--set", f"database={database}",
        )  # fmt: skip
    assert proc.returncode == 1
    assert "no live device offers tool 'shell'" in proc.stderr, proc.stderr
    assert "disk-usage.md:" in proc.stderr and "edge-1 (work)" in proc.stderr
    assert not database.exists()  # nothing ran


@pytest.mark.skipif(find_mosquitto() is None, reason="bridges are a Mosquitto feature")
def test_namespace_drives_a_bridged_site_from_the_cli(tmp_path: Path) -> None:
    """Issue 13: an agent on an edge broker, bridged under sites/lab/; the CLI on the central one."""
    from tests.orchestrator.devices.test_sites import bridge_config

    flow = tmp_path / "flow.yaml"
    flow.write_text(DEVICE_ONLY.replace("SECONDS", "0.01"))
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    site = f"sites/lab/{namespace}"
    central = LocalBroker(kind="mosquitto")
    central.start()
    try:
        port = int(central.url.rsplit(":", 1)[1])
        edge = LocalBroker(kind="mosquitto", extra_config=bridge_config("lab", port, namespace))
        edge.start()
        try:
            with background(
                "agent", "--broker", edge.url, "--id", "lab-1", "--tools", AGENT_TOOLS, "--namespace", namespace,
                ready="agent lab-1 online", stream="stderr",
            ):  # fmt: skip
                ran = cli(
                    "run", str(flow), "--broker", central.url, "--namespace", site, "--json", "--no-journal"
                )
                listed = subprocess.run(
                    [*stepweave_command(), "devices", "--broker", central.url, "--json"],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=False,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "STEPWEAVE_NAMESPACE": site},
                )
                unscoped = cli("validate", str(flow), "--broker", central.url, "--namespace", namespace)
        finally:
            edge.close()
    finally:
        central.close()
    bad = cli("devices", "--broker", central.url, "--namespace", "sites/+/stepweave")
    assert ran.returncode == 0, ran.stderr
    assert isinstance(outputs_of(ran.stdout)["pid"], int)
    assert listed.returncode == 0, listed.stderr
    assert [d["id"] for d in json_lines(listed.stdout)] == ["lab-1"]
    assert unscoped.returncode == 1
    assert "unknown tool 'work'" in unscoped.stderr, unscoped.stderr  # nothing under that prefix centrally
    assert bad.returncode == 2 and "invalid MQTT namespace 'sites/+/stepweave'" in bad.stderr, bad.stderr
