"""The one HTTP client for every outbound call: ping/push callbacks, Web Push, ``jwks_uri``.

Outbound URLs come from client registrations, so each call is guarded against SSRF
(items 113, 114, 199, 200):

- https only; plain http only for a loopback host in dev mode;
- the host is resolved through a ``Resolver`` and *every* resolved address is checked with
  the ``AddressPolicy`` before connecting; the connection then goes to a checked address,
  so a second, different DNS answer cannot slip in (no DNS-rebinding window). TLS still
  verifies the certificate and sends SNI for the URL's hostname;
- redirects are never followed (a 3xx is returned as it is);
- response bodies are capped at ``outbound.max_response_bytes``; every call has a deadline.

httpx is imported here and nowhere else in ``src/``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
import orjson

from backchannel.protocol.model import JSON
from backchannel.protocol.ports import Clock, FetchError
from backchannel.settings import Settings, is_loopback_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_AGENT = "Backchannel"
DEFAULT_TIMEOUT = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_PRIVATE = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)


class OutboundError(FetchError):
    """An outbound call was refused or failed. The message is safe to log and show: it never
    holds a bearer token or a body. ``retryable`` is False when trying again cannot help
    (``OutboundRefused``: the URL or its addresses are not allowed)."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class OutboundRefused(OutboundError):
    """The URL or one of its addresses is not allowed (scheme, SSRF policy): trying again
    cannot help until the registration or the allow list changes."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


# -- name resolution ---------------------------------------------------------------------------


class Resolver(Protocol):
    async def resolve(self, host: str) -> list[str]:
        """The IP addresses of ``host``; raises ``OutboundError`` when it has none."""
        ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``), without blocking the loop."""

    async def resolve(self, host: str) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise OutboundError(f"{host}: cannot resolve ({exc.strerror or exc})") from None
        # IPv6 link-local answers may carry a scope ("fe80::1%eth0"); the policy needs the IP.
        return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


class StaticResolver:
    """A fixed host -> addresses table (tests); an unknown host does not resolve."""

    def __init__(self, mapping: Mapping[str, Sequence[str]]) -> None:
        self._mapping = {host.lower(): list(ips) for host, ips in mapping.items()}

    async def resolve(self, host: str) -> list[str]:
        addresses = self._mapping.get(host.lower())
        if not addresses:
            raise OutboundError(f"{host}: cannot resolve (not in the static table)")
        return list(addresses)


# -- address policy ----------------------------------------------------------------------------


def address_category(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be contacted ("private", "loopback", ...), or None if it is public.
    IPv4 addresses embedded in IPv6 (mapped, 6to4, NAT64) are judged as IPv4."""
    ip = embedded_ipv4(ip) or ip
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip in _METADATA:
        return "cloud metadata"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "shared (CGNAT)"
    if any(ip in network for network in _PRIVATE):
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "non-public"
    return None


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class AddressPolicy:
    """Which addresses outbound calls may reach. ``allow_list`` entries are CIDR ranges (or
    single IPs) and host names; they override every refusal. Loopback is allowed in dev mode.
    """

    def __init__(self, dev_mode: bool, allow_list: Iterable[str] = ()) -> None:
        self.dev_mode = dev_mode
        self._hosts: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allow_list:
            try:
                self._networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                self._hosts.add(entry.strip().lower().rstrip("."))

    @classmethod
    def from_settings(cls, settings: Settings) -> AddressPolicy:
        return cls(settings.dev_mode, settings.outbound.allow_list)

    def refusal(self, host: str, address: str) -> str | None:
        """Why ``host`` at ``address`` must not be contacted, or None when it may."""
        if host.lower().rstrip(".") in self._hosts:
            return None
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return f"{host}: resolved to something that is not an IP address"
        if self._allow_listed(ip):
            return None
        category = address_category(ip)
        if category is None or (category == "loopback" and self.dev_mode):
            return None
        article = "an" if category[0] in "aeiou" else "a"
        if _is_literal(host):
            return f"{host.strip('[]')} is {article} {category} address"
        return f"{host} resolves to {article} {category} address {address}"

    def check(self, host: str, addresses: Sequence[str]) -> None:
        """Raise ``OutboundError`` unless every one of ``addresses`` may be contacted."""
        for address in addresses:
            reason = self.refusal(host, address)
            if reason is not None:
                raise OutboundRefused(reason)

    def _allow_listed(self, ip: IPAddress) -> bool:
        candidates = [ip, embedded_ipv4(ip)]
        return any(c is not None and c in network for c in candidates for network in self._networks)


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def checked_addresses(host: str, resolver: Resolver, policy: AddressPolicy) -> list[str]:
    """The addresses of ``host`` (an IP literal is its own), all of them allowed."""
    literal = host.strip("[]")
    try:
        addresses = [str(ipaddress.ip_address(literal))]
    except ValueError:
        addresses = await resolver.resolve(host)
    if not addresses:
        raise OutboundError(f"{host}: cannot resolve (no addresses)")
    policy.check(host, addresses)
    return addresses


def checked_url(url: str, *, dev_mode: bool) -> str:
    """The URL's host when its scheme is allowed: https, or http to loopback in dev mode."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or parts.scheme not in ("https", "http"):
        raise OutboundRefused("must be an absolute https URL")
    if parts.scheme == "http" and not (dev_mode and is_loopback_host(host)):
        raise OutboundRefused("must be https (plain http only for loopback hosts in dev mode)")
    if parts.username is not None or parts.password is not None:
        raise OutboundRefused("must not carry credentials in the URL")
    return host


async def check_url(
    url: str,
    *,
    settings: Settings,
    resolver: Resolver | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """The registration-time check: scheme, and every address the host resolves to now.
    ``OutboundRefused`` when not allowed; a plain ``OutboundError`` when the name does not
    resolve (yet): every call checks again anyway."""
    host = checked_url(url, dev_mode=settings.dev_mode)
    policy = AddressPolicy.from_settings(settings)
    try:
        with anyio.fail_after(timeout):
            await checked_addresses(host, resolver or SystemResolver(), policy)
    except TimeoutError:
        raise OutboundError(f"{host}: cannot resolve within {timeout:g} s") from None


# -- transport ---------------------------------------------------------------------------------


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks the host itself, then connects to a checked IP address."""

    def __init__(self, resolver: Resolver, policy: AddressPolicy) -> None:
        self._resolver = resolver
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(host, self._resolver, self._policy)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound calls")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(
    resolver: Resolver, policy: AddressPolicy, ssl_context: ssl.SSLContext | None = None
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connection pool connects only through the guarded backend.
    httpx has no public hook for the network backend, so its pool is replaced (same
    arguments httpx itself uses, minus proxies: outbound calls never use one)."""
    transport = httpx.AsyncHTTPTransport(retries=0, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        retries=0,
        network_backend=GuardedNetworkBackend(resolver, policy),
    )
    return transport


# -- client ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    """What came back. Header names are lower case; ``truncated`` means the body was longer
    than ``outbound.max_response_bytes`` and only that much was read."""

    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    truncated: bool = False

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


@dataclass(slots=True)
class OutboundClient:
    """Outbound HTTP with the SSRF guard. ``pooled=False`` opens a connection per call (for
    rare calls, such as ``jwks_uri`` fetches, with nothing to close afterwards).
    ``ssl_context`` replaces the default trust store (certifi, or ``SSL_CERT_FILE``)."""

    settings: Settings
    resolver: Resolver | None = None
    pooled: bool = True
    ssl_context: ssl.SSLContext | None = None
    _client: httpx.AsyncClient | None = field(default=None, init=False)

    async def post_json(
        self, url: str, body: JSON, *, bearer: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> OutboundResponse:
        """POST ``body`` as JSON. Any status comes back as a response (3xx included);
        ``OutboundError`` means the call was refused or no response arrived in time."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if bearer is not None:
            headers["authorization"] = f"Bearer {bearer}"
        return await self._send("POST", url, headers, orjson.dumps(body), timeout)

    async def post_bytes(
        self,
        url: str,
        content: bytes,
        *,
        headers: Mapping[str, str],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> OutboundResponse:
        """POST raw bytes with the given headers (Web Push: an encrypted body)."""
        return await self._send("POST", url, dict(headers), content, timeout)

    async def get_json(self, url: str, *, timeout: float = DEFAULT_TIMEOUT) -> JSON:
        """GET a JSON object; anything but a 200 with a JSON object within the size cap is an
        ``OutboundError``."""
        response = await self._send("GET", url, {"accept": "application/json"}, None, timeout)
        host = urlsplit(url).hostname
        if response.status != 200:
            raise OutboundError(f"{host} answered {response.status}")
        if response.truncated:
            raise OutboundError(f"{host}: response too large")
        try:
            value = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            raise OutboundError(f"{host}: the response is not JSON") from None
        if not isinstance(value, dict):
            raise OutboundError(f"{host}: the response is not a JSON object")
        return value

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, timeout: float
    ) -> OutboundResponse:
        host = checked_url(url, dev_mode=self.settings.dev_mode)
        started = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                async with self._http() as client:
                    request = client.build_request(method, url, headers=headers, content=content)
                    response = await client.send(request, stream=True)
                    try:
                        body, truncated = await self._read_capped(response)
                    finally:
                        await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise OutboundError(f"{host}: no response within {timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise OutboundError(f"{host}: {type(exc).__name__}: {str(exc)[:200]}") from None
        elapsed = time.monotonic() - started
        return OutboundResponse(
            response.status_code, dict(response.headers.items()), body, elapsed, truncated
        )

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        limit = self.settings.outbound.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_raw():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit], True
        return b"".join(chunks), False

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if not self.pooled:
            async with self._new_client() as client:
                yield client
            return
        if self._client is None:
            self._client = self._new_client()
        yield self._client

    def _new_client(self) -> httpx.AsyncClient:
        transport = guarded_transport(
            self.resolver or SystemResolver(),
            AddressPolicy.from_settings(self.settings),
            self.ssl_context,
        )
        return httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
        )


# -- jwks_uri ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _CachedJwks:
    jwks: JSON
    fetched_at: float


class CachingJwksFetcher:
    """``JwksFetcher`` over an ``OutboundClient``: one cached copy per URL, fetched again
    after ``ttl`` seconds, or on ``refresh=True`` (a JWT named an unknown ``kid``) unless
    the copy is younger than ``min_refresh`` seconds — so forged kids cannot make
    Backchannel hammer a client's server."""

    def __init__(
        self,
        client: OutboundClient,
        clock: Clock,
        ttl: float = 300,
        *,
        min_refresh: float = 10,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._min_refresh = min_refresh
        self._timeout = timeout
        self._cache: dict[str, _CachedJwks] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def fetch(self, url: str, refresh: bool = False) -> JSON:
        async with self._locks.setdefault(url, asyncio.Lock()):
            cached = self._cache.get(url)
            if cached is not None and self._usable(cached, refresh):
                return cached.jwks
            jwks = await self._client.get_json(url, timeout=self._timeout)
            if not isinstance(jwks.get("keys"), list):
                raise OutboundError(f"{urlsplit(url).hostname}: the response is not a JWK set")
            self._cache[url] = _CachedJwks(jwks, self._clock.now())
            return jwks

    def _usable(self, cached: _CachedJwks, refresh: bool) -> bool:
        age = self._clock.now() - cached.fetched_at
        return age < (self._min_refresh if refresh else self._ttl)
