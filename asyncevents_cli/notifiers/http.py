"""Signed HTTP webhooks, compatible with receivers written for the Magento module.

The body is sent byte for byte as serialized; ``x-magento-signature`` is the hex
HMAC-SHA256 of those bytes keyed with the subscription's verification token.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from .. import __version__
from ..store import Subscription
from .base import RESPONSE_LIMIT, Notifier, NotifyResult, clip

SIGNATURE_HEADER = "x-magento-signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def sign(body: bytes, token: str) -> str:
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def describe_error(exc: Exception) -> str:
    """One line saying why a request got no response: refused, DNS, timeout, TLS."""
    detail = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {detail}"


class HttpNotifier(Notifier):
    def __init__(self, connect_timeout: float = 5.0, total_timeout: float = 15.0) -> None:
        self.total_timeout = total_timeout
        self.client = httpx.Client(
            timeout=httpx.Timeout(total_timeout, connect=connect_timeout),
            follow_redirects=False,
            headers={"User-Agent": f"ae/{__version__}"},
        )

    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, subscription.verification_token),
            IDEMPOTENCY_HEADER: uuid,
            "x-ae-event": subscription.event_name,
        }
        started = time.perf_counter()
        deadline = started + self.total_timeout
        try:
            with self.client.stream("POST", subscription.recipient_url, content=body, headers=headers) as response:
                # Read at most what we keep, and give up at the overall deadline:
                # httpx's own timeouts bound each read, not the whole exchange.
                chunks, kept = [], 0
                for chunk in response.iter_bytes():
                    chunks.append(chunk)
                    kept += len(chunk)
                    if kept >= RESPONSE_LIMIT:
                        break
                    if time.perf_counter() > deadline:
                        raise httpx.ReadTimeout("total timeout exceeded while reading the response")
                text = b"".join(chunks)[:RESPONSE_LIMIT].decode("utf-8", "replace")
                success = 200 <= response.status_code < 300
                return NotifyResult(success, response.status_code, clip(text), time.perf_counter() - started)
        except httpx.HTTPError as exc:
            return NotifyResult(False, None, clip(describe_error(exc)), time.perf_counter() - started)

    def close(self) -> None:
        self.client.close()
