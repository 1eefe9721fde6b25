"""The admin pages, server-rendered: the module's subscriptions grid, logs grid with
Lucene search, and trace page. No scripts, no external assets: `ae` works offline.

Every page needs a session (see `sessions`); every POST carries the session's CSRF
secret. Only an unscoped token may sign in: like the module's admin, the pages show
every event's deliveries, while scoped tokens are for API clients.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator

from .. import replay as replaying
from .. import trace as tracing
from ..errors import AeError, InputError, NotFound
from ..health import subscription_health
from ..states import DeliveryState
from ..tokens import ApiToken
from .api import digits_only
from .auth import backend
from .backend import SearchTimedOut
from .sessions import SignInRequired, check_csrf, current_user, login_url, safe_next, sign_in, sign_out

__all__ = ["router", "render", "current_user", "backend", "login_url"]

PAGE_SIZE = 50
RESPONSE_EXCERPT = 200

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
templates.env.globals["DeliveryState"] = DeliveryState
router = APIRouter(include_in_schema=False)


def admin(request: Request) -> ApiToken:
    user = current_user(request, backend(request))
    if user is None:
        raise SignInRequired(request)
    return user


Admin = Annotated[ApiToken, Depends(admin)]
FormId = Annotated[int, BeforeValidator(digits_only)]  # "1.0" is no id


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("user", None)
    context["csrf"] = request.session.get("csrf", "")
    context["flash"] = request.session.pop("flash", None)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def back_to(path: str, request: Request, message: str) -> RedirectResponse:
    request.session["flash"] = message
    return RedirectResponse(path, status_code=303)


STYLESHEET = (Path(__file__).parent / "templates" / "ae.css").read_bytes()


@router.get("/ae.css")
def stylesheet() -> Response:
    """The pages' stylesheet: a file of its own, since the CSP allows no inline style."""
    return Response(STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/")
def home(user: Admin) -> RedirectResponse:
    return RedirectResponse("/subscriptions", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/subscriptions") -> Response:
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "") -> Response:
    user = sign_in(request, backend(request), token)
    if user is None:
        return render(request, "login.html", 401, next=safe_next(next), error="Unknown or revoked token.")
    if not user.unscoped:
        return render(
            request,
            "login.html",
            403,
            next=safe_next(next),
            error=f"Token {user.name!r} is limited to {', '.join(user.events)}; "
            "the admin pages need a token for every event.",
        )
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, user: Admin, csrf: Annotated[str, Form()] = "") -> RedirectResponse:
    check_csrf(request, csrf)
    sign_out(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/subscriptions")
def subscriptions(request: Request, user: Admin) -> Response:
    with backend(request).use() as rt:
        rows = {s.subscription_id: s for s in rt.store.subscriptions.all()}
        counts = {c["subscription_id"]: c for c in rt.store.log.delivery_counts()}
        states = {h["subscription_id"]: h["state"] for h in subscription_health(rt.config, rt.store)}
    counted = ("attempts", DeliveryState.DELIVERED, DeliveryState.RETRYING, DeliveryState.DEAD_LETTERED)
    grid = [
        {**s.public(), **{k: counts.get(i, {}).get(k, 0) for k in counted}, "health": states.get(i, "")}
        for i, s in rows.items()
    ]
    return render(request, "subscriptions.html", user=user, rows=grid)


@router.get("/subscriptions/{subscription_id}")
def subscription_page(request: Request, subscription_id: int, user: Admin) -> Response:
    """One subscription: its settings and everything `ae subscriptions health` says of it."""
    with backend(request).use() as rt:
        try:
            subscription = rt.store.subscriptions.subscription(subscription_id, reveal=False).public()
        except NotFound as exc:
            return render(request, "error.html", 404, user=user, title="Not found", message=exc.message)
        (health,) = subscription_health(rt.config, rt.store, [subscription_id])
    return render(request, "subscription.html", user=user, s=subscription, h=health)


@router.post("/subscriptions")
def subscription_action(
    request: Request,
    user: Admin,
    action: Annotated[str, Form()] = "",
    ids: Annotated[list[FormId], Form()] = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The module's mass actions: enable, disable, replay the latest delivery of each."""
    check_csrf(request, csrf)
    if not ids:
        return back_to("/subscriptions", request, "Select at least one subscription.")
    with backend(request).use() as rt:
        if action in ("enable", "disable"):
            rt.store.subscriptions.set_status(ids, action == "enable")
            return back_to("/subscriptions", request, f"{action.capitalize()}d {_count(len(ids), 'subscription')}.")
        if action != "replay":
            raise InputError(f"unknown action {action!r}")
        done, problems = [], []
        for subscription_id in ids:
            uuid = rt.store.log.last_uuid(subscription_id)
            if uuid is None:
                problems.append(f"{subscription_id}: nothing delivered yet")
                continue
            try:
                replaying.replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
                done.append(uuid)
            except AeError as exc:
                problems.append(f"{subscription_id}: {exc.message}")
    message = f"Replayed {_count(len(done), 'delivery', 'deliveries')}."
    return back_to("/subscriptions", request, message + (" Skipped " + "; ".join(problems) + "." if problems else ""))


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@router.get("/logs")
def logs(request: Request, user: Admin, q: str = "", page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> Response:
    offset = (page - 1) * PAGE_SIZE
    error, mode, status = None, None, 200
    try:
        if q.strip():  # on the search lane, never under the lock other requests wait on
            hits = backend(request).search(q, PAGE_SIZE, offset)
            total, rows, mode = hits.total, hits.rows, hits.mode
        else:
            with backend(request).use() as rt:
                total, rows = rt.store.log.log_page(PAGE_SIZE, offset)
    except InputError as exc:
        total, rows, error, status = 0, [], exc.message, 400
    except SearchTimedOut as exc:
        total, rows, error, status = 0, [], f"{exc.message}; {exc.hint}", 503
    pages = max(1, math.ceil(total / PAGE_SIZE))
    return render(
        request,
        "logs.html",
        status,
        user=user,
        q=q,
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        offset=offset,
        error=error,
        mode=mode,
    )


@router.get("/trace/{uuid}")
def trace(request: Request, uuid: str, user: Admin) -> Response:
    with backend(request).use() as rt:
        try:
            data = tracing.trace(rt.store, uuid)
        except NotFound as exc:
            return render(request, "error.html", 404, user=user, title="Not found", message=exc.message)
    payload = json.dumps(data["payload"], indent=2, ensure_ascii=False, sort_keys=False)
    for attempt in data["attempts"]:
        text = attempt["response_data"] or ""
        attempt["excerpt"] = text if len(text) <= RESPONSE_EXCERPT else text[:RESPONSE_EXCERPT] + "…"
    return render(request, "trace.html", user=user, trace=data, payload=payload)


@router.post("/trace/{uuid}/replay")
def replay(request: Request, uuid: str, user: Admin, csrf: Annotated[str, Form()] = "") -> Response:
    check_csrf(request, csrf)
    with backend(request).use() as rt:
        try:
            result = replaying.replay(rt.store, rt.queue, rt.config.retry_policy, uuid)
        except NotFound as exc:
            return render(request, "error.html", 404, user=user, title="Not found", message=exc.message)
        except AeError as exc:
            return back_to(f"/trace/{quote(uuid)}", request, f"Not replayed: {exc.message}")
    due = str(result["next_attempt_at"])[:19]
    return back_to(f"/trace/{quote(uuid)}", request, f"Replayed: first attempt due at {due} UTC.")
