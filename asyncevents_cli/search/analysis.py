"""Turning a logged body into index terms, and query words into the same terms.

Plain Python (no whoosh), so it is cheap to test and the same rules serve
indexing and querying.

Words: `\\w+` runs joined by . @ ' + : / - are one word, lowercased, so emails,
SKUs, decimals and dates stay whole (`roni_cost@example.com`, `ws12-m-orange`,
`45.5`, `2026-04-09`). At index time the parts of a compound word are added
at the same position: `orange` finds `WS12-M-Orange`, `example.com` finds
every example.com address, and `2026` or `2026-04` find `2026-04-09`.
Decimals are not split (`45` does not find `45.5`).

Positions: the words of one value are consecutive; between two values (two
items of a list, or two fields) the position jumps by `VALUE_GAP`, as
Elasticsearch's position_increment_gap does, so a phrase never spans values.

Payload paths share one whoosh field, keyed word first: the term of word `w`
at path `p` is a class mark + `w` + `SEP` + `p`, the mark saying what kind of
word it is:
- `:` words without a digit (`:pending data.data.status`);
- `#` identifiers, words with a digit that are not numbers (`#ck00000042 data.data.increment_id`);
- `=` numbers as written (`=92.0 data.data.grand_total`).
A bare word (any path) is then one prefix of this field (`:pending `), so the
index keeps no separate field of words without paths. A body that is not JSON
keeps its words at the empty path (`:pending `). Splitting the marks lets a
prefix query such as `CK*` read one posting list: every identifier that starts
with a letter (`ck00000042`, `ws12-m-orange`, `mb01` inside `24-mb01`) also
gets its first 1..`MAX_PREFIX` characters as terms of a separate prefix field
(path first: `data.data.increment_id:ck`), while a prefix without digits
(`comp*`) only walks the few `:` words. A prefix that starts with a digit walks
the `#` and `=` words (dates, numbers, `24-mb01`). Numbers also get numeric
terms, so ranges compare numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

WORD_RE = re.compile(r"\w+(?:[.@'+:/-]\w+)*")
SEPARATOR_RE = re.compile(r"[.@'+:/-]+")
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}(-\d{2}(t\d{2}(:\d{2}(:\d{2}(\.\d+)?)?)?(z|[+-]\d{2}(:?\d{2})?)?)?)?$")
DATE_PARTS_RE = re.compile(r"[-:.tz+]")
HAS_LETTER = re.compile(r"[^\W\d_]")
HAS_DIGIT = re.compile(r"\d")

VALUE_GAP = 100
MAX_PREFIX = 6
WORD, IDENTIFIER, NUMBER = ":", "#", "="
MARKS = (WORD, IDENTIFIER, NUMBER)
# Between a word and its path in a `paths` term: below every character a word or
# a path holds, so a word's terms sort together, right after the word itself.
SEP = " "


def words(text: str) -> list[str]:
    """The words of a query value or of one logged value, lowercased."""
    return WORD_RE.findall(text.lower())


def parts(word: str) -> set[str]:
    """The parts of a compound word found on their own: the pieces between
    separators, and what precedes and follows each separator."""
    if DATE_RE.match(word):
        separators = list(DATE_PARTS_RE.finditer(word))
    elif HAS_LETTER.search(word) and SEPARATOR_RE.search(word):
        separators = list(SEPARATOR_RE.finditer(word))
    else:
        return set()  # a plain word, or a number: 45.5 stays whole
    found = set()
    last = 0
    for match in separators:
        found.add(word[last : match.start()])
        found.add(word[: match.start()])
        found.add(word[match.end() :])
        last = match.end()
    found.add(word[last:])
    found.discard("")
    found.discard(word)
    return found


def mark(word: str) -> str:
    """Which key space a word lives in: see the module docstring."""
    if not HAS_DIGIT.search(word):
        return WORD
    return NUMBER if NUMBER_RE.match(word) else IDENTIFIER


def path_term(path: str, word: str) -> str:
    """The `paths` term of `word` at `path` (see the module docstring)."""
    return mark(word) + word + SEP + path


def word_terms(word: str) -> str:
    """What every `paths` term of `word`, at any path, starts with."""
    return mark(word) + word + SEP


_field_names: dict[Any, str] = {}


def field_name(key: Any) -> str:
    """A JSON key as a field name: letters, digits and `_`; anything else becomes `_`."""
    name = _field_names.get(key)
    if name is None:
        name = re.sub(r"[^0-9A-Za-z_]", "_", str(key)) or "_"
        if len(_field_names) >= CACHE_SIZE:
            _field_names.clear()
        _field_names[key] = name
    return name


def flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(dotted path, scalar) for every scalar; list items share the list's path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from flatten(item, f"{path}.{field_name(key)}")
    elif isinstance(value, list):
        for item in value:
            yield from flatten(item, path)
    else:
        yield path, value


def as_text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "null" if value is None else str(value)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if NUMBER_RE.match(text):
        try:
            return float(text)
        except (ValueError, OverflowError):
            return None
    return None


# A word's pieces with their marks, and its prefixes: most words of a log recur
# (names, SKUs, statuses), so each is kept once worked out. Unique words (order
# numbers, emails) would fill the cache, so it starts again when it holds
# CACHE_SIZE words (about 8 MB): recurring words come back within a few rows.
CACHE_SIZE = 20_000
_expansions: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {}


def expand(word: str) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """((piece, mark) for the word and each of its parts, the identifier prefixes to index)."""
    found = _expansions.get(word)
    if found is None:
        pieces = tuple((piece, mark(piece)) for piece in (word, *parts(word)))
        prefixes = tuple(
            dict.fromkeys(
                piece[:end]
                for piece, kind in pieces
                if kind == IDENTIFIER and not piece[0].isdigit()
                for end in range(1, min(len(piece), MAX_PREFIX) + 1)
            )
        )
        found = (pieces, prefixes)
        if len(_expansions) >= CACHE_SIZE:
            _expansions.clear()
        _expansions[word] = found
    return found


class BodyTerms:
    """The terms of one logged body: `data` (every value, by word), `paths`
    (path-keyed words), `prefixes` (identifier prefixes) and `numbers` (path, number)."""

    __slots__ = ("data", "paths", "prefixes", "numbers")

    def __init__(self) -> None:
        self.data: dict[str, list[int]] = {}
        self.paths: dict[str, list[int]] = {}
        self.prefixes: set[str] = set()
        self.numbers: list[tuple[str, float]] = []

    def add_value(self, path: str, value: Any, position: int) -> int:
        """Add one scalar at `path` starting at `position`; return the next free position."""
        number = as_number(value)
        if number is not None and number == number and abs(number) != float("inf"):
            self.numbers.append((path, number))
        data, paths = self.data, self.paths
        prefixes = self.prefixes
        for word in words(as_text(value)):
            pieces, word_prefixes = expand(word)
            for piece, kind in pieces:
                data.setdefault(piece, []).append(position)
                paths.setdefault(kind + piece + SEP + path, []).append(position)
            for prefix in word_prefixes:
                prefixes.add(path + WORD + prefix)
            position += 1
        return position + VALUE_GAP


def body_terms(body: Any, max_chars: int | None = None) -> BodyTerms:
    """The terms of a parsed body; with `max_chars`, of its first `max_chars`
    characters of values and their paths only (the rest is not indexed)."""
    terms = BodyTerms()
    position = 0
    left = max_chars
    for path, value in flatten(body, "data"):
        if left is not None:
            text = as_text(value)
            left -= len(path)
            if len(text) > left:
                value = text[: max(left, 0)]  # cut: the rest of the body is not indexed
            left -= len(text)
        position = terms.add_value(path, value, position)
        if left is not None and left <= 0:
            break
    return terms


def plain_text_terms(text: str) -> BodyTerms:
    """A body that is not JSON is still searchable by its words (no paths)."""
    terms = BodyTerms()
    for position, word in enumerate(words(text)):
        for piece in (word, *parts(word)):
            terms.data.setdefault(piece, []).append(position)
    return terms


def phrase_matches(positions: list[list[int]], slop: int) -> bool:
    """Whether words at these positions (one list per word) stand in order, each at most
    `slop` positions after the one before (whoosh's SpanNear2 with mindist 1; slop 1 is
    consecutive)."""
    if not all(positions):
        return False
    later = [set(p) for p in positions[1:]]

    def follows(position: int, k: int) -> bool:
        if k == len(later):
            return True
        return any(position + step in later[k] and follows(position + step, k + 1) for step in range(1, slop + 1))

    return any(follows(start, 0) for start in positions[0])
