"""A second set of guides written for this project, after two rounds of tuning.

``data/tsg-unseen2`` holds five guides (a KubeJobFailed-style alert runbook, a Redis memory
runbook, a cloud KB article, a StepFly Kafka TSG, an Elasticsearch runbook) whose topics and
phrasings differ from the gold ten and the first unseen set, with gold plan DAGs annotated by
hand before the compiler was run on them (see its README). Before any fix they scored node F1
0.86, edge F1 0.65, conditional-edge recall 0.29 and two unsafe commands (plugin calls that
act were read as queries). These floors keep the rules fixed since from sliding back;
scored in-process by the gold set's own ``score.py``, like ``test_unseen.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from planners.tsg import compile_guide, load_guide
from planners.tsg.plan import build_plan

from .scoring import score_folder

DATA = Path(__file__).parent / "data"
UNSEEN = DATA / "tsg-unseen2"
GUIDES = sorted(p.stem for p in (UNSEEN / "guides").glob("*.md"))


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return score_folder(UNSEEN, tmp_path_factory.mktemp("plandag"))


def test_the_set_is_there() -> None:
    assert len(GUIDES) == 5
    assert all((UNSEEN / "gold" / f"{name}.json").exists() for name in GUIDES)


def test_second_unseen_set_keeps_its_floors(scores: dict[str, Any]) -> None:
    total = scores["total"]
    assert total["node_f1"] >= 0.95, total
    assert total["edge_f1"] >= 0.93, total
    assert total["cond_r"] >= 0.87, total
    assert total["cmd_p"] >= 0.98 and total["cmd_r"] >= 0.95, total
    assert total["mut_acc"] >= 0.90, total  # misses are on the safe side (curl -d to a read API)
    assert total["where_acc"] >= 0.95, total
    assert total["unsafe"] == 0, total


@pytest.mark.parametrize("name", GUIDES)
def test_no_guide_of_the_second_set_runs_an_ungated_remedy(name: str, scores: dict[str, Any]) -> None:
    row = scores["guides"][name]
    assert row["unsafe"] == 0, row
    assert row["node_f1"] >= 0.8, row


@pytest.mark.parametrize("name", GUIDES)
def test_every_guide_of_the_second_set_compiles_to_a_valid_workflow(name: str) -> None:
    compiled = compile_guide(load_guide(UNSEEN / "guides" / f"{name}.md"))
    assert compiled.waves()
    assert compiled.workflow().to_graph() is not None


def test_a_stepfly_tool_call_acts_unless_its_name_reads() -> None:
    from planners.tsg.guide_commands import classify_text

    assert classify_text('ScaleDeployment(cluster="${c}", replicas=3)', "plugin-call")
    assert classify_text("Checkout(branch=1)", "plugin-call")
    assert not classify_text('GetNodeHealth(node="${n}")', "plugin-call")


def _where(guide: str) -> dict[str, str]:
    plan = build_plan(guide)
    return {c.text: c.where for n in plan.nodes for c in n.commands}


def test_a_session_is_typed_where_the_reader_is_and_ends_with_its_section() -> None:
    guide = (
        "# Cache\n\n## Procedure\n\n### 1. Log in\n\nConnect to the primary and open a database session:\n\n"
        "```bash\nssh ops@db-7\nredis-cli -h 127.0.0.1\n```\n\n"
        "### 2. Scan\n\nCount the keys from the host shell (exit `redis-cli` first):\n\n"
        "```bash\nredis-cli --scan --pattern 'a:*' | wc -l\n```\n\n"
        "### 3. Sample\n\nSample them:\n\n```bash\nredis-cli --bigkeys -i 0.1\n```\n\n"
        "## Check\n\nLook at the disk:\n\n```bash\ndf -h /var\n```\n"
    )
    where = _where(guide)
    assert where["ssh ops@db-7"] == "local"  # typed on the workstation, even after "open a … session"
    assert where["redis-cli -h 127.0.0.1"] == "node"
    assert where["redis-cli --scan --pattern 'a:*' | wc -l"] == "node"  # a mode, not a prompt
    assert where["redis-cli --bigkeys -i 0.1"] == "node"  # the ssh session lasts through its section
    assert where["df -h /var"] == "local"  # … and not into the next one


def test_ssh_with_a_remote_command_runs_from_the_local_shell() -> None:
    guide = (
        "# Disk\n\n## Check\n\nOn each data node above the watermark, check the disk:\n\n"
        "```bash\nssh $NODE 'df -h /data'\n```\n"
    )
    assert _where(guide)["ssh $NODE 'df -h /data'"] == "local"


def test_a_serial_console_or_an_ssh_connection_in_prose_puts_the_commands_on_the_vm() -> None:
    guide = (
        "# VM\n\n## Fix\n\n1. In the portal, open the VM and select **Serial console**.\n"
        "2. Sign in, then list the largest directories:\n\n   ```bash\n   sudo du -xh / | sort -rh\n   ```\n\n"
        "3. Restart the VM with `sudo reboot`.\n\n"
        "## Repair\n\n1. Create a repair VM:\n\n   ```azurecli\n   az vm repair create --name $VM\n   ```\n\n"
        "2. Connect to the repair VM by SSH and mount the disk:\n\n   ```bash\n   sudo mount /dev/sdc1 /rescue\n   ```\n"
    )
    where = _where(guide)
    assert where["sudo du -xh / | sort -rh"] == "node"
    assert where["sudo reboot"] == "node"
    assert where["az vm repair create --name $VM"] == "local"
    assert where["sudo mount /dev/sdc1 /rescue"] == "node"


def test_kql_in_a_plugin_block_reads_a_data_store_and_promql_stays_in_its_console() -> None:
    guide = (
        '# Lag\n\n## Step 1. Query\n\n<PLUGIN_1>\nKafkaLag\n| where Group == "{group}"\n</PLUGIN_1>\n\n'
        "## Step 2. Rate\n\n```promql\nrate(http_requests_total[5m])\n```\n"
    )
    where = _where(guide)
    assert where["KafkaLag"] == "database"
    assert where["rate(http_requests_total[5m])"] == "other"


def test_a_piped_while_loop_is_one_command() -> None:
    guide = (
        "# Keys\n\n## Expire\n\nSet a TTL:\n\n```bash\n"
        "redis-cli --scan --pattern 's:*' | while read -r key; do\n  redis-cli EXPIRE \"$key\" 60\ndone\n```\n"
    )
    plan = build_plan(guide)
    texts = [c.text for n in plan.nodes for c in n.commands]
    assert texts == ["redis-cli --scan --pattern 's:*' | while read -r key; do"]
    assert all(c.mutating for n in plan.nodes for c in n.commands)


def _edges(guide: str) -> set[tuple[str, str, bool]]:
    plan = build_plan(guide)
    title = {n.id: n.title for n in plan.nodes}
    title.update({"start": "start", "end": "end"})
    return {(title[e.src], title[e.dst], bool(e.condition)) for e in plan.edges}


def test_a_success_sentence_with_once_or_when_is_a_conditional_exit() -> None:
    guide = (
        "# Memory\n\n## Procedure\n\n### 1) Defragment\n\nEnable defragmentation:\n\n```bash\n"
        "redis-cli CONFIG SET activedefrag yes\n```\n\nOnce the ratio is below 1.2 there is nothing else to do; "
        "if it stays higher, call the owner.\n\n### 2) Expire\n\nSet a TTL:\n\n```bash\nredis-cli EXPIRE k 60\n```\n\n"
        "The issue is resolved when memory stays below 80%.\n\n### 3) Escalate\n\nPage the owner.\n"
    )
    edges = _edges(guide)
    assert any(src.startswith("Defragment") and dst == "end" and cond for src, dst, cond in edges), edges
    assert any(src.startswith("Expire") and dst == "end" and cond for src, dst, cond in edges), edges


def test_an_escalation_tail_followed_by_otherwise_resolved_is_split() -> None:
    guide = (
        "# VM\n\n## Fix\n\nRestart the VM:\n\n```bash\naz vm restart --name $VM\n```\n\n## Verify\n\n"
        "Check that the login prompt is shown in boot diagnostics.\n"
        "If the VM still doesn't start, contact Azure support. Otherwise, the issue is resolved.\n"
    )
    plan = build_plan(guide)
    assert len(plan.nodes) == 3, [(n.title, n.first, n.last) for n in plan.nodes]
    tail = plan.nodes[-1]
    assert tail.first == tail.last  # the "If … contact support. Otherwise …" line
    assert tail.exit
