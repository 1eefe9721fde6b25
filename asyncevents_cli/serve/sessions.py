"""Signed sessions for the admin pages: the signing key, who is signed in, CSRF.

The session cookie (Starlette's SessionMiddleware: itsdangerous-signed, HttpOnly,
SameSite=strict) holds the token's name and creation time, a session id and a
CSRF secret. Each page looks the token up again, so revoking it signs its
sessions out, and a new token of the same name does not inherit them.

Signing out records the session id in `SignedOut`, a 0600 file beside the
session key, until the cookie would have expired anyway: a copy of the cookie
taken before signing out is refused afterwards, by this server and by any other
`ae serve` on the host (they share the key, so they share the file).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from fastapi import Request

from ..config import Config
from ..errors import AeError
from ..private_files import check_private_key_file, create_empty_private_file, create_private_file, private_folder
from ..tokens import ApiToken, authenticate
from .backend import Backend

COOKIE = "ae_session"
MAX_AGE = 8 * 60 * 60  # a working day; then sign in again


class SignInRequired(Exception):
    """Raised by a page without a session: answered with a redirect to /login and no data."""

    def __init__(self, request: Request) -> None:
        super().__init__(request.url.path)
        self.request = request


class CsrfFailed(Exception):
    """A POST from a page without the session's CSRF secret: refused, nothing changed."""


def key_path(config: Config) -> Path:
    if config.uses_postgres:  # a host's own file: the store is shared
        return config.local_folder / "ae.session-key"
    database = config.database_path
    return database.with_name(database.name + ".session-key")


def signing_key(config: Config) -> str:
    """The session-signing key, kept in a 0600 file beside the store and created on
    first use; refused, like the store's key file, if other users can read it."""
    path = key_path(config)
    try:
        private_folder(path.parent)
        key = secrets.token_urlsafe(48)
        if not create_private_file(path, (key + "\n").encode("ascii")):
            check_private_key_file(path, "session key file")
            key = path.read_text(encoding="ascii").strip()
            if len(key) < 32:
                raise AeError(f"session key file {path} is damaged", hint="delete it; a new one is made")
        return key
    except (OSError, UnicodeDecodeError) as exc:
        raise AeError(f"cannot read or create the session key {path}: {getattr(exc, 'strerror', None) or exc}") from exc


class SignedOut:
    """Session ids signed out before their cookies expire: lines of `<id> <expiry>`
    appended to a private file, read again when it changes."""

    PRUNE_AT_BYTES = 256 * 1024  # ~5,000 sign-outs; then the expired ones are dropped

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._ids: dict[str, float] = {}

    def add(self, session_id: str, expires: float) -> None:
        with self._lock:
            private_folder(self.path.parent)
            create_empty_private_file(self.path)  # 0600 from the start
            with self.path.open("a", encoding="ascii") as handle:
                handle.write(f"{session_id} {expires:.0f}\n")
            if self.path.stat().st_size > self.PRUNE_AT_BYTES:
                self._prune()

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            self._refresh()
            expires = self._ids.get(str(session_id))
        return expires is not None and expires > time.time()

    def _refresh(self) -> None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            self._seen, self._ids = None, {}
            return
        if self._seen == (info.st_mtime_ns, info.st_size):
            return
        ids = {}
        for line in self.path.read_text(encoding="ascii", errors="replace").splitlines():
            session_id, _, expires = line.partition(" ")
            with contextlib.suppress(ValueError):
                ids[session_id] = float(expires)
        self._seen, self._ids = (info.st_mtime_ns, info.st_size), ids

    def _prune(self) -> None:
        self._refresh()
        now = time.time()
        live = "".join(f"{i} {e:.0f}\n" for i, e in self._ids.items() if e > now).encode("ascii")
        fresh = self.path.with_name(self.path.name + ".new")
        fresh.unlink(missing_ok=True)
        create_private_file(fresh, live)
        os.replace(fresh, self.path)


def signed_out_path(config: Config) -> Path:
    path = key_path(config)
    return path.with_name(path.name + ".signed-out")


def sign_out(request: Request) -> None:
    """End this session here and now: its cookie is refused from now on, wherever it is."""
    session_id, expires = request.session.get("sid"), request.session.get("expires")
    if isinstance(session_id, str) and isinstance(expires, (int, float)):
        request.app.state.signed_out.add(session_id, expires)
    request.session.clear()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target:
        return "/subscriptions"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/subscriptions"
    return target


def login_url(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/login?next={quote(path, safe='')}"


def sign_in(request: Request, backend: Backend, secret: str) -> ApiToken | None:
    """Check an API token typed into the login form; start a session if it may sign in."""
    with backend.use() as rt:
        token = authenticate(rt.store, secret.strip())
        rows = rt.store.tokens(token.name) if token else []
    if token is None or not rows or not token.unscoped:
        return token
    request.session.clear()
    request.session.update(
        {
            "token": token.name,
            "since": rows[0]["created"],
            "csrf": secrets.token_urlsafe(32),
            "sid": secrets.token_urlsafe(24),
            "expires": time.time() + MAX_AGE,
        }
    )
    return token


def current_user(request: Request, backend: Backend) -> ApiToken | None:
    name, since = request.session.get("token"), request.session.get("since")
    if not name:
        return None
    session_id = request.session.get("sid")
    if not session_id or session_id in request.app.state.signed_out:
        request.session.clear()  # signed out, or from before sessions had ids
        return None
    with backend.use() as rt:
        rows = rt.store.tokens(name)
    if not rows or rows[0]["created"] != since or rows[0]["events"]:
        request.session.clear()  # revoked, replaced, or rescoped since signing in
        return None
    return ApiToken(name, ())


def check_csrf(request: Request, given: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not given or not secrets.compare_digest(str(expected), given):
        raise CsrfFailed()
