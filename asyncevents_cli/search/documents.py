"""What the index holds: its whoosh schema, and the document of one delivery_log row.

Schema (one document per delivery attempt), lean on purpose: whoosh's cost is
per field, per term and per posting, so payload paths share fields (see
`analysis` for the terms):
- `log_id` int (a sortable column: results come newest first), `uuid`
  (lowercased, a column only: see `UuidField`), `event_name` (one
  lowercased token), `success` boolean, `created` datetime (UTC, a column
  only: see `segment.CreatedField`);
- `paths`: `<mark><word> <path>` for every word, with positions: a bare word
  is the prefix `<mark><word> ` (see `analysis`; a body that is not JSON
  has its words at the empty path);
- `data` is declared for the query parser (the default field of bare words,
  which `query.rewrite` turns into `paths` queries); no document holds it;
- `prefixes`: the first characters of identifiers, so `CK*` is one term;
- `numbers`: `<path>=` + whoosh's sortable numeric terms, for ranges;
- `data.*` is declared so the query parser knows payload field names; no
  document ever holds one.

Only the first `MAX_INDEXED_CHARS` characters of a logged body are indexed, so
one log adds a bounded amount to the index (a 900 KB payload made a 42 MB
index); the log itself keeps the whole body, and `ae trace` shows it.

Both the index (`index`) and its worker processes (`parallel`) import this
module; it imports neither, so the three form no cycle.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from whoosh import analysis as whoosh_analysis
from whoosh import fields, formats
from whoosh.codec.whoosh3 import W3Codec
from whoosh.system import emptybytes

from .analysis import WORD_RE, BodyTerms, body_terms, path_term, plain_text_terms
from .fieldterms import numeric_terms
from .segment import CreatedField

# Text of a logged body past this many characters is not indexed (see above): a
# long order is about 2,000 characters, so searches find whole typical payloads;
# the worst case (16 KiB of distinct identifiers) adds about 0.6 MB.
MAX_INDEXED_CHARS = 16 * 1024


def query_analyzer() -> whoosh_analysis.Analyzer:
    """How the query parser splits a value: the words of `analysis.words`."""
    return whoosh_analysis.RegexTokenizer(WORD_RE.pattern) | whoosh_analysis.LowercaseFilter()


class TermsField(fields.FieldType):
    """A field whose document value is already terms: {term: [positions]} or a set of terms.

    Skipping whoosh's analyzer pipeline at index time is part of the speed:
    `analysis` builds the terms once for all four fields, and `segment.BulkWriter`
    takes them as they are (`index()` serves whoosh's own writer, which tests
    compare it with)."""

    prebuilt_terms = True

    def __init__(self, positions: bool) -> None:
        # Not scorable: search never scores (results come newest first), so no
        # field keeps per-document lengths.
        super().__init__(formats.Positions() if positions else formats.Existence(), query_analyzer(), scorable=False)

    def index(self, value: Any, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        if isinstance(value, dict):
            encode = self.format.encode
            for term, positions in value.items():
                yield term.encode("utf-8"), len(positions), float(len(positions)), encode(positions)
        else:
            for term in value:
                yield (term if isinstance(term, bytes) else term.encode("utf-8")), 1, 1.0, emptybytes

    def to_bytes(self, value: Any) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode("utf-8")


class LeanCodec(W3Codec):
    """whoosh's codec without per-posting length statistics (they serve scoring,
    which search never does: results are ordered by log_id), its posting blocks
    compressed at zlib's fastest level: a 40-segment index of 100,000 bench rows
    went from 258 to 230 MB, and a block of up to 128 postings decompresses in
    microseconds. (Rare terms keep their postings inline in the term table,
    which `BulkWriter` writes itself: whoosh-reloaded 2.7.5's `inlinelimit` fails,
    `W3TermInfo` has no `set_inline`.)"""

    length_stats = False

    def __init__(self) -> None:
        super().__init__(compression=1)


# The numeric encoding of payload numbers: whoosh's, in 2 tiers, the full 64 bits
# and the top 16 (sign, exponent and 4 bits of mantissa: 1/16 of a power of two).
# Each tier of a value is a term, and a tier fine enough to tell two prices apart
# is a term of its own for nearly every value: the 16- and 32-bit tiers of 4 tiers
# of 16 bits cost 2 terms per number and were a sixth of the index. A range reads
# the coarse terms inside it and the exact values in its two edge sixteenths.
NUMBER_CODEC = fields.NUMERIC(float, 64, shift_step=48)


class UuidField(fields.ID):
    """A log's uuid, lowercased, kept as a column only: `matching` compares it as its
    one term would be compared (every attempt has its own uuid, so its terms were a
    unique term per attempt, 12 of the 69 MB of 100,000 bench rows)."""

    def __init__(self, analyzer: Any) -> None:
        super().__init__(sortable=True, analyzer=analyzer)
        self.indexed = False

    def to_column_value(self, value: Any) -> bytes:
        return str(value).lower().encode("utf-8")


def number_terms(terms: BodyTerms) -> set[bytes]:
    out: set[bytes] = set()
    for path, number in terms.numbers:
        prefix = (path + "=").encode()
        for term in numeric_terms(NUMBER_CODEC, number):
            out.add(prefix + term)
    return out


def build_schema() -> fields.Schema:
    keyword = whoosh_analysis.IDTokenizer() | whoosh_analysis.LowercaseFilter()
    schema = fields.Schema(
        log_id=fields.NUMERIC(int, 64, sortable=True, shift_step=16),
        uuid=UuidField(analyzer=keyword),
        event_name=fields.ID(analyzer=keyword),
        success=fields.BOOLEAN(),
        created=CreatedField(),
        data=TermsField(positions=True),  # for the parser only
        paths=TermsField(positions=True),
        prefixes=TermsField(positions=False),
        numbers=TermsField(positions=False),
    )
    schema.add("data.*", fields.TEXT(analyzer=query_analyzer()), glob=True)  # for the parser only
    return schema


@functools.lru_cache(maxsize=1)
def parser_schema() -> fields.Schema:
    """The schema queries are parsed with: the index's, built once per process
    (reading it from the index would read the table of contents again)."""
    return build_schema()


def log_document(row: dict[str, Any]) -> dict[str, Any]:
    """The index document of one delivery_log row."""
    serialized = row["serialized_data"] or ""
    try:
        terms = body_terms(json.loads(serialized), MAX_INDEXED_CHARS)
    except ValueError:
        terms = plain_text_terms(serialized[:MAX_INDEXED_CHARS])  # not JSON: still searchable as words
        terms.paths = {path_term("", word): positions for word, positions in terms.data.items()}
    doc: dict[str, Any] = {
        "log_id": int(row["log_id"]),
        "uuid": row["uuid"] or "",
        "event_name": row["event_name"] or "",
        "success": bool(row["success"]),
        "created": datetime.fromisoformat(row["created"][:26]),  # "2026-01-31 10:00:00.123456"
    }
    if terms.paths:
        doc["paths"] = terms.paths
    if terms.prefixes:
        doc["prefixes"] = terms.prefixes
    if terms.numbers:
        doc["numbers"] = number_terms(terms)
    return doc
