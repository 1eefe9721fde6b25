"""A subscription's own HTTP headers (e.g. ``Authorization: Bearer ...``): parsing and the refusals.

Refused, because they would break the request or the receiver's trust in it:
hop-by-hop headers (RFC 9110 section 7.6.1), ``Host`` and ``Content-Length``
(the transport's), the signature headers of every scheme, and the headers ae
sets itself and receivers rely on (``Content-Type``, ``Idempotency-Key``,
``x-ae-event``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..errors import InputError
from .signing import SIGNATURE_HEADERS

Headers = tuple[tuple[str, str], ...]  # (name, value) pairs, in the order given

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
AE_HEADERS = frozenset({"content-type", "idempotency-key", "x-ae-event"})
REFUSED = HOP_BY_HOP | {"host", "content-length"} | SIGNATURE_HEADERS | AE_HEADERS

TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
MAX_HEADERS = 32
MAX_VALUE_CHARS = 4096


def parse_header(line: str) -> tuple[str, str]:
    """``"Name: value"`` into its parts."""
    name, colon, value = line.partition(":")
    if not colon:
        raise InputError(f"a header must look like 'Name: value', got {line!r}")
    return name.strip(), value.strip()


def check_header(name: str, value: str) -> tuple[str, str]:
    if not TOKEN.match(name):
        raise InputError(f"invalid header name {name!r}")
    if name.lower() in REFUSED:
        raise InputError(f"header {name!r} cannot be set per subscription: {_why(name.lower())}")
    if not value:
        raise InputError(f"header {name!r} has no value")
    if any(c in value for c in "\r\n\0"):
        raise InputError(f"header {name!r}: the value must be one line")
    if len(value) > MAX_VALUE_CHARS:
        raise InputError(f"header {name!r}: the value is longer than {MAX_VALUE_CHARS} characters")
    return name, value


def check_headers(headers: Mapping[str, str] | Iterable[str]) -> Headers:
    """Validate headers given as ``"Name: value"`` lines or a name -> value mapping."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else [parse_header(h) for h in headers]
    if len(pairs) > MAX_HEADERS:
        raise InputError(f"at most {MAX_HEADERS} custom headers per subscription, got {len(pairs)}")
    seen: set[str] = set()
    checked = []
    for name, value in pairs:
        if not isinstance(name, str) or not isinstance(value, str):
            raise InputError("header names and values must be strings")
        name, value = check_header(name.strip(), value.strip())
        if name.lower() in seen:
            raise InputError(f"header {name!r} is given twice")
        seen.add(name.lower())
        checked.append((name, value))
    return tuple(checked)


def _why(lowered: str) -> str:
    if lowered in HOP_BY_HOP:
        return "it is a hop-by-hop header"
    if lowered in SIGNATURE_HEADERS:
        return "it is a signature header"
    if lowered in AE_HEADERS:
        return "ae sets it on every delivery"
    return "the HTTP client sets it"
