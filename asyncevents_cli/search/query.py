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
3. `rewrite` maps the parsed query onto the index's lean schema (payload
   fields become terms of the shared `paths`, `prefixes` and `numbers` fields,
   see `analysis`, and so do bare words: `pathqueries`), so `data.data.grand_total:[10 TO 50]` is a numeric range
   and `data.data.increment_id:CK*` reads one posting list; and it turns
   `a -b` (whoosh's AndNot, whose matcher lets some documents through that
   match both) into `a AND NOT b`.

The smaller language used when `indexing = false` is in `fallback`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from whoosh import query
from whoosh.fields import Schema
from whoosh.qparser import FieldsPlugin, PlusMinusPlugin, QueryParser, SingleQuotePlugin

from ..errors import InputError
from .analysis import IDENTIFIER, MARKS, MAX_PREFIX, NUMBER, NUMBER_RE, SEP, WORD, mark, path_term
from .documents import NUMBER_CODEC
from .pathqueries import AtPath, on_any_path, word_ranges
from .quotes import SingleQuotes

TOP_FIELDS = ("log_id", "uuid", "event_name", "success", "created", "data")
BOOLEAN_WORDS = {"true": 1, "false": 0, "yes": 1, "no": 0, "1": 1, "0": 0, "t": 1, "f": 0}

# A field name is letters, digits, `_` and dots, not starting with a digit; the
# colon may be followed by spaces (`success: true`), as people type it.
FIELD_RE = re.compile(r"(?P<text>[A-Za-z_][\w.]*):\s*")
WORD_RE = re.compile(r"[^\s()\"\[\]{}]+")
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2}(\.\d{1,6})?)?)?)?)?)?Z?$", re.IGNORECASE)
RANGE_TO = re.compile(r"^(?P<start>.*?)\s*(?:^|\s)TO(?:\s|$)\s*(?P<end>.*)$", re.IGNORECASE | re.DOTALL)
BINARY_OPS = {"AND", "OR", "ANDNOT", "ANDMAYBE"}
RANGE_CLOSE = re.compile(r"[\]}]")
RANGE_OPEN = re.compile(r"[\[{]")
RUN_RE = re.compile(r"\S+")
# Bounds that keep parsing linear and quick: whoosh's tagger tries each of its
# patterns at every character, and a pattern such as a field name's scans to
# the end of the run of characters it stands in, so a run's cost grows with its
# square. Runs of at most MAX_RUN characters make the whole parse linear in the
# query's length; MAX_QUERY_CHARS caps that length (about 50 ms to parse at worst).
MAX_QUERY_CHARS = 10_000
MAX_RUN = 1_000


def one_line(text: str) -> str:
    """The query as an error shows it: on one line, whatever line breaks it holds."""
    return " ".join(text.splitlines())


def malformed(what: str, position: int, text: str) -> InputError:
    return InputError(f"malformed query: {what} at position {position + 1}: {one_line(text)}")


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


def _range(text: str, i: int, field: str | None) -> _Token:
    """The range that starts at `i` (`[a TO b]` or `{a TO b}`), its bounds checked for `field`."""
    # Both searches stop at the first bracket, so scanning every range stays linear.
    found_close = RANGE_CLOSE.search(text, i)
    closing = found_close.start() if found_close else -1
    if closing < 0 or RANGE_OPEN.search(text, i + 1, closing):
        raise malformed(f"unclosed range '{text[i]}'", i, text)
    match = RANGE_TO.match(text[i + 1 : closing])
    if not match:
        raise malformed("a range needs TO, as in [10 TO 20]", i, text)
    if field:
        for bound in (match["start"], match["end"]):
            _check_value(field, bound.strip().strip("'"), i, text)
    return _Token("term", text[i : closing + 1], i)


def _field(match: re.Match[str], text: str) -> _Token:
    """A field name and its colon, checked: a known field, with a value after it."""
    name, i = match["text"], match.start()
    if name not in TOP_FIELDS and not is_payload_field(name):
        raise malformed(f"unknown field {name!r} (searchable: {', '.join(TOP_FIELDS)}, data.<json.path>)", i, text)
    if match.end() >= len(text) or text[match.end()] in ")":
        raise malformed(f"missing value after '{name}:'", i, text)
    return _Token("field", name, i)


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
            tokens.append(_range(text, i, field[0] if field else None))
            i += len(tokens[-1].text)
        elif c in "]}":
            raise malformed(f"unbalanced '{c}'", i, text)
        elif c in "+-" and (i == 0 or text[i - 1].isspace() or text[i - 1] == "("):
            tokens.append(_Token("sign", c, i))
            i += 1
            continue
        elif (match := FIELD_RE.match(text, i)) and not field:
            tokens.append(_field(match, text))
            field = (match["text"], i)
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


def check_length(text: str) -> None:
    """Refuse a query too long to parse quickly, before reading any of it twice."""
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"query too long: {len(text):,} characters, at most {MAX_QUERY_CHARS:,}")
    for run in RUN_RE.finditer(text):
        if run.end() - run.start() > MAX_RUN:
            raise InputError(
                f"malformed query: a run of {run.end() - run.start():,} characters without a space at position "
                f"{run.start() + 1} (at most {MAX_RUN:,})"
            )


def check_syntax(text: str) -> str:
    """Raise InputError (exit 2) with the position of the first problem; return the text to parse."""
    check_length(text)
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
    parser.remove_plugin_class(SingleQuotePlugin)
    parser.add_plugin(SingleQuotes())
    return parser


def _number(text: Any) -> float | None:
    if text is None or text == "":
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return float(text) if NUMBER_RE.match(str(text)) else None


def _numbers(
    path: str, start: float | None, end: float | None, startexcl: bool = False, endexcl: bool = False
) -> query.Query:
    """Numbers at `path` within [start, end]: whoosh's tiered numeric ranges, on path-keyed terms."""
    from whoosh.util.numeric import tiered_ranges

    codec = NUMBER_CODEC
    prefix = (path + NUMBER).encode()
    low = None if start is None else codec.prepare_number(start)
    high = None if end is None else codec.prepare_number(end)
    parts: list[query.Query] = []
    for low_n, high_n, shift in tiered_ranges(
        codec.numtype, codec.bits, codec.signed, low, high, codec.shift_step, startexcl, endexcl
    ):
        first = prefix + codec.sortable_to_bytes(low_n, shift)
        if low_n == high_n:
            parts.append(query.Term("numbers", first))
        else:
            parts.append(query.TermRange("numbers", first, prefix + codec.sortable_to_bytes(high_n, shift)))
    return query.Or(parts) if parts else query.NullQuery


def _prefix(path: str, text: str) -> query.Query:
    """`path:text*` over the three key spaces (see `analysis`)."""
    if not text:
        return query.Or([AtPath(query.Prefix("paths", space), path) for space in MARKS])
    if text[0].isdigit() or text[0] in "+-.":  # identifiers and numbers that start with a digit
        return query.Or([AtPath(query.Prefix("paths", space + text), path) for space in (IDENTIFIER, NUMBER)])
    parts: list[query.Query] = []
    if len(text) <= MAX_PREFIX:
        parts.append(query.Term("prefixes", path + WORD + text))  # every identifier, one posting list
    else:
        parts.append(AtPath(query.Prefix("paths", IDENTIFIER + text), path))
    if mark(text) == WORD:
        parts.append(AtPath(query.Prefix("paths", WORD + text), path))
    return query.Or(parts)


def _payload(q: query.Query) -> query.Query:
    """A leaf on a payload field (`data.<path>`), on the index's shared fields."""
    path = q.fieldname
    if isinstance(q, query.Term):
        text = str(q.text)
        term = query.Term("paths", path_term(path, text), boost=q.boost)
        number = _number(text)
        return query.Or([term, _numbers(path, number, number)]) if number is not None else term
    if isinstance(q, query.Phrase):
        return query.Phrase("paths", [path_term(path, w) for w in q.words], slop=q.slop, boost=q.boost)
    if isinstance(q, query.Prefix):
        return _prefix(path, str(q.text))
    if isinstance(q, query.Wildcard):
        return query.Or([query.Wildcard("paths", space + str(q.text) + SEP + path) for space in MARKS])
    if isinstance(q, query.TermRange):
        start, end = _number(q.start), _number(q.end)
        start_ok = start is not None or q.start in (None, "")
        end_ok = end is not None or q.end in (None, "")
        if start_ok and end_ok and (start is not None or end is not None):
            return _numbers(path, start, end, q.startexcl, q.endexcl)
        return query.Or([AtPath(words, path) for words in word_ranges(q)])
    if isinstance(q, query.Every):
        return _prefix(path, "")
    raise InputError(f"malformed query: {q} is not supported on a payload field")


def rewrite(q: query.Query) -> query.Query:
    """The parsed query, on the index's lean schema, with `a -b` made `a AND NOT b`."""
    if isinstance(q, query.AndNot):
        return query.And([rewrite(q.a), query.Not(rewrite(q.b))])
    if getattr(q, "fieldname", None) and q.is_leaf():
        if is_payload_field(q.fieldname):
            return _payload(q)
        if q.fieldname == "data":
            return on_any_path(q)
    return q.apply(rewrite)


def _errors(q: query.Query) -> Iterable[str]:
    if getattr(q, "error", None):
        yield str(q.error)
    if isinstance(q, query.Every) and not getattr(q, "fieldname", None):
        yield "'*:*' matches everything; search for a term or a field (see `ae search --help`)"
    for child in q.children():
        yield from _errors(child)


_parsers: dict[int, tuple[Schema, QueryParser]] = {}


def _parser(schema: Schema) -> QueryParser:
    """One parser per schema object: building one costs more than parsing."""
    kept = _parsers.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = _parsers[id(schema)] = (schema, make_parser(schema))
    return kept[1]


def parse(text: str, schema: Schema) -> query.Query:
    """Check and parse a user's query into a whoosh query over `schema`, as written."""
    checked = check_syntax(text)
    try:
        q = _parser(schema).parse(checked)
    except Exception as exc:  # parsing is pure: any failure is the query's
        # whoosh's parser raises on a few inputs the syntax check lets by, such as
        # a phrase on a boolean field (`success:""`) or `NOT NOT x`.
        raise InputError(f"malformed query: whoosh cannot parse it: {one_line(text)}") from exc
    for error in _errors(q):
        raise InputError(f"malformed query: {error}: {one_line(text)}")
    return q


def parse_for_index(text: str, schema: Schema) -> tuple[query.Query, list[str]]:
    """The query to run on the index, and the payload words to centre excerpts on."""
    q = parse(text, schema)
    return rewrite(q), needles(q)


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
