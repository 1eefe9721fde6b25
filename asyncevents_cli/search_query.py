"""The `ae search` query language: checking, parsing and rewriting Lucene-style queries.

Whoosh's query parser is lenient: it silently drops an unbalanced parenthesis,
reads a dotted field name as words, and treats `-` inside `WS12-M-Orange` as
NOT. Users of a log search need the opposite, so a query goes through three
steps here:

1. `check_syntax` scans the text itself and raises `InputError` naming the
   problem and its 1-based position (unbalanced brackets or quotes, unknown
   field, a range without TO, a dangling operator, a bad number or date);
2. `parse` runs a whoosh `QueryParser` configured for Lucene habits (dotted
   field names, an optional space after the colon, +/- only at the start of a
   term, `*` as an open range end);
3. numeric comparisons on payload fields are rewritten to the hidden numeric
   twin fields (`num.data...`), so `data.data.grand_total:[10 TO 50]` is a
   numeric range, not a string range.

`fallback_where` is the much smaller language used when `indexing = false`:
every term is a case-insensitive substring of the logged data (see its docstring).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from whoosh import query
from whoosh.fields import Schema
from whoosh.qparser import FieldsPlugin, PlusMinusPlugin, QueryParser

from .errors import InputError

TOP_FIELDS = ("log_id", "uuid", "event_name", "success", "created", "data")
NUMERIC_PREFIX = "num."  # hidden twin of every payload field holding a number
BOOLEAN_WORDS = {"true": 1, "false": 0, "yes": 1, "no": 0, "1": 1, "0": 0, "t": 1, "f": 0}

# A field name is letters, digits, `_` and dots, not starting with a digit; the
# colon may be followed by spaces (`success: true`), as people type it.
FIELD_RE = re.compile(r"(?P<text>[A-Za-z_][\w.]*):\s*")
WORD_RE = re.compile(r"[^\s()\"\[\]{}]+")
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?)?)?Z?$", re.IGNORECASE)
RANGE_TO = re.compile(r"^(?P<start>.*?)\s*(?:^|\s)TO(?:\s|$)\s*(?P<end>.*)$", re.IGNORECASE | re.DOTALL)
BINARY_OPS = {"AND", "OR", "ANDNOT", "ANDMAYBE"}


def malformed(what: str, position: int, text: str) -> InputError:
    return InputError(f"malformed query: {what} at position {position + 1}: {text}")


def is_payload_field(name: str) -> bool:
    return name.startswith("data.") and len(name) > 5 and ".." not in name and not name.endswith(".")


@dataclass
class _Token:
    kind: str  # term, field, op, not, sign, open, close
    text: str
    pos: int


def _check_value(field: str, value: str, pos: int, text: str) -> None:
    """Values the typed top-level fields cannot hold, caught before whoosh turns them into nothing."""
    if value in ("", "*"):
        return
    if field == "log_id" and not re.fullmatch(r"\d+", value):
        raise malformed(f"log_id needs a whole number, got {value!r}", pos, text)
    if field == "success" and value.lower() not in BOOLEAN_WORDS:
        raise malformed(f"success is true or false, got {value!r}", pos, text)
    if field == "created" and not DATE_RE.match(value):
        raise malformed(f"created needs a date like 2026-01-31 or 2026-01-31T10:00:00, got {value!r}", pos, text)


def _tokens(text: str) -> list[_Token]:
    """Scan the query, checking what whoosh would silently forgive."""
    tokens: list[_Token] = []
    parens: list[int] = []
    field: tuple[str, int] | None = None  # a field name waiting for its value
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if c == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise malformed("unclosed quote", i, text)
            tokens.append(_Token("term", text[i : end + 1], i))
            i = end + 1
        elif c == "(":
            parens.append(i)
            tokens.append(_Token("open", c, i))
            i += 1
            continue  # the group is the field's value: `event_name:(a OR b)`
        elif c == ")":
            if not parens:
                raise malformed("unbalanced ')'", i, text)
            parens.pop()
            tokens.append(_Token("close", c, i))
            i += 1
        elif c in "[{":
            closing = min((p for p in (text.find("]", i), text.find("}", i)) if p >= 0), default=-1)
            nested = min((p for p in (text.find("[", i + 1), text.find("{", i + 1)) if p >= 0), default=n)
            if closing < 0 or nested < closing:
                raise malformed(f"unclosed range '{c}'", i, text)
            match = RANGE_TO.match(text[i + 1 : closing])
            if not match:
                raise malformed("a range needs TO, as in [10 TO 20]", i, text)
            if field:
                for bound in (match["start"], match["end"]):
                    _check_value(field[0], bound.strip().strip("'"), i, text)
            tokens.append(_Token("term", text[i : closing + 1], i))
            i = closing + 1
        elif c in "]}":
            raise malformed(f"unbalanced '{c}'", i, text)
        elif c in "+-" and (i == 0 or text[i - 1].isspace() or text[i - 1] == "("):
            tokens.append(_Token("sign", c, i))
            i += 1
            continue
        elif (match := FIELD_RE.match(text, i)) and not field:
            name = match["text"]
            if name not in TOP_FIELDS and not is_payload_field(name):
                raise malformed(
                    f"unknown field {name!r} (searchable: {', '.join(TOP_FIELDS)}, data.<json.path>)", i, text
                )
            if match.end() >= n or text[match.end()] in ")":
                raise malformed(f"missing value after '{name}:'", i, text)
            tokens.append(_Token("field", name, i))
            field = (name, i)
            i = match.end()
            continue
        else:
            word = WORD_RE.match(text, i)
            assert word is not None  # c is none of the characters WORD_RE excludes
            value = word.group(0)
            kind = "op" if value in BINARY_OPS else "not" if value == "NOT" and not field else "term"
            if field:
                _check_value(field[0], value, i, text)
            tokens.append(_Token(kind, value, i))
            i = word.end()
        field = None
    if parens:
        raise malformed("unclosed '('", parens[-1], text)
    return tokens


def _check_operators(tokens: list[_Token], text: str) -> None:
    """AND/OR need a term on both sides; NOT, +, - and a field need one after them."""
    starts = {"term", "open", "field", "not", "sign"}
    for k, token in enumerate(tokens):
        before = tokens[k - 1] if k else None
        after = tokens[k + 1] if k + 1 < len(tokens) else None
        if token.kind == "op" and (before is None or before.kind not in ("term", "close")):
            raise malformed(f"{token.text} needs a term before it", token.pos, text)
        if token.kind in ("op", "not", "sign") and (after is None or after.kind not in starts):
            raise malformed(f"{token.text} needs a term after it", token.pos, text)
        if token.kind == "open" and after is not None and after.kind == "close":
            raise malformed("empty parentheses", token.pos, text)


def normalize_open_ranges(text: str) -> str:
    """Lucene writes an open range end as `*` (`[2026-01-01 TO *]`); whoosh leaves it empty."""
    text = re.sub(r"([\[{])\s*\*\s+(?=TO\b)", r"\1", text, flags=re.IGNORECASE)
    return re.sub(r"\b(TO)\s+\*\s*([\]}])", r"\1\2", text, flags=re.IGNORECASE)


def check_syntax(text: str) -> str:
    """Raise InputError (exit 2) with the position of the first problem; return the text to parse."""
    if not text.strip():
        raise InputError("malformed query: the query is empty")
    tokens = _tokens(text)
    _check_operators(tokens, text)
    return normalize_open_ranges(text)


def make_parser(schema: Schema) -> QueryParser:
    """A whoosh parser for Lucene-style queries over the delivery-log schema.

    - the default field is `data`, so a bare term searches every payload value;
    - terms without an operator must all match (whoosh's AND default);
    - `FieldsPlugin` accepts dotted names and a space after the colon;
    - `+`/`-` mark required/prohibited terms only at the start of a term, so
      `24-MB01` and uuids stay whole.
    """
    parser = QueryParser("data", schema)
    parser.replace_plugin(FieldsPlugin(expr=FIELD_RE.pattern))
    parser.add_plugin(PlusMinusPlugin(r"(?<![^\s(])\+", r"(?<![^\s(])-"))
    return parser


def _number(text: Any) -> float | None:
    if text is None or text == "":
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return float(text) if NUMBER_RE.match(str(text)) else None


def _rewrite_numbers(q: query.Query) -> query.Query:
    """Send numeric comparisons on payload fields to their numeric twins."""
    if isinstance(q, query.TermRange) and is_payload_field(q.fieldname):
        start, end = _number(q.start), _number(q.end)
        start_ok = start is not None or q.start in (None, "")
        end_ok = end is not None or q.end in (None, "")
        if start_ok and end_ok and (start is not None or end is not None):
            return query.NumericRange(
                NUMERIC_PREFIX + q.fieldname, start, end, startexcl=q.startexcl, endexcl=q.endexcl, boost=q.boost
            )
        return q
    if isinstance(q, query.Term) and is_payload_field(q.fieldname):
        value = _number(q.text)
        if value is not None:
            # Either the text as written (`92.0`) or the same number (`92`).
            return query.Or([q, query.NumericRange(NUMERIC_PREFIX + q.fieldname, value, value)])
        return q
    return q.apply(_rewrite_numbers)


def _errors(q: query.Query) -> Iterable[str]:
    if getattr(q, "error", None):
        yield str(q.error)
    if isinstance(q, query.Every) and not getattr(q, "fieldname", None):
        yield "'*:*' matches everything; search for a term or a field (see `ae search --help`)"
    for child in q.children():
        yield from _errors(child)


def parse(text: str, schema: Schema) -> query.Query:
    """Check and parse a user's query into a whoosh query over `schema`."""
    checked = check_syntax(text)
    q = make_parser(schema).parse(checked)
    for error in _errors(q):
        raise InputError(f"malformed query: {error}: {text}")
    return _rewrite_numbers(q)


def needles(q: query.Query) -> list[str]:
    """Payload words the query looks for, to centre an excerpt on."""
    found: list[str] = []
    for leaf in q.leaves():
        name = getattr(leaf, "fieldname", "")
        if name != "data" and not is_payload_field(name):
            continue
        words = getattr(leaf, "words", None) or [getattr(leaf, "text", None)]
        for word in words:
            if isinstance(word, str):
                word = re.split(r"[*?]", word)[0]
                if word:
                    found.append(word)
    return found


def excerpt(serialized: str, wanted: Iterable[str], width: int = 80) -> str:
    """About `width` characters of the logged body around the first match."""
    lowered = serialized.lower()
    hits = [p for p in (lowered.find(w.lower()) for w in wanted) if p >= 0]
    start = max(0, min(hits) - width // 3) if hits else 0
    piece = serialized[start : start + width]
    return ("…" if start else "") + piece + ("…" if start + width < len(serialized) else "")


# -- the fallback without an index ----------------------------------------

FALLBACK_UNSUPPORTED = re.compile(r"(^|\s)(OR|NOT|ANDNOT|ANDMAYBE)(\s|$)|(^|[\s(])-|[()\[\]{}]")


def _like(value: str) -> str:
    """A LIKE pattern: `*` and `?` are wildcards; `%`, `_` and `\\` are literal."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def fallback_where(text: str) -> tuple[str, list[Any], list[str]]:
    """The SQL condition for a query when `indexing = false`: (where, params, needles).

    The module falls back to a substring match on the logged data; so does ae:
    - the query is split into terms at spaces; a "quoted phrase" is one term;
      `AND` and a leading `+` are accepted and change nothing (all terms must match);
    - a bare term, `data:value` or `data.any.path:value` must appear in the logged
      JSON body (case-insensitive for ASCII); the path is not checked;
    - `uuid:`, `event_name:`, `log_id:` and `success:` compare with that column;
      `created:2026-01-31` matches entries created on that day (a prefix);
    - `*` and `?` inside a term are wildcards;
    - OR, NOT, `-`, parentheses and ranges need the index and are rejected (exit 2).
    """
    checked = check_syntax(text)  # the same positions for the same mistakes
    bad = FALLBACK_UNSUPPORTED.search(checked)
    if bad:
        raise InputError(
            f"query needs the search index: {bad.group(0).strip()!r} at position {bad.start() + 1} is not "
            "supported when settings.indexing = false (only terms, field:value pairs and AND)"
        )
    clauses: list[str] = []
    params: list[Any] = []
    wanted: list[str] = []
    for match in re.finditer(r'(?:(?P<field>[A-Za-z_][\w.]*):\s*)?(?:"(?P<phrase>[^"]*)"|(?P<word>\S+))', checked):
        field, value = match["field"], match["phrase"] if match["phrase"] is not None else match["word"]
        if field is None and value in ("AND", "+"):
            continue
        value = value.lstrip("+") if field is None and match["phrase"] is None else value
        if field == "log_id":
            clauses.append("log_id = ?")
            params.append(int(value))
        elif field == "success":
            clauses.append("success = ?")
            params.append(BOOLEAN_WORDS[value.lower()])
        elif field in ("uuid", "event_name"):
            clauses.append(f"{field} LIKE ? ESCAPE '\\'")
            params.append(_like(value))
        elif field == "created":
            clauses.append("created LIKE ? ESCAPE '\\'")
            params.append(_like(value.replace("T", " ").rstrip("Z")) + "%")
        else:
            clauses.append("serialized_data LIKE ? ESCAPE '\\'")
            params.append("%" + _like(value) + "%")
            wanted.append(re.split(r"[*?]", value)[0])
    return " AND ".join(clauses) or "1", params, wanted
