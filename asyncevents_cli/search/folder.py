"""The index folder on disk: `ae` replaces or deletes only a folder it created.

`index_path` is a setting, so it can name any folder (`index_path = "."`, or
`AE_INDEX_PATH` pointing at a folder of documents). A rebuild swaps a fresh
folder in for the old one, and so would have deleted whatever the old one
held: events.toml, the store and its key. So every folder `ae` creates holds
`MARKER` from its first moment, and before a rebuild replaces the folder at
`index_path`, `check_ours` requires one of:
- nothing at the path;
- an empty folder;
- a folder holding the marker, or (indexes built before the marker existed)
  the meta file `ae` writes after each commit.
Anything else (a file, a symlink, a folder of other files) is refused with
`InputError` (exit 2), and nothing is touched.

The folder is 0700 and its files 0600 whatever the umask: the index holds
payload words (emails, addresses), and the store beside it is private too.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..errors import InputError

MARKER = ".ae-index"
META_FILE = ".ae-index.json"
MARKER_TEXT = "This folder is an `ae` search index; `ae index rebuild` may replace it.\n"


def _is_legacy_index(folder: Path) -> bool:
    """A folder an earlier `ae` built: it holds the meta file it writes after each commit."""
    try:
        meta = json.loads((folder / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "schema" in meta and "last_log_id" in meta


def check_ours(path: Path) -> None:
    """Raise InputError unless `path` is absent, an empty folder, or an index folder `ae` made."""
    if not (path.exists() or path.is_symlink()):
        return
    if path.is_symlink() or not path.is_dir():
        raise InputError(
            f"index_path {path} is not a folder ae created; set index_path (or AE_INDEX_PATH) to a new or empty folder"
        )
    if (path / MARKER).is_file() or not any(path.iterdir()) or _is_legacy_index(path):
        return
    raise InputError(
        f"index_path {path} holds files ae did not create, and a rebuild would replace them; "
        "set index_path (or AE_INDEX_PATH) to a new or empty folder"
    )


def make_private(folder: Path) -> None:
    """0700 for the folder, 0600 for its files, whatever the umask they were written under."""
    os.chmod(folder, stat.S_IRWXU)
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False):
            os.chmod(entry.path, stat.S_IRUSR | stat.S_IWUSR)


def new_folder(path: Path) -> Path:
    """A fresh folder beside `path`, created here (so never someone else's), marked and private."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f"{path.name}.new-", dir=path.parent))  # 0700, and new
    (fresh / MARKER).write_text(MARKER_TEXT)
    make_private(fresh)
    return fresh


def swap_in(fresh: Path, path: Path) -> None:
    """Put `fresh` at `path`, removing the index folder that was there (checked to be ours)."""
    check_ours(path)
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{path.name}.old-", dir=path.parent))
        os.replace(path, old / "index")
        os.replace(fresh, path)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(fresh, path)
    make_private(path)


def discard(fresh: Path) -> None:
    """Remove a fresh folder this process created (a build that failed)."""
    if (fresh / MARKER).is_file():
        shutil.rmtree(fresh, ignore_errors=True)
