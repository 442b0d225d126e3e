"""Which text in a guide the reader is told to type, where they type it, and whether it changes anything.

Used by the plan (``plan``): every command keeps the line it starts on, its text, whether it
mutates and *where* it runs — ``local`` (the operator's shell, cluster and cloud CLIs
included), ``pod`` (a shell in a container), ``node`` (a shell on a host), ``database``
(a psql / redis-cli session), ``cloud-console`` or ``other`` (PromQL in a metrics console,
chatops in Slack). Where follows the author: a session entered by a command
(``kubectl exec -it … -- sh``, ``oc rsh``, ``oc debug node/x``, ``ssh host``, ``redis-cli``)
lasts until a cluster CLI command in a later step; prose ("On the master node, run:",
"from within the pod", "on your machine") decides for the commands of its own step.

Code blocks: lines after a prompt (``$ ``, ``sh-4.4# ``, ``worker$ ``, ``db=# ``,
``10.0.0.1:6379> ``) are commands and the rest is output; a block without prompts holds
commands when its lines start with programs, a block introduced as output ("you should see",
"e.g.") holds none, and a prompt line that repeats an earlier command inside such output is
sample output too. Multi-line constructs (backslash continuations, ``for … done``, heredocs,
open quotes) are one command at their first line. Inline code counts when it is a command
the reader is told to run, unless the very next block of the step shows it again.

"mutating" uses the allowlist classifier (``classify``): anything not known to only read
mutates. Sessions that create something (``kubectl run``, ``oc debug``, ``toolbox``) mutate;
entering a shell (``kubectl exec -it``, ``oc rsh``, ``chroot``) does not.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from .classify import KNOWN_PROGRAMS, classify_query, classify_shell, classify_sql
from .commands import SHELL_LANGUAGES
from .doc import Blk

__all__ = ["GuideCommand", "classify_text", "find_commands"]

CLUSTER_CLIS = frozenset(
    {"kubectl", "oc", "az", "aws", "gcloud", "knife", "helm", "terraform", "tf", "ocm", "kubectx", "eksctl"}
)
_MORE_PROGRAMS = frozenset(
    {
        "knife",
        "chef-client",
        "toolbox",
        "etcdctl",
        "nc",
        "sv",
        "gitlab-ctl",
        "gitlab-rake",
        "gitlab-rails",
        "ovn-appctl",
        "ovs-vsctl",
        "ovn-nbctl",
        "ovn-sbctl",
        "ss",
        "tcpdump",
        "export",
        "source",
        "cd",
        "for",
        "while",
        "if",
        "host",
        "nslookup",
        "dig",
        "mysql",
        "psql",
        "redis-cli",
        "xfs_repair",
        "fsck",
        "e2fsck",
        "docker-machine",
        "gkms-vault-edit",
        "chatops",
        "kill",
        "lsof",
        "strace",
        "perf",
        "bundle",
        "gem",
        "npm",
        "make",
        "go",
        "java",
        "jcmd",
        "jstack",
        "openssl",
        "nmap",
        "mtr",
        "iperf3",
        "ethtool",
        "arping",
        "nsenter",
        "crictl",
        "runc",
        "ctr",
        "velero",
        "argocd",
        "flux",
        "istioctl",
        "linkerd",
        "consul",
        "vault",
        "nomad",
        "patronictl",
        "gitlab-patronictl",
        "pg_ctl",
        "pg_dump",
        "pg_restore",
        "mongosh",
        "mongo",
        "sqlplus",
        "cqlsh",
        "rabbitmqctl",
        "kafka-topics",
        "ceph",
        "rbd",
        "radosgw-admin",
        "rados",
        "kubeadm",
        "kubelet",
        "systemd-resolve",
        "resolvectl",
        "modprobe",
        "sysctl",
        "dmesg",
        "journalctl",
        "apt",
        "apt-get",
        "yum",
        "dnf",
        "zypper",
        "snap",
        "brew",
        "pip",
        "pip3",
        "virtctl",
        "stat",
        "scp",
        "rsync",
        "tar",
        "gzip",
        "unzip",
        "hostnamectl",
        "timedatectl",
        "chronyc",
        "ntpq",
        "nmcli",
        "ifconfig",
        "route",
        "mkfs",
        "mkfs.ext4",
        "fsck.ext4",
        "blockdev",
        "parted",
        "fdisk",
        "lvs",
        "vgs",
        "pvs",
        "multipath",
        "iscsiadm",
        "exportfs",
        "showmount",
    }
)
PROGRAMS = frozenset(KNOWN_PROGRAMS) | _MORE_PROGRAMS
_READ_CALL = re.compile(
    r"^(?i:get|list|query|show|describe|check|read|find|search|count|fetch|lookup|view|inspect|explain)"
    r"(?:[A-Z_]|\s*\()"
)
_DATA_LANGS = frozenset(
    {"yaml", "yml", "json", "text", "txt", "log", "output", "ini", "toml", "xml", "plaintext", "diff", "go"}
)
_QUERY_LANGS = frozenset({"promql", "logql", "kql", "kusto", "traceql", "metricsql"})
_KQL_LANGS = frozenset({"kql", "kusto"})  # a log/data store queried like a database
_SQL_LANGS = frozenset({"sql", "sqlite", "postgresql", "psql", "mysql", "plpgsql"})
_PROMPT = re.compile(
    r"^(?P<prompt>\$|[\w.-]+@[\w.:~/-]*[$#]|(?:sh|bash)-\d[\d.]*[$#]|\w[\w-]*\$|\w[\w-]*=?#|[\w./-]+:[/\w.~-]*\s?#|"
    r"\d{1,3}(?:\.\d{1,3}){3}:\d+>|\w[\w-]*>)\s+(?=\S)"
)
_OUTPUT_LEAD = re.compile(
    r"(you should see|should (?:return|show|look|print|output)|output (?:like|similar)|similar to|"
    r"example output|for example, you might|sample output|\be\.g\.?\s*:?$|looks? like (?:this|the following)|"
    r"records? the following|logs? the following|logs? (?:a|an|the) (?:\w+ )?(?:error|message|entry)|"
    r"following (?:log|error|output|message)|resulting in the following|you will see|you get|"
    r"returns? something|the output (?:is|will be)|an? (?:event|output) like)",
    re.IGNORECASE,
)
_PROMQL = re.compile(r"^[(\w:]+.*(?:\{|\(|\[\d+[smhd]\]|\s[-+*/]\s|/\d)")
_DB_CUE = re.compile(
    r"\b(?:redis|sql|psql|mysql|postgres|database|db|rails)\s+(?:console|prompt|shell|session|cli)\b|"
    r"\bin (?:the )?(?:redis-cli|psql|mysql)\b",
    re.IGNORECASE,
)
_OTHER_CUE = re.compile(
    r"\bmetrics console|prometheus (?:ui|console)|\bin slack\b|\bchatops\b|rails console|\bpromql\b|"
    r"\bquery in\b|\bgrafana\b|\bfollowing query\b",
    re.IGNORECASE,
)
_LOCAL_CUE = re.compile(
    r"\bon (?:your|the operator'?s?|a) (?:own )?(?:local )?(?:machine|workstation|laptop|computer)\b|\blocally\b",
    re.IGNORECASE,
)
_NODE_CUE = re.compile(
    r"\b(?:on|from within|within|inside|login to|log in to|log into|from)\s+"
    r"(?:any of |one of |all |each of |each )?(?:the |a |your |that |this )?(?:[\w.`-]+ ){0,2}"
    r"(?:node|nodes|host|hosts|server|vm|master node)\b",
    re.IGNORECASE,
)
_POD_CUE = re.compile(
    r"\b(?:in|inside|within|from within|from)\s+(?:the |a |your |that |all |each |any )?"
    r"(?:[\w`-]+ ){0,2}(?:pod|pods|container)\b",
    re.IGNORECASE,
)
_TOOLBOX_CUE = re.compile(r"\b(?:rook-ceph toolbox|ceph toolbox|tools pod|toolbox pod)\b", re.I)
_CONSOLE_CUE = re.compile(r"\b(?:web console|portal|in the ui|from the ui|on the [\w ]{0,20}ui)\b", re.I)
_DESCRIBES = re.compile(r"(?:\bruns|\btriggers(?: a)?|\bcommand:|\bcalled|\bnamed|\butility)\s*`?$", re.I)
_PROMQL_SHAPE = re.compile(r"\w+\s*\(\s*\w|\{\s*\w+\s*=~?\s*\"|\[\d+[smhdw]\]")
_ROOT_PROMPT = re.compile(r"^(?P<prompt>#)\s+(?=\S)")
_STRONG_OUTPUT_LEAD = re.compile(r"^(?:example|sample) output\b|^output\b|\be\.g\.?,?\s*:?\s*$", re.I)
_ASSIGN_SUBST = re.compile(r"^\s*(?:export\s+)?[A-Za-z_]\w*=\(?\$\((.*)\)\)?\s*$", re.DOTALL)
_RUN_QUOTED = re.compile(r"\brun\s+\"([^\"]+)\"")
# ssh with the remote command as its argument: it runs from the reader's own shell
_REMOTE_COMMAND = re.compile(r"^(?:sudo\s+)?ssh\s+(?:-\S+\s+)*[^\s-]\S*\s+\S")
# redis-cli options that only say where to connect: with nothing else it opens a prompt
_REDIS_CONNECT = re.compile(
    r"^\s*(?:(?:-[hpanu]|--user|--pass|--askpass|--tls|--cacert|--cert|--key|--sni)(?:\s+(?!-)\S+)?|-c|--tls)\s*"
)
# prose that puts the reader in a shell on a remote machine for the steps that follow
_REMOTE_SHELL_CUE = re.compile(
    r"\bserial console\b|\b(?:connect|log ?in|sign in|ssh)\s+(?:to|into)\s+(?:the |a |your )?"
    r"(?:[\w-]+ ){0,2}(?:vm|node|host|server|machine|instance)\b[^.]*\b(?:by|with|via|over|using)\s+ssh\b",
    re.IGNORECASE,
)
# prose that leaves a database prompt ("exit `redis-cli` first")
_EXIT_DB_CUE = re.compile(
    r"\b(?:exit|quit|leave)\s+(?:the\s+)?`?(?:redis-cli|psql|mysql|sqlplus|mongosh?)\b", re.I
)


@dataclass
class GuideCommand:
    line: int
    text: str  # the first line as written, prompt removed
    full: str  # the whole construct
    language: str  # shell, sql, promql, redis, chatops
    mutating: bool
    where: str
    inline: bool = False
    origin: str = "guide"  # "llm": proposed by --llm for a prose-only step

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "text": self.text, "mutating": self.mutating, "where": self.where}


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False)
    except ValueError:
        return text.split()


def _program(text: str) -> str:
    words = _words(text)
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]
    while words and words[0] in ("sudo", "time", "nohup", "exec", "command"):
        runner = words[0]
        words = words[1:]
        while words and words[0].startswith("-"):
            option = words.pop(0)
            if runner == "sudo" and option in _SUDO_VALUE_OPTIONS and words:
                words = words[1:]  # sudo -u postgres psql: the program is psql
    return words[0] if words else ""


_SUDO_VALUE_OPTIONS = frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"})


_HARMLESS = frozenset(
    {"echo", "printf", "for", "do", "done", "while", "in", "true", "grep", "awk", "jq", "head"}
)


def _programs(text: str) -> set[str]:
    """The programs a compound command runs: first words of its parts, loop bodies and $( )."""
    found: set[str] = set()
    for piece in re.split(r"\$\(|[;|&\n]|\bdo\b|\bthen\b|`", _unplaceholder(text)):
        piece = re.sub(r"^\s*(?:[A-Za-z_]\w*=\(?\s*)+", "", piece).strip()
        word = piece.split()[0] if piece.split() else ""
        word = word.strip("()")
        if word and word not in ("done", "fi", "{", "}") and not word.startswith("-"):
            found.add(word.rsplit("/", 1)[-1])
    return found


def _plausible(text: str) -> bool:
    """Whether a line reads as a shell command (a program, path, assignment or loop)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("#"):
        return False
    assignment = re.match(
        r"^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=(?:\(|\$\(|'[^']*'|\"[^\"]*\"|\S*)", stripped
    )
    if assignment is not None:
        rest = stripped[assignment.end() :].strip()
        return not rest or stripped[assignment.end() - 1 : assignment.end()] in ("(",) or _plausible(rest)
    program = _program(stripped)
    if not program:
        return False
    if program.startswith(("./", "~/")) or re.match(r"^(?:<[^>]+>|/[\w.-]+)(?:/[\w.-]+)*/bin/", program):
        return True
    if program.startswith("/") and program.rsplit("/", 1)[-1] in PROGRAMS:
        return True
    return program in PROGRAMS


def _unplaceholder(text: str) -> str:
    return re.sub(r"<[^<>\n]{1,80}>", "X", text)


def classify_text(text: str, language: str) -> bool:
    """Whether a command may change anything (the allowlist classifier; sessions that create mutate)."""
    if language in _QUERY_LANGS or language == "promql":
        return classify_query("promql", text).effect == "write"
    if language == "chatops":
        return True
    if language == "plugin-call":  # a TSG tool call: only a name that says it reads is read-only
        return _READ_CALL.match(text.strip()) is None
    if language == "sql":
        return classify_sql(text).effect == "write"
    if language == "redis":
        return classify_shell("redis-cli " + _unplaceholder(text)).effect != "read"
    clean = _unplaceholder(text)
    assigned = _ASSIGN_SUBST.match(clean)
    if assigned is not None:  # NAME=$(CMD): only CMD runs
        return classify_text(assigned.group(1).replace("\\\n", " "), language)
    parts = _top_level_parts(clean)
    if len(parts) > 1 and any(_program(p) == "knife" for p in parts):
        return any(classify_text(p, language) for p in parts)
    words = _words(clean)
    program = _program(clean)
    if program == "knife" and len(words) > 1:
        if words[1] == "ssh":
            rest = words[2:]
            if "--" in rest:
                remote = " ".join(shlex.quote(w) for w in rest[rest.index("--") + 1 :])
            else:
                operands = [w for w in rest if not w.startswith("-") and not re.fullmatch(r"\d+", w)]
                remote = operands[-1] if len(operands) >= 2 else ""
            return not remote or classify_shell(remote).effect == "write"
        return not (len(words) > 2 and words[2] in ("list", "show", "status"))
    if program.startswith("/") and not program.startswith("/chatops"):
        clean = clean.replace(program, program.rsplit("/", 1)[-1], 1)
    if program.startswith("/chatops"):
        return True
    effect = classify_shell(clean).effect
    if effect == "session":
        # sessions that create something (a pod, a container) or save an edit mutate
        creates = re.search(
            r"\b(?:kubectl|oc)(?:\s+--?[\w-]+(?:[= ](?!-)\S+)?)*\s+(?:run|debug|edit)\b|"
            r"\b(?:docker|podman)\s+run\b|^\s*(?:sudo\s+)?toolbox\b|docker-machine\s+create",
            clean,
        )
        return creates is not None
    return effect == "write"


def _top_level_parts(text: str) -> list[str]:
    """A command line split at ``|``, ``&&``, ``||`` and ``;`` outside quotes."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "|;&" and not text.startswith("$(", max(0, index - 1)):
            if "".join(current).strip():
                parts.append("".join(current).strip())
            current = []
            while index + 1 < len(text) and text[index + 1] in "|&":
                index += 1
            index += 1
            continue
        current.append(char)
        index += 1
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _session_after(text: str) -> str | None:
    """The shell a command leaves the reader in, when it opens one."""
    clean = _unplaceholder(text)
    if re.search(r"\b(?:kubectl|oc)\s+debug\s+(?:-\S+\s+)*node(?:/|\s+\S)", clean) and " -- " not in clean:
        return "node"
    if re.search(r"\b(?:kubectl|oc)\s+(?:rsh|debug)\b", clean) and " -- " not in clean:
        return "pod"
    if re.search(r"\b(?:kubectl|oc)\s+rsh\b", clean):
        return "pod"
    if re.search(r"\b(?:kubectl|oc)\s+(?:exec|run)\b.*\s-\w*i\w*t|\s-\w*t\w*i", clean) and (
        re.search(r"--\s*(?:/bin/)?(?:ba)?sh\s*$", clean) or re.search(r"\b(?:kubectl|oc)\s+run\b", clean)
    ):
        return "pod"
    if re.search(r"^(?:sudo\s+)?(?:ssh|docker-machine\s+ssh)\s+(?:-\S+\s+)*\S+\s*$", clean):
        return "node"
    redis = re.search(r"(?:^|/)redis-cli\b(.*)$", clean)
    if redis and "|" not in clean:
        rest = redis.group(1)
        while (match := _REDIS_CONNECT.match(rest)) and match.end() > 0:
            rest = rest[match.end() :]
        if not rest.strip():
            return "database"
    if re.search(r"(?:^|/)(?:psql|mysql|sqlplus|mongo|mongosh|cqlsh)\b", clean) and not re.search(
        r"\s-(?:c|e|-command|-execute)\b", clean
    ):
        return "database"
    return None


def _logical(lines: list[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """(first line, first line's text, whole construct) for the block's lines."""
    out: list[tuple[int, str, str]] = []
    index = 0
    while index < len(lines):
        number, raw = lines[index]
        text = raw.strip()
        parts = [text]
        depth = 0
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", text)
        opener = re.match(r"^(for|while|until|if|case)\b", text) or re.search(
            r"(?:\||&&|;)\s*(?:while|until|for)\b.*\bdo\s*$", text
        )  # "… | while read -r key; do": the loop runs to its "done"
        if opener:
            depth = 1
        quote_open = _open_quote(text)
        j = index
        while True:
            current = parts[-1]
            more = (
                current.endswith("\\")
                or current.endswith("|")
                or current.endswith("&&")
                or (heredoc is not None and not (j > index and current.strip() == heredoc.group(1)))
                or depth > 0
                or quote_open
                or current.count("$(") > current.count(")")
            )
            if not more or j + 1 >= len(lines):
                break
            only_quote = quote_open and not (current.endswith(("\\", "|", "&&")) or depth > 0 or heredoc)
            if only_quote and _plausible(lines[j + 1][1]):
                break  # an unclosed quote, then the next command: two commands
            j += 1
            following = lines[j][1].strip()
            parts.append(following)
            if opener:
                if re.match(r"^(for|while|until|if|case)\b", following):
                    depth += 1
                if re.match(r"^(done|fi|esac)\b", following) or re.search(
                    r";\s*(done|fi|esac)\s*$", following
                ):
                    depth -= 1
            quote_open = _open_quote("\n".join(parts))
            if heredoc is not None and following == heredoc.group(1):
                heredoc = None
                if not current.endswith("\\"):
                    break
        if opener and re.search(r";\s*(done|fi|esac)\s*$", text):
            depth = 0
        out.append((number, text, "\n".join(parts)))
        index = j + 1
    return out


def _open_quote(text: str) -> bool:
    single = double = False
    escaped = False
    for char in text:
        if escaped:
            escaped = False
            continue
        if char == "\\" and not single:
            escaped = True
        elif char == "'" and not double:
            single = not single
        elif char == '"' and not single:
            double = not double
    return single or double


def _same(shorter: str, longer: str) -> bool:
    """Whether ``shorter`` names the same command as ``longer`` (a prefix of its words)."""
    a = [w for w in _unplaceholder(shorter).split() if w != "X"]
    b = [w for w in _unplaceholder(longer).split() if w != "X"]
    if len(a) < 2 or len(b) < 2:
        return False
    n = min(len(a), len(b))
    return a[:n] == b[:n]


class _Finder:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.found: list[GuideCommand] = []
        self.session = "local"
        self.session_unit: int | None = None
        # a session lasts to the end of the guide's section it was opened in (never across
        # sections); the shell the reader was in before it is ``outer`` (``ssh host`` then
        # ``redis-cli``: leaving redis-cli is back on the host)
        self.section: int | None = None
        self.outer = "local"

    # -- where -------------------------------------------------------------------------

    def where(self, command: str, language: str, cue: str | None, unit: int, inline: bool) -> str:
        if language in ("sql", "redis", "kql"):
            return "database"
        if language in ("promql", "chatops", "plugin-call") or language in _QUERY_LANGS:
            return "other"
        if _REMOTE_COMMAND.search(_unplaceholder(command)):
            # ``ssh host 'cmd'`` is typed in the shell the reader is in, whatever host it reaches
            return self.session if self.session_unit == unit else "local"
        program = _program(_unplaceholder(command))
        inner = _programs(command)
        if program not in CLUSTER_CLIS and inner & CLUSTER_CLIS and not inner - CLUSTER_CLIS - _HARMLESS:
            program = sorted(inner & CLUSTER_CLIS)[0]  # pods=$(oc get …), for pod in …; do oc logs …; done
        if program in CLUSTER_CLIS or program.startswith("<") or re.match(r"^/?chatops", program):
            if not inline and self.session_unit is not None and self.session_unit != unit:
                self.session, self.session_unit = "local", None
            return "other" if "chatops" in program else "local"
        if cue is not None and self.session_unit != unit:
            return cue
        return self.session

    def enter(self, command: str, unit: int) -> None:
        after = _session_after(command)
        if after is not None:
            self.outer = self.session
            self.session, self.session_unit = after, unit

    def leave(self) -> None:
        """Back to the shell the session was opened from."""
        self.session, self.outer = self.outer, "local"
        if self.session == "local":
            self.session_unit = None

    def enter_section(self, section: int) -> None:
        if section != self.section:
            self.session, self.session_unit, self.outer, self.section = "local", None, "local", section

    def remote(self, where: str, unit: int) -> None:
        """Prose put the reader in a remote shell ("open the serial console", "connect … by SSH")."""
        self.session, self.session_unit, self.outer = where, unit, "local"

    # -- blocks ------------------------------------------------------------------------

    def block(self, blk: Blk, lead: str, cue: str | None, unit: int) -> None:
        lang = blk.lang
        if lang in _DATA_LANGS:
            return
        body = blk.content.split("\n")
        if body and body[-1] == "":
            body.pop()
        # An indented (4-space) block has no fence line: its body starts on its first line.
        start = blk.first + (1 if blk.fenced else 0)
        numbered = [(start + i, line) for i, line in enumerate(body)]
        if lang in _SQL_LANGS:
            self.sql(numbered, unit)
            return
        if lang in _QUERY_LANGS or lang == "plugin-call":
            head = next(((n, t) for n, t in numbered if t.strip()), None)
            language = "plugin-call" if lang == "plugin-call" else "kql" if lang in _KQL_LANGS else "promql"
            if head:
                self.add(head[0], head[1].strip(), "\n".join(t for _, t in numbered), language, unit, cue)
            return
        if lang and lang not in SHELL_LANGUAGES:
            return
        prompted = [(n, m, t) for n, t in numbered if (m := _PROMPT.match(t.strip()))]
        if lang in ("console", "shell-session", "terminal"):
            # "# cmd" is the root prompt in a session transcript, not a comment
            rooted = [
                (n, m, t)
                for n, t in numbered
                if (m := _ROOT_PROMPT.match(t.strip())) and _plausible(t.strip()[2:])
            ]
            if rooted:
                prompted = sorted(prompted + rooted, key=lambda x: x[0])
        output_lead = bool(_OUTPUT_LEAD.search(lead))
        if prompted and _STRONG_OUTPUT_LEAD.search(lead):
            return  # "Example output …:" shows a session, prompts and all
        if prompted:
            has_output = len(prompted) < len([t for _, t in numbered if t.strip()])
            for number, match, text in prompted:
                command = text.strip()[match.end() :].strip()
                if not command or command in ("exit", "logout"):
                    continue
                prompt = match.group("prompt")
                if has_output and any(_same(command, c.full) or _same(c.full, command) for c in self.found):
                    continue  # an earlier command shown again with its output: a sample
                language = "redis" if prompt.endswith(">") and re.match(r"[\d.]+:\d+>", prompt) else "shell"
                if prompt.endswith("=#") or prompt.endswith("=>"):
                    language = "sql"
                whole = command
                following = [t for n, t in numbered if n > number]
                while whole.rstrip().endswith(("\\", "|", "&&")) and following:
                    whole += "\n" + following.pop(0).strip()
                self.add(number, command, whole, language, unit, cue)
            return
        if output_lead:
            return
        if lang == "" and _PROMQL_SHAPE.search(blk.content) and not any(_plausible(t) for _, t in numbered):
            head = next(((n, t) for n, t in numbered if t.strip()), None)
            if head:  # a bare block holding one PromQL expression, over several lines
                self.add(head[0], head[1].strip(), blk.content.strip(), "promql", unit, "other")
            return
        session_db = cue == "database" or (self.session == "database" and cue is None)
        for number, first, whole in _logical(numbered):
            if not first or first.startswith("#"):
                continue
            if first in ("exit", "logout", "quit", "\\q"):
                self.leave()
                continue
            if session_db and not _plausible(first):
                self.add(number, first, whole, "redis", unit, "database")
                continue
            if not _plausible(first):
                if _PROMQL.match(first) and not first.endswith(":") and (cue == "other" or lang == ""):
                    self.add(number, first, whole, "promql", unit, "other")
                continue
            self.add(number, first, whole, "shell", unit, cue)

    def sql(self, numbered: list[tuple[int, str]], unit: int) -> None:
        start: int | None = None
        parts: list[str] = []
        for number, text in numbered:
            if not text.strip() or text.strip().startswith("--"):
                continue
            if start is None:
                start = number
            parts.append(text)
            if text.rstrip().endswith(";"):
                whole = "\n".join(parts)
                self.add(start, parts[0].strip(), whole, "sql", unit, "database")
                start, parts = None, []
        if start is not None:
            self.add(start, parts[0].strip(), "\n".join(parts), "sql", unit, "database")

    def add(self, line: int, text: str, whole: str, language: str, unit: int, cue: str | None) -> None:
        if any(c.line == line for c in self.found):
            return
        opens = _session_after(whole) if language == "shell" else None
        if cue is not None and opens is not None and cue in (opens, "database"):
            # "log in to the node: ssh node", "open a Redis session: ssh host" — the command that
            # opens the session is typed in the shell the reader is in, not in the one it opens
            cue = None
        where = self.where(whole, language, cue, unit, False)
        mutating = classify_text(whole, language)
        self.found.append(GuideCommand(line, text, whole, language, mutating, where))
        if language == "shell":
            self.enter(whole, unit)

    def inline(self, code: str, line: int, before: str, unit: int, cue: str | None, next_block: str) -> None:
        code = code.strip()
        words = code.split()
        if not words or "..." in code:
            return
        if code.startswith("{") and re.search(r"\b(?:loki|logql)\b", before, re.I):
            if not any(c.line == line for c in self.found):  # a Loki stream selector
                self.found.append(GuideCommand(line, code, code, "logql", False, "other", True))
            return
        program = _program(_unplaceholder(code))
        chatops = code.startswith("/chatops")
        if not chatops:
            if not _plausible(code) or program in ("for", "while", "if", "export", "cd", "source"):
                return
            needed = 3 if program in ("kubectl", "oc") else 2
            if len(words) < needed or _DESCRIBES.search(before):
                return
            if re.match(r"^[A-Za-z_]\w*=", code):
                return
        if next_block and any(_same(code, _strip_prompt(t)) for t in next_block.splitlines() if t.strip()):
            return  # shown again in the block that follows: recorded there
        if any(c.line == line for c in self.found):
            return
        language = "chatops" if chatops else "shell"
        where = self.where(code, language, cue, unit, True)
        first = code.splitlines()[0]
        self.found.append(
            GuideCommand(line, first, code, language, classify_text(code, language), where, True)
        )


def _strip_prompt(text: str) -> str:
    match = _PROMPT.match(text.strip())
    return text.strip()[match.end() :] if match else text.strip()


_NOT_THERE = re.compile(r"\bnot (?:in|on|inside|from|within) (?:the |a )?[\w`.-]+", re.I)


def cue_of(text: str) -> str | None:
    """Where prose says the next commands run ("on the host (not in psql)": the host)."""
    text = _NOT_THERE.sub(" ", text)
    if _LOCAL_CUE.search(text):
        return "local"
    if _DB_CUE.search(text):
        return "database"
    if _OTHER_CUE.search(text):
        return "other"
    if _NODE_CUE.search(text):
        return "node"
    if _POD_CUE.search(text) or _TOOLBOX_CUE.search(text):
        return "pod"
    if _CONSOLE_CUE.search(text):
        return "cloud-console"
    return None


def find_commands(
    units: list[tuple[int, list[Blk], str]], lines: list[str], sections: list[int] | None = None
) -> list[GuideCommand]:
    """Commands of each unit, in document order: (unit id, its blocks in order, its title).

    ``sections``: the first lines of the guide's top-level sections, in order; a shell session
    (``ssh host``, ``redis-cli``, "open the serial console") ends with the section it began in.
    """
    finder = _Finder(lines)
    starts = sorted(sections or [])
    for unit, blocks, title in units:
        if blocks:
            first = min(b.first for b in blocks)
            finder.enter_section(sum(1 for start in starts if start <= first))
        cue = cue_of(title) if title else None
        flat: list[Blk] = []
        for blk in blocks:
            flat.extend(b for b in blk.walk() if b.kind in ("para", "code"))
        flat.sort(key=lambda b: b.first)
        lead = ""
        for index, blk in enumerate(flat):
            if blk.kind == "para":
                lead = blk.text
                if _EXIT_DB_CUE.search(blk.text) and finder.session == "database":
                    finder.leave()
                if _REMOTE_SHELL_CUE.search(blk.text):
                    finder.remote("node", unit)
                found = cue_of(blk.text)
                if found is not None:
                    cue = found
                next_block = ""
                if index + 1 < len(flat) and flat[index + 1].kind == "code":
                    next_block = flat[index + 1].content
                for code, line in blk.codes:
                    offset = blk.text.find(code)
                    before = blk.text[:offset].rstrip("`") if offset >= 0 else ""
                    after = blk.text[offset + len(code) :].lstrip("`") if offset >= 0 else ""
                    if re.match(r"\s*(?:is|are|shows?|returns?|reports?|outputs?|prints?|says)\b", after):
                        continue  # "If `ceph status` is not HEALTH_OK": its output, not an instruction
                    finder.inline(code, line, before, unit, cue, next_block)
                for match in _RUN_QUOTED.finditer(blk.text):
                    quoted = match.group(1)
                    if _plausible(quoted):
                        line = next(
                            (
                                blk.first + i
                                for i, raw in enumerate(lines[blk.first - 1 : blk.last])
                                if quoted in raw
                            ),
                            blk.first,
                        )
                        finder.inline(quoted, line, "", unit, cue, "")
            else:
                finder.block(blk, lead, cue, unit)
                lead = ""
    return sorted(finder.found, key=lambda c: c.line)
