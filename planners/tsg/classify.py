"""Is a command read-only, mutating, or an interactive session? Allowlists: unknown = mutating.

A command is read-only only when every part of it is *known* to only read: the program
and its subcommand are on a read list (``rules``), none of its options writes, no
redirection writes a file, and every command it runs (``xargs CMD``, ``timeout 5 CMD``,
``sh -c SCRIPT``, ``kubectl exec POD -- CMD``) is itself read-only. The text is read the
way the shell reads it (``shell``): a newline, ``;``, ``&&``, ``||`` and ``|`` separate
commands and each one is judged; ``LD_PRELOAD=…``/``GIT_*=``/``*PAGER=`` prefixes and
programs given by a path (``./cat``) are unknown. ``session`` marks commands that do not
finish on their own or need a person: the runner hands those to the operator.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .options import parse_options, spec, words
from .placeholders import find_placeholders
from .rules import (
    CASE_INSENSITIVE,
    ENV_PREFIX_SAFE,
    GUARDED,
    INTERACTIVE,
    OPTION_SPECS,
    READ_ONLY,
    RUNNERS,
    SUBCOMMANDS,
    UNSAFE_VARIABLE,
    Subcommands,
)
from .scripts import awk_writes, sed_writes, sql_writes, sqlite_dot_writes
from .shell import Redirect, ShellSyntaxError, SimpleCommand, parse_shell

__all__ = [
    "KNOWN_PROGRAMS",
    "Classification",
    "Effect",
    "classify_argv",
    "classify_query",
    "classify_shell",
    "classify_sql",
]

Effect = Literal["read", "write", "session"]

_RANK: dict[Effect, int] = {"read": 0, "write": 1, "session": 2}
_MAX_DEPTH = 8
#: Redirection targets that are not files anyone keeps.
_SINKS = frozenset({"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/fd/1", "/dev/fd/2"})


@dataclass(frozen=True)
class Classification:
    effect: Effect
    reason: str


def _read(reason: str) -> Classification:
    return Classification("read", reason)


def _write(reason: str) -> Classification:
    return Classification("write", reason)


def _worst(items: list[Classification]) -> Classification:
    return max(items, key=lambda c: _RANK[c.effect])


def _has_placeholder(text: str | None) -> bool:
    """A runbook placeholder (or any expansion) inside a script: its value becomes code."""
    return text is None or bool(find_placeholders(text)) or "`" in text or "$(" in text


# -- the whole text -------------------------------------------------------------------------


def classify_shell(text: str, depth: int = 0) -> Classification:
    """A shell text: every simple command, redirection and substitution in it."""
    if depth > _MAX_DEPTH:
        return _write("commands nested too deeply to judge")
    if "\x00" in text or re.search(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]", text):
        return _write("control characters in the command")
    try:
        parsed = parse_shell(text)
    except ShellSyntaxError as exc:
        return _write(f"cannot read it as a shell command ({exc})")
    results: list[Classification] = []
    if parsed.process_substitutions:
        results.append(_write("process substitution <(…)/>(…) runs a command and passes a file"))
    if parsed.substitutions:
        results.append(_write("command substitution $( … ) runs a command whose output becomes arguments"))
    for command in parsed.commands:
        results.extend(_redirect(r) for r in command.redirects)
        results.append(_simple(command, depth))
    if not results:
        return _write("empty command")
    # Report the first part that decided, so the reason names it.
    worst = _worst(results)
    return next(r for r in results if r.effect == worst.effect)


def _redirect(redirect: Redirect) -> Classification:
    op = redirect.op
    target = redirect.target.text if redirect.target is not None else ""
    if op in ("<", "<<", "<<-", "<<<"):
        return _read("reads a file or text")
    if op in ("<&", ">&") and (target.isdigit() or target == "-"):
        return _read("duplicates a file descriptor")
    if op == "<>":
        return _write(f"<> opens {target} for writing (and creates it)")
    if target in _SINKS:
        return _read(f"discards output into {target}")
    return _write(f"writes the file {target} ({op})")


def _simple(command: SimpleCommand, depth: int) -> Classification:
    for assignment in command.assignments:
        name = assignment.raw.split("=", 1)[0].removesuffix("+")
        if command.words and not ENV_PREFIX_SAFE.match(name):
            return _write(f"{name}=… before the command can change what it runs or loads")
        if not command.words and UNSAFE_VARIABLE.match(name):
            return _write(f"setting {name} changes what later commands run or load")
    if not command.words:
        return _read("only sets variables")
    return classify_argv([w.text for w in command.words], depth)


# -- one program ----------------------------------------------------------------------------

_PREFIX_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})
_END_KEYWORDS = frozenset({"fi", "done", "esac", "}", "then", "else", "do"})


def classify_argv(argv: list[str], depth: int = 0) -> Classification:
    """One program with its arguments (after quote removal), judged by the rules tables."""
    if depth > _MAX_DEPTH:
        return _write("commands nested too deeply to judge")
    if not argv:
        return _write("no command")
    program, args = argv[0], argv[1:]
    if "$" in program or "`" in program:
        return _write("the program comes from a variable or a substitution")
    if "/" in program:
        return _write(f"a program given by a path ({program}) is unknown: it may not be the system's")
    if program in _PREFIX_KEYWORDS:
        return classify_argv(args, depth) if args else _read("shell syntax")
    if program in _END_KEYWORDS and not args:
        return _read("shell syntax")
    if program == "for":
        return _read("a loop header only sets a variable")
    handler = _HANDLERS.get(program)
    if handler is not None:
        return handler(program, args, depth)
    if program in RUNNERS:
        return _runner(program, args, depth)
    if program in GUARDED:
        return _guarded(program, args)
    if program in SUBCOMMANDS:
        return _subcommands(program, args, SUBCOMMANDS[program], depth)
    if program in INTERACTIVE:
        return Classification("session", f"{program} is interactive or never ends")
    if program in READ_ONLY:
        return _read(f"{program} only reads")
    return _write(f"{program}: unknown program, treated as mutating")


def _runner(program: str, args: list[str], depth: int) -> Classification:
    rule = RUNNERS[program]
    parsed = parse_options(args, rule.options)
    if program in ("sudo", "doas"):
        if parsed.has("-e", "--edit"):
            return _write("sudo -e edits files")
        if parsed.has("-l", "--list") and not parsed.operands:
            return _read("sudo -l lists what may run")
        if parsed.has("-i", "-s", "--login", "--shell"):
            if not parsed.operands:
                return Classification("session", "sudo -i/-s opens a shell")
            return _inner(program, classify_shell(" ".join(parsed.operands), depth + 1))
    command = parsed.operands[rule.skip :]
    if not command:
        effect = rule.without_command
        return Classification(effect, f"{program} without a command")  # type: ignore[arg-type]
    if program == "watch":  # watch joins its arguments and runs them with sh -c
        inner = classify_shell(" ".join(command), depth + 1)
        if _has_placeholder(" ".join(command)):
            inner = _write("a placeholder becomes part of the command watch runs")
        return _worst([Classification("session", "watch repeats until interrupted"), inner])
    return _inner(program, classify_argv(command, depth + 1))


def _inner(runner: str, inner: Classification) -> Classification:
    return Classification(inner.effect, f"{runner} runs: {inner.reason}")


def _guarded(program: str, args: list[str]) -> Classification:
    rule = GUARDED[program]
    parsed = parse_options(args, rule.options)
    for name, _value in parsed.options:
        if name in rule.write:
            return _write(f"{program} {name} changes state or writes a file")
    for name, _value in parsed.options:
        if name in rule.session:
            return Classification("session", f"{program} {name} follows until interrupted")
    operands = [
        o for o in parsed.operands if not (rule.operand_prefix_ok and o.startswith(rule.operand_prefix_ok))
    ]
    if program in ("tee", "uniq"):
        operands = [o for o in operands if o not in _SINKS]
    if rule.max_operands is not None and len(operands) > rule.max_operands:
        return _write(f"{program} {operands[rule.max_operands]} writes a file or changes state")
    if rule.read_requires and not parsed.has(*rule.read_requires):
        needed = "/".join(sorted(rule.read_requires))
        return Classification("session", f"{program} without {needed} does not finish on its own")
    return _read(f"{program} only reads with these options")


def _path_matches(path: tuple[str, ...], operands: list[str], options: set[str]) -> bool:
    words = [p for p in path if not p.startswith("-")]
    flags = [p for p in path if p.startswith("-")]
    return (
        operands[: len(words)] == words and all(f in options for f in flags) and (bool(words) or bool(flags))
    )


def _subcommands(program: str, args: list[str], rule: Subcommands, depth: int) -> Classification:
    parsed = parse_options(args, rule.options)
    operands = [o.lower() for o in parsed.operands] if program in CASE_INSENSITIVE else parsed.operands
    names = {name for name, _ in parsed.options}
    for name in names & rule.write_options:
        return _write(f"{program} {name} writes files")
    sub = operands[0] if operands else ""
    if program in ("kubectl", "oc"):
        special = _kube(program, args, parsed.operands, names, depth)
        if special is not None:
            return special
    if program in ("docker", "podman", "crictl", "nerdctl") and sub == "exec":
        return _container_exec(program, args[args.index("exec") + 1 :], depth)
    shown = " ".join(operands[:3]) or "(no subcommand)"
    follow = bool(names & rule.session_options)
    if any(_path_matches(path, operands, names) for path in rule.read):
        if follow:
            return Classification("session", f"{program} {shown} keeps watching until interrupted")
        return _read(f"{program} {shown} only reads")
    if any(_path_matches(path, operands, names) for path in rule.session) or (follow and not operands):
        return Classification("session", f"{program} {shown} keeps running or needs a person")
    if not operands:
        return Classification(rule.default, f"{program} without a subcommand")  # type: ignore[arg-type]
    return _write(f"{program} {shown} changes state or is not known to only read")


def _kube(
    program: str, args: list[str], operands: list[str], names: set[str], depth: int
) -> Classification | None:
    sub = operands[0] if operands else ""
    if sub == "exec":
        if names & {"-i", "-t", "--stdin", "--tty"}:
            return Classification("session", f"{program} exec with a terminal is interactive")
        if "--" not in args:
            return _write(f"{program} exec without -- runs a command the classifier cannot find")
        inner = args[args.index("--") + 1 :]
        return _inner(f"{program} exec", classify_argv(inner, depth + 1))
    if sub == "logs" and names & {"-f", "--follow"}:
        return Classification("session", f"{program} logs -f follows the log until interrupted")
    if sub == "extract":
        to = parse_options(args, OPTION_SPECS.get(program, SUBCOMMANDS[program].options)).values("--to")
        if to and all(value == "-" for value in to):
            return _read(f"{program} extract --to=- prints")
        return _write(f"{program} extract writes files")
    if sub == "project" and len(operands) > 1:
        return _write("oc project NAME switches the current project")
    if (
        sub in ("cluster-info",)
        and len(operands) > 1
        and operands[1] == "dump"
        and "--output-directory" in names
    ):
        return _write("cluster-info dump --output-directory writes files")
    return None


def _container_exec(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(
        args, spec("-e --env --env-file -u --user -w --workdir --detach-keys --timeout", permute=False)
    )
    if parsed.has("-i", "-t", "--interactive", "--tty", "-it"):
        return Classification("session", f"{program} exec with a terminal is interactive")
    command = parsed.operands[1:]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        return _write(f"{program} exec without a command")
    return _inner(f"{program} exec", classify_argv(command, depth + 1))


# -- programs with a function of their own --------------------------------------------------

Handler = Callable[[str, list[str], int], Classification]


def _sed(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["sed"])
    if parsed.has("-i", "--in-place"):
        return _write("sed -i edits files in place")
    if parsed.has("-f", "--file"):
        return _write("sed -f runs a script file the classifier cannot see")
    scripts = parsed.values("-e", "--expression") or parsed.operands[:1]
    if not scripts:
        return _write("sed without a script")
    for script in scripts:
        if _has_placeholder(script):
            return _write("a placeholder becomes part of the sed script: its value could add commands")
        assert script is not None
        reason = sed_writes(script)
        if reason:
            return _write(reason)
    return _read("sed without -i, w or e only prints")


def _awk(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["awk"])
    if parsed.has("-f", "--file", "-i", "--include", "-l", "--load", "-E", "--exec"):
        return _write(f"{program} runs a program file or loads an extension")
    programs = parsed.values("-e", "--source") or parsed.operands[:1]
    if not programs:
        return _write(f"{program} without a program")
    for text in programs:
        if _has_placeholder(text):
            return _write(f"a placeholder becomes part of the {program} program: its value could add code")
        assert text is not None
        reason = awk_writes(text)
        if reason:
            return _write(reason)
    return _read(f"{program} without system(), pipes or print > only prints")


_FIND_WRITES = frozenset({"-delete", "-fprint", "-fprint0", "-fprintf", "-fls"})
_FIND_FLAGS = words(
    "-print -print0 -ls -prune -quit -true -false -not -a -o -and -or -depth -mount -xdev -follow -noleaf "
    "-empty -readable -writable -executable -nouser -nogroup -daystart -ignore_readdir_race "
    "-noignore_readdir_race -H -L -P -help --help -version --version -warn -nowarn -d ! ( ) ,"
)


def _find(program: str, args: list[str], depth: int) -> Classification:
    values = OPTION_SPECS["find"].values
    results: list[Classification] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg in _FIND_WRITES:
            return _write(f"find {arg} deletes or writes files")
        if arg in ("-exec", "-execdir", "-ok", "-okdir"):
            end = index
            while end < len(args) and args[end] not in (";", "+"):
                end += 1
            inner = args[index:end]
            index = end + 1
            if arg in ("-ok", "-okdir"):
                results.append(Classification("session", f"find {arg} asks a person before each file"))
            results.append(_inner(f"find {arg}", classify_argv(inner, depth + 1)))
        elif arg in values:
            index += 1
        elif arg.startswith("-") and arg not in _FIND_FLAGS:
            return _write(f"find {arg}: an expression the classifier does not know")
    return _worst([_read("find only lists"), *results])


_CURL_DATA = words("-d --data --data-raw --data-binary --data-urlencode --data-ascii")
_CURL_UPLOAD = words("-F --form --form-string --json -T --upload-file -Q --quote --mail-rcpt --mail-from")
_CURL_FILES = words(
    "-o --output -c --cookie-jar -D --dump-header --trace --trace-ascii --stderr --libcurl --etag-save "
    "--hsts --alt-svc"
)


def _url_scheme_ok(url: str) -> bool:
    scheme = url.split("://", 1)[0].lower() if "://" in url else "http"
    return scheme in ("http", "https")


def _curl(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["curl"])
    get = parsed.has("-G", "--get")
    for name, value in parsed.options:
        if name in ("-K", "--config"):
            return _write("curl -K reads options from a file the classifier cannot see")
        if name in _CURL_UPLOAD:
            return _write(f"curl {name} sends data")
        if name in _CURL_DATA and not get:
            return _write(f"curl {name} sends data (a POST)")
        if name in _CURL_FILES and value not in ("-", *_SINKS):
            return _write(f"curl {name} writes the file {value}")
        if name in ("-O", "--remote-name", "--remote-name-all", "-J", "--remote-header-name"):
            return _write("curl -O saves the download to a file")
        if name in ("-X", "--request") and (value or "").upper() not in ("GET", "HEAD", "OPTIONS"):
            return _write(f"curl -X {value} may change the server's state")
    urls = [*parsed.operands, *(v or "" for v in parsed.values("--url"))]
    for url in urls:
        if not _url_scheme_ok(url):
            return _write(f"curl to {url.split('://', 1)[0]}:// can send anything")
    return _read("curl GET only reads")


def _wget(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["wget"])
    for name, value in parsed.options:
        if name in ("-e", "--execute", "--post-data", "--post-file", "--body-data", "--body-file"):
            return _write(f"wget {name} runs a wgetrc command or sends data")
        if name == "--method" and (value or "").upper() not in ("GET", "HEAD"):
            return _write(f"wget --method {value} may change the server's state")
        if name in (
            "-o",
            "-a",
            "--output-file",
            "--append-output",
            "--save-cookies",
            "-P",
            "--directory-prefix",
        ) and value not in (*_SINKS, "-"):
            return _write(f"wget {name} writes {value}")
        if name in (
            "-r",
            "--recursive",
            "-m",
            "--mirror",
            "-p",
            "--page-requisites",
            "-x",
            "--force-directories",
        ):
            return _write(f"wget {name} saves files")
    documents = parsed.values("-O", "--output-document")
    if documents and all(d == "-" for d in documents):
        return _read("wget -O - prints the download")
    if documents:
        return _write(f"wget -O {documents[-1]} writes a file")
    if parsed.has("--spider"):
        return _read("wget --spider only checks")
    return _write("wget saves the download to a file")


_GIT_READ = words(
    "status log show diff rev-parse rev-list ls-files ls-tree ls-remote cat-file describe blame shortlog "
    "grep show-ref for-each-ref merge-base name-rev count-objects whatchanged version help cherry diff-tree "
    "diff-files diff-index var check-ignore check-attr verify-commit verify-tag annotate range-diff"
)
_GIT_BRANCH = spec(
    "--contains --no-contains --merged --no-merged --points-at --sort --format --color --column "
    "-u --set-upstream-to --abbrev"
)
_GIT_BRANCH_WRITES = words(
    "-d -D -m -M -c -C -f -u -t --delete --move --copy --force --set-upstream-to --unset-upstream "
    "--edit-description --track --no-track --create-reflog"
)


def _git(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["git"])
    if parsed.has("-c", "--config-env", "--exec-path"):
        return _write("git -c/--exec-path can set a pager, an alias or a program that runs")
    if not parsed.operands:
        return _read("git without a subcommand prints help")
    sub, rest = parsed.operands[0], parsed.operands[1:]
    options = parse_options(rest, _GIT_BRANCH if sub in ("branch", "tag") else spec("--output -O"))
    if any(name == "--output" or name.startswith("--output=") for name, _ in options.options):
        return _write(f"git {sub} --output writes a file")
    if sub in _GIT_READ:
        if sub == "grep" and options.has("-O", "--open-files-in-pager"):
            return _write("git grep -O runs a program")
        if sub == "diff" and options.has("--ext-diff"):
            return _write("git diff --ext-diff runs an external program")
        return _read(f"git {sub} only reads")
    listing = options.has("-l", "--list")
    if sub == "branch":
        written = {n for n, _ in options.options} & _GIT_BRANCH_WRITES
        if written or (options.operands and not listing):
            return _write("git branch with a name or -d/-D/-m creates, deletes or renames a branch")
        return _read("git branch lists branches")
    if sub == "tag":
        if not options.operands or listing or options.has("-v", "--verify"):
            return _read("git tag lists tags")
        return _write("git tag NAME creates a tag")
    head = rest[0] if rest else ""
    if sub == "remote" and (not rest or head in ("-v", "--verbose", "show", "get-url")):
        return _read("git remote lists remotes")
    if sub == "stash" and head in ("list", "show"):
        return _read(f"git stash {head} only reads")
    if sub == "reflog" and head in ("", "show"):
        return _read("git reflog only reads")
    if sub in ("worktree", "submodule", "notes") and head in ("list", "status", "show"):
        return _read(f"git {sub} {head} only reads")
    if sub == "config":
        config = parse_options(rest, spec("--file -f --blob --type --default"))
        if config.has("--get", "--get-all", "--get-regexp", "--list", "-l", "--get-urlmatch", "--get-color"):
            return _read("git config --get/--list only reads")
        writes = {"--unset", "--unset-all", "--add", "--replace-all", "--rename-section", "--remove-section",
                  "-e", "--edit"}  # fmt: skip
        if len(config.operands) == 1 and not config.has(*writes):
            return _read("git config NAME only reads")
    return _write(f"git {sub} changes the repository or is not known to only read")


#: In iproute2's own order: ``ip l`` is the first object that starts with "l" (link).
_IP_ORDER = (
    "address addrlabel maddress route rule neighbor neighbour ntable ntbl link l2tp fou ila macsec tunnel "
    "tunl tuntap tap token tcpmetrics tcp_metrics monitor xfrm mroute mrule netns netconf vrf sr nexthop "
    "mptcp ioam stats help"
)
_IP_OBJECTS = _IP_ORDER.split()
_IP_READ = frozenset({"", "show", "sh", "sho", "list", "lst", "ls", "get", "help"})


def _ip(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["ip"])
    if parsed.has("-b", "-batch", "-force"):
        return _write("ip -batch runs commands from a file")
    if not parsed.operands:
        return _read("ip without an object prints usage")
    word = parsed.operands[0]
    obj = next((o for o in _IP_OBJECTS if o.startswith(word)), None)
    command = parsed.operands[1] if len(parsed.operands) > 1 else ""
    if obj is None:
        return _write(f"ip {word}: an object the classifier does not know")
    if obj == "monitor":
        return Classification("session", "ip monitor runs until interrupted")
    if obj == "netns" and command == "exec" and len(parsed.operands) > 3:
        return _inner("ip netns exec", classify_argv(parsed.operands[3:], depth + 1))
    if command in _IP_READ or (obj == "netns" and command in ("identify", "pids")):
        return _read(f"ip {obj} {command or 'show'} only reads")
    return _write(f"ip {obj} {command} changes the network configuration")


def _sql_argument(text: str | None, what: str) -> Classification | None:
    if text is None or _has_placeholder(text):
        return _write(f"a placeholder becomes part of the {what}: its value could add statements")
    reason = sqlite_dot_writes(text) if text.lstrip().startswith(".") else sql_writes(text)
    return _write(reason) if reason else None


def _sqlite3(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["sqlite3"])
    if parsed.has("-version", "--version", "-help", "--help") and not parsed.operands:
        return _read("sqlite3 -version prints")
    if parsed.has("-init", "--init", "-A", "--A", "-append", "-deserialize"):
        return _write("sqlite3 -init/-A runs a file or writes an archive")
    if parsed.has("-interactive", "--interactive"):
        return Classification("session", "sqlite3 -interactive needs a person")
    commands = [*parsed.values("-cmd", "--cmd"), *parsed.operands[1:]]
    for text in commands:
        verdict = _sql_argument(text, "SQL")
        if verdict is not None:
            return verdict
    if not parsed.operands[1:]:
        return Classification("session", "sqlite3 without SQL reads commands from its input (interactive)")
    return _read("sqlite3 queries only read")


_PSQL_READ_META = re.compile(
    r"^\\(d[a-zA-Z]*\+?S?|l\+?|list|conninfo|x|timing|encoding|copyright|\?|dt\+?)(\s|$)"
)


def _psql(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["psql"])
    if parsed.has("-f", "--file", "-o", "--output", "-L", "--log-file"):
        return _write("psql -f/-o/-L runs a file or writes one")
    commands = parsed.values("-c", "--command")
    if not commands:
        if parsed.has("-l", "--list", "-V", "--version"):
            return _read("psql -l lists databases")
        return Classification("session", "psql without -c is interactive")
    for text in commands:
        if text is not None and text.lstrip().startswith("\\"):
            if not _PSQL_READ_META.match(text.strip()) or "\n" in text.strip():
                return _write("a psql meta-command that writes, runs a program or is unknown")
            continue
        verdict = _sql_argument(text, "SQL")
        if verdict is not None:
            return verdict
    return _read("psql -c queries only read")


def _mysql(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["mysql"])
    if parsed.has("--tee", "--pager", "--defaults-file", "--defaults-extra-file", "--local-infile"):
        return _write(f"{program} --tee/--pager/--defaults-file writes files or runs a program")
    commands = [*parsed.values("-e", "--execute"), *parsed.values("--init-command")]
    if not commands:
        if parsed.has("-V", "--version"):
            return _read(f"{program} --version prints")
        return Classification("session", f"{program} without -e is interactive")
    for text in commands:
        if text is not None and (
            re.search(r"\\[^Gg]", text) or re.match(r"\s*(system|tee|pager|source|edit)\b", text, re.I)
        ):
            return _write(f"a {program} client command (system, tee, \\!) runs a program or writes a file")
        verdict = _sql_argument(text, "SQL")
        if verdict is not None:
            return verdict
    return _read(f"{program} -e queries only read")


_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh"})


def _shell(program: str, args: list[str], depth: int) -> Classification:
    command_mode = False
    index = 0
    while index < len(args) and args[index].startswith(("-", "+")) and args[index] not in ("-", "--"):
        arg = args[index]
        index += 1
        if arg in ("-o", "+o", "-O", "+O"):
            index += 1
        elif not arg.startswith("--") and "c" in arg[1:]:
            command_mode = True
        if not arg.startswith("--") and "i" in arg[1:]:
            return Classification("session", f"{program} -i is interactive")
    if args[index : index + 1] == ["--"]:
        index += 1
    if command_mode:
        if index >= len(args):
            return _write(f"{program} -c without a script")
        script = args[index]
        if _has_placeholder(script):
            return _write(
                f"a placeholder becomes part of the {program} -c script: its value could add commands"
            )
        return _inner(f"{program} -c", classify_shell(script, depth + 1))
    if index < len(args):
        return _write(f"{program} runs the script file {args[index]}, which the classifier cannot see")
    return Classification("session", f"{program} without -c reads commands from its input (interactive)")


def _xargs(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["xargs"])
    if parsed.has("-p", "--interactive"):
        return Classification("session", "xargs -p asks a person")
    command = parsed.operands or ["echo"]
    inner = classify_argv(command, depth + 1)
    if inner.effect == "read" and command[0] not in READ_ONLY and command[0] not in ("kubectl", "oc"):
        return _write(
            f"xargs adds arguments from its input to {command[0]}, which may turn on a write option"
        )
    return _inner("xargs", inner)


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _export(program: str, args: list[str], depth: int) -> Classification:
    """``export NAME=value`` sets a shell variable like a bare assignment: the same names are unsafe.

    Substitutions in the value (``$(…)``) are judged on their own before this (as writes).
    Options (``-f`` exports functions, ``-n`` unexports) are not known to be harmless.
    """
    if not args:
        return _read("export lists the exported variables")
    for arg in args:
        name = arg.split("=", 1)[0].removesuffix("+")
        if not _NAME.match(name):
            return _write(f"export {arg}: not a plain variable assignment")
        if UNSAFE_VARIABLE.match(name):
            return _write(f"exporting {name} changes what later commands run or load")
    return _read("export only sets variables")


def _env(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["env"])
    if parsed.has("-S", "--split-string"):
        return _write("env -S splits a string into a command the classifier cannot see")
    command = list(parsed.operands)
    while command and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", command[0]):
        name = command.pop(0).split("=", 1)[0]
        if not ENV_PREFIX_SAFE.match(name):
            return _write(f"env {name}=… can change what the command runs or loads")
    if not command:
        return _read("env prints the environment")
    return _inner("env", classify_argv(command, depth + 1))


_SSH_COMMAND_OPTIONS = re.compile(
    r"^(proxycommand|localcommand|permitlocalcommand|knownhostscommand|match)", re.I
)


def _ssh(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["ssh"])
    if parsed.has("-F"):
        return _write("ssh -F reads a config file the classifier cannot see")
    for value in parsed.values("-o"):
        if value is None or _SSH_COMMAND_OPTIONS.match(value):
            return _write("ssh -o ProxyCommand/LocalCommand runs a local program")
    if parsed.has("-L", "-R", "-D", "-N", "-W", "-f"):
        return Classification("session", "ssh with a forward or tunnel keeps running")
    remote = parsed.operands[1:]
    if not parsed.operands or not remote:
        return Classification("session", "ssh without a command is an interactive login")
    text = " ".join(remote)
    if _has_placeholder(text):
        return _write("a placeholder becomes part of the remote command: its value could add commands")
    return _inner("ssh", classify_shell(text, depth + 1))


_OPENSSL_READ = words(
    "s_client x509 verify version ciphers crl asn1parse dgst base64 pkey rsa ec req pkcs7 pkcs12 s_time speed "
    "rand errstr list prime sess_id crl2pkcs7 enc"
)
_OPENSSL_WRITES = words(
    "-out -keyout -sess_out -keylogfile -writerand -msgfile -engine -provider -provider-path"
)


def _openssl(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, OPTION_SPECS["openssl"])
    for name, value in parsed.options:
        if name in _OPENSSL_WRITES and value not in _SINKS:
            return _write(f"openssl {name} writes a file or loads code")
    sub = parsed.operands[0] if parsed.operands else ""
    if sub in _OPENSSL_READ:
        return _read(f"openssl {sub} only reads")
    return _write(f"openssl {sub or '(no subcommand)'} is not known to only read")


def _sysctl(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, spec("-r --pattern"))
    if parsed.has("-w", "--write", "-p", "--load", "--system") or any("=" in o for o in parsed.operands):
        return _write("sysctl with -w/-p or NAME=VALUE changes the kernel")
    return _read("sysctl only reads")


def _iptables(program: str, args: list[str], depth: int) -> Classification:
    parsed = parse_options(args, spec("-t --table -w --wait -W"))
    names = {n for n, _ in parsed.options}
    if names & {"-L", "--list", "-S", "--list-rules"} and not (
        names & {"-A", "-D", "-I", "-R", "-F", "-X", "-P", "-N", "-Z", "-E", "--append", "--delete", "--insert",
                 "--replace", "--flush", "--delete-chain", "--policy", "--new-chain", "--zero", "--rename-chain"}
    ):  # fmt: skip
        return _read(f"{program} -L lists rules")
    return _write(f"{program} changes the firewall or is not known to only read")


def _arp_route(program: str, args: list[str], depth: int) -> Classification:
    if any(
        a in ("add", "del", "delete", "flush", "-d", "-s", "-f", "--delete", "--set", "--file") for a in args
    ):
        return _write(f"{program} changes the network configuration")
    return _read(f"{program} only lists")


def _ifconfig(program: str, args: list[str], depth: int) -> Classification:
    operands = [a for a in args if not a.startswith("-")]
    if len(operands) > 1:
        return _write("ifconfig with settings changes an interface")
    return _read("ifconfig only lists")


_HANDLERS: dict[str, Handler] = {
    "sed": _sed,
    "gsed": _sed,
    "awk": _awk,
    "gawk": _awk,
    "mawk": _awk,
    "nawk": _awk,
    "find": _find,
    "curl": _curl,
    "wget": _wget,
    "git": _git,
    "ip": _ip,
    "sqlite3": _sqlite3,
    "psql": _psql,
    "mysql": _mysql,
    "mariadb": _mysql,
    "xargs": _xargs,
    "env": _env,
    "export": _export,
    "ssh": _ssh,
    "openssl": _openssl,
    "sysctl": _sysctl,
    "iptables": _iptables,
    "ip6tables": _iptables,
    "arp": _arp_route,
    "route": _arp_route,
    "ifconfig": _ifconfig,
    **dict.fromkeys(_SHELLS, _shell),
}


# -- SQL and query languages ----------------------------------------------------------------


def classify_sql(query: str) -> Classification:
    """A SQL text: read only if every statement is a query without side-effect functions."""
    reason = sql_writes(query)
    return _write(reason) if reason else _read("SQL query only reads")


def classify_query(language: str, query: str) -> Classification:
    """PromQL and LogQL only read; KQL control commands (``.drop``, ``.set``) write."""
    if language == "kql" and query.lstrip().startswith("."):
        return _write("KQL control command")
    if language in ("promql", "logql", "kql", "traceql", "metricsql"):
        return _read(f"{language} query only reads")
    return _write(f"{language}: unknown query language, treated as mutating")


#: Programs a code block line may start with even without a ``$`` prompt (command detection,
#: not classification: a program here may well be mutating).
KNOWN_PROGRAMS = words("""
    cat head grep egrep fgrep zgrep sort uniq wc ls df du free uptime uname ps jq yq awk cut tr column echo
    printf date hostname whoami id stat file dig nslookup host ping traceroute ss netstat lsblk lscpu lsof
    dmesg vmstat iostat mpstat sar pidstat nproc getent which test true false diff sha256sum md5sum base64 tac nl
    realpath dirname basename env printenv pwd findmnt blkid openssl timeout sleep seq xargs tee ocm ceph
    systemctl journalctl rpm-ostree etcdctl docker podman git ip sqlite3 find sed curl wget tail ssh chroot
    less more vi vim watch top htop bash sh kubectl oc helm crictl rm touch mv cp mkdir chmod chown kill
    pkill service reboot shutdown python python3 pip mount umount iptables nft rpm dnf yum apt apt-get
    tcpdump sudo mysql psql redis-cli nc telnet systemd-analyze virsh az aws gcloud terraform
    """)
