"""Creating subscriptions, with the checks that keep bad ones out."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from .config import Config
from .errors import InputError
from .notifiers import check_name
from .store import Store, Subscription


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"recipient URL must be an http(s) URL with a host, got {url!r}")
    return url


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
    check_url(url)
    check_name(notifier)
    if store_id < 0:
        raise InputError(f"store id must be 0 or more, got {store_id}")
    if secret is not None and not secret.strip():
        raise InputError("--secret must not be empty")
    generated = None if secret is not None else generate_secret()
    subscription = store.add_subscription(event_name, url, secret or generated or "", notifier, store_id)
    return subscription, generated


def change(store: Store, subscription_id: int, enabled: bool, notifier: str | None = None) -> Subscription:
    """The module's save of an existing subscription: a new status, and a new notifier if one is given."""
    if notifier is not None:
        check_name(notifier)
    return store.update_subscription(subscription_id, enabled, notifier)
