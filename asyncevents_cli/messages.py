"""The two wire formats, exactly as the Magento module writes them.

Trigger: a JSON array ``[event_name, "<json arguments>", store_id]``; the
arguments are themselves a JSON *string*, and the store id may be missing.

Retry: a JSON object ``{"subscription_id", "death_count", "content", "uuid"}``
where ``content`` is the payload as a JSON string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InputError


class MalformedMessage(InputError):
    """A message body that is not in the expected wire format."""


@dataclass(frozen=True)
class TriggerMessage:
    event_name: str
    arguments: dict[str, Any]
    store_id: int = 0

    def encode(self) -> bytes:
        arguments = json.dumps(self.arguments, separators=(",", ":"), ensure_ascii=False)
        return json.dumps([self.event_name, arguments, self.store_id], ensure_ascii=False).encode()

    @classmethod
    def decode(cls, body: bytes) -> "TriggerMessage":
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage(f"trigger message is not JSON: {exc}") from None
        if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
            raise MalformedMessage("trigger message must be [event_name, arguments, store_id]")
        arguments = value[1]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments else {}
            except ValueError as exc:
                raise MalformedMessage(f"trigger arguments are not JSON: {exc}") from None
        if arguments is None or arguments == []:
            arguments = {}  # PHP's json_encode([]) of an empty argument list
        if not isinstance(arguments, dict):
            raise MalformedMessage("trigger arguments must be a JSON object")
        store_id = value[2] if len(value) == 3 and value[2] is not None else 0
        try:
            store_id = int(store_id)
        except (TypeError, ValueError):
            raise MalformedMessage(f"trigger store id is not an integer: {store_id!r}") from None
        return cls(value[0], arguments, store_id)


@dataclass(frozen=True)
class RetryMessage:
    subscription_id: int
    death_count: int
    content: str  # the payload, JSON-encoded
    uuid: str

    def encode(self) -> bytes:
        return json.dumps(
            {
                "subscription_id": self.subscription_id,
                "death_count": self.death_count,
                "content": self.content,
                "uuid": self.uuid,
            }
        ).encode()

    @classmethod
    def decode(cls, body: bytes) -> "RetryMessage":
        try:
            value = json.loads(body)
            return cls(
                subscription_id=int(value["subscription_id"]),
                death_count=int(value["death_count"]),
                content=str(value["content"]),
                uuid=str(value["uuid"]),
            )
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise MalformedMessage(f"retry message is malformed: {exc!r}") from None

    @property
    def payload(self) -> Any:
        return json.loads(self.content)
