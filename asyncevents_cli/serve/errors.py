"""Errors as the module's REST API words them: a status code and `{"message": "..."}`."""

from __future__ import annotations

from ..errors import AeError, DatabaseUnavailable, InputError, NotFound, QueueUnavailable


class ApiError(Exception):
    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, {"WWW-Authenticate": "Bearer"})


def from_ae_error(exc: AeError) -> ApiError:
    """The HTTP status of an expected failure from the core."""
    if isinstance(exc, InputError):
        status = 400
    elif isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, (QueueUnavailable, DatabaseUnavailable)):
        status = 503
    else:
        status = 409  # an operational refusal, e.g. replaying to a disabled subscription
    message = exc.message + (f" ({exc.hint})" if exc.hint and status != 400 else "")
    return ApiError(status, message)
