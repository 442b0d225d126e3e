"""The six public runbooks: the DAG each compiles to (the author's order, branches, where commands run)."""

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


def test_etcd_the_defrag_inside_the_pods_is_shown_not_run(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["etcd-high-fsync-durations.md"]
    query = command(guide, "histogram_quantile")
    assert query.tool == "promql" and not query.needs_approval
    # "Run the following command in all etcd pods": typed inside a pod, so never run here.
    defrag = next(s for s in guide.steps if "etcdctl defrag" in str(s.args.get("command")))
    assert defrag.kind == "manual" and "inside the pod" in defrag.args["instruction"]
    assert query.id in guide.ancestors(defrag.id)  # a mitigation waits for the diagnosis
    assert defrag.gates  # …and runs only when the diagnosis found what it fixes


def test_k8s_debug_pods_triage_is_a_branch_per_section(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["k8s-debug-pods.md"]
    pods = command(guide, "describe pods")
    rc = command(guide, "describe rc")
    services = command(guide, "endpointslices")
    # "Is it your Pods, your RC or your Service?" + a link to each: one judged branch each.
    assert judge_of(guide, pods).args["condition"] == "the problem is: Debugging Pods"
    assert judge_of(guide, rc).args["condition"] == "the problem is: Debugging Replication Controllers"
    assert judge_of(guide, services).args["condition"] == "the problem is: Debugging Services"
    for first, second in [(pods, rc), (pods, services), (rc, services)]:
        assert guide.parallel(first.id, second.id)
    # "My pod stays pending / waiting" are symptoms decided on describe's output.
    pending = guide.step("if_a_pod_is_stuck_in_pending")
    waiting = guide.step("if_a_pod_is_stuck_in_the_waitin")
    assert pending.args["test"] == {"kind": "contains", "op": "in", "value": "Pending"}
    assert pending.args["evidence"] == f"${{{{ steps.{pods.id}.output }}}}"
    assert guide.parallel(pending.id, waiting.id)
    # A mutating command in a branch needs approval and runs only on that branch.
    pull = command(guide, "docker pull")
    assert pull.needs_approval and [g for g, _ in pull.gates][-1] == waiting.id
    # "If none of the above solves your problem" is reached from the end of every way: an OR-join.
    last = guide.step("heading_whatsnext")
    assert last.join == "any" and pull.id in guide.ancestors(last.id) and rc.id in guide.ancestors(last.id)
    assert set(guide.inputs) == {"POD_NAME", "image", "CONTROLLER_NAME", "SERVICE_NAME"}


def test_kube_api_queries_follow_the_jump(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["kube-api-error-budget-burn.md"]
    steps = guide.command_steps()
    assert [s.tool for s in steps] == ["logql", "promql", "promql", "promql", "promql"]
    loki = steps[0]
    assert loki.args == {"query": '{component="kube-apiserver"}'} and not loki.gates
    # "If you don't see anything obvious … [Check the queries below!](#example-queries…)"
    jump = next(s for s in guide.steps if s.kind == "judge" and "anything obvious" in s.args["condition"])
    queries = guide.step("example_queries_for_slow_request")
    assert jump.id in queries.needs and "output.holds" in str(queries.when)
    slow = [s for s in steps if s.tool == "promql"]
    assert all(queries.id in guide.ancestors(s.id) for s in slow)
    # "If you don't get any results back … that's good" reads the queries' output: no gate.
    assert not any("results back" in s.args.get("condition", "") for s in guide.steps if s.kind == "judge")


def test_mcd_commands_on_the_node_are_manual_steps(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-mcd-pivot-error.md"]
    # `oc logs -f` and `oc debug node` do not finish on their own; `chroot /host`, the restart
    # and the gathering commands are typed on the node: a person does them, shown the command.
    manual = {s.args.get("command") for s in guide.steps if s.kind == "manual"}
    assert "oc debug node ${{ inputs.Node_name }}" in manual and "chroot /host" in manual
    assert "systemctl restart rpm-ostreed" in manual and "rpm-ostree status" in manual
    assert not guide.command_steps()  # nothing here runs on the operator's machine
    restart = next(s for s in guide.steps if s.args.get("command") == "systemctl restart rpm-ostreed")
    debug = next(s for s in guide.steps if s.args.get("command") == "chroot /host")
    assert debug.id in guide.ancestors(restart.id)
    # The restart is one of the mitigation's branches: only when its condition was decided true.
    branch = guide.step(
        guide.ancestors(restart.id).intersection(s.id for s in guide.steps if s.kind == "judge").pop()
    )
    assert "rpm-ostree" in branch.args["condition"]


def test_odf_worker_checks_run_only_when_ceph_is_unhealthy(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-odf-diagnosis.md"]
    status, osd = command(guide, "ceph status"), command(guide, "ceph osd status")
    assert status.id in guide.ancestors(osd.id)  # one block, in the author's order
    nodes = command(guide, "oc get nodes")
    gate = judge_of(guide, nodes)
    assert gate.args["test"] == {"kind": "contains", "op": "not in", "value": "HEALTH_OK"}
    assert gate.args["evidence"] == f"${{{{ steps.{status.id}.output }}}}"  # the `ceph status` it names
    events = command(guide, "grep NODE_NAME")
    assert judge_of(guide, events).args["condition"] == "any nodes are not ready/scheduable"
    # The backplane tunnel and login need a person; everything after them waits.
    tunnel = next(s for s in guide.steps if "tunnel" in str(s.args.get("command")))
    assert tunnel.kind == "manual" and tunnel.id in guide.ancestors(status.id)


def test_target_down_sections_follow_the_author_and_files_flow(compiled: dict[str, CompiledGuide]) -> None:
    guide = compiled["openshift-target-down.md"]
    assert len(guide.command_steps()) == 9
    logs, top, monitor = (
        command(guide, "logs -l"),
        command(guide, "oc top pod"),
        command(guide, "servicemonitor"),
    )
    # The author wrote the checks as a sequence of sections: they stay in that order.
    assert logs.id in guide.ancestors(top.id) and top.id in guide.ancestors(monitor.id)
    # …but two read-only checks the author only listed one after the other may run at once.
    operator, cmo = (
        command(guide, "deployment/prometheus-operator"),
        command(guide, "cluster-monitoring-operator"),
    )
    assert guide.parallel(operator.id, cmo.id)
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
