"""The one outbound HTTP client: timeouts, no environment proxies, and an SSRF guard.

The guard runs where the socket is opened (a custom httpcore network backend), on every address
the host name resolves to, so DNS tricks and redirects cannot reach loopback, private, link-local
or cloud-metadata addresses. ``LOKET_HTTP_ALLOW_PRIVATE=1`` lifts it for tests and on-premise use.
With ``LOKET_DEMO_ENDPOINTS`` on, Loket's own origin (``LOKET_PUBLIC_URL``, that host and port
only) is let through too, so the demo workspace's bot can call the demo look-up on the server.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
from django.conf import settings

USER_AGENT = "Loket/0.1 (+https://github.com/loket)"


class BlockedAddress(httpx.ConnectError):
    """The target resolves to an address Loket may not connect to."""


# IPv6 ranges that carry an IPv4 address in their low 32 bits. With DNS64/NAT64 an AAAA record
# in these ranges reaches the embedded IPv4 address, yet ``is_global`` (Python 3.11) calls them
# global, so the embedded address has to pass the check as well.
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215, never globally reachable
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated RFC 4291 form, includes :: and ::1


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address a packet to ``address`` might end up at: 6to4, Teredo (server and
    client), NAT64 (well-known and local-use prefixes) or IPv4-compatible. (IPv4-mapped addresses
    are unwrapped by the caller.)"""
    embedded: list[ipaddress.IPv4Address] = []
    if address.sixtofour is not None:
        embedded.append(address.sixtofour)
    if address.teredo is not None:
        embedded.extend(address.teredo)  # (server, client): both are reachable through it
    if address in _NAT64_WELL_KNOWN or address in _NAT64_LOCAL_USE or address in _IPV4_COMPATIBLE:
        embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return embedded


def address_allowed(ip: str, *, allow_private: bool) -> bool:
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:a.b.c.d *is* a.b.c.d to the socket layer
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        candidates.extend(_embedded_ipv4(address))
    if any(candidate.is_unspecified or candidate.is_multicast for candidate in candidates):
        return False
    if allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL_USE:
        return False
    return all(candidate.is_global for candidate in candidates)


class _GuardedBackend(httpcore.SyncBackend):
    def __init__(self, allow_private: bool, allow_origins: frozenset = frozenset()) -> None:
        self.allow_private = allow_private
        self.allow_origins = allow_origins  # {(host, port)} let through whatever they resolve to

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if (str(host).lower(), port) in self.allow_origins:
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        # getaddrinfo takes no timeout: a slow resolver can hold this thread past the client's
        # timeout (bounded only by the system resolver's own timeouts/attempts in resolv.conf).
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = [info[4][0] for info in infos]
        blocked = [
            ip for ip in addresses if not address_allowed(ip, allow_private=self.allow_private)
        ]
        if blocked or not addresses:
            raise BlockedAddress(
                f"{host} resolves to a private or reserved address ({', '.join(blocked)}); "
                "Loket does not connect there unless LOKET_HTTP_ALLOW_PRIVATE is set"
            )
        last_error: Exception | None = None
        for ip in addresses:  # connect to the checked address, not a fresh resolution
            try:
                return super().connect_tcp(ip, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last_error = exc
        raise last_error or httpcore.ConnectError(f"cannot connect to {host}")


@functools.cache
def _verifying_context() -> ssl.SSLContext:
    """The certificate-verifying TLS context, made once: loading the CA bundle takes tens of
    milliseconds of CPU, and every client (each bot look-up, each reply sent) needs it."""
    return httpx.create_ssl_context(verify=True, trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    def __init__(
        self,
        *,
        allow_private: bool,
        verify: ssl.SSLContext | bool = True,
        allow_origins: frozenset = frozenset(),
    ) -> None:
        if verify is True:
            verify = _verifying_context()
        super().__init__(verify=verify, trust_env=False)
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=50,
            max_keepalive_connections=10,
            keepalive_expiry=30.0,
            network_backend=_GuardedBackend(allow_private, allow_origins),
        )


def own_origins() -> frozenset:
    """{(host, port)} of Loket's own public URL while the demo endpoints are on, else empty."""
    if not getattr(settings, "LOKET_DEMO_ENDPOINTS", False):
        return frozenset()
    parts = urlsplit(settings.LOKET_PUBLIC_URL)
    if not parts.hostname:
        return frozenset()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return frozenset({(parts.hostname.lower(), port)})


def client(*, timeout: float | None = None, **kwargs: Any) -> httpx.Client:
    """A new client; use it as a context manager."""
    return httpx.Client(
        transport=GuardedTransport(
            allow_private=settings.LOKET_HTTP_ALLOW_PRIVATE, allow_origins=own_origins()
        ),
        timeout=timeout if timeout is not None else settings.LOKET_HTTP_TIMEOUT,
        follow_redirects=kwargs.pop("follow_redirects", False),
        headers={"User-Agent": USER_AGENT, **kwargs.pop("headers", {})},
        trust_env=False,
        **kwargs,
    )


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The provider's Retry-After (seconds or an HTTP date) as seconds, if it sent one."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as dt

    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def is_transient_status(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500
