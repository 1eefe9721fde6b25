"""JSON as every part of `ae` can carry it: parsed once, at the edge, strictly.

Python's `json` accepts things that break later stages: `NaN` and `Infinity`
(sent on as invalid JSON), numbers such as `1e400` (infinite floats), lone
surrogates like `"\\ud800"` (cannot be encoded as UTF-8 when the body is
signed or logged), and nesting deep enough to raise RecursionError anywhere
that walks the value. `loads` refuses all of them with one `JsonRejected`
saying which, so publishers get exit 2 and consumers park the message.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

#: Deepest nesting of arrays and objects accepted. Real payloads nest a handful
#: of levels; this leaves room while keeping every recursive walk (encoders,
#: the search index, rich's renderer) far from Python's recursion limit.
MAX_DEPTH = 100
#: The largest payload, as compact JSON: what `ae publish` accepts, and what an
#: event's service may return (a larger one is parked, not delivered).
MAX_PAYLOAD_BYTES = 1024 * 1024
#: A JSON escape of a UTF-16 surrogate (\\ud800-\\udfff), paired or not.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JsonRejected(ValueError):
    """Text that is not JSON `ae` can carry; the message says why, in one line."""


def _reject_constant(name: str) -> Any:
    raise JsonRejected(f"{name} is not valid JSON (use null or a finite number)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JsonRejected(f"number {text[:40]} is too large")
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonRejected if arrays/objects nest deeper than `max_depth`; iterative, so
    a hostile value cannot exhaust the stack here."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise JsonRejected(f"nested deeper than {max_depth} levels")
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))


def check_encodable(value: Any) -> None:
    """Raise JsonRejected unless `value` serialises to JSON and encodes to UTF-8
    (a lone surrogate does not)."""
    try:
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise JsonRejected("contains a lone surrogate (\\ud800-\\udfff), which is not valid UTF-8") from error
    except (ValueError, TypeError, RecursionError) as exc:
        raise JsonRejected(f"cannot be serialised as JSON: {exc}") from exc


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text, refusing what `ae` could not send on; raises JsonRejected."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected(f"not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except JsonRejected:
        raise
    except RecursionError as error:
        raise JsonRejected(f"nested deeper than {max_depth} levels") from error
    except ValueError as exc:  # JSONDecodeError, and int() of a number too long to convert
        raise JsonRejected(f"not valid JSON: {exc}") from exc
    if isinstance(value, (dict, list)):
        if data.count("[") + data.count("{") > max_depth:  # fewer brackets cannot nest that deep
            check_depth(value, max_depth)
        if _may_hold_surrogates(data):
            check_encodable(value)
    elif isinstance(value, str) and _may_hold_surrogates(data):
        check_encodable(value)
    return value


def _may_hold_surrogates(text: str) -> bool:
    """False when what `text` parses to cannot hold a lone surrogate, so `check_encodable`
    has nothing to find: the text has none itself and no ``\\udXXX`` escape that could make
    one. (Parsed JSON is otherwise always serialisable: numbers are finite, nesting checked.)"""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return _SURROGATE_ESCAPE.search(text) is not None
