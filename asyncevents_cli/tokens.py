"""API tokens for `ae serve`: created once, stored hashed, scoped to event-name patterns.

The module guards its REST routes with Magento ACL resources and checks per-event
resources when saving; `ae` scopes a token to event-name patterns instead
(``customer.*``). A token with no pattern may manage every event.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from .errors import InputError
from .store import Store, utcnow

TOKEN_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
EVENT_PATTERN = re.compile(r"^[A-Za-z0-9._*?-]+$")
PREFIX = "ae_"
# Recording "last used" is a write; once a minute per token is precise enough for
# `ae tokens list` and keeps API calls from queueing behind the consumers' writes.
TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class ApiToken:
    name: str
    events: tuple[str, ...]  # patterns; empty means every event
    last_used: str | None = None

    @property
    def unscoped(self) -> bool:
        return not self.events

    def allows(self, event_name: str) -> bool:
        return self.unscoped or any(fnmatchcase(event_name, pattern) for pattern in self.events)


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_token_name(name: str) -> str:
    if not TOKEN_NAME.match(name or ""):
        raise InputError(f"invalid token name {name!r}: use up to 64 letters, digits, '.', '_' and '-'")
    return name


def check_pattern(pattern: str) -> str:
    if not EVENT_PATTERN.match(pattern or ""):
        raise InputError(f"invalid event pattern {pattern!r}: use event-name characters and the wildcards '*' and '?'")
    return pattern


def create_token(store: Store, name: str, events: Sequence[str] = ()) -> str:
    """Store a new token and return its secret, which is not kept anywhere."""
    check_token_name(name)
    patterns = list(dict.fromkeys(check_pattern(p) for p in events))
    secret = PREFIX + secrets.token_urlsafe(32)
    store.api_tokens.add_token(name, hash_token(secret), patterns)
    return secret


def list_tokens(store: Store) -> list[dict[str, Any]]:
    return store.api_tokens.tokens()


def revoke_token(store: Store, name: str) -> None:
    store.api_tokens.revoke_token(check_token_name(name))


def authenticate(store: Store, secret: str) -> ApiToken | None:
    """The token a secret belongs to, or None; records when it was last used."""
    if not secret:
        return None
    row = store.api_tokens.token_by_hash(hash_token(secret))
    if row is None:
        return None
    now = utcnow()
    last = row["last_used"]
    if last is None or datetime.fromisoformat(last + "+00:00") < now - TOUCH_EVERY:
        store.api_tokens.touch_token(row["name"], now)
    return ApiToken(row["name"], tuple(row["events"]), row["last_used"])
