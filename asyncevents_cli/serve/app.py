"""The application factory: the REST API, the admin pages, and one error shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from ..database_errors import describe as describe_database_error
from ..database_errors import driver_errors
from ..errors import AeError, reveal_causes
from ..runtime import Runtime, debug_enabled
from ..version import __version__
from . import api, metrics, pages, queue_pages
from .backend import Backend
from .errors import ApiError, from_ae_error
from .guard import RequestGuard
from .sessions import COOKIE, MAX_AGE, CsrfFailed, SignedOut, SignInRequired, signed_out_path, signing_key

log = logging.getLogger("ae.serve")


def _validation_message(request: Request, exc: RequestValidationError) -> str:
    """The first problem, named by where it is: `asyncEvent.event_name: Field required`."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    where = ".".join(str(part) for part in loc[1:])
    if loc[:1] == ("body",):
        if first.get("type") == "json_invalid":
            return "the body is not valid JSON"
        content_type = request.headers.get("content-type", "")
        if content_type and "json" not in content_type:
            return f"send the body as JSON, with 'Content-Type: application/json' (got {content_type!r})"
        if not where:
            if first.get("type") == "missing":
                return "a JSON body is required"
            return "the body must be a JSON object"
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with its 422 answers replaced by the 400 this API really gives."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/rest/") or request.url.path in ("/openapi.json", "/metrics")


def _answer(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """An error as JSON `{"message"}` for the API, as a page for a browser."""
    if _is_api(request):
        return JSONResponse({"message": message}, status, headers=headers)
    title = {400: "Bad request", 403: "Forbidden", 404: "Not found", 405: "Method not allowed"}.get(status, "Error")
    user = pages.current_user(request, pages.backend(request)) if "session" in request.scope else None
    if user is None and status != 404:
        message = ""  # never a hint of the data to someone signed out
    return pages.render(request, "error.html", status, user=user, title=title, message=message)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="ae",
        version=__version__,
        description="The Magento async events module's REST subscription API, served by `ae serve`.",
        docs_url=None,  # the interactive docs load scripts from a CDN; ae works offline
        redoc_url=None,
    )
    app.state.backend = Backend(runtime)
    app.state.signed_out = SignedOut(signed_out_path(runtime.config))
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(queue_pages.router)
    settings = runtime.config.settings
    # Inside the session middleware, so that a page POST's session is known before its body is read.
    app.add_middleware(
        RequestGuard,
        backend=app.state.backend,
        max_body=settings.serve_max_body_bytes,
        read_timeout=settings.serve_read_timeout_seconds,
    )
    app.include_router(metrics.router)
    app.state.http_instruments = instruments = metrics.HttpInstruments()
    app.add_middleware(metrics.MeasureRequests, instruments=instruments)
    # Signed (itsdangerous), HttpOnly, SameSite=strict: another site can neither read
    # the cookie nor make the browser send it with a forged POST.
    app.add_middleware(
        SessionMiddleware,
        secret_key=signing_key(runtime.config),
        session_cookie=COOKIE,
        max_age=MAX_AGE,
        same_site="strict",
        https_only=False,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    _add_error_handlers(app, postgres=runtime.config.uses_postgres)
    return app


def _add_error_handlers(app: FastAPI, postgres: bool) -> None:
    """Every error answers in one shape: JSON `{"message"}` for the API, a page for a browser."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _answer(request, exc.status_code, exc.message, exc.headers)

    @app.exception_handler(AeError)
    def ae_error(request: Request, exc: AeError) -> Response:
        _log_causes(request, exc)
        answer = from_ae_error(exc)
        return _answer(request, answer.status_code, answer.message)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(pages.login_url(exc.request), status_code=303)

    @app.exception_handler(CsrfFailed)
    def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        return _answer(
            request,
            403,
            "The form was stale or not sent by this site (CSRF check); nothing was changed. "
            "Reload the page and try again.",
        )

    for driver_error in driver_errors(load_psycopg=postgres):
        app.add_exception_handler(driver_error, _database_error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse({"message": f"internal error: {exc.__class__.__name__}"}, 500)

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, exc: RequestValidationError) -> Response:
        return _answer(request, 400, _validation_message(request, exc))

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _answer(request, exc.status_code, str(exc.detail), exc.headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """A database driver's own error (sqlite3 or psycopg) that reached the edge untranslated."""
    _log_causes(request, exc)
    return JSONResponse({"message": describe_database_error(exc)}, 500)


def _log_causes(request: Request, exc: Exception) -> None:
    """Under AE_DEBUG=1 the log shows the whole chain behind an error answer; the client
    still gets its one line either way."""
    if debug_enabled():
        log.error("%s %s: %s", request.method, request.url.path, exc, exc_info=reveal_causes(exc))
