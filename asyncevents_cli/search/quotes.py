"""whoosh's single-quoted term (`'two words'`), found in linear time: see `SingleQuotes`."""

from __future__ import annotations

import bisect
import re
from typing import Any

from whoosh.qparser import SingleQuotePlugin


class SingleQuotes(SingleQuotePlugin):
    """whoosh's `'single quoted'` term, found in linear time.

    whoosh's pattern scans from every quote to the end of the line when no quote
    closes it, so a query of many stray quotes took time in the square of its
    length. A closing quote is one followed by a space, `]`, `)`, `}` or the end,
    on the same line; where none follows, the pattern cannot match and is not tried."""

    def __init__(self) -> None:
        super().__init__()
        # (text, closing quote positions, newline positions) of the query last seen:
        # one tuple, replaced whole, as threads of `ae serve` share the parser.
        self._seen: tuple[str, list[int], list[int]] = ("", [], [])

    def _scan(self, text: str) -> tuple[list[int], list[int]]:
        seen = self._seen
        if seen[0] is not text:
            closings = [m.start() for m in re.finditer(r"'(?=\s|\]|[)}]|$)", text)]
            seen = self._seen = (text, closings, [m.start() for m in re.finditer("\n", text)])
        return seen[1], seen[2]

    def match(self, parser: Any, text: str, pos: int) -> Any:
        if text[pos] != "'" or (pos and re.match(r"\w", text[pos - 1])):
            return None
        closings, newlines = self._scan(text)
        k = bisect.bisect_right(closings, pos)
        if k == len(closings):
            return None
        line = bisect.bisect_right(newlines, pos)
        if line < len(newlines) and newlines[line] < closings[k]:
            return None
        return super().match(parser, text, pos)  # matches, in one pass up to the closing quote
