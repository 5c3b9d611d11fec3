"""Outbound HTTP that a stored address cannot turn against the server's own network (SSRF).

Web Push sends to endpoints that browsers (that is, anyone) hand the server, and partner webhooks
will too. A check of the URL's host name alone is not enough: a listed host may answer with a
redirect to `http://127.0.0.1:…`, and a name may resolve to a public address when checked and to
a private one when connected to (DNS rebinding). So this client

- never follows a redirect: a `3xx` comes back to the caller as it is;
- connects only to the addresses it checked: the resolver the connection pool asks resolves the
  name, drops every address that may not be reached, and hands the pool only the rest (a URL whose
  host is an address literal is checked before the request);
- refuses loopback, private, link-local, shared and other non-global addresses unless the host is
  one the operator listed by its exact name (a wildcard entry never reaches them), and refuses
  multicast, unspecified and cloud metadata addresses always.

A refused destination raises `OutboundRefused` before anything is sent.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services (AWS and Azure and GCP, AWS over IPv6, AWS ECS tasks, Alibaba, Oracle):
# they hand out cloud credentials to whoever asks from inside, so no listed name may reach them.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(address) for address in (
    "169.254.169.254", "fd00:ec2::254", "169.254.170.2", "100.100.100.200", "192.0.0.192"))


class OutboundRefused(OSError):
    """The destination resolves only to addresses outbound requests may not reach."""


class AddressPolicy:
    """Which addresses a request to a host may connect to."""

    def __init__(self, listed_hosts: Iterable[str] = ()) -> None:
        self._listed = frozenset(_bare_host(host) for host in listed_hosts
                                 if host.strip() and "*" not in host)

    @classmethod
    def from_patterns(cls, patterns: str) -> AddressPolicy:
        """From a comma-separated list such as PUSH_SERVICE_HOSTS (`host`, `host:port`, `*.domain`)."""
        return cls(patterns.split(","))

    def allows(self, host: str, address: IPAddress) -> bool:
        address = _embedded_ipv4(address)
        if address in METADATA_ADDRESSES or address.is_multicast or address.is_unspecified:
            return False
        return address.is_global or _bare_host(host) in self._listed


NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 one carries and reaches (mapped, NAT64, 6to4), judged as
    itself: `::ffff:127.0.0.1` is loopback too."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address


def _bare_host(host: str) -> str:
    """`Example.com.`, `example.com:443` and `[::1]:8080` as the name the resolver is asked."""
    host = host.strip().lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    return host.rstrip(".")


def _address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.partition("%")[0])  # an IPv6 zone (`fe80::1%eth0`) is no part of it


class GuardedResolver(AbstractResolver):
    """Resolves a name and returns only the addresses the policy allows, so the connection pool can
    connect to nothing else."""

    def __init__(self, policy: AddressPolicy, resolver: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._resolver = resolver or ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        allowed = [result for result in results if self._policy.allows(host, _address(result["host"]))]
        if not allowed:
            raise OutboundRefused(f"{host} resolves only to addresses outbound requests may not reach")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


class GuardedClient:
    """An aiohttp session behind the policy. `post` has `ClientSession.post`'s shape (what pywebpush
    calls); redirects are never followed, whatever the caller asks."""

    def __init__(self, policy: AddressPolicy, **session_options: Any) -> None:
        self._policy = policy
        self._options = session_options
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str | URL, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self.request("POST", url, **kwargs)

    async def request(self, method: str, url: str | URL, **kwargs: Any) -> aiohttp.ClientResponse:
        kwargs["allow_redirects"] = False
        host = URL(url).host or ""
        if _is_address(host) and not self._policy.allows(host, _address(host)):
            raise OutboundRefused(f"{host} is an address outbound requests may not reach")
        try:
            return await self._client().request(method, url, **kwargs)
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, OutboundRefused):
                raise exc.os_error from None
            raise

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._policy))
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, **self._options)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _is_address(host: str) -> bool:
    try:
        _address(host)
    except ValueError:
        return False
    return True
