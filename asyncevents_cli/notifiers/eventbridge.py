"""Amazon EventBridge: one ``PutEvents`` entry per delivery, as the Magento module's
companion (aligent/magento2-eventbridge-notifier) builds it.

    Source       the ``eventbridge_source`` setting (default ``ae``)
    DetailType   the event name
    Detail       the document the HTTP notifier posts: {"data": payload}
    EventBusName the subscription's recipient: a bus name or ARN

Region, credentials and endpoint come from the standard AWS configuration
(environment, shared config and credentials files, ``AWS_ENDPOINT_URL``), never
from events.toml or the store. boto3 is an optional extra:
``pip install 'asyncevents-cli[eventbridge]'``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

from ..config import Config
from ..errors import InputError
from ..store import Subscription, utcnow
from .base import Notifier, NotifyResult, clip

# EventBusName accepts a name (1-256 of these characters; partner buses contain "/")
# or an event bus ARN.
BUS_NAME = r"[/.\-_A-Za-z0-9]{1,256}"
BUS = re.compile(rf"^(?:arn:aws[\w-]*:events:[a-z0-9-]+:\d{{12}}:event-bus/)?{BUS_NAME}$")
INSTALL_HINT = "boto3 is not installed: pip install 'asyncevents-cli[eventbridge]'"


class EventBridgeNotifier(Notifier):
    aliases = ("event_bridge",)  # the Magento module's name for it
    recipient_help = "an EventBridge event bus name or ARN"

    def __init__(self, source: str = "ae", connect_timeout: float = 5.0, read_timeout: float = 15.0) -> None:
        self.source = source
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config | None) -> EventBridgeNotifier:
        return cls(source=config.settings.eventbridge_source) if config is not None else cls()

    @classmethod
    def check_recipient(cls, recipient: str, config: Config | None = None) -> str:
        if not BUS.match(recipient or ""):
            raise InputError(f"an eventbridge recipient must be an event bus name or ARN, got {recipient!r}")
        return recipient

    def client(self) -> Any:
        """One boto3 client, made on first use and shared: clients are thread-safe, sessions are not."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                self._client = boto3.session.Session().client(
                    "events",
                    config=BotoConfig(
                        connect_timeout=self.connect_timeout,
                        read_timeout=self.read_timeout,
                        # ae's own retry chain retries, logs and dead-letters;
                        # one logged attempt is one PutEvents call.
                        retries={"total_max_attempts": 1},
                    ),
                )
            return self._client

    def entry(self, subscription: Subscription, body: bytes) -> dict[str, Any]:
        return {
            "Source": self.source,
            "DetailType": subscription.event_name,
            "Detail": body.decode(),
            "Resources": [],
            "Time": utcnow(),
            "EventBusName": subscription.recipient_url,
        }

    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        started = time.perf_counter()

        def result(success: bool, status: int | None, text: str) -> NotifyResult:
            return NotifyResult(success, status, clip(text), time.perf_counter() - started)

        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            return result(False, None, INSTALL_HINT)
        try:
            response = self.client().put_events(Entries=[self.entry(subscription, body)])
        except ClientError as exc:  # the service answered with an error, e.g. ResourceNotFoundException
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return result(False, status, f"{error.get('Code', 'ClientError')}: {error.get('Message', exc)}")
        except BotoCoreError as exc:  # no answer: endpoint unreachable, no region, no credentials ...
            return result(False, None, f"{exc.__class__.__name__}: {exc}")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        entry = (response.get("Entries") or [{}])[0]  # one entry sent, one result back
        if response.get("FailedEntryCount", 0) or "ErrorCode" in entry:
            return result(False, status, f"{entry.get('ErrorCode', 'FailedEntry')}: {entry.get('ErrorMessage', '')}")
        return result(True, status, json.dumps(entry))

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
