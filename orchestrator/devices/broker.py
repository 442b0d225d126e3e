"""A broker for one machine: Mosquitto when installed, else the embedded amqtt broker.

We never write our own broker. ``LocalBroker`` runs one as a child process on loopback:
Mosquitto with a generated config (``set_tcp_nodelay true``: without it every request/
response round trip waits ~88 ms for Nagle's algorithm), or, when Mosquitto is missing,
amqtt in a child Python process. amqtt is for development only: it speaks MQTT 3.1.1 only,
does not enforce keepalive (a hung client's will never fires), can lose offline-queued
messages and enforces no packet size limit. The protocol is designed not to rely on any
of that, but a fleet belongs on Mosquitto or an MQTT cluster.

``LocalBroker`` has a blocking API (``start``/``stop``/``restart``, for test fixtures)
and an async one (``async with``). ``run_broker`` serves in the foreground for
``stepweave broker``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

from ..errors import DeviceError
from .protocol import DEFAULT_MAX_PAYLOAD
from .settings import is_loopback_host
from .signals import until_signalled

__all__ = [
    "MAX_PACKET_SIZE",
    "BrokerKind",
    "LocalBroker",
    "check_listener_security",
    "find_mosquitto",
    "free_port",
    "mosquitto_config",
    "run_broker",
    "serve_amqtt",
]

_log = logging.getLogger("stepweave.devices.broker")

BrokerKind = Literal["auto", "mosquitto", "amqtt"]

#: Printed by our amqtt child once it listens; Mosquitto prints "... running".
READY_MARKER = "stepweave broker ready"
DEVELOPMENT_WARNING = (
    "Mosquitto is not installed: using the embedded amqtt broker, which is for development only "
    "(MQTT 3.1.1 only, no keepalive enforcement, may lose queued messages). "
    "Install Mosquitto (apt-get install mosquitto) for anything else."
)


def amqtt_warning() -> str:
    """The development-only warning, true to why amqtt runs (asked for, or no Mosquitto)."""
    if find_mosquitto() is None:
        return DEVELOPMENT_WARNING
    return (
        "using the embedded amqtt broker (--kind amqtt), which is for development only "
        "(MQTT 3.1.1 only, no keepalive enforcement, may lose queued messages); "
        "Mosquitto is installed: leave out --kind amqtt to use it."
    )


#: Mosquitto's ``max_packet_size``: our largest payload plus room for the topic and the
#: MQTT header. A client that sends a bigger packet is disconnected, so one device cannot
#: push a 200 MB retained status into every orchestrator's memory. (Mosquitto 2 prefers this
#: to ``message_size_limit``, which it calls deprecated.)
MAX_PACKET_SIZE = DEFAULT_MAX_PAYLOAD + 64 * 1024

ANONYMOUS_REFUSAL = (
    "refusing to listen on {host} without credentials: any client that can reach it could "
    "send tasks to the agents (the shell tool runs commands). Pass --password-file FILE "
    "(write it with mosquitto_passwd or orchestrator.devices.write_password_file), or "
    "--allow-anonymous if the network is trusted"
)


def check_listener_security(host: str, *, password_file: object, allow_anonymous: bool) -> None:
    """Refuse an anonymous broker reachable from the network (``DeviceError``) unless allowed."""
    if password_file is None and not allow_anonymous and not is_loopback_host(host):
        raise DeviceError(ANONYMOUS_REFUSAL.format(host=host))


def find_mosquitto() -> str | None:
    """The ``mosquitto`` binary, also where Debian puts it (``/usr/sbin``, often off PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def mosquitto_config(
    port: int,
    *,
    host: str = "127.0.0.1",
    password_file: str | os.PathLike[str] | None = None,
    acl_file: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    extra: str = "",
) -> str:
    """A Mosquitto 2 config for one listener; anonymous unless a password file is given.

    ``certfile``/``keyfile`` make the listener TLS (clients connect with ``mqtts://``).
    """
    if bool(certfile) != bool(keyfile):
        raise ValueError("certfile and keyfile go together")
    lines = [f"listener {port} {host}"]
    if certfile and keyfile:
        lines += [f"certfile {os.path.abspath(certfile)}", f"keyfile {os.path.abspath(keyfile)}"]
    lines += [
        "set_tcp_nodelay true",
        "persistence false",
        # One client may not push more than this in one message (see MAX_PACKET_SIZE).
        f"max_packet_size {MAX_PACKET_SIZE}",
        # Our dispatch windows keep far fewer messages in flight; this is headroom. A
        # subscriber further behind loses QoS 1 messages: the protocol re-sends.
        "max_queued_messages 10000",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages false",
        "log_timestamp false",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # Started as root, Mosquitto would switch to the "mosquitto" user, which cannot
        # read the files we generate (mode 0600, ours): stay who we are.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
    if password_file is None:
        lines.append("allow_anonymous true")
    else:
        lines += ["allow_anonymous false", f"password_file {os.path.abspath(password_file)}"]
    if acl_file is not None:
        lines.append(f"acl_file {os.path.abspath(acl_file)}")
    return "\n".join(lines) + "\n" + (extra.strip() + "\n" if extra.strip() else "")


class LocalBroker:
    """An MQTT broker child process on loopback. ``url`` is where clients connect.

    Args:
        port: TCP port; ``None`` picks a free one (kept across ``restart``).
        kind: ``"auto"`` (Mosquitto if installed, else amqtt), ``"mosquitto"`` or ``"amqtt"``.
        password_file, acl_file: Mosquitto only; see ``docs/devices.md``.
        certfile, keyfile: Mosquitto only: a TLS listener with this certificate.
        extra_config: more Mosquitto config lines.
        allow_anonymous: listen on an address other than loopback without a password file
            (refused otherwise: see ``check_listener_security``).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        kind: BrokerKind = "auto",
        password_file: str | os.PathLike[str] | None = None,
        acl_file: str | os.PathLike[str] | None = None,
        certfile: str | os.PathLike[str] | None = None,
        keyfile: str | os.PathLike[str] | None = None,
        extra_config: str = "",
        startup_timeout: float = 15.0,
        allow_anonymous: bool = False,
    ) -> None:
        check_listener_security(host, password_file=password_file, allow_anonymous=allow_anonymous)
        mosquitto = find_mosquitto()
        if kind == "auto":
            kind = "mosquitto" if mosquitto else "amqtt"
        if kind == "mosquitto" and mosquitto is None:
            raise DeviceError("the mosquitto binary is not installed (Debian: apt-get install mosquitto)")
        if kind == "amqtt" and (password_file or acl_file or certfile or keyfile or extra_config):
            raise ValueError(
                "password_file, acl_file, certfile, keyfile and extra_config need kind='mosquitto'"
            )
        if bool(certfile) != bool(keyfile):
            raise ValueError("certfile and keyfile go together")
        self.kind: Literal["mosquitto", "amqtt"] = kind
        self.host = host
        self.port = port or free_port(host)
        self._mosquitto = mosquitto
        self._password_file = password_file
        self._acl_file = acl_file
        self._certfile = certfile
        self._keyfile = keyfile
        self._extra = extra_config
        self._allow_anonymous = allow_anonymous
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._output: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self._certfile else "mqtt"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def process(self) -> subprocess.Popen[str] | None:
        """The broker's process while it runs (to wait on it, or read its pid), else ``None``."""
        return self._process

    @property
    def output(self) -> str:
        """The broker's last lines of log output (for error messages)."""
        return "\n".join(self._output)

    def _command(self) -> list[str]:
        if self.kind == "amqtt":
            return [
                sys.executable,
                "-m",
                "orchestrator.devices",
                "broker",
                "--kind",
                "amqtt",
                "--host",
                self.host,
                "--port",
                str(self.port),
                *(["--allow-anonymous"] if self._allow_anonymous else []),
            ]
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="stepweave-mosquitto-")
        config = Path(self._dir.name, "mosquitto.conf")
        config.write_text(
            mosquitto_config(
                self.port,
                host=self.host,
                password_file=self._password_file,
                acl_file=self._acl_file,
                certfile=self._certfile,
                keyfile=self._keyfile,
                extra=self._extra,
            )
        )
        assert self._mosquitto is not None
        return [self._mosquitto, "-c", str(config)]

    # -- blocking API -----------------------------------------------------------------

    def start(self) -> None:
        """Start the broker and return once it accepts connections (``DeviceError`` if it fails)."""
        if self.running:
            return
        self._ready.clear()
        self._output.clear()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            self._command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        # A thread drains the output so the broker never blocks on a full pipe; it also
        # sees the line that says the broker listens.
        self._reader = threading.Thread(
            target=self._read, args=(self._process,), name=f"stepweave-broker-{self.port}", daemon=True
        )
        self._reader.start()
        ready = self._ready.wait(self._startup_timeout)
        if not ready or self._process.poll() is not None:
            self.stop()
            raise DeviceError(
                f"the {self.kind} broker did not start on {self.host}:{self.port} within "
                f"{self._startup_timeout:g}s; its output:\n{self.output}"
            )
        _log.info("%s broker listening at %s", self.kind, self.url)

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            self._output.append(line)
            if READY_MARKER in line or (" running" in line and "mosquitto version" in line):
                self._ready.set()
        self._ready.set()  # exited: wake start() so it reports the failure at once

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL after 5 s) and wait for it to exit."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None
        if process.stdout is not None:
            process.stdout.close()

    def restart(self) -> None:
        """Stop and start again on the same port: every client loses its connection."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> LocalBroker:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- async API --------------------------------------------------------------------

    async def __aenter__(self) -> LocalBroker:
        try:
            await asyncio.to_thread(self.start)
        except BaseException:
            await asyncio.to_thread(self.close)
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)


async def serve_amqtt(host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the embedded amqtt broker in this process until cancelled (development only)."""
    from amqtt.broker import Broker

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    try:
        await broker.start()
    except Exception as exc:  # amqtt wraps bind errors and plugin failures in BrokerError
        raise DeviceError(f"the amqtt broker cannot start on {host}:{port}: {exc}") from exc
    try:
        if on_ready is not None:
            on_ready(f"mqtt://{host}:{port}")
        await asyncio.Event().wait()
    finally:
        await broker.shutdown()


async def run_broker(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    kind: BrokerKind = "auto",
    password_file: str | os.PathLike[str] | None = None,
    acl_file: str | os.PathLike[str] | None = None,
    certfile: str | os.PathLike[str] | None = None,
    keyfile: str | os.PathLike[str] | None = None,
    allow_anonymous: bool = False,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve a broker in the foreground until cancelled (``stepweave broker [--port N]``).

    On an address other than loopback it refuses to start without a password file
    (``DeviceError``) unless ``allow_anonymous``: an anonymous broker on a network lets
    anyone send tasks to the agents. ``on_ready(url, kind)`` is called once it listens.
    Without Mosquitto, amqtt runs in this process and the development-only warning is
    logged; it supports none of the security options.
    """
    port = port or 1883
    check_listener_security(host, password_file=password_file, allow_anonymous=allow_anonymous)
    if bool(certfile) != bool(keyfile):
        raise DeviceError("a TLS listener needs both a certificate and its key (--tls-cert and --tls-key)")
    for path in (password_file, acl_file, certfile, keyfile):
        if path is not None and not os.access(path, os.R_OK):
            raise DeviceError(f"cannot read {os.fspath(path)}")
    secured = password_file or acl_file or certfile
    if kind == "auto":
        kind = "mosquitto" if find_mosquitto() else "amqtt"
    if kind == "amqtt":
        if secured:
            raise DeviceError(
                "password files, ACLs and TLS need Mosquitto (apt-get install mosquitto); "
                "the embedded amqtt broker is for development on loopback only"
            )
        _log.warning(amqtt_warning())
        ready = None if on_ready is None else lambda url: on_ready(url, "amqtt")
        await until_signalled(serve_amqtt(host, port, ready))
        return
    if password_file is None and not is_loopback_host(host):
        _log.warning("the broker on %s accepts anonymous clients (--allow-anonymous)", host)
    local = LocalBroker(
        port=port,
        host=host,
        kind="mosquitto",
        allow_anonymous=allow_anonymous,
        password_file=password_file,
        acl_file=acl_file,
        certfile=certfile,
        keyfile=keyfile,
    )
    async with local as broker:
        if on_ready is not None:
            on_ready(broker.url, "mosquitto")
        process = broker.process
        assert process is not None
        exited = asyncio.ensure_future(asyncio.to_thread(process.wait))
        # On SIGTERM/SIGINT this returns and LocalBroker stops Mosquitto on the way out.
        await until_signalled(asyncio.shield(exited))
        if exited.done():
            raise DeviceError(f"mosquitto exited with status {exited.result()}:\n{broker.output}")
