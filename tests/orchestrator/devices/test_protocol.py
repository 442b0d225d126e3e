"""The wire format, topics, broker URLs and the public API, without a broker."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
from pathlib import Path

import pytest

import orchestrator.devices as devices
from orchestrator.devices import (
    BrokerSettings,
    Topics,
    mosquitto_acl,
    mosquitto_config,
    mosquitto_password_line,
    parse_labels,
)
from orchestrator.devices.broker import MAX_PACKET_SIZE
from orchestrator.devices.protocol import (
    Accepted,
    Cancel,
    ControlMessage,
    Ping,
    ProtocolError,
    ReplyMessage,
    Result,
    Status,
    TaskFailure,
    TaskRequest,
    decode,
    encode,
    schema_digest,
    validate_device_id,
)

ROOT = Path(__file__).resolve().parents[3]
CORRELATION = {"device_id": "d", "run_id": "r", "task_id": "t", "key": "r/t#1", "attempt": 1, "nonce": "n"}


def test_public_api_is_exactly_what_is_meant() -> None:
    assert devices.__all__ == sorted(devices.__all__)
    assert set(devices.__all__) == {
        "AgentProcess", "BrokerConnectionError", "BrokerKind", "BrokerSettings",
        "DeviceAgent", "DeviceExecutor", "DeviceInfo", "DeviceTrust", "DeviceUnavailable", "LocalBroker",
        "LocalFleet",
        "MessageRejected", "RemoteTaskError", "Topics", "current_device", "find_mosquitto", "load_tools", "mosquitto_acl",
        "mosquitto_config", "mosquitto_password_line", "parse_labels", "redact_url", "run_agent", "run_broker",
        "spawn_agent", "write_password_file",
    }  # fmt: skip
    for name in devices.__all__:
        assert getattr(devices, name) is not None


def test_device_errors_are_run_errors_with_explicit_retryability() -> None:
    from orchestrator import DeviceError, RunError

    for error in (devices.BrokerConnectionError, devices.DeviceUnavailable, devices.MessageRejected):
        assert issubclass(error, DeviceError) and issubclass(error, RunError)
        assert isinstance(error.retryable, bool)
    assert not devices.MessageRejected.retryable and devices.DeviceUnavailable.retryable
    remote = devices.RemoteTaskError("boom", device_id="d", remote_type="ValueError", retryable=False)
    assert (remote.device_id, remote.remote_type, remote.retryable) == ("d", "ValueError", False)


def test_messages_round_trip_through_their_unions() -> None:
    replies = [
        Accepted(**CORRELATION),
        Result(**CORRELATION, output={"a": [1, 2]}, duration=0.5),
        TaskFailure(**CORRELATION, code="tool", error_type="ValueError", message="bad", retryable=False),
    ]
    for reply in replies:
        assert decode(encode(reply), ReplyMessage) == reply
    assert decode(encode(Cancel(key="k", reason="r")), ControlMessage) == Cancel(key="k", reason="r")
    assert isinstance(decode(encode(Ping()), ControlMessage), Ping)


def test_newer_optional_fields_are_ignored_but_newer_versions_are_rejected() -> None:
    data = json.loads(encode(Accepted(**CORRELATION)))
    data["added_in_a_later_release"] = True
    assert decode(json.dumps(data).encode(), ReplyMessage) == Accepted(**CORRELATION)
    data["v"] = 2
    with pytest.raises(ProtocolError, match=r"unsupported protocol version 2 \(this side speaks 1\)"):
        decode(json.dumps(data).encode(), ReplyMessage)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "payload is not JSON"),
        (b"[]", "payload is a JSON list, not an object"),
        (b"{}", "not a stepweave message"),
        (b'{"v": 1, "type": "result", "key": "k"}', "malformed 'result' message: device_id: Field required"),
        (b'{"v": 1, "type": "surprise"}', "malformed 'surprise' message"),
        (b"{" + b" " * 100 + b"}", "payload of 102 bytes exceeds the limit of 100"),
    ],
)
def test_bad_payloads_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        decode(payload, ReplyMessage, max_payload=100)


def test_encode_enforces_the_limit_and_json() -> None:
    request = TaskRequest(
        orchestrator="o",
        run_id="r",
        task_id="t",
        key="k",
        attempt=1,
        nonce="n",
        tool="x",
        args={"a": "x" * 200},
        timeout=1,
    )
    with pytest.raises(ProtocolError, match="the limit is 100"):
        encode(request, max_payload=100)
    with pytest.raises(ProtocolError, match="cannot serialise"):
        encode(request.model_copy(update={"args": {"sock": socket.socket}}))


def test_topics_and_device_ids() -> None:
    topics = Topics("site/a/")
    assert topics.namespace == "site/a"
    assert topics.tasks("d1") == "site/a/devices/d1/tasks"
    assert topics.results("o1", "d1") == "site/a/orchestrators/o1/results/d1"
    assert topics.device_of("site/a/devices/d1/heartbeat") == "d1"
    assert topics.device_of("site/a/orchestrators/o1/results/d1") == "d1"
    assert topics.device_of("other/devices/d1/status") is None
    for bad in ("a/b", "+", "#", "", "-lead", "x" * 129):
        with pytest.raises(ValueError, match="invalid device id"):
            validate_device_id(bad)
    with pytest.raises(ValueError, match="invalid MQTT namespace"):
        Topics("a/+/b")


def test_schema_digest_is_stable_and_sensitive() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert schema_digest(schema) == schema_digest(json.loads(json.dumps(schema)))
    assert schema_digest(schema) != schema_digest({**schema, "required": ["a"]})


def test_status_defaults_are_usable() -> None:
    status = Status(device_id="d", session="s", state="online")
    assert status.max_concurrency == 1 and status.reason == ""


class TestBrokerSettings:
    def test_plain_url_with_credentials(self) -> None:
        settings = BrokerSettings.from_url("mqtt://dev%2D1:p%40ss@broker.lan:1884", env={})
        assert (settings.host, settings.port, settings.username, settings.password) == (
            "broker.lan",
            1884,
            "dev-1",
            "p@ss",
        )
        assert not settings.tls and settings.ssl_context() is None
        assert settings.url == "mqtt://dev-1@broker.lan:1884", "the password never appears in .url"
        assert "p@ss" not in repr(settings)
        options = settings.client_options()
        assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in options["socket_options"]

    def test_tls_url_with_options(self, tmp_path: Path) -> None:
        settings = BrokerSettings.from_url("mqtts://broker?insecure=1", env={})
        assert settings.tls and settings.port == 8883 and settings.insecure
        context = settings.ssl_context()
        assert isinstance(context, ssl.SSLContext) and not context.check_hostname
        with_ca = BrokerSettings.from_url(f"mqtts://broker:8884?ca_file={tmp_path}/ca.pem", env={})
        assert with_ca.ca_file == f"{tmp_path}/ca.pem"

    def test_environment_fills_in_what_the_url_leaves_out(self) -> None:
        env = {
            "STEPWEAVE_BROKER": "mqtts://broker.lan",
            "STEPWEAVE_BROKER_USERNAME": "orchestrator",
            "STEPWEAVE_BROKER_PASSWORD": "secret",
            "STEPWEAVE_BROKER_CA": "/etc/ca.pem",
        }
        settings = BrokerSettings.resolve(None, env=env)
        assert (settings.username, settings.password, settings.ca_file) == (
            "orchestrator",
            "secret",
            "/etc/ca.pem",
        )
        assert BrokerSettings.resolve(settings) is settings

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("http://broker", "scheme must be mqtt:// or mqtts://"),
            ("mqtt://", "has no host"),
            ("mqtt://broker?ca_file=x", "TLS options need the mqtts:// scheme"),
            ("mqtts://broker?cert_file=c.pem", "cert_file and key_file go together"),
            ("mqtt://broker?color=red", "unknown option"),
            ("mqtt://u:secret@broker:notaport", "invalid port"),
        ],
    )
    def test_bad_urls_say_what_is_wrong_without_leaking_passwords(self, url: str, problem: str) -> None:
        with pytest.raises(ValueError, match=problem) as info:
            BrokerSettings.from_url(url, env={})
        assert "secret" not in str(info.value)

    def test_no_broker_at_all(self) -> None:
        with pytest.raises(ValueError, match="STEPWEAVE_BROKER"):
            BrokerSettings.resolve(None, env={})


def test_parse_labels() -> None:
    assert parse_labels(["site=lab", " rack = 3 ", "empty="]) == {"site": "lab", "rack": "3", "empty": ""}
    with pytest.raises(ValueError, match="expected key=value"):
        parse_labels(["nolabel"])


def test_generated_configs() -> None:
    config = mosquitto_config(1999, password_file="/etc/p", acl_file="/etc/a")
    assert "listener 1999 127.0.0.1" in config and "set_tcp_nodelay true" in config
    assert (
        "allow_anonymous false" in config and "password_file /etc/p" in config and "acl_file /etc/a" in config
    )
    assert "allow_anonymous true" in mosquitto_config(1999)
    assert f"max_packet_size {MAX_PACKET_SIZE}" in config and "message_size_limit" not in config
    tls = mosquitto_config(1999, certfile="/etc/c.pem", keyfile="/etc/k.pem")
    assert "listener 1999 127.0.0.1\ncertfile /etc/c.pem\nkeyfile /etc/k.pem\n" in tls
    acl = mosquitto_acl("fleet", orchestrators=["o1"], monitors=["ops"])
    assert "pattern write fleet/orchestrators/+/results/%u" in acl
    assert "user o1\ntopic deny fleet/devices/o1/#\ntopic deny fleet/orchestrators/+/results/o1\n" in acl
    assert "user ops\ntopic deny fleet/devices/ops/#\ntopic deny fleet/orchestrators/+/results/ops\n" in acl
    assert "topic read fleet/#" in acl
    pinned = mosquitto_acl("fleet", devices=["d1"], monitors=["ops"])
    assert "pattern" not in pinned and "user d1\ntopic read fleet/devices/d1/tasks" in pinned
    with pytest.raises(ValueError, match="may not be orchestrator or monitor"):
        mosquitto_acl(devices=["orchestrator"])


def test_the_documented_acl_is_the_generated_one() -> None:
    docs = (ROOT / "docs" / "devices.md").read_text()
    assert mosquitto_acl() in docs, "docs/devices.md must show the ACL that mosquitto_acl() generates"


def test_password_lines_are_mosquitto_compatible() -> None:
    user, encoded = mosquitto_password_line("dev-a", "s3cret").split(":", 1)
    _, kind, rounds, salt, digest = encoded.split("$")
    assert (user, kind, rounds) == ("dev-a", "7", "101")
    expected = hashlib.pbkdf2_hmac("sha512", b"s3cret", base64.b64decode(salt), 101, 64)
    assert base64.b64decode(digest) == expected
