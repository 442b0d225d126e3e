"""A real PostgreSQL server for the tests, from the system's binaries, once per process.

``initdb`` into a temporary directory, then ``postgres`` on a free loopback port with its
socket in that directory (fsync off: the tests test our durability, not the disk's). Each
test gets a database of its own. Tests skip, saying why, only when the binaries are
missing; ``.ci/run`` installs them, so CI never skips.
"""

from __future__ import annotations

import atexit
import getpass
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

__all__ = ["PgServer", "pg_bin", "server"]


def pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``postgres`` (newest version), if installed."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One running ``postgres``: ``url(db)`` for a database, ``restart()`` to bounce it."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="stepweave-pg-"))
        self.data = self.root / "data"
        # postgres refuses to run as root: as root (CI containers), run it as the account
        # the postgresql package creates.
        self.run_as = "postgres" if os.geteuid() == 0 else None
        if self.run_as is not None:
            shutil.chown(self.root, self.run_as, self.run_as)
        self.user = self.run_as or getpass.getuser()
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            env=self._env(),
            user=self.run_as,
            group=self.run_as,
        )
        self.start()

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LC_ALL": "C", "LANG": "C"}

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"), "-D", str(self.data), "-k", str(self.root),
                "-p", str(self.port), "-h", "127.0.0.1",
                "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                "-c", "max_connections=200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=self._env(),
            user=self.run_as,
            group=self.run_as,
        )  # fmt: skip
        self._wait_ready()

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the server is starting: nothing to wait on but the socket

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: smart shutdown; SIGINT would be fast
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        """Stop fast (clients are cut off, commits kept), stay down a moment, start again."""
        assert self.proc is not None
        self.proc.send_signal(2)  # SIGINT: fast shutdown
        self.proc.wait(20)
        time.sleep(down_for)  # the outage the clients must ride out
        self.start()

    def url(self, db: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


_server: PgServer | None = None


def server() -> PgServer:
    """The process's PostgreSQL server, started on first use (skip if not installed)."""
    global _server
    if _server is None:
        bindir = pg_bin()
        if bindir is None:
            pytest.skip("PostgreSQL is not installed (initdb/postgres not found; .ci/run installs it)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            pytest.skip("psycopg is not installed (pip install -e '.[dev]')")
        _server = PgServer(bindir)
        atexit.register(_server.close)
    return _server
