"""Files and folders only their owner may read, whatever the umask.

Everything `ae` writes holds secrets or payloads (the store, the key file, the
session key), so it is created 0600 in folders created 0700. Modes passed to
open/mkdir are masked by the umask, which may remove bits but may also be
unusual (0277 removes the owner's write bit): the exact mode is set afterwards.
Folders that already exist are the operator's and are left as they are.

A key file that group or others can read is refused, the way ssh refuses such a
private key: the key may already be known to them, and the fix is one chmod.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from .errors import ConfigError

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folder(path: Path) -> None:
    """Create `path` and any missing parents, each 0700; existing ones stay as they are."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue  # another process made it first: theirs
        os.chmod(folder, FOLDER_MODE)


def create_private_file(path: Path, data: bytes) -> bool:
    """Write `data` to a new file of mode 0600, atomically; False if `path` already
    exists (another process won the race: use its file)."""
    private_folder(path.parent)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails if the name exists: never overwrite a key
        except FileExistsError:
            return False
        return True
    finally:
        temporary.unlink(missing_ok=True)


def create_empty_private_file(path: Path) -> None:
    """An empty 0600 file at `path`, unless one is there already (then it is left alone)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def check_private_key_file(path: Path, what: str = "key file") -> None:
    """ConfigError (exit 2) if group or others may read or write the key at `path`."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # a missing or unreadable file is reported by whoever reads it
    if mode & 0o077:
        raise ConfigError(
            f"the {what} {path} is open to other users (mode {mode:04o}); a key must be private",
            hint=f"run: chmod 600 {path}",
        )


__all__ = ["check_private_key_file", "create_empty_private_file", "create_private_file", "private_folder"]
