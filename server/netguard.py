"""Outbound URLs: where this server may send requests (webhooks, the SMS gateway, push services) and
where it may send browsers (shop links).

A URL must be http(s), and every address its host resolves to must be public: loopback, private,
link-local, CGNAT (100.64/10), multicast, reserved, unspecified and cloud metadata addresses are
refused, also when wrapped in IPv6 (IPv4-mapped ``::ffff:a.b.c.d``, 6to4 ``2002::/16``, NAT64
``64:ff9b::/96``).
``check_url`` runs when a URL is saved (a clear 422, ``url_not_allowed``); ``guarded_client`` runs the
same check when a request is sent, on the addresses the connection is made to: its transport
resolves the name once, checks every answer and connects to a checked address, so a name that
answers differently the second time (DNS rebinding) gains nothing. The Host header and the TLS
server name stay the URL's own. Redirects are not followed.

``LIVEWALL_OUTBOUND_ALLOW`` lists host names, addresses and networks that may be private (a
self-hosted SMS gateway, a CRM on the LAN); cloud metadata addresses stay refused even then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from server.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# A name server that does not answer within this long is treated as "does not resolve" when saving,
# and as a connection failure (retried later) when sending.
DNS_TIMEOUT_SECS = 5.0
# Instance metadata services hand out cloud credentials: never a destination, whatever the allow-list
# says (AWS/GCP/Azure/OpenStack 169.254.169.254, AWS ECS 169.254.170.2, AWS IPv6 fd00:ec2::254,
# Azure's wire server 168.63.129.16, Alibaba Cloud 100.100.100.200).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "168.63.129.16", "100.100.100.200")
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Names that are this machine by definition (RFC 6761), refused without asking DNS.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# Legacy IPv4 spellings that resolvers accept: 2130706433, 0x7f000001, 127.1, 0177.0.0.1.
_LEGACY_IPV4 = re.compile(r"[0-9a-fA-FxX.]+")


class Refused(InvalidInput):
    """An outbound URL this server will not call or send browsers to."""

    code = "url_not_allowed"


@dataclass(frozen=True)
class Allow:
    """Exceptions to the public-address rule: exact host names, and networks."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def host(self, host: str) -> bool:
        return _name(host) in self.hosts

    def address(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


NOTHING_ALLOWED = Allow()


@functools.lru_cache(maxsize=16)
def allow_list(entries: tuple[str, ...]) -> Allow:
    """``LIVEWALL_OUTBOUND_ALLOW`` read: names, addresses (``10.0.0.7``) and networks (``10.0.0.0/8``)."""
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip().strip("[]")
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        if "/" in entry or not re.fullmatch(r"[A-Za-z0-9._-]+", entry):
            raise ValueError(f"LIVEWALL_OUTBOUND_ALLOW: {raw!r} is not a host name, an address or a network")
        hosts.add(_name(entry))
    return Allow(frozenset(hosts), tuple(networks))


def _name(host: str) -> str:
    return host.lower().rstrip(".")


def _unwrap(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4 or NAT64), else ``ip``."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_problem(ip: IPAddress, allow: Allow = NOTHING_ALLOWED) -> str | None:
    """Why ``ip`` is no destination (``"a loopback address"``), or None for a public (or allowed) one."""
    ip = _unwrap(ip)
    if ip in METADATA:
        return "a cloud metadata address"
    if allow.address(ip):
        return None
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.version == 4 and ip in CGNAT, "a shared (CGNAT) address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    )
    return next((why for bad, why in checks if bad), None)


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, in any form a resolver would read it (``127.1``), else None."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(host) and any(c.isdigit() for c in host):
        with contextlib.suppress(OSError):
            return ipaddress.IPv4Address(socket.inet_aton(host))
    return None


def _refused(what: str, why: str) -> Refused:
    return Refused(
        f"{what + ': ' if what else ''}{why}; only public internet addresses are allowed "
        "(the server's operator can allow others with LIVEWALL_OUTBOUND_ALLOW)"
    )


def check_shape(url: str, allow: Allow = NOTHING_ALLOWED, *, what: str = "url") -> tuple[str, int]:
    """``(host, port)`` of an http(s) URL whose host is not a local name or a refused literal address.
    Pure (no DNS): the part of the check that needs no network."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Refused(f"{what}: not a valid URL") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise Refused(f"{what}: must be an http:// or https:// URL with a host")
    port = port or (443 if parts.scheme == "https" else 80)
    if allow.host(host):
        return host, port
    name = _name(host)
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        raise _refused(what, f"{host} is this machine")
    ip = literal_address(host)
    if ip is not None and (why := address_problem(ip, allow)) is not None:
        raise _refused(what, f"{host} is {why}")
    return host, port


async def resolve(host: str, port: int, *, within_secs: float = DNS_TIMEOUT_SECS) -> list[IPAddress]:
    """Every address ``host`` resolves to, looked up off the event loop (OSError, TimeoutError)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), within_secs)
    except UnicodeError as exc:
        raise OSError(f"{host!r} is not a valid host name") from exc
    found: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in found:
            found.append(ip)
    return found


async def check_url(url: str, allow: Allow = NOTHING_ALLOWED, *, what: str = "url") -> None:
    """Refuse (422) a URL whose host is, or resolves to, a non-public address. A name that does not
    resolve now is accepted: the check when sending decides (it may exist by then)."""
    host, port = check_shape(url, allow, what=what)
    if allow.host(host) or literal_address(host) is not None:
        return
    try:
        addresses = await resolve(host, port)
    except (OSError, TimeoutError):
        return
    for ip in addresses:
        if (why := address_problem(ip, allow)) is not None:
            # The address itself is not repeated: hosts learn nothing of the internal network's layout.
            raise _refused(what, f"{host} resolves to {why}")


async def checked_addresses(
    host: str, port: int, allow: Allow, *, within_secs: float = DNS_TIMEOUT_SECS
) -> list[str]:
    """The addresses to connect to for ``host``: all of its answers, each checked (Refused if any
    is not allowed: a name with one private answer is not trusted with its others)."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await resolve(host, port, within_secs=within_secs)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"{host} does not resolve") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
    if not allow.host(host):
        for ip in addresses:
            if (why := address_problem(ip, allow)) is not None:
                raise _refused("", f"{host} {'is' if literal is not None else 'resolves to'} {why}")
    else:
        for ip in addresses:
            if _unwrap(ip) in METADATA:
                raise _refused("", f"{host} resolves to a cloud metadata address")
    return [str(ip) for ip in addresses]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to checked addresses: the name is resolved here, once per connection."""

    def __init__(self, allow: Allow) -> None:
        self._allow = allow
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, port, self._allow, within_secs=timeout or DNS_TIMEOUT_SECS)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.UnsupportedProtocol("outbound requests go to TCP addresses only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpcore's failures as httpx's, most specific first (what httpx's own transport does).
_ERRORS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _ERRORS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Body(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _as_httpx():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections go only to addresses ``allow`` permits (see the module)."""

    def __init__(self, allow: Allow, *, verify: ssl.SSLContext | bool = True) -> None:
        context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(verify=verify)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedBackend(allow),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx():
            response = await self._pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_client(
    allow: Allow, *, timeout: httpx.Timeout, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """An HTTP client for untrusted destinations: checked addresses only, no redirects, and no proxy
    from the environment (a proxy would hide the address actually reached)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(allow, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
