"""``mqtts://`` for real: Mosquitto with a TLS listener and a CA made for the test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from orchestrator import Orchestrator, Task
from orchestrator.devices import (
    BrokerConnectionError,
    DeviceAgent,
    DeviceExecutor,
    LocalBroker,
    find_mosquitto,
)
from tools import tool

from .conftest import BACKOFF, HEARTBEAT

pytestmark = [
    pytest.mark.skipif(find_mosquitto() is None, reason="the mosquitto binary is not installed"),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make test certificates"),
]


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a broker certificate it signed for 127.0.0.1."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test CA",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "broker.key",
            "-out", "broker.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "broker.pem")  # fmt: skip
    return directory / "ca.pem", directory / "broker.pem", directory / "broker.key"


@tool
async def hello() -> str:
    """Greet over TLS."""
    return "hello over TLS"


async def test_agents_and_orchestrators_connect_over_tls(tmp_path: Path) -> None:
    ca, certificate, key = make_certificates(tmp_path)
    broker = LocalBroker(kind="mosquitto", extra_config=f"certfile {certificate}\nkeyfile {key}\n")
    async with broker:
        url = f"mqtts://127.0.0.1:{broker.port}?ca_file={ca}"
        async with (
            DeviceAgent("tls-1", tools=[hello], broker=url, heartbeat_interval=HEARTBEAT, backoff=BACKOFF),
            DeviceExecutor(broker=url, backoff=BACKOFF) as devices,
        ):
            await devices.wait_for_devices(ids=["tls-1"])
            orchestrator = Orchestrator(tools=[hello], executors={"device": devices})
            result = await orchestrator.run([Task(id="t", tool="hello", target="any-device")])
        assert result.outputs == {"t": "hello over TLS"}
        # The certificate names 127.0.0.1, not localhost: only insecure=1 skips that check.
        async with DeviceExecutor(broker=f"mqtts://localhost:{broker.port}?ca_file={ca}&insecure=1") as other:
            assert other.connected
        # Without our CA the broker's certificate is not trusted: no connection.
        with pytest.raises(BrokerConnectionError, match="within 1s"):
            async with DeviceExecutor(broker=f"mqtts://127.0.0.1:{broker.port}", connect_timeout=1.0):
                pass
