"""Where the broker is and how to log in: ``BrokerSettings`` from a URL or the environment.

```text
mqtt://host:1883                          plain TCP (the default port is 1883)
mqtt://user:pass@host:1883                username and password (percent-encode odd characters)
mqtts://host:8883?ca_file=/etc/ca.pem     TLS, verifying the broker against this CA
mqtts://host?cert_file=c.pem&key_file=k.pem&insecure=1
                                          client certificate; insecure skips the host name check
```

The environment: ``STEPWEAVE_BROKER`` (the URL, when none is passed), and
``STEPWEAVE_BROKER_USERNAME`` / ``STEPWEAVE_BROKER_PASSWORD`` / ``STEPWEAVE_BROKER_CA``
for what the URL leaves out, so a password need not appear in a process listing.
``STEPWEAVE_NAMESPACE``: the topic prefix the command line uses when ``--namespace`` is not
given (``stepweave``; a site bridged under a prefix of its own is ``sites/lab/stepweave``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

__all__ = [
    "BROKER_ENV",
    "NAMESPACE_ENV",
    "BrokerSettings",
    "is_loopback_host",
    "redact_url",
    "resolve_namespace",
]

BROKER_ENV = "STEPWEAVE_BROKER"
NAMESPACE_ENV = "STEPWEAVE_NAMESPACE"
_TRUE = {"1", "true", "yes", "on"}
_QUERY_KEYS = {"ca_file", "cert_file", "key_file", "insecure"}

#: Nagle's algorithm costs ~88 ms per request/response round trip over MQTT: every
#: client of ours disables it.
TCP_NODELAY_OPTION = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass(frozen=True, slots=True)
class BrokerSettings:
    """How to reach and log in to an MQTT broker. Build it with ``from_url`` or ``resolve``."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    #: TLS without checking that the certificate names the host (the chain is still verified).
    insecure: bool = False

    @classmethod
    def from_url(cls, url: str, *, env: Mapping[str, str] | None = None) -> BrokerSettings:
        """Parse ``mqtt://`` or ``mqtts://`` URLs; credentials the URL lacks come from ``env``."""
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL {redact_url(url)!r}: the scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker URL {redact_url(url)!r} has no host")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - _QUERY_KEYS
        if unknown:
            raise ValueError(
                f"broker URL {redact_url(url)!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(_QUERY_KEYS))}"
            )
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ValueError(f"broker URL {redact_url(url)!r} has an invalid port") from None
        username = unquote(parts.username) if parts.username else env.get("STEPWEAVE_BROKER_USERNAME")
        password = unquote(parts.password) if parts.password else env.get("STEPWEAVE_BROKER_PASSWORD")
        settings = cls(
            host=parts.hostname,
            port=port,
            username=username or None,
            password=password if username else None,
            tls=tls,
            ca_file=query.get("ca_file") or (env.get("STEPWEAVE_BROKER_CA") if tls else None) or None,
            cert_file=query.get("cert_file") or None,
            key_file=query.get("key_file") or None,
            insecure=query.get("insecure", "").lower() in _TRUE,
        )
        if not tls and (settings.ca_file or settings.cert_file or settings.insecure):
            raise ValueError(f"broker URL {redact_url(url)!r}: TLS options need the mqtts:// scheme")
        if bool(settings.cert_file) != bool(settings.key_file):
            raise ValueError(f"broker URL {redact_url(url)!r}: cert_file and key_file go together")
        return settings

    @classmethod
    def resolve(
        cls, broker: str | BrokerSettings | None, *, env: Mapping[str, str] | None = None
    ) -> BrokerSettings:
        """``broker`` as settings: a URL, settings as they are, or ``None`` for ``$STEPWEAVE_BROKER``."""
        if isinstance(broker, BrokerSettings):
            return broker
        env = os.environ if env is None else env
        if broker is None:
            broker = env.get(BROKER_ENV)
            if not broker:
                raise ValueError(
                    f"no MQTT broker given: pass broker='mqtt://host:1883' (--broker on the command "
                    f"line) or set {BROKER_ENV}"
                )
        return cls.from_url(broker, env=env)

    def with_credentials(self, username: str | None, password: str | None) -> BrokerSettings:
        return replace(self, username=username, password=password)

    @property
    def url(self) -> str:
        """The URL without the password (safe to log and print)."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{quote(self.username, safe='')}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"

    @property
    def authenticated(self) -> bool:
        """Whether we log in as someone: a user name, or a TLS client certificate."""
        return bool(self.username) or bool(self.cert_file)

    @property
    def loopback(self) -> bool:
        """Whether the broker is on this machine (see ``is_loopback_host``)."""
        return is_loopback_host(self.host)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``mqtts://``, or ``None`` for plain TCP."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        if self.insecure:
            context.check_hostname = False
        context.sslsocket_class = _ClosingSSLSocket
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for ``aiomqtt.Client``: address, credentials, TLS, TCP_NODELAY."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "tls_context": self.ssl_context(),
            # paho checks the host name itself unless told not to (the context already has).
            "tls_insecure": self.insecure if self.tls else None,
            "socket_options": (TCP_NODELAY_OPTION,),
        }


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails.

    paho wraps the socket and calls ``do_handshake()`` itself, and on failure (an
    untrusted certificate, say) drops the socket unclosed; a reconnect loop would leak one
    per attempt.
    """

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/@:]*):[^\s/]*@")


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@…`` in it replaced by ``***``.

    The one way a broker URL (or a message that may quote one) is printed or logged. The
    user name stays: it says which device or orchestrator this is.
    """
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.0.0.0/8``, ``::1``).

    Any other name counts as reachable from the network: a name could resolve anywhere.
    """
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def resolve_namespace(namespace: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The topic prefix to use: ``namespace``, else ``$STEPWEAVE_NAMESPACE``, else ``stepweave``.

    Raises ``ValueError`` for a prefix MQTT cannot subscribe under (wildcards, empty levels).
    """
    from .protocol import DEFAULT_NAMESPACE, Topics  # protocol imports pydantic: only when needed

    env = os.environ if env is None else env
    return Topics(namespace or env.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE).namespace
