"""Who is calling: a Bearer API token for the REST API (the module's integration
token), a signed session cookie for the admin pages."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..tokens import ApiToken, authenticate
from .backend import Backend
from .errors import ApiError, unauthorized
from .guard import TOKEN_STATE

bearer = HTTPBearer(auto_error=False, description="An API token from `ae tokens create NAME`.")


def backend(request: Request) -> Backend:
    return request.app.state.backend


def api_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> ApiToken:
    """The token behind `Authorization: Bearer ...`, or 401 as the module answers. The
    request guard has looked it up already, before reading the body."""
    checked = getattr(request.state, TOKEN_STATE, None)
    if isinstance(checked, ApiToken):
        return checked
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("The consumer isn't authorized to access the API: send 'Authorization: Bearer TOKEN'.")
    with backend(request).use() as rt:
        token = authenticate(rt.store, credentials.credentials)
    if token is None:
        raise unauthorized("The consumer isn't authorized to access the API: the token is unknown or revoked.")
    return token


def require_event(token: ApiToken, event_name: str) -> None:
    """403 unless the token's scope covers the event (the module's per-event ACL check)."""
    if not token.allows(event_name):
        raise ApiError(
            403,
            f"The consumer isn't authorized to access event {event_name!r}: "
            f"token {token.name!r} is limited to {', '.join(token.events)}.",
        )
