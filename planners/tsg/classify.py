"""Is a command read-only, mutating, or an interactive session? Conservative: unknown = mutating.

Rules are per program and subcommand (``kubectl get`` reads, ``kubectl delete`` writes),
because that is how SREs reason about a command's blast radius. A compound shell command
(pipes, ``&&``) is as dangerous as its most dangerous part; redirecting output into a file
writes. ``session`` marks commands that do not finish on their own or need a person
(port-forwards, tunnels, ``logs -f``, ``debug node``, 2FA logins): the runner hands those
to the operator instead of hanging on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .shell import shell_segments

__all__ = [
    "KNOWN_PROGRAMS",
    "Classification",
    "Effect",
    "classify_query",
    "classify_shell",
    "classify_sql",
]

Effect = Literal["read", "write", "session"]

_RANK: dict[Effect, int] = {"read": 0, "write": 1, "session": 2}


@dataclass(frozen=True)
class Classification:
    effect: Effect
    reason: str


#: Programs that only look: any arguments (a redirection is judged separately).
_READERS = frozenset(
    [
        "cat",
        "head",
        "grep",
        "egrep",
        "fgrep",
        "zgrep",
        "sort",
        "uniq",
        "wc",
        "ls",
        "df",
        "du",
        "free",
        "uptime",
        "uname",
        "ps",
        "jq",
        "yq",
        "awk",
        "cut",
        "tr",
        "column",
        "echo",
        "printf",
        "date",
        "hostname",
        "whoami",
        "id",
        "stat",
        "file",
        "dig",
        "nslookup",
        "host",
        "ping",
        "traceroute",
        "ss",
        "netstat",
        "lsblk",
        "lscpu",
        "lsof",
        "dmesg",
        "vmstat",
        "iostat",
        "mpstat",
        "nproc",
        "getent",
        "which",
        "test",
        "true",
        "false",
        "diff",
        "sha256sum",
        "md5sum",
        "base64",
        "tac",
        "nl",
        "realpath",
        "dirname",
        "basename",
        "env",
        "printenv",
        "pwd",
        "findmnt",
        "blkid",
        "openssl",
        "timeout",
        "sleep",
        "seq",
        "xargs",
        "tee",
    ]
)
_KUBE_READ = frozenset(
    [
        "get",
        "describe",
        "logs",
        "top",
        "explain",
        "api-resources",
        "api-versions",
        "version",
        "cluster-info",
        "events",
        "whoami",
        "extract",
        "status",
    ]
)
_KUBE_SESSION = frozenset(["port-forward", "proxy", "attach", "debug", "login", "rsh", "rsync-session"])
_READ_SUBCOMMANDS: dict[str, frozenset[str]] = {
    "ocm": frozenset({"list", "describe", "get", "whoami", "version"}),
    "ceph": frozenset({"status", "health", "df", "osd", "pg", "mon", "versions", "-s"}),
    "systemctl": frozenset({"status", "is-active", "is-enabled", "is-failed", "show", "list-units", "cat"}),
    "journalctl": frozenset(),  # every form reads; -f follows (a session)
    "rpm-ostree": frozenset({"status", "db"}),
    "etcdctl": frozenset({"endpoint", "member", "get", "check", "alarm", "version"}),
    "docker": frozenset({"ps", "images", "inspect", "logs", "version", "info", "stats"}),
    "podman": frozenset({"ps", "images", "inspect", "logs", "version", "info", "stats"}),
    "git": frozenset({"status", "log", "diff", "show", "branch"}),
    "ip": frozenset({"addr", "a", "route", "r", "link", "neigh", "-br"}),
    "sqlite3": frozenset(),  # judged by its SQL below
    "find": frozenset(),
    "sed": frozenset(),
    "curl": frozenset(),
    "wget": frozenset(),
    "tail": frozenset(),
}
_CEPH_WRITE = frozenset({"set", "unset", "rm", "out", "in", "down", "reweight", "purge", "pause", "repair"})
_SESSION_PROGRAMS = frozenset(
    {"ssh", "chroot", "less", "more", "vi", "vim", "watch", "top", "htop", "bash", "sh"}
)


def _worst(items: list[Classification]) -> Classification:
    return max(items, key=lambda c: _RANK[c.effect])


def _subcommand(args: list[str]) -> str:
    return next((a for a in args if not a.startswith("-")), "")


_KUBE_VALUE_FLAGS = frozenset(
    {"-n", "--namespace", "--context", "--kubeconfig", "--cluster", "--user", "--as", "-s", "--server"}
)


def _kube_subcommand(args: list[str]) -> str:
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _KUBE_VALUE_FLAGS:
            skip = True  # `oc -n NAMESPACE logs`: the namespace is not the subcommand
        elif not arg.startswith("-"):
            return arg
    return ""


def _kube(program: str, args: list[str]) -> Classification:
    sub = _kube_subcommand(args)
    if sub == "exec":
        if any(a in ("-it", "-ti", "-i", "-t", "--stdin", "--tty") for a in args):
            return Classification("session", f"{program} exec with a terminal is interactive")
        if "--" in args:  # judge what runs inside the container
            inner = args[args.index("--") + 1 :]
            if inner:
                return _simple(inner)
        return Classification("write", f"{program} exec runs an arbitrary command in a container")
    if sub == "logs" and any(a in ("-f", "--follow") for a in args):
        return Classification("session", f"{program} logs -f follows the log until interrupted")
    if sub in _KUBE_SESSION:
        return Classification("session", f"{program} {sub} keeps running or needs a person")
    if sub in _KUBE_READ:
        return Classification("read", f"{program} {sub} only reads")
    if sub == "config":
        rest = args[args.index("config") + 1 :] if "config" in args else []
        if _subcommand(rest) in ("view", "get-contexts", "current-context"):
            return Classification("read", f"{program} config {_subcommand(rest)} only reads")
    if sub == "auth" and "can-i" in args:
        return Classification("read", f"{program} auth can-i only reads")
    return Classification("write", f"{program} {sub or '(no subcommand)'} changes the cluster or is unknown")


def _simple(argv: list[str]) -> Classification:
    """One program with its arguments (no operators)."""
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        argv = argv[1:]  # FOO=bar cmd: the environment assignment itself is harmless
    if not argv:
        return Classification("read", "only sets variables")
    program, args = argv[0].rsplit("/", 1)[-1], argv[1:]
    if program == "sudo":
        inner = _simple(args)
        return Classification("write" if inner.effect == "read" else inner.effect, "sudo: runs as root")
    if program in ("kubectl", "oc"):
        return _kube(program, args)
    if program in ("sh", "bash") and "-c" in args and args.index("-c") + 1 < len(args):
        segments, redirects = shell_segments(args[args.index("-c") + 1])
        return classify_shell(segments, redirects)  # judge the script, not the shell
    if program in _SESSION_PROGRAMS:
        if program == "top" and "-b" in args:
            return Classification("read", "top -b prints once")
        return Classification("session", f"{program} is interactive")
    if program in ("tail", "journalctl") and any(a in ("-f", "-F", "--follow") for a in args):
        return Classification("session", f"{program} -f follows until interrupted")
    if program == "journalctl":
        if any(a.startswith("--vacuum") or a == "--rotate" for a in args):
            return Classification("write", "journalctl --vacuum/--rotate deletes logs")
        return Classification("read", "journalctl only reads")
    if program == "sed":
        if any(a == "-i" or a.startswith("-i") or a == "--in-place" for a in args):
            return Classification("write", "sed -i edits files")
        return Classification("read", "sed without -i only reads")
    if program == "find":
        if any(a in ("-delete", "-exec", "-execdir", "-ok", "-fprint") for a in args):
            return Classification("write", "find with -delete/-exec acts on files")
        return Classification("read", "find only lists")
    if program == "curl":
        data = {"-d", "--data", "--data-raw", "--data-binary", "-F", "--form", "-T", "--upload-file"}
        if any(a in data or a.startswith("--data") for a in args):
            return Classification("write", "curl sends data")
        for flag in ("-X", "--request"):
            if flag in args and args.index(flag) + 1 < len(args):
                method = args[args.index(flag) + 1].upper()
                if method not in ("GET", "HEAD", "OPTIONS"):
                    return Classification("write", f"curl -X {method}")
        if any(a in ("-o", "-O", "--output", "--remote-name") for a in args):
            return Classification("write", "curl writes a file")
        return Classification("read", "curl GET only reads")
    if program == "wget":
        if any(a in ("-O-", "-qO-", "-O") for a in args) and "-" in args + [a[-1] for a in args]:
            return Classification("read", "wget to stdout only reads")
        return Classification("write", "wget saves a file")
    if program == "sqlite3":
        sql = next((a for a in reversed(args) if " " in a), "")
        return classify_sql(sql) if sql else Classification("session", "sqlite3 without SQL is interactive")
    if program == "ocm" and _subcommand(args) == "backplane":
        return Classification("session", "ocm backplane opens a tunnel or a login that needs a person")
    if program == "ceph" and any(a in _CEPH_WRITE for a in args):
        return Classification("write", "ceph command changes the cluster")
    if program in _READ_SUBCOMMANDS:
        allowed = _READ_SUBCOMMANDS[program]
        sub = _subcommand(args)
        if sub in allowed:
            return Classification("read", f"{program} {sub} only reads")
        return Classification("write", f"{program} {sub or '(no subcommand)'} may change state")
    if program in _READERS:
        return Classification("read", f"{program} only reads")
    return Classification("write", f"{program}: unknown program, treated as mutating")


def classify_shell(segments: list[list[str]], redirects: list[str]) -> Classification:
    """A shell command split into pipeline/list segments, plus the files it redirects into."""
    results = [_simple(list(segment)) for segment in segments if segment]
    written = [target for target in redirects if target not in ("/dev/null", "/dev/stderr", "/dev/stdout")]
    if written:
        results.append(Classification("write", f"writes the file {written[0]}"))
    if not results:
        return Classification("write", "empty command")
    return _worst(results)


_SQL_WRITES = re.compile(
    r"\b(insert|update|delete|replace|create|drop|alter|attach|detach|vacuum|reindex|truncate|grant|merge)\b",
    re.IGNORECASE,
)


def classify_sql(query: str) -> Classification:
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL).strip()
    first = text.split(None, 1)[0].lower() if text else ""
    if first in ("select", "with", "explain", "values") and not _SQL_WRITES.search(text):
        return Classification("read", "SQL query only reads")
    return Classification("write", f"SQL {first.upper() or '(empty)'} statement writes or is unknown")


def classify_query(language: str, query: str) -> Classification:
    """PromQL and LogQL only read; KQL control commands (``.drop``, ``.set``) write."""
    if language == "kql" and query.lstrip().startswith("."):
        return Classification("write", "KQL control command")
    if language in ("promql", "logql", "kql", "traceql", "metricsql"):
        return Classification("read", f"{language} query only reads")
    return Classification("write", f"{language}: unknown query language, treated as mutating")


#: Programs a code block line may start with even without a ``$`` prompt.
KNOWN_PROGRAMS = (
    _READERS
    | _READ_SUBCOMMANDS.keys()
    | _SESSION_PROGRAMS
    | frozenset(
        [
            "kubectl",
            "oc",
            "helm",
            "crictl",
            "rm",
            "touch",
            "mv",
            "cp",
            "mkdir",
            "chmod",
            "chown",
            "kill",
            "pkill",
            "service",
            "reboot",
            "shutdown",
            "python",
            "python3",
            "pip",
            "mount",
            "umount",
            "iptables",
            "nft",
            "rpm",
            "dnf",
            "yum",
            "apt",
            "apt-get",
            "tcpdump",
            "sudo",
            "etcdctl",
            "mysql",
            "psql",
            "redis-cli",
            "nc",
            "telnet",
            "systemd-analyze",
            "virsh",
            "az",
            "aws",
            "gcloud",
            "terraform",
        ]
    )
)
