"""How an HTTP delivery proves where it came from: the signature schemes, as pure functions.

``magento`` (the default) is the Magento module's header: ``x-magento-signature``,
the hex HMAC-SHA256 of the body keyed with the secret as text. No id and no
timestamp, so a receiver cannot tell a replayed request from a new one.

``standard-webhooks`` follows https://www.standardwebhooks.com: ``webhook-id``
(the delivery uuid, the same on every retry), ``webhook-timestamp`` (Unix
seconds of this attempt) and ``webhook-signature``: ``v1,`` + base64 of the
HMAC-SHA256 of ``id.timestamp.body``, keyed with the bytes of a ``whsec_``
base64 secret. Several space-separated signatures may be sent, which is how a
rotated secret keeps working during its grace period.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime

from ..errors import InputError

MAGENTO = "magento"
STANDARD_WEBHOOKS = "standard-webhooks"
SCHEMES = (MAGENTO, STANDARD_WEBHOOKS)
UNSIGNED = "none"  # stored for notifiers that send no HTTP request to sign (eventbridge)

MAGENTO_HEADER = "x-magento-signature"
WEBHOOK_ID = "webhook-id"
WEBHOOK_TIMESTAMP = "webhook-timestamp"
WEBHOOK_SIGNATURE = "webhook-signature"
SIGNATURE_HEADERS = frozenset({MAGENTO_HEADER, WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE})

SECRET_PREFIX = "whsec_"
# The specification asks for keys of 24 to 64 bytes; ae generates 32.
KEY_BYTES_MIN, KEY_BYTES_MAX, KEY_BYTES_GENERATED = 24, 64, 32


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise InputError(f"unknown signature scheme {scheme!r}; use one of: {', '.join(SCHEMES)}")
    return scheme


def generate_secret(scheme: str) -> str:
    """A new secret in the form the scheme expects."""
    if check_scheme(scheme) == STANDARD_WEBHOOKS:
        return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES_GENERATED)).decode()
    return secrets.token_urlsafe(32)


def _standard_key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def check_secret(scheme: str, secret: str) -> str:
    """Refuse a secret the scheme cannot use (InputError); return it unchanged."""
    if not secret or not secret.strip():
        raise InputError("the secret (--secret) must not be empty")
    if check_scheme(scheme) == STANDARD_WEBHOOKS:
        if not secret.startswith(SECRET_PREFIX):
            raise InputError(f"a standard-webhooks secret must start with {SECRET_PREFIX!r} followed by base64")
        try:
            key = _standard_key(secret)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"a standard-webhooks secret must be {SECRET_PREFIX!r} followed by base64") from exc
        if not KEY_BYTES_MIN <= len(key) <= KEY_BYTES_MAX:
            raise InputError(
                f"a standard-webhooks secret must hold {KEY_BYTES_MIN} to {KEY_BYTES_MAX} bytes, got {len(key)}"
            )
    return secret


def magento_signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def standard_webhooks_signature(body: bytes, msg_id: str, timestamp: int, secret: str) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    scheme: str, body: bytes, uuid: str, secrets_in_use: Sequence[str], now: datetime
) -> dict[str, str]:
    """The headers that sign one attempt. `secrets_in_use` starts with the current secret;
    the rest are rotated-out secrets still in their grace period."""
    current = secrets_in_use[0]
    if scheme == STANDARD_WEBHOOKS:
        timestamp = int(now.timestamp())
        signatures = " ".join(standard_webhooks_signature(body, uuid, timestamp, s) for s in secrets_in_use)
        return {WEBHOOK_ID: uuid, WEBHOOK_TIMESTAMP: str(timestamp), WEBHOOK_SIGNATURE: signatures}
    # One header, one value: receivers written for the module compare it whole,
    # so a rotated magento secret switches at once.
    return {MAGENTO_HEADER: magento_signature(body, current)}


def secrets_in_use(current: str, previous: str | None, previous_until: datetime | None, now: datetime) -> list[str]:
    """The current secret, then the previous one while its grace period lasts."""
    if previous and previous_until is not None and now < previous_until:
        return [current, previous]
    return [current]


def verify(scheme: str, body: bytes, headers: Mapping[str, str], secret: str) -> bool:
    """Whether a request's signature headers sign `body` with `secret` (what a receiver checks;
    `ae listen` uses it). Standard Webhooks: any one of the space-separated `v1,` signatures."""
    if scheme == STANDARD_WEBHOOKS:
        msg_id, timestamp = headers.get(WEBHOOK_ID, ""), headers.get(WEBHOOK_TIMESTAMP, "")
        if not timestamp.isdigit():
            return False
        try:
            expected = standard_webhooks_signature(body, msg_id, int(timestamp), secret)
        except (binascii.Error, ValueError):
            return False
        given = headers.get(WEBHOOK_SIGNATURE, "").split()
        return any(hmac.compare_digest(expected, signature) for signature in given)
    return hmac.compare_digest(magento_signature(body, secret), headers.get(MAGENTO_HEADER, ""))
