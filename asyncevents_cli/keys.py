"""`ae key generate` and `ae key rotate`: making the key for secrets at rest, and moving off an old one.

Rotating re-encrypts every sealed secret under one key, so the others can go:

- with ``AE_SECRET_KEY`` set (always, on PostgreSQL), under its first key. The
  steps on a shared store: `ae key generate`; set ``AE_SECRET_KEY=NEW,OLD`` on
  every host; `ae key rotate` once; then ``AE_SECRET_KEY=NEW`` everywhere.
- else (a SQLite store with its key file), under a new key that replaces the key
  file. The file holds the new key and the old one while the secrets are
  re-encrypted (one transaction), then the new one alone: a crash at any point
  leaves every secret openable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .config import Config
from .secretbox import KEY_ENV, SecretBox, generate_key, key_path_for, read_key_file, replace_key_file
from .store import Store

__all__ = ["Rotation", "generate_key", "rotate"]


@dataclass(frozen=True)
class Rotation:
    """What `rotate` did: how many subscriptions' secrets, and under which key."""

    subscriptions: int
    key_source: str  # "AE_SECRET_KEY" or the key file's path
    removable: str  # what the operator may now remove


def rotate(config: Config, store: Store, environ: Mapping[str, str]) -> Rotation:
    """Re-encrypt every secret of the store under the first key of AE_SECRET_KEY, or a new key file."""
    # the keys in use must open what is there (on PostgreSQL: AE_SECRET_KEY is set)
    store.subscriptions.check_secret_key()
    if environ.get(KEY_ENV, "").strip() or config.uses_postgres:
        # The store's box is then AE_SECRET_KEY's keys (on PostgreSQL without it: the error naming it),
        # and sealing with it is sealing under the first.
        count = store.subscriptions.reseal_secrets(store.subscriptions.secret_box)
        return Rotation(count, KEY_ENV, f"every key of {KEY_ENV} but the first")
    return _rotate_key_file(config, store)


def _rotate_key_file(config: Config, store: Store) -> Rotation:
    path = key_path_for(config.database_path)
    old_keys = [key.decode("ascii") for key in read_key_file(path)]
    new_key = generate_key()
    replace_key_file(path, [new_key, *old_keys])  # both open everything while the rows change
    count = store.subscriptions.reseal_secrets(SecretBox([k.encode() for k in (new_key, *old_keys)], str(path)))
    replace_key_file(path, [new_key])
    return Rotation(count, str(path), "any copy of the old key file (the key file holds only the new key)")
