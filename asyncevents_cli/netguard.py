"""Where `ae` may send a webhook: recipient URL syntax and the SSRF guard.

Two checks, both pure apart from DNS:

- `check_recipient_url(url)` at subscribe time: the URL is accepted exactly
  when yarl, which aiohttp (the webhook client) parses URLs with, accepts it as
  an http(s) URL with a host, with no whitespace or control characters, a valid
  IDNA host and a port in 1..65535. A URL that the client refuses later would
  fail every delivery to it.
- `refusal(address, deny_private)` says why an address is off limits, and
  `resolve_checked(host, port, deny_private)` resolves a host and refuses it
  if *any* address it resolves to is: link-local and cloud-metadata addresses
  always (169.254.0.0/16, fe80::/10, fd00:ec2::254), and with the setting
  `deny_private_targets` everything that is not globally routable (loopback,
  private, multicast, reserved, IETF protocol assignments such as 192.0.0.8).
  An IPv6 address that carries an IPv4 one (mapped `::ffff:a.b.c.d`, compatible
  `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`) is
  judged by the IPv4 address too: a gateway on the path may deliver to it.
  Subscribe time checks the URL's host; delivery time must check again after
  resolving, because DNS can change.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from .errors import InputError
from .redaction import redact_url

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Refused whatever the settings: the instance-metadata services of the big
#: clouds live here, and no legitimate webhook receiver does.
ALWAYS_DENIED = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)
#: Metadata hostnames that resolve to the addresses above only inside a cloud.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
#: Not globally routable, though `ipaddress.is_global` says so on the Pythons we
#: support (3.11 predates the fix for 192.0.0.0/24 and 64:ff9b:1::/48).
NOT_GLOBAL = (
    ipaddress.ip_network("192.0.0.0/24"),
    ipaddress.ip_network("64:ff9b:1::/48"),
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL_LENGTH = 2048
LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
DOTTED_QUAD = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$")
FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f-\x9f\s]")

Resolver = Callable[[str, int], list[str]]


class TargetRefused(InputError):
    """A recipient the SSRF guard will not send to."""


def _bad(url: str, why: str) -> InputError:
    shown = redact_url(url)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return InputError(f"invalid recipient URL {shown!r}: {why}")


def _check_dns_name(url: str, host: str) -> None:
    """The host as it goes on the wire (IDNA, lower case) must be a valid DNS name.
    Underscores are allowed in ASCII names: internal service names use them."""
    import idna

    ascii_host = host.lower()
    try:
        if not ascii_host.isascii():
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        for label in ascii_host.split("."):
            if label.startswith("xn--"):
                idna.decode(label)  # an A-label must decode and round-trip
    except (idna.IDNAError, UnicodeError) as exc:
        raise _bad(url, f"host is not a valid internationalised domain name ({exc})") from exc
    labels = ascii_host.rstrip(".").split(".")
    if len(ascii_host) > 253 or not all(LABEL.match(label) for label in labels):
        raise _bad(url, "host is not a valid domain name")


def check_recipient_url(url: str) -> str:
    """Raise InputError unless yarl (aiohttp's URL parser) accepts `url` as an http(s)
    URL with a host and the checks below pass; return it unchanged."""
    import yarl

    if not isinstance(url, str) or not url:
        raise InputError("recipient URL must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise _bad(url, f"longer than {MAX_URL_LENGTH} characters")
    if FORBIDDEN_CHARACTERS.search(url):
        raise _bad(url, "contains whitespace or a control character (percent-encode it)")
    try:
        parsed = yarl.URL(url)
        host, port = parsed.host, parsed.explicit_port  # yarl decodes the host on first use
        bracketed = "[" in urlsplit(url).netloc  # yarl drops the brackets of [v1.x] too
    except Exception as exc:  # yarl raises several kinds (ValueError, TypeError, UnicodeError) for bad URLs
        raise _bad(url, str(exc) or exc.__class__.__name__) from exc
    if parsed.scheme not in ("http", "https"):
        raise _bad(url, "must be an http or https URL")
    if not host:
        raise _bad(url, "must name a host")
    if port is not None and not 0 < port < 65536:
        raise _bad(url, f"port {port} is out of range 1-65535")
    if parse_ip(host) is None:
        # yarl takes 300.1.1.1 and [v1.x] for names; they are bad addresses
        if DOTTED_QUAD.match(host):
            raise _bad(url, f"{host} is not a valid IPv4 address")
        if bracketed:
            raise _bad(url, f"[{host}] is not a valid IPv6 address")
        _check_dns_name(url, host)
    return url


def parse_ip(host: str) -> IPAddress | None:
    """The address a host names literally (IPv6 without brackets or zone), or None."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return address


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (mapped, compatible, NAT64, 6to4,
    Teredo server and client), which a translating gateway may connect to."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in NAT64 or 1 < int(ip) < 2**32:  # NAT64, or IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [address for address in found if address is not None]


def is_globally_routable(ip: IPAddress) -> bool:
    """The stdlib's is_global, less multicast and the ranges it misses (NOT_GLOBAL)."""
    if not ip.is_global or ip.is_multicast or ip.is_reserved:
        return False
    return not any(ip in network for network in NOT_GLOBAL if network.version == ip.version)


def refusal(address: IPAddress | str, deny_private: bool = False) -> str | None:
    """Why `address` may not receive webhooks (a phrase such as "a link-local or
    cloud-metadata address"), or None if it may. An IPv6 address is judged together
    with every IPv4 address it embeds."""
    ip = parse_ip(address) if isinstance(address, str) else address
    if ip is None:
        return f"{address!r} is not an IP address"
    judged = [ip, *embedded_ipv4(ip)]
    if any(a in network for a in judged for network in ALWAYS_DENIED if network.version == a.version):
        return "a link-local or cloud-metadata address"
    if deny_private and not all(is_globally_routable(a) for a in judged):
        return "a loopback, private or otherwise non-global address (deny_private_targets is on)"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, as the HTTP client would connect to it."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_name(host: str) -> str:
    """The host as DNS sees it; TargetRefused if it is a cloud-metadata name."""
    name = host.strip("[]").rstrip(".").lower()
    if name in METADATA_NAMES:
        raise TargetRefused(f"refused by the SSRF guard: {name} is a cloud-metadata host")
    return name


def check_addresses(host: str, addresses: list[str], deny_private: bool = False) -> list[str]:
    """`addresses` (what `host` resolved to) unless one of them is refused: TargetRefused."""
    literal = parse_ip(host) is not None
    for address in addresses:
        why = refusal(address, deny_private)
        if why is not None:
            where = f"{address} is" if literal else f"{check_name(host)} resolves to {address},"
            raise TargetRefused(f"refused by the SSRF guard: {where} {why}")
    return addresses


def resolve_checked(
    host: str, port: int, deny_private: bool = False, resolver: Resolver = system_resolver
) -> list[str]:
    """Resolve `host` and return its addresses, or raise TargetRefused if the name or
    any of its addresses is refused. DNS failures (OSError) propagate to the caller,
    which reports them as a failed attempt."""
    name = check_name(host)
    literal = parse_ip(name)
    addresses = [str(literal)] if literal is not None else resolver(name, port)
    return check_addresses(name, addresses, deny_private)


def check_target(url: str, deny_private: bool = False, resolver: Resolver = system_resolver) -> None:
    """Subscribe-time guard: refuse a recipient whose host is (or now resolves to) a
    refused address. A name that does not resolve yet is allowed: delivery checks again."""
    import yarl

    parsed = yarl.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    with contextlib.suppress(OSError):  # unresolvable today; the delivery-time check decides
        resolve_checked(parsed.host or "", port, deny_private, resolver)


def check_webhook_url(url: str, deny_private: bool = False) -> str:
    """An http notifier's recipient, as `HttpNotifier.check_recipient` and so `ae subscribe`
    check it: a URL both HTTP stacks accept, on a host the SSRF guard allows."""
    check_recipient_url(url)
    check_target(url, deny_private)
    return url


def describe_refusal(exc: TargetRefused) -> str:
    """What the delivery log keeps for a refused attempt: the refusal, nothing from the target."""
    return f"TargetRefused: {exc.message}"


__all__ = [
    "ALWAYS_DENIED",
    "TargetRefused",
    "check_addresses",
    "check_name",
    "check_recipient_url",
    "check_target",
    "describe_refusal",
    "embedded_ipv4",
    "is_globally_routable",
    "parse_ip",
    "refusal",
    "resolve_checked",
    "system_resolver",
]
