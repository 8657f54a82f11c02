"""Where fetches may connect, and how: the address policy, TLS trust, proxies, DNS caching.

An index URL, a file URL on its page or a redirect names a host; what the host resolves to is
decided by DNS, which an attacker may control. So the check cannot happen on the URL before the
request (DNS could answer differently a moment later, "DNS rebinding"): ``GuardedBackend`` is
the httpcore network backend under every fetch, and for every new connection it resolves the
host once, refuses the host when any answer lies in a blocked network, and then connects to
exactly those validated addresses (through ``service.index.streams.AsyncioBackend``). TLS
still verifies the certificate against the URL's host name (httpcore passes it as SNI
separately), so pinning the address weakens nothing.
Answers are cached per host for ``dns_ttl`` seconds (a burst of connections makes one lookup)
and checked again on every connection they serve.

The default blocked networks are the ones no package index lives on and an attacker would love
to reach: link-local (cloud metadata at 169.254.169.254, fd00:ec2::254), "this host" 0.0.0.0/8,
multicast and reserved ranges. Loopback and private ranges stay reachable because corporate
mirrors live there; an operator who wants them closed lists them in ``fetch.blocked_networks``.

``GuardedTransport`` routes each request to a connection pool by (TLS profile, proxy):

* **TLS trust** is the system store as OpenSSL finds it, which honours ``SSL_CERT_FILE`` and
  ``SSL_CERT_DIR`` (what pip does through ``truststore`` on Linux, and uv with
  ``SSL_CERT_FILE``), else the usual bundle locations, else certifi's bundle. An index's
  ``TLSProfile`` (extra ``ca_file``, a client certificate) applies to the requests the fetcher
  marks with it: only those to the index's own origin.
* **Proxies** come from ``fetch.proxy``/``fetch.no_proxy``, else ``HTTPS_PROXY``,
  ``HTTP_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``. The proxy's own address passes the guard like
  any host; a target named by an address literal in a blocked network is refused before the
  proxy is asked; a target named by a host name is resolved by the proxy, out of our sight.
* **HTTP/2** where the server offers it (ALPN), so a burst of requests to one origin shares one
  connection and one TLS handshake.
"""

from __future__ import annotations

import asyncio
import binascii
import ipaddress
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, TypedDict

import certifi
import httpcore
import httpx
import hyperframe.frame

from service.diagnostics.redact import redact_url
from service.index.http11 import LeanHTTPConnection
from service.index.models import TLSProfile
from service.index.streams import AsyncioBackend

__all__ = [
    "TLS_EXTENSION",
    "AddressBlockedError",
    "AddressPolicy",
    "GuardedBackend",
    "GuardedTransport",
    "ProxyRules",
    "Resolve",
    "TLSConfigError",
    "make_guarded_transport",
    "make_ssl_context",
    "system_resolve",
]

logger = logging.getLogger(__name__)

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses to try, in order (a seam for tests: DNS answers on demand).
Resolve: TypeAlias = Callable[[str, int], Awaitable[list[str]]]

# The request extension that carries a request's TLSProfile (absent: the default trust).
TLS_EXTENSION = "resolvd.tls"
# Hosts whose answers are kept at once; past this the oldest go first.
_DNS_CACHE_HOSTS = 256
# Where distributions keep the system bundle when OpenSSL's compiled-in path finds nothing
# (Python builds not made for this system); the list pip's truststore searches on Linux.
_CA_FILE_CANDIDATES = (
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/cert.pem",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
)


class AddressBlockedError(Exception):
    """A host resolved to an address in a blocked network; nothing was connected.

    Deliberately not an httpcore/httpx error: httpx passes it through unmapped, so the fetcher
    can report it as a policy refusal instead of retrying it as a flaky connection. ``role``
    says what the host was for when it was not the request's own ("the proxy").
    """

    def __init__(self, host: str, addresses: Sequence[str], *, role: str = "") -> None:
        listed = ", ".join(addresses)
        named = f"{role} {host}" if role else host
        super().__init__(
            f"{named} resolves to {listed}, in a network that fetch.blocked_networks forbids"
        )
        self.host = host
        self.addresses = list(addresses)


class TLSConfigError(Exception):
    """A TLS profile whose files cannot be loaded (missing, unreadable, not PEM, key mismatch)."""


class AddressPolicy:
    """Which addresses fetches may connect to: anything outside ``blocked`` networks."""

    def __init__(self, blocked: Iterable[str]) -> None:
        self.blocked: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(network, strict=False) for network in blocked
        )

    def allows(self, address: str) -> bool:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        # ::ffff:169.254.169.254 reaches the IPv4 address; judge it as that.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return not any(ip.version == net.version and ip in net for net in self.blocked)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver's answers for ``host``, deduplicated, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _DNSCache:
    """Answers per host for ``ttl`` seconds; concurrent lookups of one host share one query.

    ``getaddrinfo`` reports no TTL, so ``ttl`` is an upper bound chosen by the operator. Only
    answers are kept, never failures.
    """

    def __init__(self, resolve: Resolve, ttl: float) -> None:
        self._resolve = resolve
        self._ttl = ttl
        self._answers: dict[str, tuple[float, list[str]]] = {}
        self._flights: dict[str, asyncio.Future[list[str]]] = {}
        self.lookups = 0

    async def lookup(self, host: str, port: int) -> list[str]:
        key = host.lower()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        flight = self._flights.get(key)
        if flight is None:
            self.lookups += 1
            flight = asyncio.ensure_future(self._resolve(host, port))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # A waiter that times out stops waiting, not the query the others wait on.
        return list(await asyncio.shield(flight))

    def _landed(self, key: str, flight: asyncio.Future[list[str]]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if flight.cancelled() or flight.exception() is not None or self._ttl <= 0:
            return
        answers = flight.result()
        if not answers:
            return
        if len(self._answers) >= _DNS_CACHE_HOSTS:
            now = time.monotonic()
            for stale in [host for host, (until, _) in self._answers.items() if until <= now]:
                del self._answers[stale]
            if len(self._answers) >= _DNS_CACHE_HOSTS:
                del self._answers[next(iter(self._answers))]
        self._answers[key] = (time.monotonic() + self._ttl, list(answers))

    def forget(self, host: str) -> None:
        self._answers.pop(host.lower(), None)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that validates and pins the addresses it connects to."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: Resolve = system_resolve,
        dns_ttl: float = 0.0,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.dns = _DNSCache(resolve, dns_ttl)
        self._inner = inner or AsyncioBackend()
        self.connections = 0

    async def _addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(seconds):
                addresses = await self.dns.lookup(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve {host}: no addresses")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._addresses(host, port, timeout)
        # Checked on every connection, cached answers too. One bad answer condemns the host:
        # a rebinding attacker mixes good and bad ones.
        blocked = [address for address in addresses if not self.policy.allows(address)]
        if blocked:
            raise AddressBlockedError(host, blocked)
        last: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
            else:
                self.connections += 1
                return stream
        self.dns.forget(host)  # the next attempt asks DNS again
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not index addresses")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# -- TLS ----------------------------------------------------------------------------------------


def _has_hashed_certs(directory: str) -> bool:
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    return any(len(name) == 10 and name[8] == "." and name[9].isdigit() for name in names)


def _system_context() -> ssl.SSLContext:
    """A verifying client context over the system trust store (see the module docstring)."""
    defaults = ssl.get_default_verify_paths()
    for variable in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if os.environ.get(variable) and not os.path.exists(os.environ[variable]):
            logger.warning("%s names %s, which does not exist", variable, os.environ[variable])
    if defaults.cafile or (defaults.capath and _has_hashed_certs(defaults.capath)):
        # OpenSSL's defaults: $SSL_CERT_FILE / $SSL_CERT_DIR when set, else its own paths.
        return ssl.create_default_context()
    bundle = next((path for path in _CA_FILE_CANDIDATES if os.path.isfile(path)), None)
    return ssl.create_default_context(cafile=bundle or certifi.where())


def make_ssl_context(profile: TLSProfile | None = None) -> ssl.SSLContext:
    """The client context for ``profile``: system trust, plus its CA file and client certificate.

    Raises ``TLSConfigError`` naming the setting whose file cannot be used.
    """
    context = _system_context()
    if profile is None:
        return context
    if profile.ca_file:
        try:
            context.load_verify_locations(cafile=profile.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"ca_file {profile.ca_file} cannot be used: {exc}") from exc
    if profile.client_cert:
        try:
            context.load_cert_chain(profile.client_cert, profile.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(
                f"client_cert {profile.client_cert} (client_key {profile.client_key}) cannot "
                f"be used: {exc}"
            ) from exc
    return context


# -- proxies ------------------------------------------------------------------------------------


def _environment_value(environ: Mapping[str, str], name: str) -> str | None:
    # Lower case first, as curl and urllib read them.
    return environ.get(name.lower()) or environ.get(name.upper()) or None


class ProxyRules:
    """Which proxy (if any) a URL goes through: settings first, else the standard variables."""

    def __init__(
        self,
        proxy: str | None = None,
        no_proxy: Sequence[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        everything = _environment_value(environ, "all_proxy")
        self._by_scheme: dict[str, str | None] = (
            {"http": proxy, "https": proxy}
            if proxy
            else {
                "http": _environment_value(environ, "http_proxy") or everything,
                "https": _environment_value(environ, "https_proxy") or everything,
            }
        )
        bypass = list(no_proxy) or (_environment_value(environ, "no_proxy") or "").split(",")
        self._bypass = tuple(rule.strip().lower() for rule in bypass if rule.strip())

    @property
    def proxies(self) -> frozenset[str]:
        return frozenset(url for url in self._by_scheme.values() if url)

    def select(self, url: httpx.URL) -> str | None:
        """The proxy URL for ``url``, or ``None`` to connect directly."""
        proxy = self._by_scheme.get(url.scheme)
        if proxy is None or self._bypassed(url.host, url.port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int | None) -> bool:
        host = host.lower().strip("[]").rstrip(".")
        return any(_no_proxy_matches(rule, host, port) for rule in self._bypass)


def _no_proxy_matches(rule: str, host: str, port: int | None) -> bool:
    """One ``NO_PROXY`` entry: ``*``, a domain (``.corp.example`` or ``corp.example``, with its
    subdomains), ``host:port``, an address or a network (``10.0.0.0/8``)."""
    if rule == "*":
        return True
    literal = _literal(host)
    if literal is not None:
        try:
            network = ipaddress.ip_network(rule.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None and ipaddress.ip_address(literal) in network:
            return True
    name, colon, rule_port = rule.rpartition(":")
    if rule.count(":") == 1 and colon and rule_port.isdigit():
        if port is not None and int(rule_port) != port:
            return False
        rule = name
    domain = rule.lstrip("*").lstrip(".").rstrip(".")
    return bool(domain) and (host == domain or host.endswith("." + domain))


# -- the transport ------------------------------------------------------------------------------


# Idle connections a pool keeps for reuse. httpcore scans every pooled connection for each
# request it places, so an unbounded pool (hundreds of idle loopback connections) made placing
# a request cost more than the request itself.
_MAX_IDLE_CONNECTIONS = 32


class _PoolOptions(TypedDict):
    """What every pool of the transport is built with, direct or through a proxy."""

    ssl_context: ssl.SSLContext
    max_connections: int | None
    max_keepalive_connections: int | None
    keepalive_expiry: float
    http1: bool
    http2: bool
    network_backend: httpcore.AsyncNetworkBackend


class _LeanAssignment:
    """httpcore's request placement, linear in the pool's size instead of quadratic.

    httpcore 1.0 places each queued request by scanning every pooled connection several times,
    asking each whether its server hung up (a syscall through three layers of typed
    attributes), and counts idle connections once per idle connection. On a loopback index
    over HTTP/1.1 that was 2.3 of 3.2 s of a cold 97-package job's event-loop CPU. This
    places a request on the first available connection for its origin, checking only that one
    for expiry, then closes the idle connections beyond ``max_keepalive_connections``: the
    same decisions, each connection looked at once. httpcore is pinned below 1.1 for this
    private hook (pyproject.toml); ``tests/unit/index/test_outbound.py`` covers reuse, expiry
    and the idle bound.
    """

    _connections: list[httpcore.AsyncConnectionInterface]
    _requests: list[Any]
    _max_connections: int
    _max_keepalive_connections: int
    create_connection: Callable[[httpcore.Origin], httpcore.AsyncConnectionInterface]

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        closing: list[httpcore.AsyncConnectionInterface] = []
        self._connections[:] = [c for c in self._connections if not c.is_closed()]
        for pool_request in [request for request in self._requests if request.is_queued()]:
            origin = pool_request.request.url.origin
            chosen = None
            for connection in list(self._connections):
                if not (connection.can_handle_request(origin) and connection.is_available()):
                    continue
                if connection.is_idle() and connection.has_expired():
                    self._connections.remove(connection)
                    closing.append(connection)
                    continue
                chosen = connection
                break
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    spare = next((c for c in self._connections if c.is_idle()), None)
                    if spare is None:
                        continue  # stays queued until a connection frees up
                    self._connections.remove(spare)
                    closing.append(spare)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            pool_request.assign_to_connection(chosen)
        if len(self._connections) <= self._max_keepalive_connections:
            return closing  # no more idle connections than may be kept: nothing to count
        idle_now = [c for c in self._connections if c.is_idle()]
        for surplus in idle_now[: max(0, len(idle_now) - self._max_keepalive_connections)]:
            self._connections.remove(surplus)
            closing.append(surplus)
        return closing


class _LeanPool(_LeanAssignment, httpcore.AsyncConnectionPool):
    """The direct pool: its HTTP/1.1 connections speak through ``service.index.http11``."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        return LeanHTTPConnection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            http1=self._http1,
            http2=self._http2,
            retries=self._retries,
            local_address=self._local_address,
            uds=self._uds,
            network_backend=self._network_backend,
            socket_options=self._socket_options,
        )


class _LeanProxy(_LeanAssignment, httpcore.AsyncHTTPProxy):
    pass


class _PoolTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response and error mapping) over a given httpcore pool."""

    def __init__(self, pool: httpcore.AsyncConnectionPool, context: ssl.SSLContext) -> None:
        # httpx 0.28 has no public way to hand its pool a network backend (encode/httpx#3749
        # proposes one); the pool is replaced with one built the same way plus the backend.
        # httpx is pinned below 0.29 in pyproject for this reason.
        super().__init__(verify=context, trust_env=False)
        self._pool = pool


class GuardedTransport(httpx.AsyncBaseTransport):
    """Every index request's transport: a pool per (TLS profile, proxy), all guarded."""

    def __init__(
        self,
        backend: GuardedBackend,
        *,
        proxies: ProxyRules,
        keepalive_expiry: float,
        http2: bool = True,
    ) -> None:
        self.backend = backend
        self._proxies = proxies
        self._keepalive = keepalive_expiry
        self._http2 = http2
        self._contexts: dict[TLSProfile | None, ssl.SSLContext] = {None: make_ssl_context()}
        self._routes: dict[tuple[TLSProfile | None, str | None], _PoolTransport] = {}

    def _context(self, profile: TLSProfile | None) -> ssl.SSLContext:
        context = self._contexts.get(profile)
        if context is None:
            context = self._contexts[profile] = make_ssl_context(profile)
        return context

    def _route(self, profile: TLSProfile | None, proxy: str | None) -> _PoolTransport:
        route = self._routes.get((profile, proxy))
        if route is not None:
            return route
        context = self._context(profile)
        options = _PoolOptions(
            ssl_context=context,
            max_connections=None,
            max_keepalive_connections=_MAX_IDLE_CONNECTIONS,
            keepalive_expiry=self._keepalive,
            http1=True,
            http2=self._http2,
            network_backend=self.backend,
        )
        pool: httpcore.AsyncConnectionPool
        if proxy is None:
            pool = _LeanPool(**options)
        else:
            parsed = httpx.Proxy(proxy)
            pool = _LeanProxy(
                proxy_url=httpcore.URL(
                    scheme=parsed.url.raw_scheme,
                    host=parsed.url.raw_host,
                    port=parsed.url.port,
                    target=parsed.url.raw_path,
                ),
                proxy_auth=parsed.raw_auth,
                proxy_ssl_context=self._context(None) if parsed.url.scheme == "https" else None,
                **options,
            )
        route = self._routes[(profile, proxy)] = _PoolTransport(pool, context)
        return route

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        profile = request.extensions.get(TLS_EXTENSION)
        assert profile is None or isinstance(profile, TLSProfile)
        proxy = self._proxies.select(request.url)
        if proxy is None:
            return await self._route(profile, None).handle_async_request(request)
        # The proxy resolves host names; an address literal we can judge ourselves.
        literal = _literal(request.url.host)
        if literal is not None and not self.backend.policy.allows(literal):
            raise AddressBlockedError(request.url.host, [literal])
        shown = redact_url(proxy)
        try:
            return await self._route(profile, proxy).handle_async_request(request)
        except AddressBlockedError as exc:
            raise AddressBlockedError(exc.host, exc.addresses, role="the proxy") from exc
        except httpx.ProxyError as exc:
            raise httpx.ProxyError(f"the proxy {shown} answered {exc}", request=request) from exc
        except httpx.TransportError as exc:
            raise type(exc)(f"through the proxy {shown}: {exc}", request=request) from exc

    async def aclose(self) -> None:
        routes, self._routes = list(self._routes.values()), {}
        for route in routes:
            await route.aclose()


def _hex_head(data: bytes | None) -> str:
    """What ``hyperframe.frame._raw_data_repr`` returns, from the first 11 bytes only."""
    if not data:
        return "None"
    shown = binascii.hexlify(data[:11]).decode("ascii")
    return "<hex:" + (shown[:20] + "..." if len(shown) > 20 else shown) + ">"


def _cheapen_frame_reprs() -> None:
    """Make the repr of a received HTTP/2 frame cost its first bytes, not its whole payload.

    h2 (4.4) logs every received frame with ``trace("Received frame: %s", repr(frame))``,
    building the repr even when nothing logs it, and hyperframe's repr hex-encodes a DATA
    frame's whole payload (16 KiB) to show 20 characters of it: 7% of the event loop's samples
    on a live dagster job (py-spy, 20 MB of pages over HTTP/2). ``_hex_head`` returns the same
    string (tests/unit/index/test_outbound.py checks it against the original).
    """
    if getattr(hyperframe.frame, "_raw_data_repr", None) is not None:
        hyperframe.frame._raw_data_repr = _hex_head


def make_guarded_transport(
    blocked_networks: Iterable[str],
    *,
    resolve: Resolve = system_resolve,
    keepalive_expiry: float = 60.0,
    dns_ttl: float = 60.0,
    proxy: str | None = None,
    no_proxy: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    http2: bool = True,
) -> GuardedTransport:
    """The transport every index fetch goes through (see the module docstring)."""
    if http2:
        _cheapen_frame_reprs()
    backend = GuardedBackend(AddressPolicy(blocked_networks), resolve=resolve, dns_ttl=dns_ttl)
    return GuardedTransport(
        backend,
        proxies=ProxyRules(proxy, no_proxy, environ=environ),
        keepalive_expiry=keepalive_expiry,
        http2=http2,
    )
