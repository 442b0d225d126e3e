"""Which addresses the ``http`` tool may connect to: public ones, and what the operator allows.

A plan (perhaps written by an LLM from a web page) must not reach the machine's own
services, the local network or a cloud metadata endpoint through the ``http`` tool. So
every hop, redirects included, is checked by ``GuardedTransport`` (``_http_transport``,
which imports httpx only when a request is made): the host name is
resolved once, every address it resolves to must be public (or allowed), and the
connection goes to the address that was checked, never to a second lookup, so a DNS
answer that changes between the check and the connection ("DNS rebinding") cannot slip
through. TLS still verifies the certificate against the host name.

The operator (not the workflow) widens this with ``$STEPWEAVE_HTTP_ALLOW``: host names
(``localhost``, ``*.internal.example``), addresses or networks (``127.0.0.1``,
``10.0.0.0/8``, ``fd00::/8``), separated by commas or spaces.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

__all__ = ["HTTP_ALLOW_ENV", "HttpAllowList", "TargetRefused", "address_refusal"]

#: Environment variable listing the non-public hosts and networks ``http`` may reach.
HTTP_ALLOW_ENV = "STEPWEAVE_HTTP_ALLOW"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Ranges that are not public but that Python 3.11's ``is_global`` does not all flag.
_NOT_PUBLIC: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("0.0.0.0/8"),  # "this network"; 0.0.0.0 reaches the local host
    ipaddress.ip_network("100.64.0.0/10"),  # carrier-grade NAT
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_PATTERN = re.compile(r"^(\*\.)?[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$")


class TargetRefused(Exception):
    """The request would reach a non-public address the operator did not allow."""


def _embedded(address: IPAddress) -> IPAddress | None:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_refusal(address: IPAddress) -> str | None:
    """Why ``address`` is not public ("a loopback address", ...), or None when it is public."""
    inner = _embedded(address)
    if inner is not None:
        reason = address_refusal(inner)
        return None if reason is None else f"{reason} (IPv4 {inner} inside IPv6)"
    kinds = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for kind, matches in kinds:
        if matches:
            return f"a {kind} address"
    if not address.is_global or any(address in network for network in _NOT_PUBLIC):
        return "a non-public address"
    return None


@dataclass(frozen=True)
class HttpAllowList:
    """Non-public targets the operator allows: host names (exact or ``*.suffix``) and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str | None, source: str = HTTP_ALLOW_ENV) -> HttpAllowList:
        """Read a comma- or space-separated list; an entry that is neither a network nor a host name fails."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in re.split(r"[\s,]+", text or ""):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not _HOST_PATTERN.match(name):
                raise ValueError(
                    f"{source}: {entry!r} is neither a host name (like localhost or *.corp.example) "
                    "nor an address or network (like 127.0.0.1 or 10.0.0.0/8); ports are not part of it"
                )
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    @classmethod
    def from_env(cls) -> HttpAllowList:
        """The list in ``$STEPWEAVE_HTTP_ALLOW``, read at call time."""
        return cls.parse(os.environ.get(HTTP_ALLOW_ENV))

    def allows_host(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return name in self.hosts or any(
            pattern.startswith("*.") and name.endswith(pattern[1:]) for pattern in self.hosts
        )

    def allows_address(self, address: IPAddress) -> bool:
        candidates = [address]
        inner = _embedded(address)
        if inner is not None:
            candidates.append(inner)
        return any(a.version == n.version and a in n for a in candidates for n in self.networks)
