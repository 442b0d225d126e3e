"""``GuardedTransport``: the httpx transport that enforces ``_http_guard``'s address policy.

Kept apart from the policy so that importing the built-in tools (``stepweave validate``)
does not import httpx; the ``http`` tool imports this module when it makes a request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from ._http_guard import HTTP_ALLOW_ENV, HttpAllowList, IPAddress, TargetRefused, address_refusal

__all__ = ["GuardedTransport"]

_NO_KEEPALIVE = httpx.Limits(max_keepalive_connections=0)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that connects only to checked addresses (see the module docstring)."""

    def __init__(self, allow: HttpAllowList, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.allow = allow
        # No keep-alive: a pooled TLS connection, made for one host name, would otherwise
        # carry a redirect to another name that resolves to the same address, unverified.
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport(limits=_NO_KEEPALIVE)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            addresses = await _resolve(host, port)
        except (OSError, UnicodeError) as exc:  # socket.gaierror is an OSError
            raise httpx.ConnectError(f"cannot resolve host {host!r}: {exc}", request=request) from exc
        if not self.allow.allows_host(host):
            # Connect only to the addresses that pass; refuse when none does.
            refusals = [(a, address_refusal(a)) for a in addresses]
            passed = [a for a, reason in refusals if reason is None or self.allow.allows_address(a)]
            if not passed:
                address, reason = refusals[0]
                shown = host if host == str(address) else f"{host} ({address})"
                raise TargetRefused(
                    f"refused to connect to {shown} for {url}: {reason}, not a public one; "
                    f"the operator can allow it in ${HTTP_ALLOW_ENV} (host names, addresses "
                    "or networks, e.g. 127.0.0.1)"
                )
            addresses = passed
        last_error: httpx.ConnectError | None = None
        for address in addresses:  # in the resolver's order, like a plain connect
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address)),
                headers=request.headers,  # keeps Host: the name, not the address
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
            try:
                return await self.inner.handle_async_request(pinned)
            except httpx.ConnectError as exc:
                last_error = exc
        assert last_error is not None, "getaddrinfo returns at least one address"
        raise last_error

    async def aclose(self) -> None:
        await self.inner.aclose()
