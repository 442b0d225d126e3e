"""The classifier's knowledge, as data: which programs, subcommands and options only read.

Everything not listed here is *unknown*, and unknown needs approval. To teach the
classifier a program, add it to one table:

- ``READ_ONLY``: every form only reads (``cat``, ``df``); redirections are judged apart.
- ``GUARDED``: reads unless given an option from ``write`` (``sort -o``), a ``session``
  option (``tail -f``) or more operands than ``max_operands`` (``hostname NAME`` sets it).
- ``SUBCOMMANDS``: reads only for the listed subcommand paths (``ceph osd tree``,
  ``etcdctl member list``); ``default`` is the effect with no subcommand at all.
- ``RUNNERS``: programs that run another command (``timeout 5 CMD``): judged by ``CMD``.
- ``INTERACTIVE``: programs that need a person or never end (a session, done by hand).

Programs whose meaning lives in a script or a URL (sed, awk, find, curl, wget, git, ip,
kubectl, sqlite3 …) have a function in ``classify``, using the option specs below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .options import OptionSpec, spec, words

__all__ = [
    "ENV_PREFIX_SAFE",
    "GUARDED",
    "INTERACTIVE",
    "OPTION_SPECS",
    "READ_ONLY",
    "RUNNERS",
    "SUBCOMMANDS",
    "UNSAFE_VARIABLE",
    "Guarded",
    "Runner",
    "Subcommands",
    "value_options",
]

#: Programs that only read, whatever their options and operands.
READ_ONLY = words("""
    cat head grep egrep fgrep zgrep zcat bzcat xzcat zless wc ls df du free uptime uname ps pgrep
    jq cut tr column echo printf whoami id groups stat file dig nslookup host whois traceroute
    tracepath netstat lsblk lscpu lsof lspci lsusb lsmod lsns ipcs vmstat iostat mpstat pidstat
    nproc getent which whereis type test [ [[ true false diff cmp comm sha1sum sha256sum sha512sum
    md5sum cksum base64 base32 tac nl rev fold fmt expand od hexdump xxd strings realpath readlink
    dirname basename printenv pwd findmnt blkid sleep seq arp route getconf locale tty
    numastat dmidecode lsattr namei last lastlog w who users expr bc factor nm ldd size
    """)

#: Programs that need a person or never finish: never run unattended.
INTERACTIVE = words("""
    less more most vi vim nvim view nano emacs top htop atop iotop iftop nmon telnet screen tmux
    ssh-keygen passwd su login mc watch
    """)


@dataclass(frozen=True)
class Guarded:
    """A program that reads unless one of ``write`` (or ``session``) options is given."""

    options: OptionSpec
    write: frozenset[str] = frozenset()
    session: frozenset[str] = frozenset()
    max_operands: int | None = None  # more operands than this → writes (``hostname NAME``)
    operand_prefix_ok: str = ""  # operands starting with this do not count (``date +%s``)
    read_requires: frozenset[str] = frozenset()  # without one of these it is a session (ping -c)


def _g(values: str, write: str = "", session: str = "", **kw: object) -> Guarded:
    return Guarded(spec(values), frozenset(write.split()), frozenset(session.split()), **kw)  # type: ignore[arg-type]


GUARDED: dict[str, Guarded] = {
    "tail": _g(
        "-n -c -s --lines --bytes --sleep-interval --pid --max-unchanged-stats", session="-f -F --follow"
    ),
    "sort": _g(
        "-k -t -o -S -T --key --field-separator --output --buffer-size --temporary-directory "
        "--parallel --batch-size --files0-from --random-source --sort",
        write="-o --output --compress-program",
    ),
    "uniq": _g("-f -s -w --skip-fields --skip-chars --check-chars", max_operands=1),
    "tee": _g("--output-error", max_operands=0),
    "yq": _g(
        "-o -p -I --output-format --input-format --indent --expression --from-file --split-exp "
        "--front-matter --xml-attribute-prefix --lua-prefix",
        write="-i --inplace -s --split-exp",
    ),
    "date": _g(
        "-d -f -r -I -s --set --date --file --reference --rfc-3339 --iso-8601",
        write="-s --set",
        max_operands=0,
        operand_prefix_ok="+",
    ),
    "hostname": _g("", write="-F --file -b --boot", max_operands=0),
    "dmesg": _g(
        "-f -l -s -F -K -n --facility --level --buffer-size --file --kmsg-file --time-format "
        "--since --until --console-level",
        write="-C -c -D -E -n --clear --read-clear --console-off --console-on --console-level",
        session="-w -W --follow --follow-new",
    ),
    "ss": _g(
        "-f -A -F -N --family --query --socket --filter --net",
        write="-K --kill -D --diag",
        session="-E --events",
    ),
    "journalctl": _g(
        "-u -t -p -S -U -o -D -M -g -F -T -I -m -c --unit --user-unit --identifier --priority --since "
        "--until --output --directory --file --machine --grep --field --cursor --after-cursor "
        "--facility --root --image --namespace --output-fields --boot --lines --case-sensitive "
        "--cursor-file --interval --verify-key",
        write="--flush --rotate --vacuum-size --vacuum-time --vacuum-files --sync --relinquish-var "
        "--smart-relinquish-var --setup-keys --update-catalog --cursor-file",
        session="-f --follow",
    ),
    "ping": _g("-c -i -w -W -s -t -I -Q -p -M -l --count", read_requires=frozenset({"-c", "-w", "--count"})),
    "ping6": _g("-c -i -w -W -s -t -I -Q -p -M -l", read_requires=frozenset({"-c", "-w"})),
    "mtr": _g(
        "-c -i -s -m -f -a -P -B -G -Z --report-cycles --interval",
        read_requires=frozenset(
            {"-r", "--report", "-w", "--report-wide", "-j", "--json", "-C", "--csv", "-x", "--xml"}
        ),
    ),
    "top": _g("-n -d -p -u -U -o -w -E -e", read_requires=frozenset({"-b"})),
    "nc": _g(
        "-w -i -p -s -q -I -O -T -V -x -X -P",
        write="-e -c --exec --sh-exec -l --listen -k",
        read_requires=frozenset({"-z"}),
    ),
    "ncat": _g(
        "-w -i -p -s -e -c", write="-e -c --exec --sh-exec -l --listen -k", read_requires=frozenset({"-z"})
    ),
    "sysctl": _g("-p --load -r --pattern", write="-w --write -p --load --system", operand_prefix_ok=""),
    "file": _g("-m -f -F -e -P --magic-file --files-from --separator --exclude", write="-C --compile"),
    "mount": _g("-t -o -O -L -U", max_operands=0, write="-a --all -o -B -M --bind --move --make-private"),
    "iptables-save": _g("-t -M --table --modprobe", write="-f --file"),
    "ip6tables-save": _g("-t -M --table --modprobe", write="-f --file"),
    "crontab": _g("-u", read_requires=frozenset({"-l"}), write="-e -r -i", max_operands=0),
    "ethtool": _g(
        "",
        write="-s -K -G -A -C -L -E -p -r -f -W -u -U -N -X -e --change --features "
        "--set-ring --pause --coalesce --set-channels --identify --flash --reset --offload",
        max_operands=1,
    ),
}


@dataclass(frozen=True)
class Subcommands:
    """A program whose subcommand decides: ``read`` lists the subcommand paths that only read."""

    options: OptionSpec
    read: frozenset[tuple[str, ...]]
    session: frozenset[tuple[str, ...]] = frozenset()
    default: str = "write"  # with no subcommand at all: read, write or session
    write_options: frozenset[str] = frozenset()
    session_options: frozenset[str] = frozenset()


def _paths(text: str) -> frozenset[tuple[str, ...]]:
    """``"osd tree, osd df, status"`` → {("osd", "tree"), ("osd", "df"), ("status",)}."""
    return frozenset(tuple(p.split()) for p in text.split(",") if p.strip())


def _s(
    values: str, read: str, session: str = "", default: str = "write", write: str = "", follow: str = ""
) -> Subcommands:
    return Subcommands(
        spec(values),
        _paths(read),
        _paths(session),
        default,
        frozenset(write.split()),
        frozenset(follow.split()),
    )


_KUBE_VALUES = (
    "-n --namespace --context --kubeconfig --cluster --user --as --as-group --as-uid -s --server --token "
    "--request-timeout -v --v --certificate-authority --client-certificate --client-key --tls-server-name "
    "--cache-dir -o --output -l --selector --field-selector --sort-by --template -c --container --since "
    "--since-time --tail --limit-bytes --max-log-requests --chunk-size -L --label-columns --raw "
    "--show-managed-fields --to --keys --subresource --for -f --filename -k --pod-running-timeout "
    "--loglevel --config"
)
_KUBE_READ = (
    "get, describe, logs, top, explain, api-resources, api-versions, version, cluster-info, events, whoami, "
    "status, projects, auth can-i, auth whoami, config view, config get-contexts, config current-context, "
    "config get-clusters, config get-users, rollout status, rollout history, adm top, adm node-logs, "
    "adm release info, completion, options, plugin list, krew list"
)

SUBCOMMANDS: dict[str, Subcommands] = {
    "kubectl": _s(
        _KUBE_VALUES,
        _KUBE_READ,
        "port-forward, proxy, attach, debug, edit, login, rsh, observe, cp, run",
        write="--output-directory",
        follow="-w --watch --watch-only",
    ),
    "oc": _s(
        _KUBE_VALUES,
        _KUBE_READ + ", project, adm upgrade",
        "port-forward, proxy, attach, debug, edit, login, rsh, rsync, observe, cp, run, adm must-gather",
        write="--output-directory",
        follow="-w --watch --watch-only",
    ),
    "helm": _s(
        "-n --namespace --kube-context --kubeconfig --kube-apiserver --kube-token --registry-config "
        "--repository-config --repository-cache -o --output --revision --max -f --filter --version --repo",
        "list, ls, status, get, history, hist, show, inspect, search, version, env, lint, verify, "
        "dependency list, dep list, repo list, plugin list, template",
        write="--output-dir",
    ),
    "ceph": _s(
        "-c --conf -k --keyring -n --name --id -i --in-file -f --format --cluster --connect-timeout "
        "--watch-channel -m",
        "status, -s, health, df, versions, version, osd tree, osd df, osd status, osd stat, osd dump, osd ls, "
        "osd pool ls, osd pool get, osd pool stats, osd pool autoscale-status, osd perf, osd find, osd metadata, "
        "osd crush tree, osd crush rule ls, osd crush rule dump, osd crush dump, osd blocked-by, osd utilization, "
        "osd pool get-quota, osd ok-to-stop, osd safe-to-destroy, pg stat, pg dump, pg ls, pg ls-by-pool, "
        "pg ls-by-osd, pg ls-by-primary, pg dump_stuck, pg map, mon stat, mon dump, quorum_status, mds stat, "
        "fs ls, fs status, fs dump, fs get, mgr dump, mgr stat, mgr module ls, mgr services, crash ls, crash info, "
        "crash stat, log last, orch ps, orch ls, orch host ls, orch device ls, orch status, config dump, config get, "
        "config show, config ls, balancer status, progress, time-sync-status, features, report, device ls, "
        "auth ls, auth get, osd pool ls detail, health detail, df detail",
        session="-w, --watch",
        write="-o --output-file",
        follow="-w --watch --watch-debug --watch-info --watch-sec --watch-warn --watch-error",
    ),
    "etcdctl": _s(
        "--endpoints --cacert --cert --key --user --password -w --write-out --command-timeout "
        "--dial-timeout --keepalive-time --keepalive-timeout --discovery-srv --discovery-srv-name",
        "get, endpoint status, endpoint health, endpoint hashkv, member list, alarm list, version, user list, "
        "user get, role list, role get, lease list, lease timetolive, auth status, snapshot status, check datascale",
        session="watch",
    ),
    "systemctl": _s(
        "-t --type --state -p --property -H --host -M --machine -n --lines -o --output --root --what --job-mode",
        "status, show, cat, is-active, is-enabled, is-failed, is-system-running, list-units, list-unit-files, "
        "list-sockets, list-timers, list-jobs, list-dependencies, list-machines, list-automounts, list-paths, "
        "show-environment, get-default, help, --version, --failed",
        default="read",
    ),
    "docker": _s(
        "-H --host --context -c --config -l --log-level --tlscacert --tlscert --tlskey -f --format --filter "
        "--since --until -n --tail --last",
        "ps, images, inspect, logs, version, info, top, port, diff, history, container ls, container ps, "
        "container inspect, container logs, container port, container top, container diff, image ls, "
        "image inspect, image history, network ls, network inspect, volume ls, volume inspect, system df, "
        "system info, context ls, context show, context inspect, node ls, node ps, node inspect, service ls, "
        "service ps, service inspect, service logs, compose ps, compose logs, compose config, compose ls, "
        "compose images, compose top, compose version, stats --no-stream",
        session="events, system events, attach, stats, container attach, container stats",
        follow="-f --follow",
    ),
    "crictl": _s(
        "-r --runtime-endpoint -i --image-endpoint -t --timeout -c --config -o --output --name --label --state "
        "--pod --tail --since -n --last",
        "ps, pods, images, img, inspect, inspectp, inspecti, logs, stats, statsp, info, version, imagefsinfo",
        follow="-f --follow",
    ),
    "ocm": _s(
        "--parameter -p --columns --order --output -o",
        "list, describe, get, whoami, version, config get",
        session="backplane, login, tunnel",
    ),
    "rpm-ostree": _s("", "status, db"),
    "chronyc": _s(
        "-h -p -f",
        "tracking, sources, sourcestats, activity, ntpdata, serverstats, clients, "
        "-n, waitsync, selectdata, authdata",
    ),
    "timedatectl": _s(
        "-H -M --host --machine -p --property",
        "status, show, show-timesync, timesync-status, list-timezones",
        default="read",
    ),
    "hostnamectl": _s("-H -M --host --machine", "status", default="read"),
    "rpm": _s(
        "--root --dbpath --qf --queryformat",
        "-q, --query, -V, --verify",
        write="-e -i -U -F --erase --install --upgrade --freshen --import --rebuilddb --initdb "
        "--setperms --setugids --restore",
    ),
    "nft": _s("-f -I --includepath", "list"),
    "resolvectl": _s(
        "-i --interface -p --protocol -t --type -c --class",
        "status, query, statistics, dns, domain",
        default="read",
    ),
    "loginctl": _s(
        "-H -M -p --property",
        "list-sessions, list-users, list-seats, show-session, show-user, "
        "session-status, user-status, seat-status",
        default="read",
    ),
    "gitlab-ctl": _s("", "status, show-config, service-list"),
    # runit's service control (``sv status gitlab-monitor``) and OVN's control socket.
    "sv": _s("-v -w", "status, check"),
    "ovn-appctl": _s(
        "-t --target -T --timeout", "connection-status, version, list-commands, coverage/show, vlog/list"
    ),
    "redis-cli": _s(
        "-h -p -s -a -u -n -r -i -d -D -c --user --pass --tls --cacert --cert --key",
        "get, mget, keys, scan, info, ping, ttl, pttl, type, exists, strlen, llen, lrange, hget, hgetall, hkeys, "
        "hlen, smembers, scard, zrange, zcard, zscore, dbsize, client list, config get, slowlog get, slowlog len, "
        "memory usage, memory stats, cluster info, cluster nodes, cluster slots, role, latency latest, "
        "latency history, latency doctor, xlen, xrange, xinfo, object encoding, --scan, --bigkeys, --memkeys, "
        "sentinel master, sentinel masters, sentinel replicas, sentinel slaves, sentinel sentinels, "
        "sentinel get-master-addr-by-name, sentinel ckquorum",
        session="monitor, subscribe, psubscribe, --stat, --latency",
        default="session",
    ),
}

#: Subcommand lookups ignore case for these (``redis-cli GET`` = ``get``).
CASE_INSENSITIVE = frozenset({"redis-cli"})


@dataclass(frozen=True)
class Runner:
    """A program that runs the command after its own options and ``skip`` leading operands."""

    options: OptionSpec
    skip: int = 0
    without_command: str = "read"  # ``env`` alone prints; ``nohup`` alone is an error
    extra: str = ""  # "session": the runner itself never ends (``watch``)


RUNNERS: dict[str, Runner] = {
    "timeout": Runner(spec("-s -k --signal --kill-after", permute=False), skip=1, without_command="write"),
    "nice": Runner(spec("-n --adjustment", permute=False)),
    "nohup": Runner(spec("", permute=False), without_command="write"),
    "ionice": Runner(spec("-c -n -p -P -u --class --classdata", permute=False)),
    "stdbuf": Runner(spec("-i -o -e --input --output --error", permute=False), without_command="write"),
    "time": Runner(spec("-f -o --format", permute=False)),
    "command": Runner(spec("", permute=False)),
    "exec": Runner(spec("-a", permute=False), without_command="write"),
    "setsid": Runner(spec("", permute=False), without_command="write"),
    "chrt": Runner(spec("", permute=False), skip=1, without_command="write"),
    "taskset": Runner(spec("", permute=False), skip=1, without_command="write"),
    "unbuffer": Runner(spec("", permute=False), without_command="write"),
    "watch": Runner(
        spec("-n -d --interval --differences -q --equexit", permute=False),
        extra="session",
        without_command="write",
    ),
    "sudo": Runner(
        spec(
            "-u -g -h -p -C -D -r -t -T -U --user --group --host --prompt --close-from --chdir --role --type",
            permute=False,
        ),
        without_command="write",
    ),
    "chroot": Runner(spec("--userspec --groups", permute=False), skip=1, without_command="session"),
    "doas": Runner(spec("-u -C", permute=False), without_command="write"),
}

#: ``NAME=value cmd``: only these names cannot change what ``cmd`` runs or loads.
ENV_PREFIX_SAFE = re.compile(
    r"^(LANG|LANGUAGE|LC_[A-Z]+|TZ|COLUMNS|LINES|NO_COLOR|CLICOLOR|TERM|ETCDCTL_API|SYSTEMD_COLORS|"
    r"SYSTEMD_PAGERSECURE|KUBECTL_COMMAND_HEADERS|OCM_CONFIG|HISTFILE)$"
)

#: ``NAME=value`` alone sets a shell variable; these names change what later commands run.
UNSAFE_VARIABLE = re.compile(
    r"^(LD_\w*|\w*PAGER\w*|GIT_\w*|\w*PATH|PATH\w*|IFS|BASH_ENV|ENV|PS4|HOME|SHELLOPTS|BASHOPTS|"
    r"PROMPT_COMMAND|\w*EDITOR|VISUAL|PYTHON\w*|PERL\w*|RUBY\w*|NODE_\w*|\w*_OPTIONS|\w*OPTS|TMPDIR|LESS\w*|"
    r"BROWSER|SSH_\w*|SUDO_\w*|KUBECONFIG|KUBECTL_\w*|DOCKER_\w*|OPENSSL_\w*|\w*_CONF|\w*CONFIG\w*|"
    r"BASH_\w*|FUNCNEST|GLOBIGNORE|CDPATH|HISTFILE|MAIL\w*|TERMINFO\w*|ZDOTDIR)$"
)


OPTION_SPECS: dict[str, OptionSpec] = {
    "sed": spec("-e -f -l --expression --file --line-length", "-i --in-place"),
    "awk": spec("-F -v -f -e -i -l -E --field-separator --assign --file --source --include --load --exec"),
    "curl": spec(
        "-A -b -c -C -d -D -e -E -F -H -K -m -o -P -Q -r -T -u -U -w -x -X -y -Y -z "
        "--data --data-raw --data-binary --data-urlencode --data-ascii --json --form --form-string "
        "--header --proxy --proxy-user --user --user-agent --referer --cookie --cookie-jar --continue-at "
        "--dump-header --cert --cacert --capath --key --config --max-time --connect-timeout --output "
        "--output-dir --quote --range --upload-file --write-out --request --request-target --speed-limit "
        "--speed-time --time-cond --resolve --connect-to --interface --retry --retry-delay --retry-max-time "
        "--max-redirs --max-filesize --trace --trace-ascii --stderr --libcurl --etag-save --etag-compare "
        "--hsts --alt-svc --url --url-query --unix-socket --abstract-unix-socket --noproxy --proxy-header "
        "--cert-type --key-type --pass --ciphers --tls-max --expect100-timeout --variable --mail-from "
        "--mail-rcpt --mail-auth --oauth2-bearer --aws-sigv4 --dns-servers --happy-eyeballs-timeout-ms "
        "--keepalive-time --limit-rate --local-port --pinnedpubkey --proto --proto-redir --sasl-authzid "
        "--service-name --socks5 --socks5-hostname --telnet-option --tftp-blksize --tlsuser --tlspassword"
    ),
    "wget": spec(
        "-O -o -a -e -i -B -t -T -w -Q -P -l -A -R -D -I -X -U --output-document --output-file "
        "--append-output --execute --input-file --base --tries --timeout --wait --quota --directory-prefix "
        "--level --accept --reject --domains --user-agent --header --post-data --post-file --method "
        "--body-data --body-file --user --password --http-user --http-password --load-cookies --save-cookies "
        "--ca-certificate --certificate --private-key --referer --bind-address --limit-rate --dns-timeout "
        "--connect-timeout --read-timeout"
    ),
    "find": spec(
        "-name -iname -path -ipath -regex -iregex -type -xtype -user -group -perm -size -mtime -mmin -atime "
        "-amin -ctime -cmin -newer -anewer -cnewer -maxdepth -mindepth -links -inum -samefile -uid -gid "
        "-fstype -printf -used -wholename -iwholename -lname -ilname -context -files0-from -regextype "
        "-newermt -newerct -newerat -newermm -newerBt -D -O",
        single_dash_long=True,
    ),
    "git": spec(
        "-C -c --git-dir --work-tree --namespace --exec-path --config-env --super-prefix", permute=False
    ),
    "ip": spec("-n -netns -f -family -b -batch -rc -rcvbuf -l -loops", single_dash_long=True, permute=False),
    "sqlite3": spec(
        "-cmd -init -separator -nullvalue -newline -mmap -lookaside -maxsize -pagecache -vfs -A -heap "
        "-nonce -memtrace -escape -limit",
        single_dash_long=True,
    ),
    "psql": spec(
        "-c -d -f -h -p -U -v -F -R -o -L -P -T --command --dbname --file --host --port --username "
        "--set --variable --field-separator --record-separator --output --log-file --pset --table-attr"
    ),
    "mysql": spec(
        "-e -D -h -u -P -S --execute --database --host --user --port --socket --tee --pager "
        "--init-command --defaults-file --defaults-extra-file --login-path --default-character-set"
    ),
    "xargs": spec(
        "-I -d -a -E -e -n -L -l -P -s --replace --delimiter --arg-file --eof --max-args --max-lines "
        "--max-procs --max-chars --process-slot-var",
        "-i",
        permute=False,
    ),
    "env": spec("-u -C -S --unset --chdir --split-string", permute=False),
    "ssh": spec("-b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w -B", permute=False),
    "openssl": spec(
        "-connect -servername -in -inform -outform -CAfile -CApath -cert -key -pass -passin -nameopt "
        "-certopt -starttls -proxy -verify_hostname -verify -sess_in -host -port -cipher -ciphersuites "
        "-alpn -checkhost -checkend -name -days -subj -config -md -sigopt -keyform -certform -purpose "
        "-untrusted -attime -verify_ip -verify_email -trusted -CRLfile -msgfile -keylogfile -sess_out "
        "-out -keyout -engine -provider -provider-path -writerand -rand -signkey",
        single_dash_long=True,
    ),
}


def value_options(program: str) -> frozenset[str]:
    """Every option of ``program`` known to take a value (``kubectl`` → ``-n``, ``--namespace`` …)."""
    specs = [OPTION_SPECS.get(program)]
    specs.append(GUARDED[program].options if program in GUARDED else None)
    specs.append(SUBCOMMANDS[program].options if program in SUBCOMMANDS else None)
    specs.append(RUNNERS[program].options if program in RUNNERS else None)
    return frozenset().union(*(s.values for s in specs if s is not None))
