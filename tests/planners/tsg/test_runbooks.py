"""The six public runbooks: the DAG each compiles to (commands, parallel checks, branches)."""

from __future__ import annotations

import pytest

from planners.tsg import CompiledGuide, CompiledStep, tsg_tools
from planners.tsg.judge import ConditionJudge
from tools import tool
from tools.builtin import builtin_registry

from .conftest import DATA, RUNBOOKS


def command(compiled: CompiledGuide, fragment: str) -> CompiledStep:
    matches = [s for s in compiled.steps if s.command is not None and fragment in s.command.text]
    assert len(matches) == 1, f"{fragment!r}: {[s.id for s in matches]}"
    return matches[0]


def judge_of(compiled: CompiledGuide, step: CompiledStep) -> CompiledStep:
    return compiled.step(step.gates[-1][0])


@pytest.mark.parametrize("name", RUNBOOKS)
def test_every_runbook_compiles_to_a_valid_workflow(name: str, compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled[name]
    registry = builtin_registry()
    for item in tsg_tools(ConditionJudge(), registry):
        registry.register(item)

    @tool
    def promql(query: str) -> str:
        return query

    @tool
    def logql(query: str) -> str:
        return query

    registry.register(promql)
    registry.register(logql)
    workflow = guide.workflow()
    assert workflow.problems(registry) == []
    assert workflow.to_graph() is not None
    # Every step points back at a real line of the guide, and the YAML says so in a comment.
    lines = (DATA / name).read_text().splitlines()
    text = guide.to_yaml()
    for step in guide.steps:
        assert 1 <= step.line <= len(lines)
        assert f"# guide line {step.line}" in text or f"guide line {step.condition.line}" in text  # type: ignore[union-attr]


def test_etcd_query_first_then_the_defrag_after_approval(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["etcd-high-fsync-durations.md"]
    assert len(guide.command_steps()) == 2
    query, defrag = command(guide, "histogram_quantile"), command(guide, "etcdctl defrag")
    assert query.tool == "promql" and not query.needs_approval
    assert defrag.tool == "shell" and defrag.needs_approval
    assert query.id in guide.ancestors(defrag.id)  # a mitigation waits for the diagnosis


def test_k8s_debug_pods_triage_branches_run_in_parallel(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["k8s-debug-pods.md"]
    assert len(guide.command_steps()) == 6
    pods = command(guide, "describe pods")
    rc = command(guide, "describe rc")
    services = command(guide, "endpointslices")
    for first, second in [(pods, rc), (pods, services), (rc, services)]:
        assert guide.parallel(first.id, second.id)
    # The triage list of links makes each section a branch with its own judge.
    assert judge_of(guide, pods).args["condition"] == "the problem is: Debugging Pods"
    assert judge_of(guide, services).args["condition"] == "the problem is: Debugging Services"
    # "My pod stays pending / waiting / terminating" are alternatives decided on describe's output.
    pending = guide.step("if_a_pod_is_stuck_in_pending")
    waiting = guide.step("if_a_pod_is_stuck_in_the_waitin")
    assert pending.args["test"] == {"kind": "contains", "op": "in", "value": "Pending"}
    assert pending.args["evidence"] == f"${{{{ steps.{pods.id}.output }}}}"
    assert guide.parallel(pending.id, waiting.id)
    # Mutating commands in a branch need approval and stay inside the branch.
    pull = command(guide, "docker pull")
    assert pull.needs_approval and [g for g, _ in pull.gates][-1] == waiting.id
    # "If none of the above solves your problem" waits for every branch: an OR-join.
    last = guide.step("if_none_of_the_above_solves_you")
    assert last.join == "any" and pull.id in guide.ancestors(last.id)
    assert set(guide.inputs) == {"POD_NAME", "image", "CONTROLLER_NAME", "SERVICE_NAME"}


def test_kube_api_queries_are_parallel_and_gated_by_the_jump(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["kube-api-error-budget-burn.md"]
    steps = guide.command_steps()
    assert [s.tool for s in steps] == ["logql", "promql", "promql", "promql", "promql"]
    slow = [s for s in steps if s.tool == "promql"]
    assert all(guide.parallel(a.id, b.id) for a in slow for b in slow if a is not b)
    judges = {s.gates[0][0] for s in slow}
    assert len(judges) == 1  # "If you don't see anything obvious … Check the queries below!"
    assert "don't see anything obvious" in guide.step(judges.pop()).args["condition"]
    loki = steps[0]
    assert loki.args == {"query": '{component="kube-apiserver"}'} and not loki.gates


def test_mcd_restart_waits_for_the_interactive_steps(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-mcd-pivot-error.md"]
    assert len(guide.command_steps()) == 6
    # `oc logs -f`, `oc debug node`, `chroot` do not finish on their own: a person does them.
    manual = {s.args.get("command") for s in guide.steps if s.kind == "manual"}
    assert "oc debug node ${{ inputs.Node_name }}" in manual and "chroot /host" in manual
    restart = command(guide, "systemctl restart")
    debug = next(s for s in guide.steps if s.args.get("command") == "chroot /host")
    assert restart.needs_approval and debug.id in guide.ancestors(restart.id)
    gather = [command(guide, "rpm-ostree status"), command(guide, "ostree-finalize"), command(guide, "-b -1")]
    assert all(guide.parallel(a.id, b.id) for a in gather for b in gather if a is not b)
    assert all(not s.needs_approval and s.gates for s in gather)


def test_odf_worker_checks_run_only_when_ceph_is_unhealthy(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-odf-diagnosis.md"]
    assert len(guide.command_steps()) == 7
    status, osd = command(guide, "ceph status"), command(guide, "ceph osd status")
    assert guide.parallel(status.id, osd.id)
    nodes = command(guide, "oc get nodes")
    gate = judge_of(guide, nodes)
    assert gate.args["test"] == {"kind": "contains", "op": "not in", "value": "HEALTH_OK"}
    assert (
        gate.args["evidence"] == f"${{{{ steps.{status.id}.output }}}}"
    )  # found by the `ceph status` in the text
    events = command(guide, "grep NODE_NAME")
    assert judge_of(guide, events).args["condition"] == "any nodes are not ready/scheduable"
    # The backplane tunnel and login need a person; everything after them waits.
    tunnel = next(s for s in guide.steps if "tunnel" in str(s.args.get("command")))
    assert tunnel.kind == "manual" and tunnel.id in guide.ancestors(status.id)


def test_target_down_checks_are_parallel_and_files_flow(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-target-down.md"]
    assert len(guide.command_steps()) == 9
    logs, top, monitor = (
        command(guide, "logs -l"),
        command(guide, "oc top pod"),
        command(guide, "servicemonitor"),
    )
    assert guide.parallel(logs.id, top.id) and guide.parallel(top.id, monitor.id)
    assert logs.args["argv"][:2] == ["sh", "-c"] and logs.args["set_env"] == {
        "NAMESPACE": "${{ inputs.NAMESPACE }}"
    }
    assert not logs.needs_approval  # oc logs | grep | sort | uniq: every part only reads
    extract, openssl = command(guide, "oc extract"), command(guide, "openssl x509")
    assert extract.needs_approval  # `> certificate.crt` writes a file
    assert extract.id in guide.ancestors(openssl.id)  # …which openssl then reads
    assert guide.inputs["NAMESPACE"]["description"] == "value of namespace label from alert"
    conditional = {s.id for s in guide.steps if s.gates}
    assert extract.id in conditional and top.id not in conditional
