"""Creating subscriptions, with the checks that keep bad ones out."""

from __future__ import annotations

import secrets

from .config import Config
from .errors import InputError
from .messages import check_store_id
from .netguard import check_recipient_url, check_target
from .notifiers import check_name
from .store import Store, Subscription

MAX_SECRET_LENGTH = 4096


def check_url(url: str, deny_private: bool = False) -> str:
    """A recipient URL the HTTP client will accept, on a host the SSRF guard allows."""
    check_recipient_url(url)
    check_target(url, deny_private)
    return url


def check_secret(secret: str) -> str:
    if not secret.strip():
        raise InputError("--secret must not be empty")
    if len(secret) > MAX_SECRET_LENGTH or any(ord(c) < 0x20 or c == "\x7f" for c in secret):
        raise InputError(f"--secret must be at most {MAX_SECRET_LENGTH} printable characters")
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("--secret is not valid UTF-8") from None
    return secret


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


def subscribe(
    config: Config,
    store: Store,
    event_name: str,
    url: str,
    secret: str | None = None,
    notifier: str = "http",
    store_id: int = 0,
) -> tuple[Subscription, str | None]:
    """Subscribe a recipient; return the subscription and the secret if one was generated."""
    config.event(event_name)
    check_url(url, config.settings["deny_private_targets"])
    check_name(notifier)
    check_store_id(store_id)
    if secret is not None:
        check_secret(secret)
    generated = None if secret is not None else generate_secret()
    subscription = store.add_subscription(event_name, url, secret or generated or "", notifier, store_id)
    return subscription, generated
