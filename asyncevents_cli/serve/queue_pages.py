"""The admin pages about the queues: dead letters (list, requeue parked triggers, purge) and status
(queue depths, deliveries by subscription, the consumers' last logged activity).

As on the other pages: a session is needed, every POST carries the CSRF secret, and the two
changes (requeue, purge) are made only from their confirmation page, whose form says
`confirm=yes`; no scripts, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from .. import status as statuses
from .auth import backend
from .pages import Admin, back_to, render
from .sessions import check_csrf

router = APIRouter(include_in_schema=False)

#: Parked messages listed on the page (the CLI's `ae deadletters --limit` reaches further).
LISTED = 200
#: What each change does, as the confirmation page asks it.
CHANGES = {
    "requeue": "Put every parked trigger back on the trigger queue, as it was published?",
    "purge": "Delete every parked message for good? Parked retries can no longer be replayed from here.",
}


def _parked_at(epoch: float | None) -> str:
    return "" if epoch is None else datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _letter_row(row: dict[str, Any]) -> dict[str, Any]:
    """A parked message for the page: what it is in one phrase, the rest as the queue has it."""
    if "uuid" in row:
        what = f"subscription {row['subscription_id']}, death count {row['death_count']}"
    elif "event_name" in row:
        what = f"{row['event_name']} {json.dumps(row['arguments'], ensure_ascii=False)}"
    else:
        what = row.get("body", "")
    return {**row, "what": what, "parked": _parked_at(row.get("parked_at"))}


@router.get("/deadletters")
def dead_letters(request: Request, user: Admin) -> Response:
    with backend(request).use() as rt:
        rows = [_letter_row(r) for r in statuses.dead_letters(rt.queue, rt.store, LISTED)]
    triggers = sum(1 for r in rows if r["origin"] == "trigger")
    return render(request, "deadletters.html", user=user, rows=rows, triggers=triggers, listed=LISTED)


@router.get("/deadletters/{change}")
def confirm_change(request: Request, change: str, user: Admin) -> Response:
    if change not in CHANGES:
        return render(request, "error.html", 404, user=user, title="Not found", message=f"no such action {change!r}")
    with backend(request).use() as rt:
        count = len(statuses.dead_letters(rt.queue, rt.store, LISTED))
    return render(request, "confirm.html", user=user, change=change, question=CHANGES[change], count=count)


@router.post("/deadletters/{change}")
def make_change(
    request: Request,
    change: str,
    user: Admin,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    check_csrf(request, csrf)
    if change not in CHANGES:
        return render(request, "error.html", 404, user=user, title="Not found", message=f"no such action {change!r}")
    if confirm != "yes":  # a POST that skipped the question: ask it
        return RedirectResponse(f"/deadletters/{change}", status_code=303)
    with backend(request).use() as rt:
        if change == "requeue":
            message = f"Requeued {len(rt.queue.requeue_dead_triggers())} parked trigger(s)."
        else:
            message = f"Purged {rt.queue.purge_dead_letters()} dead letter(s)."
    return back_to("/deadletters", request, message)


@router.get("/status")
def status(request: Request, user: Admin) -> Response:
    with backend(request).use() as rt:
        data = statuses.status(rt.config, rt.store, rt.queue)
        newest = rt.store.log.recent_logs(limit=1)  # consumers log every attempt: the newest is their last act
    last_activity = newest[0]["created"][:19] if newest else None
    return render(request, "status.html", user=user, data=data, last_activity=last_activity)
