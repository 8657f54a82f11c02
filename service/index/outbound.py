"""Where fetches may connect: the address policy, checked on the address actually dialled.

An index URL, a file URL on its page or a redirect names a host; what the host resolves to is
decided by DNS, which an attacker may control. So the check cannot happen on the URL before the
request (DNS could answer differently a moment later, "DNS rebinding"): ``GuardedBackend`` is
the httpcore network backend under the one ``httpx.AsyncClient``, and for every new connection
it resolves the host once, refuses the host when any answer lies in a blocked network, and then
connects to exactly those validated addresses. TLS still verifies the certificate against the
URL's host name (httpcore passes it as SNI separately), so pinning the address weakens nothing.

The default blocked networks are the ones no package index lives on and an attacker would love
to reach: link-local (cloud metadata at 169.254.169.254, fd00:ec2::254), "this host" 0.0.0.0/8,
multicast and reserved ranges. Loopback and private ranges stay reachable because corporate
mirrors live there; an operator who wants them closed lists them in ``fetch.blocked_networks``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TypeAlias

import httpcore
import httpx

__all__ = [
    "AddressBlockedError",
    "AddressPolicy",
    "GuardedBackend",
    "Resolve",
    "make_guarded_transport",
    "system_resolve",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses to try, in order (a seam for tests: DNS answers on demand).
Resolve: TypeAlias = Callable[[str, int], Awaitable[list[str]]]


class AddressBlockedError(Exception):
    """A host resolved to an address in a blocked network; nothing was connected.

    Deliberately not an httpcore/httpx error: httpx passes it through unmapped, so the fetcher
    can report it as a policy refusal instead of retrying it as a flaky connection.
    """

    def __init__(self, host: str, addresses: Sequence[str]) -> None:
        listed = ", ".join(addresses)
        super().__init__(
            f"{host} resolves to {listed}, in a network that fetch.blocked_networks forbids"
        )
        self.host = host
        self.addresses = list(addresses)


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


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that validates and pins the addresses it connects to."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: Resolve = system_resolve,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._inner = inner or httpcore.AnyIOBackend()

    async def _addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(seconds):
                addresses = await self._resolve(host, port)
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
        # One bad answer condemns the host: a rebinding attacker mixes good and bad ones.
        blocked = [address for address in addresses if not self._policy.allows(address)]
        if blocked:
            raise AddressBlockedError(host, blocked)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
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


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response mapping, error mapping) over a guarded pool."""

    def __init__(self, backend: GuardedBackend, *, keepalive_expiry: float) -> None:
        super().__init__(http1=True, http2=False, trust_env=False)
        # httpx 0.28 has no public way to hand its pool a network backend (encode/httpx#3749
        # proposes one); the pool is replaced with one built the same way plus the backend.
        # httpx is pinned below 0.29 in pyproject for this reason.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=None,
            max_keepalive_connections=None,
            keepalive_expiry=keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=backend,
        )


def make_guarded_transport(
    blocked_networks: Iterable[str],
    *,
    resolve: Resolve = system_resolve,
    keepalive_expiry: float = 30.0,
) -> httpx.AsyncBaseTransport:
    """The transport every index fetch goes through (see the module docstring)."""
    backend = GuardedBackend(AddressPolicy(blocked_networks), resolve=resolve)
    return _GuardedTransport(backend, keepalive_expiry=keepalive_expiry)
