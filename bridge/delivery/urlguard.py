"""The guard that keeps webhooks off private networks (CONTRACT section 5).

A webhook URL must be `https` and its host must not be, or resolve to, an address that is not
publicly routable: loopback, private, link-local, multicast, shared, reserved and the like, also
when such an address hides inside an IPv6 form (IPv4-mapped, IPv4-compatible, 6to4, NAT64).
Hosts an operator lists in `delivery.allowed_hosts` are exempt, so tests can use 127.0.0.1.
URLs are parsed with httpx, the parser of the client that sends, so both read the same host.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Collection

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARS = re.compile(r"^[a-z0-9_.-]+$")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$")  # forms like 127.1, 2130706433, 0x7f.0.0.1
_AUTHORITY = re.compile(r"^[^:/?#]*:?//([^/?#]*)")

_BLOCKED = tuple(
    (ipaddress.ip_network(net), label)
    for net, label in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF special-purpose"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "documentation"),
        ("2001::/23", "IETF special-purpose"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeURL(Exception):
    """A webhook URL the bridge refuses to call; `reason` says why, for people (clients see it);
    `address` is the refused address a name resolved to, for the operator's log only."""

    def __init__(self, reason: str, *, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


async def check_url(
    url: str, *, allowed_hosts: Collection[str], resolve: Resolver | None = None
) -> list[IPAddress]:
    """Refuse an unsafe URL, resolving its host; return the addresses checked (none if allowed)."""
    parsed = _parse(url)
    if _is_allowed(parsed, allowed_hosts):
        return []
    _require_https(parsed)
    literal = _literal_ip(parsed.host)
    if literal is not None:
        _check_address(literal, host=None)
        return [literal]
    host = parsed.raw_host.decode("ascii")
    addresses = await _resolve(host, _port(parsed), resolve or _system_resolve)
    for address in addresses:
        _check_address(address, host=host)
    return addresses


def is_allowed_url(url: str, *, allowed_hosts: Collection[str]) -> bool:
    """Whether `url` is on a host the operator allowed: `check_url` returns [] without DNS."""
    try:
        return _is_allowed(_parse(url), allowed_hosts)
    except UnsafeURL:
        return False


def check_url_syntax(url: str, *, allowed_hosts: Collection[str]) -> None:
    """Refuse a URL that is unsafe on its face, without DNS (cheap early validation)."""
    parsed = _parse(url)
    if _is_allowed(parsed, allowed_hosts):
        return
    _require_https(parsed)
    literal = _literal_ip(parsed.host)
    if literal is not None:
        _check_address(literal, host=None)


def _refusal(address: IPAddress) -> str | None:
    """Why `address` must not be called (e.g. "private"), or None when it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return _refusal(embedded)
    for network, label in _BLOCKED:
        if address.version == network.version and address in network:
            return label
    if isinstance(address, ipaddress.IPv6Address) and address not in _GLOBAL_UNICAST_V6:
        return "reserved"
    # Belt and braces: whatever Python's own tables say is not public is not public either.
    if address.is_loopback or address.is_link_local or address.is_multicast:
        return "not publicly routable"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "not publicly routable"
    return None if address.is_global else "not publicly routable"


@functools.lru_cache(maxsize=4096)
def _parse(url: str) -> httpx.URL:
    """The URL parsed and checked on its face (kept: a watch's URL is checked at every send)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise UnsafeURL("not a valid URL") from None
    if parsed.scheme not in _DEFAULT_PORTS:
        raise UnsafeURL("the URL scheme must be https")
    authority = _AUTHORITY.match(url.strip())
    if parsed.userinfo or (authority is not None and "@" in authority.group(1)):
        raise UnsafeURL("the URL must not contain a user name or password")
    if not parsed.host:
        raise UnsafeURL("the URL has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UnsafeURL("the URL port is out of range")
    raw_host = parsed.raw_host.decode("ascii")
    # Only plain names and addresses: no zone ids, no percent-encoding, nothing to reinterpret.
    if "%" in raw_host or not (_HOST_CHARS.match(raw_host) or _literal_ip(raw_host)):
        raise UnsafeURL("the URL host is not a valid host name")
    return parsed


def _require_https(parsed: httpx.URL) -> None:
    if parsed.scheme != "https":
        raise UnsafeURL("the URL scheme must be https")


def _port(parsed: httpx.URL) -> int:
    return parsed.port or _DEFAULT_PORTS[parsed.scheme]


def _is_allowed(parsed: httpx.URL, allowed_hosts: Collection[str]) -> bool:
    """True if the host is listed, bare (any port) or as `host:port` (that port only)."""
    host = _normalize_host(parsed.raw_host.decode("ascii"))
    names = {host, _normalize_host(parsed.host)}
    port = _port(parsed)
    for entry in allowed_hosts:
        allowed_host, allowed_port = _split_entry(entry)
        if allowed_host in names and allowed_port in (None, port):
            return True
    return False


def _split_entry(entry: str) -> tuple[str, int | None]:
    entry = entry.strip()
    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?", entry)
    if bracketed:
        port = bracketed.group(2)
        return _normalize_host(bracketed.group(1)), int(port) if port else None
    host, sep, port = entry.rpartition(":")
    if sep and ":" not in host and port.isdigit():
        return _normalize_host(host), int(port)
    return _normalize_host(entry), None


def _normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _literal_ip(host: str) -> IPAddress | None:
    """The address a host names by itself, including the legacy IPv4 forms inet_aton accepts."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _check_address(address: IPAddress, *, host: str | None) -> None:
    reason = _refusal(address)
    if reason is None:
        return
    if host is None:
        raise UnsafeURL(f"{address} is a {reason} address")
    # Not the address itself: clients read this, and must not map the bridge's internal DNS.
    raise UnsafeURL(f"host {host!r} resolves to a {reason} address", address=str(address))


async def _resolve(host: str, port: int, resolve: Resolver) -> list[IPAddress]:
    try:
        found = await resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"cannot resolve host {host!r}") from None
    addresses: list[IPAddress] = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise UnsafeURL(f"cannot resolve host {host!r}") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"cannot resolve host {host!r}")
    return addresses


async def _system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]
