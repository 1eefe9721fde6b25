"""Search without an index (`indexing = false`): substring matching, as the module does.

What it accepts (anything else exits 2, naming what needs the index):
- the query is split into terms at spaces; a "quoted phrase" is one term;
  `AND` and a leading `+` are accepted and change nothing (all terms must match);
- a bare term, `data:value` or `data.any.path:value` must appear in the logged
  JSON body (case-insensitive for ASCII); the path is not checked;
- `uuid:`, `event_name:`, `log_id:` and `success:` compare with that column;
  `created:2026-01-31` matches entries created on that day (a prefix);
- `*` and `?` inside a term are wildcards;
- OR, NOT, `-`, parentheses and ranges need the index and are rejected.
"""

from __future__ import annotations

import re

from ..errors import InputError
from ..store import LogCondition, Store
from .query import BOOLEAN_WORDS, check_syntax
from .results import Hits, result

UNSUPPORTED = re.compile(r"(^|\s)(OR|NOT|ANDNOT|ANDMAYBE)(\s|$)|(^|[\s(])-|[()\[\]{}]")
TERM = re.compile(r'(?:(?P<field>[A-Za-z_][\w.]*):\s*)?(?:"(?P<phrase>[^"]*)"|(?P<word>\S+))')


def conditions(text: str) -> tuple[list[LogCondition], list[str]]:
    """The store conditions a query stands for, and the words to centre excerpts on."""
    checked = check_syntax(text)  # the same positions for the same mistakes
    bad = UNSUPPORTED.search(checked)
    if bad:
        raise InputError(
            f"query needs the search index: {bad.group(0).strip()!r} at position {bad.start() + 1} is not "
            "supported when settings.indexing = false (only terms, field:value pairs and AND)"
        )
    found: list[LogCondition] = []
    wanted: list[str] = []
    for match in TERM.finditer(checked):
        field, value = match["field"], match["phrase"] if match["phrase"] is not None else match["word"]
        if field is None and value in ("AND", "+"):
            continue
        value = value.lstrip("+") if field is None and match["phrase"] is None else value
        if field == "log_id":
            found.append(LogCondition("log_id", "equals", int(value)))
        elif field == "success":
            found.append(LogCondition("success", "equals", BOOLEAN_WORDS[value.lower()]))
        elif field in ("uuid", "event_name"):
            found.append(LogCondition(field, "like", value))
        elif field == "created":
            found.append(LogCondition("created", "starts", value.replace("T", " ").rstrip("Z")))
        else:
            found.append(LogCondition("serialized_data", "contains", value))
            wanted.append(re.split(r"[*?]", value)[0])
    return found, wanted


def substring_search(store: Store, text: str, limit: int | None = 100, offset: int = 0) -> Hits:
    found, wanted = conditions(text)
    total, rows = store.log.logs_matching(found, limit, offset)
    return Hits(total, [result(row, wanted) for row in rows], "substring")
