"""When a catch-up's commit merges small segments (whoosh's `mergetype`), through whoosh's public API."""

from __future__ import annotations

from typing import Any

MERGE_AT = 10  # small segments an index may hold before a commit merges some


def merge_small_segments(writer: Any, segments: list[Any]) -> list[Any]:
    """A merge policy (whoosh's `mergetype`) for catch-ups, which add one small segment each.

    Once MERGE_AT segments hold fewer than `writer.merge_below` documents, the
    smallest are merged into this commit's segment, up to `merge_below` documents
    in all. Larger segments (those of a build) are never merged: a merge holds its
    postings in memory, as a build does, and whoosh's own MERGE_SMALL would merge
    half of a 100,000-row index through its posting pool (96 s for one catch-up)."""
    from whoosh.reading import SegmentReader

    limit = writer.merge_below
    small = sorted((s for s in segments if s.doc_count_all() < limit), key=lambda s: s.doc_count_all())
    if len(small) < MERGE_AT:
        return segments
    taken: list[Any] = []
    total = 0
    for segment in small:
        if taken and total + segment.doc_count_all() > limit:
            break
        taken.append(segment)
        total += segment.doc_count_all()
    if len(taken) < 2:
        return segments
    for segment in taken:
        reader = SegmentReader(writer.storage, writer.schema, segment)
        writer.add_reader(reader)
        reader.close()
    return [s for s in segments if s not in taken]
