"""Table `api_tokens`: who may call the REST API (`ae tokens`, `ae serve`).

Tokens are stored as the SHA-256 of a random 256-bit secret: enough for a
high-entropy secret (no salt or slow hash needed), and the secret itself is
never kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..errors import AeError, NotFound
from .backend import Backend
from .records import timestamp

TOKEN_COLUMNS = "name, events, created, last_used"


class ApiTokenTable:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def add_token(self, name: str, token_hash: str, events: Sequence[str]) -> dict[str, Any]:
        with self.backend.transaction():
            if self.backend.execute("SELECT 1 FROM api_tokens WHERE name = ?", (name,)).first():
                raise AeError(
                    f"a token named {name!r} already exists",
                    hint=f"run `ae tokens revoke {name}` first, or pick another name",
                )
            self.backend.execute(
                "INSERT INTO api_tokens (name, token_hash, events, created) VALUES (?, ?, ?, ?)",
                (name, token_hash, json.dumps(list(events)), timestamp()),
            )
        return self.tokens(name)[0]

    def tokens(self, name: str | None = None) -> list[dict[str, Any]]:
        """Token rows without their hashes, oldest first."""
        where, params = ("WHERE name = ?", [name]) if name is not None else ("", [])
        try:
            rows = self.backend.rows(f"SELECT {TOKEN_COLUMNS} FROM api_tokens {where} ORDER BY created", params)
        except self.backend.missing_table_errors:  # an older store opened read-only: it has none
            return []
        return [{**row, "events": json.loads(row["events"])} for row in rows]

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        try:
            rows = self.backend.rows(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,))
        except self.backend.missing_table_errors:
            return None
        return {**rows[0], "events": json.loads(rows[0]["events"])} if rows else None

    def touch_token(self, name: str, moment: datetime | None = None) -> None:
        with self.backend.transaction():
            self.backend.execute("UPDATE api_tokens SET last_used = ? WHERE name = ?", (timestamp(moment), name))

    def revoke_token(self, name: str) -> None:
        with self.backend.transaction():
            if not self.backend.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount:
                raise NotFound(f"no token named {name!r}", hint="run `ae tokens list` to see them")
