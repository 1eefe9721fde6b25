"""Secrets at rest: what the store keeps encrypted, and the key that opens them.

Subscription verification tokens (and anything else secret a store keeps, such
as custom headers) are stored as ``fernet:<token>``: Fernet from
`cryptography` (AES-128-CBC with HMAC-SHA256), as the Magento module encrypts
`verification_token` with the shop's key.

The key comes from ``AE_SECRET_KEY`` (one Fernet key, or several separated by
commas: the first encrypts, all decrypt, so keys can be rotated), or else
from a key file beside the store (``<database>.key``), created with mode
0600 on first use (one key a line, the first encrypting; `ae key rotate`
holds two there while it re-encrypts); a key file that group or others can
read is refused (exit 2), as ssh refuses such a key. A sealed value that no key opens raises `SecretKeyError`
(exit 1): a delivery is never signed with a wrong secret.

    box = SecretBox.for_store(Path(".ae/ae.db"))   # may create .ae/ae.db.key
    sealed = box.seal("my-secret")                  # "fernet:gAAAA..."
    box.open(sealed)                                # "my-secret"
    is_sealed(sealed)                               # True
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from .errors import AeError
from .private_files import check_private_key_file, create_private_file

PREFIX = "fernet:"
KEY_ENV = "AE_SECRET_KEY"


class SecretKeyError(AeError):
    """No key, or a key that does not open what the store holds (exit 1)."""


def is_sealed(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX)


def key_path_for(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".key")


def generate_key() -> str:
    """A new Fernet key, as AE_SECRET_KEY and the key file hold it."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


def read_key_file(path: Path) -> list[bytes]:
    """The keys of a key file, one a line: the first seals, all open (a rotation writes two)."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyError(f"cannot read the key file {path}: {exc}") from exc
    return [line.strip().encode() for line in text.splitlines() if line.strip()]


def replace_key_file(path: Path, keys: list[str]) -> None:
    """Write `keys` (one a line) over the key file at once, mode 0600: a reader sees the old
    file or the new one, never half of either."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write("".join(key + "\n" for key in keys))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


class SecretBox:
    """Seals and opens strings with one or more Fernet keys."""

    def __init__(self, keys: list[bytes], source: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                f"the secret key from {source} is not a Fernet key (32 url-safe base64-encoded bytes)",
                hint="`ae key generate` prints a new one",
            ) from exc
        #: where the key came from, for error messages: "AE_SECRET_KEY" or the key file
        self.source = source

    @classmethod
    def for_store(cls, store_path: Path, environ: Mapping[str, str] | None = None, create: bool = True) -> SecretBox:
        """The box for a store: AE_SECRET_KEY, else the key file beside it (made if
        missing and `create`; a store that already holds sealed values must not get
        a fresh key, so its caller passes create=False)."""
        env = os.environ if environ is None else environ
        if env.get(KEY_ENV, "").strip():
            return cls.from_environment(env)
        path = key_path_for(store_path)
        if not path.exists():
            if not create:
                raise SecretKeyError(
                    f"cannot decrypt subscription secrets: {KEY_ENV} is not set and the key file {path} is missing",
                    hint=f"restore {path.name} beside the database, or set {KEY_ENV} to the key",
                )
            from cryptography.fernet import Fernet

            create_private_file(path, Fernet.generate_key() + b"\n")
        check_private_key_file(path)
        return cls(read_key_file(path), str(path))

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> SecretBox:
        """The box of the keys in AE_SECRET_KEY (which must be set)."""
        keys = [k.strip().encode() for k in env.get(KEY_ENV, "").split(",") if k.strip()]
        return cls(keys, KEY_ENV)

    def seal(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plaintext of a sealed value; a value stored before encryption (no
        prefix) is returned as it is."""
        if not is_sealed(sealed):
            return sealed
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretKeyError(
                f"cannot decrypt subscription secrets with the key from {self.source}: it is not the key"
                " they were encrypted with",
                hint=f"set {KEY_ENV} to the original key, or restore the original key file",
            ) from exc
