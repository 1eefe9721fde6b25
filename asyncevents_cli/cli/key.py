"""`ae key generate|rotate`: the Fernet key that seals subscription secrets at rest."""

from __future__ import annotations

import os

import typer

from .. import keys
from ..secretbox import KEY_ENV
from .context import runtime
from .output import note, say

key_app = typer.Typer(
    help="The key for secrets at rest (AE_SECRET_KEY, or the key file beside a SQLite store).",
    no_args_is_help=True,
)


@key_app.command("generate")
def generate() -> None:
    """Print a new Fernet key for AE_SECRET_KEY (set the same one on every host sharing a store).

    Nothing is stored: the key goes to stdout only, e.g. `export AE_SECRET_KEY=$(ae key generate)`.
    """
    say(keys.generate_key())


@key_app.command("rotate")
def rotate(ctx: typer.Context) -> None:
    """Re-encrypt every sealed secret under the first key of AE_SECRET_KEY, or a new key file.

    With AE_SECRET_KEY=NEW,OLD (the first encrypts, all decrypt), every secret ends up under NEW, and
    OLD can then be removed. Without AE_SECRET_KEY (a SQLite store), a new key replaces the key file.
    All in one transaction: a secret is under the old key or the new one, never lost.
    """
    rt = runtime(ctx)
    environ = os.environ if rt.environ is None else rt.environ
    done = keys.rotate(rt.config, rt.store, environ)
    where = f"the first key of {KEY_ENV}" if done.key_source == KEY_ENV else f"a new key in {done.key_source}"
    say(f"re-encrypted the secrets of {done.subscriptions} subscription(s) under {where}")
    note(f"you can now remove {done.removable}")
