"""The command classifier (review finding 3): allowlists, runners, combined flags, shell forms.

``commands.tsv`` is the review's sample; the families below are commands the sample does
not hold, so the rules (not the strings) are what is tested. The property test composes
random shell text around a known mutating command and checks it never reads as read-only.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planners.tsg.classify import classify_shell
from planners.tsg.commands import make_command

SAMPLE = Path(__file__).with_name("data") / "commands.tsv"


def _sample() -> list[tuple[str, str]]:
    rows = []
    for line in SAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            expected, command = line.split("\t", 1)
            rows.append((expected, command.replace("\\n", "\n")))
    return rows


@pytest.mark.parametrize(("expected", "command"), _sample(), ids=lambda v: v[:40])
def test_review_sample(expected: str, command: str) -> None:
    verdict = classify_shell(command)
    if expected == "approve":
        assert verdict.effect != "read", verdict
    else:
        assert verdict.effect == "read", verdict


APPROVE = [
    # runners are judged by what they run
    "timeout -s KILL 5 rm x", "nice -n 10 rm x", "nohup sh -c 'rm x' &", "env -i PATH=/bin rm x",
    "sudo -u root -- rm x", "bash -ec 'rm x'", "sh -c \"sh -c 'rm x'\"", "watch -n5 'kubectl delete pod x'",
    "nice -n 19 ionice -c3 timeout 60 rm x", "oc exec pod -- bash -c 'rm -rf /data'", "chroot /host rm x",
    "ls | xargs sed -n p", "xargs -I % sh -c 'rm %'", "docker exec web rm -rf /x", "ssh host 'rm -rf /x'",
    # read by default, write with an option or a script
    "sed -Eni 's/a/b/p' f", "sed -i.bak s/a/b/ f", "sed --in-place=.bak s/a/b/ f", "sed -n '/x/w /tmp/o' f",
    "sed 's/a/b/e' f", "sed '1e id' f", "awk 'BEGIN{\"date\" | getline d}'", "awk '{print $1 >> \"/tmp/o\"}' f",
    "tee -a /dev/null /tmp/x", "sort -uo /tmp/x f", "sort --compress-program=sh f", "uniq -c in.txt out.txt",
    "yq --inplace '.a=1' f.yaml", "find . -newer f -delete", "find . -name x -exec chmod 777 {} +",
    "find . -fprint0 /tmp/o", "find . -fls /tmp/o", "curl -sSXDELETE http://x", "curl -Lsd x http://x",
    "curl -sLo /tmp/x http://x", "curl -sLO http://x/f", "curl -c /tmp/jar http://x", "curl gopher://h:6379/_X",
    "wget -qO/tmp/x http://x", "wget http://x/file", "git branch -vD x", "git -c core.pager=id log",
    "git show --output=/tmp/x HEAD", "git tag v1", "git config user.name evil",
    # subcommands
    "ip l set eth0 down", "ip -6 route del ::/0", "ip neigh flush all", "ip netns exec ns rm -rf /x",
    "ceph osd pool rm p p --yes-i-really-really-mean-it", "ceph osd set noout", "ceph -o /tmp/out status",
    "etcdctl move-leader 1", "etcdctl snapshot save /tmp/s.db", "kubectl --kubeconfig=/x -n y delete pod z",
    "kubectl exec -n ns pod -c c -- sh -c 'rm -rf /x'", "systemctl enable --now x", "docker container rm x",
    "journalctl --vacuum-time=1d", "journalctl -u x --rotate", "date -us '2000-01-01'", "date 010100002000",
    "hostname newname", "dmesg -TC", "dmesg -n 1", "ss -tK dst 1.2.3.4", "sysctl net.ipv4.ip_forward=1",
    # SQL and dot-commands
    "sqlite3 db '.output /tmp/x' 'select 1'", "sqlite3 -cmd '.shell id' db 'select 1'",
    "sqlite3 db \"SELECT WriteFile('/tmp/x', 'data')\"", "sqlite3 db 'select 1; drop table x'",
    "sqlite3 db \"pragma journal_mode=wal\"", "sqlite3 db '.tables\n.shell id'", "sqlite3 db '.read x.sql'",
    "psql -c '\\! id'", "psql -c 'select pg_terminate_backend(1)'", "mysql -e 'system id'",
    # shell forms, environment and paths
    "ls 3>/tmp/x", "ls &>> /tmp/x", "ls >&/tmp/x", "exec 3<>/tmp/x", "cat >(rm x)", "diff <(ls) <(ls /x)",
    "ls \"$(rm x)\"", "ls ${X:-$(rm x)}", "ls & rm x", "{ ls; rm x; }", "(ls; rm x)", "ls\nrm x",
    "LD_LIBRARY_PATH=/tmp ls", "GIT_EXTERNAL_DIFF=x git diff", "SYSTEMD_PAGER=x systemctl status",
    "PATH=/tmp; ls", "/usr/bin/ls", "../bin/ls", "$CMD x", "echo 'unterminated",
    # export is an assignment: the same unsafe names, options and substitutions still ask
    "export PATH=/tmp:$PATH; ls", "export LD_PRELOAD=/tmp/x.so", "export A=1 GIT_PAGER=x", "export -f f",
    "export A=$(rm x)", "export 'A;rm x'",
]  # fmt: skip

READ = [
    "export NAMESPACE=payments", "export A=1 B='x y'", "kubectl logs --previous web-0 -n x", "kubectl get --raw /healthz", "kubectl rollout status deploy/x",
    "kubectl exec -n ns web -c app -- ls -la /data", "oc extract secret/x --to=-", "oc adm node-logs n -u kubelet",
    "helm get values x -n y", "git branch -vv", "git branch --contains HEAD", "git tag -l 'v1*'",
    "git config --get user.name", "git -C /repo status", "ip -br a", "ip route get 8.8.8.8", "ip -s link",
    "ceph -f json osd tree", "ceph osd pool get rbd size", "ceph health detail",
    "etcdctl endpoint health --cluster", "ETCDCTL_API=3 etcdctl member list", "systemctl --failed",
    "journalctl -xeu kubelet", "journalctl -b -1 -p err", "docker stats --no-stream", "docker exec web cat /x",
    "date -d '1 hour ago' +%s", "hostname -I", "dmesg --level=err,warn", "ss -tan state established",
    "curl -s -o /dev/null -w '%{http_code}' http://x", "curl -G -d q=1 http://x", "curl -sXGET http://x",
    "wget -q --output-document=- http://x", "wget --spider http://x", "sqlite3 db '.schema jobs'",
    "sqlite3 db \"select replace(name, 'a', 'b') from t\"", "sqlite3 db 'pragma table_info(jobs)'",
    "psql -c '\\dt'", "mysql -e 'show processlist'", "find /x -maxdepth 2 -name -delete",
    "find . -name '*.log' -exec grep -l error {} +", "sed 's/[/]/x/' f", "sed '1!G;h;$!d' f",
    "sed -e 's/a/b/' -e '/x/d' f", "awk '/error|warn/ {print}' f", "awk '{ if ($1 > 5) print $1 }' f",
    "awk '$1 == \"a\" || $2 == \"b\"' f", "awk '{print $NF}' f", "uniq f /dev/null", "echo hi | tee /dev/null",
    "yq -o json '.a' f.yaml", "ping -c 3 10.0.0.5", "nc -z -w 2 x 443",
    "echo | openssl s_client -connect x:443 2>/dev/null | openssl x509 -noout -enddate", "env | grep KUBE",
    "timeout 10 kubectl get pods", "sudo cat /etc/shadow", "sh -c 'ls | wc -l'", "LC_ALL=C grep x f",
    "ls | xargs -n1 wc -l", "grep x <<< \"$VAR\"", "iptables -nvL", "rpm -qa", "crontab -l", "top -b -n 1",
    "NAMESPACE=prod; kubectl get pods -n $NAMESPACE", "for pod in a b; do echo $pod; done", "ls \\\n  -la",
]  # fmt: skip


@pytest.mark.parametrize("command", APPROVE)
def test_families_beyond_the_sample_need_approval(command: str) -> None:
    assert classify_shell(command).effect != "read", command


@pytest.mark.parametrize("command", READ)
def test_plain_reads_of_the_same_families_run_without_asking(command: str) -> None:
    verdict = classify_shell(command)
    assert verdict.effect == "read", verdict


def test_a_placeholder_inside_a_script_makes_it_unknown() -> None:
    # The value becomes sed/awk/shell code: `PATTERN='x/w /tmp/o #'` would add a write.
    assert make_command("sed -n '/$PATTERN/p' app.log", "shell", 1).effect == "write"
    assert make_command("awk '/<pattern>/ {print}' app.log", "shell", 1).effect == "write"
    assert make_command("sh -c 'ls $DIR'", "shell", 1).effect == "write"
    assert make_command("sqlite3 db \"select * from t where a = '$A'\"", "shell", 1).effect == "write"
    assert make_command('grep -e "$PATTERN" app.log', "shell", 1).effect == "read"


# -- property: whatever is wrapped around a mutating command, it is not read-only ------------

MUTATING = [
    "rm -rf /tmp/victim", "touch /tmp/x", "sed -i s/a/b/ f", "sed -Ei s/a/b/ f", "tee /etc/motd", "sort -o out in",
    "sort -ro out in", "uniq in out", "yq -i .a=1 f", "find . -delete", "find . -fprint out", "curl -XPOST http://x",
    "curl -sXPOST http://x", "curl -dx=1 http://x", "curl -so out http://x", "wget -qO out http://x",
    "git branch -D x", "git push", "git diff --output=f", "ip -br link set eth0 down", "ip route flush all",
    "ceph osd pool delete p p", "etcdctl member remove 1", "kubectl -v 9 delete pod x", "systemctl stop x",
    "date -s 2000-01-01", "hostname evil", "dmesg -C", "ss -K dst 1.2.3.4", "journalctl --flush",
    "awk 'BEGIN{system(\"id\")}'", "awk '{print > \"/tmp/o\"}' f", "sqlite3 db '.shell id'",
    "sqlite3 db \"select writefile('x','y')\"", "docker rm -f x", "echo x > /tmp/f", "echo x >| /tmp/f",
    "cat <>/tmp/f", "cat <(rm -rf /tmp/v)", "LD_PRELOAD=/tmp/x.so ls", "GIT_PAGER=x git log", "./cat f",
    "/tmp/x/ls", "PAGER=x journalctl",
]  # fmt: skip
READS = ["ls -la", "cat /etc/hosts", "grep x f", "kubectl get pods", "df -h", "uname -a", "sort f", "wc -l"]
SEPARATORS = [" | ", "; ", " && ", " || ", "\n", " & "]
WRAPPERS = [
    "xargs {}", "timeout 5 {}", "env {}", "env FOO=1 {}", "nice -n 5 {}", "nohup {}", "sudo {}", "sudo -u root {}",
    "stdbuf -oL {}", "time {}", "kubectl exec pod -- {}", "sh -c {q}", "bash -c {q}", "bash -ec {q}",
    "watch -n1 {q}", "ssh host {q}",
]  # fmt: skip


def _wrap(template: str, inner: str) -> str:
    return template.format(inner, q=shlex.quote(inner)) if "{q}" in template else template.format(inner)


@st.composite
def compositions(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(MUTATING))
    for wrapper in draw(st.lists(st.sampled_from(WRAPPERS), max_size=3)):
        text = _wrap(wrapper, text)
    before = draw(st.lists(st.sampled_from(READS), max_size=2))
    after = draw(st.lists(st.sampled_from(READS), max_size=2))
    parts = [*before, text, *after]
    separators = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(parts), max_size=len(parts)))
    return "".join(part + separator for part, separator in zip(parts, separators, strict=True)).rstrip(
        " &|;\n"
    )


@settings(max_examples=300, deadline=None)
@given(compositions())
def test_a_composition_holding_a_mutating_command_is_never_read_only(text: str) -> None:
    assert classify_shell(text).effect != "read", text
