"""Which servers a run may load: the given URLs, on loopback unless remote load is allowed."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


class TargetRefused(ValueError):
    """A URL the bench will not send load to."""


@dataclass(frozen=True)
class Target:
    """One server process under test."""

    base_url: str  # http://host:port, no trailing slash

    @property
    def ws_url(self) -> str:
        scheme, rest = self.base_url.split("://", 1)
        return ("wss://" if scheme == "https" else "ws://") + rest

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.base_url)
        return parts.port or (443 if parts.scheme == "https" else 80)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def parse_targets(urls: str, allow_remote: bool) -> list[Target]:
    """Split a comma-separated URL list and check that every host may be loaded."""
    targets: list[Target] = []
    for raw in (u.strip() for u in urls.split(",")):
        if not raw:
            continue
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused(f"Not an http(s) URL: {raw!r}")
        if parts.path not in ("", "/") or parts.query:
            raise TargetRefused(f"Give the server root, without a path: {raw!r}")
        if not allow_remote and not _is_loopback(parts.hostname):
            raise TargetRefused(
                f"Refusing to load {parts.hostname!r}: not a loopback address. "
                "Pass --allow-remote to load a remote server you are allowed to load."
            )
        targets.append(Target(f"{parts.scheme}://{parts.netloc}"))
    if not targets:
        raise TargetRefused("No URL given.")
    return targets
