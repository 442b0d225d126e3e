"""Parsing guides: sections and lines, commands vs sample output, classification, placeholders, phrases."""

from __future__ import annotations

import pytest

from planners.tsg import GuideError, parse_guide
from planners.tsg.classify import classify_sql
from planners.tsg.commands import commands_in_block, make_command
from planners.tsg.conditions import Measure, condition_clause, find_jumps, find_repeat, find_test
from planners.tsg.markdown import parse_markdown

from .conftest import DATA


def test_front_matter_is_skipped_and_lines_are_kept() -> None:
    document = parse_markdown((DATA / "kube-api-error-budget-burn.md").read_text())
    assert document.front_matter == {"title": "Kube API Error Budget Burn", "weight": 20}
    top = document.root.children[0]
    assert (top.title, top.line) == ("KubeAPIErrorBudgetBurn", 8)
    assert [(c.title, c.line) for c in top.children][:3] == [
        ("Impact", 10),
        ("Critical", 26),
        ("Warning", 33),
    ]


def test_console_blocks_keep_commands_and_drop_sample_output() -> None:
    text = (DATA / "openshift-mcd-pivot-error.md").read_text()
    guide = parse_guide(text, "mcd.md")
    commands = [(c.line, c.text) for c in guide.commands()]
    assert commands[0] == (
        39,
        "oc logs -f -n openshift-machine-config-operator $DAEMONPOD -c machine-config-daemon",
    )
    texts = [t for _, t in commands]
    assert not any(t.startswith(("I1126", "E1126", "error:", "received", "-delete")) for t in texts)
    # `#` is the root prompt in a console block, not a comment.
    assert "systemctl restart rpm-ostreed" in texts and "journalctl -u ostree-finalize-staged" in texts


def test_prompts_continuations_and_output_in_one_block() -> None:
    block = "$ oc get nodes -o wide \\\n    --show-labels\nNAME   STATUS\nip-10-0-1   Ready\n$ exit\n"
    found = commands_in_block("bash", block, 10)
    assert [(c.line, c.text) for c in found] == [(11, "oc get nodes -o wide --show-labels")]
    # Without prompts, a shell block's lines are commands only when they look like one.
    output = "Error from server (BadRequest): error when creating\ncannot be handled as a Pod: strict\n"
    assert commands_in_block("shell", output, 1) == []
    # Data blocks hold no commands; unlabelled PromQL is recognised.
    assert commands_in_block("yaml", "kind: Pod\n", 1) == []
    assert commands_in_block("", 'sum(rate(x_total{job="a"}[5m])) > 0.01\n', 1)[0].language == "promql"


@pytest.mark.parametrize(
    ("text", "effect"),
    [
        ("kubectl get pods -n prod", "read"),
        ("oc -n $NAMESPACE logs -l app=x --tail=10", "read"),
        ("kubectl delete pod web-0", "write"),
        ("kubectl scale deploy/web --replicas=0", "write"),
        ("kubectl logs -f web-0", "session"),
        ("oc port-forward svc/x 9093", "session"),
        ("oc exec -n ns pod -- df", "read"),
        ("oc exec -n ns pod -- rm -rf /data", "write"),
        ("curl -s http://localhost:9093/api/v1/alerts | jq .", "read"),
        ("curl -X POST http://x/reload", "write"),
        ("oc extract secret/s --to=- > cert.crt", "write"),
        ("grep error app.log 2>/dev/null | sort | uniq -c", "read"),
        ("find /tmp -name '*.log' -delete", "write"),
        ("sudo journalctl -u kubelet", "read"),  # a runner is judged by what it runs
        ("sudo -u root rm -rf /data", "write"),
        ("frobnicate --all", "write"),  # unknown: conservatively mutating
        ("ls $(cat list)", "write"),
    ],
)
def test_shell_commands_are_classified_conservatively(text: str, effect: str) -> None:
    assert make_command(text, "shell", 1).effect == effect


def test_sql_and_query_classification() -> None:
    assert classify_sql("SELECT * FROM t -- comment").effect == "read"
    assert classify_sql("WITH x AS (SELECT 1) DELETE FROM t").effect == "write"
    assert classify_sql("INSERT INTO t VALUES (1)").effect == "write"
    assert make_command("up == 0", "promql", 1).effect == "read"
    assert make_command(".drop table T", "kql", 1).effect == "write"


def test_placeholders_become_inputs_without_shell_injection() -> None:
    simple = make_command("kubectl describe pods ${POD_NAME} -n $NAMESPACE", "shell", 1)
    assert [p.name for p in simple.placeholders] == ["POD_NAME", "NAMESPACE"]
    assert simple.tool_args() == {
        "argv": ["kubectl", "describe", "pods", "${{ inputs.POD_NAME }}", "-n", "${{ inputs.NAMESPACE }}"]
    }
    piped = make_command("oc get events -n <namespace> | grep $HOME", "shell", 1)
    args = piped.tool_args()
    assert args["argv"] == ["sh", "-c", 'oc get events -n "${namespace}" | grep $HOME']
    assert args["set_env"] == {"namespace": "${{ inputs.namespace }}"}  # $HOME is the shell's own
    query = make_command("SELECT * FROM disk WHERE host = '$HOST' AND id > <min_id>", "sql", 1).tool_args()
    assert query["query"] == "SELECT * FROM disk WHERE host = ? AND id > ?"
    assert query["params"] == ["${{ inputs.HOST }}", "${{ inputs.min_id }}"]


def test_control_flow_phrases() -> None:
    clause = condition_clause("If the error rate is above 8%, go to step 4.", 3)
    assert clause is not None
    assert clause[0].test == Measure("threshold", ">", 8.0, "%")
    jumps = find_jumps("If any nodes are not ready, then continue to Step 2.", 5, [])
    assert jumps[0].step == 2 and jumps[0].condition is not None and not jumps[0].back
    assert find_jumps("If it still fails, go back to step 1.", 5, [])[0].back
    section = find_jumps(
        "If `ceph status` is not in HEALTH_OK, please look at the Troubleshooting section.", 9, []
    )
    assert section[0].section == "Troubleshooting"
    assert find_test("p99 stays below 250 ms") == Measure("threshold", "<", 250.0, "ms")
    assert find_test("the pod is `CrashLoopBackOff`") == Measure("contains", "in", "CrashLoopBackOff")
    assert find_test("the error rate is elevated") is None
    repeat = find_repeat("Repeat until the count is below 1, at most 4 times, every 0.5 seconds.", 7)
    assert repeat is not None and (repeat.max_iterations, repeat.interval_s) == (4, 0.5)
    assert repeat.until.test == Measure("threshold", "<", 1.0)


def test_a_guide_without_steps_is_an_error_naming_the_file() -> None:
    with pytest.raises(GuideError, match=r"^empty\.md:1: no steps found"):
        parse_guide("# Title\n\nJust some words about nothing.\n", "empty.md")
    with pytest.raises(GuideError, match="NUL"):
        parse_guide("\x00\x01", "binary.md")
