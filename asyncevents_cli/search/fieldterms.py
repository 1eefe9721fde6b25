"""The terms whoosh's own field types make of a value, through whoosh's public API,
without the per-token objects of `field.index()` where that is simple."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whoosh import fields
from whoosh.analysis import IDTokenizer, LowercaseFilter
from whoosh.util.numeric import to_sortable


def numeric_terms(field: fields.NUMERIC, number: Any) -> list[bytes]:
    """What `field.index(number)` yields as terms, converting the number once, not once per tier."""
    if isinstance(field, fields.DATETIME):
        number = field.prepare_datetime(number)
    x = to_sortable(field.numtype, field.bits, field.signed, field.prepare_number(number))
    if not field.shift_step:
        return [field.sortable_to_bytes(x)]
    return [field.sortable_to_bytes(x, shift) for shift in range(0, field.bits, field.shift_step)]


def _is_keyword(field: fields.FieldType) -> bool:
    """An ID field analysed as one lowercased token (index.build_schema's uuid and event_name)."""
    items = getattr(field.analyzer, "items", ())
    return isinstance(field, fields.ID) and [type(i) for i in items] == [IDTokenizer, LowercaseFilter]


def term_maker(field: fields.FieldType) -> Callable[[Any], list[bytes]]:
    """value -> the terms `field.index(value)` yields, without whoosh's per-token objects where that is simple."""
    if isinstance(field, fields.NUMERIC):
        return lambda value: numeric_terms(field, value)
    if _is_keyword(field):
        return lambda value: [value.lower().encode("utf-8")]
    return lambda value: [tbytes for tbytes, _, _, _ in field.index(value)]
