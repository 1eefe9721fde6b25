"""Signed HTTP webhooks, compatible with receivers written for the Magento module.

The body is sent byte for byte as serialized, signed with the subscription's
scheme (see `signing`): by default ``x-magento-signature``, the hex
HMAC-SHA256 of those bytes keyed with the subscription's verification token.

Requests go out on aiohttp, many at a time from the consumer's one event loop,
with keep-alive connections reused per host (the README says why aiohttp).
aiohttp is imported when the first request is made, so `ae --help` and
`ae subscribe` (which checks URLs here) do not load it.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..envelopes import content_type
from ..netguard import TargetRefused, check_addresses, check_name, check_webhook_url, describe_refusal, parse_ip
from ..redaction import redact_url
from ..store import Subscription, utcnow
from ..version import __version__
from .base import RESPONSE_LIMIT, Notifier, NotifyResult, clip
from .signing import MAGENTO_HEADER, magento_signature, secrets_in_use, signature_headers

if TYPE_CHECKING:
    import aiohttp

#: `total_timeout` stays below the engine's attempt deadline (120 s), which it replaces.
ATTEMPT_DEADLINE_LIMIT = 120.0
SIGNATURE_HEADER = MAGENTO_HEADER
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = f"ae/{__version__}"
sign = magento_signature  # the module's signature, kept under its old name


def request_headers(subscription: Subscription, body: bytes, uuid: str, now: datetime | None = None) -> dict[str, str]:
    """Every header of one attempt: the subscription's own, then ae's and the signature."""
    moment = now or utcnow()
    if subscription.verification_token is None:
        raise ValueError("a subscription must be read with reveal=True before it can be signed for")
    in_use = secrets_in_use(
        subscription.verification_token, subscription.previous_token, subscription.previous_token_until, moment
    )
    return {
        **dict(subscription.custom_headers),
        "Content-Type": content_type(subscription.body_format),
        IDEMPOTENCY_HEADER: uuid,
        "x-ae-event": subscription.event_name,
        **signature_headers(subscription.signature_scheme, body, uuid, in_use, moment),
    }


def describe_error(exc: BaseException) -> str:
    """One line saying why a request got no response: refused, DNS, timeout, TLS."""
    detail = str(exc) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {detail}"


def check_literal_target(url: str, deny_private: bool) -> None:
    """TargetRefused if the URL names a refused IP address literally (aiohttp does not
    ask the resolver about those)."""
    import yarl

    host = yarl.URL(url).raw_host or ""
    address = parse_ip(host)
    if address is not None:
        check_addresses(host, [str(address)], deny_private)


@functools.lru_cache(maxsize=1024)
def literal_refusal(url: str, deny_private: bool) -> str | None:
    """Why `check_literal_target` refuses `url`, or None; remembered, since it is pure and
    would otherwise parse the URL again before every request."""
    try:
        check_literal_target(url, deny_private)
    except TargetRefused as exc:
        return exc.message
    return None


def guarded_resolver(deny_private: bool) -> Any:
    """aiohttp's resolver, refusing what the SSRF guard refuses. The connector connects
    only to the addresses checked here, so a name cannot resolve differently between
    the check and the connection."""
    import aiohttp
    from aiohttp.abc import AbstractResolver

    class GuardedResolver(AbstractResolver):
        def __init__(self) -> None:
            self._inner = aiohttp.ThreadedResolver()

        async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[Any]:
            check_name(host)
            results = await self._inner.resolve(host, port, family)
            check_addresses(host, [str(r["host"]) for r in results], deny_private)
            return results

        async def close(self) -> None:
            await self._inner.close()

    return GuardedResolver()


class HttpNotifier(Notifier):
    """POSTs signed bodies. `deliver` is native asyncio; `notify` wraps it for plain callers.

    Every attempt ends within `total_timeout` seconds, counted from the start of
    the connect to the last byte read, whatever the receiver does (for instance
    trickling its headers a byte at a time).
    """

    recipient_help = "an http(s) URL"
    signs_requests = True
    #: every attempt ends within `total_timeout` (the engine's own deadline is not needed)
    bounds_its_attempts = True

    @classmethod
    def from_config(cls, config: Config | None) -> HttpNotifier:
        return cls(deny_private_targets=bool(config and config.settings.deny_private_targets))

    @classmethod
    def check_recipient(cls, recipient: str, config: Config | None = None) -> str:
        return check_webhook_url(recipient, bool(config and config.settings.deny_private_targets))

    def __init__(
        self, connect_timeout: float = 5.0, total_timeout: float = 15.0, deny_private_targets: bool = False
    ) -> None:
        if not 0 < total_timeout < ATTEMPT_DEADLINE_LIMIT:
            raise ValueError(f"total_timeout must be between 0 and {ATTEMPT_DEADLINE_LIMIT:g} s")
        self.connect_timeout = connect_timeout
        self.total_timeout = total_timeout
        #: the SSRF guard's setting; link-local and metadata targets are refused regardless
        self.deny_private_targets = deny_private_targets
        self._session: aiohttp.ClientSession | None = None  # bound to the loop that made it
        self._loop: asyncio.AbstractEventLoop | None = None

    def _new_session(self) -> aiohttp.ClientSession:
        import aiohttp

        # No connection limit here: the consumer's window bounds what is in flight.
        connector = aiohttp.TCPConnector(
            limit=0, enable_cleanup_closed=True, resolver=guarded_resolver(self.deny_private_targets)
        )
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        return aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False, headers={"User-Agent": USER_AGENT}
        )

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = self._new_session()
            self._loop = loop
        return self._session

    async def deliver(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        return await self._post(self._session_for_this_loop(), subscription, body, uuid)

    async def _post(
        self, session: aiohttp.ClientSession, subscription: Subscription, body: bytes, uuid: str
    ) -> NotifyResult:
        import aiohttp

        started = time.perf_counter()
        try:
            # An IP in the URL skips the resolver: check it here (names are checked as resolved).
            refused = literal_refusal(subscription.recipient_url, self.deny_private_targets)
            if refused is not None:
                raise TargetRefused(refused)
            async with asyncio.timeout(self.total_timeout):
                async with session.post(
                    subscription.recipient_url,
                    data=body,
                    headers=request_headers(subscription, body, uuid),
                    allow_redirects=False,
                ) as response:
                    chunks: list[bytes] = []
                    kept = 0
                    while kept < RESPONSE_LIMIT:  # read at most what the log keeps
                        chunk = await response.content.read(RESPONSE_LIMIT - kept)
                        if not chunk:
                            break
                        chunks.append(chunk)
                        kept += len(chunk)
                        if response.content.at_eof():  # spare the read that would say so
                            break
                    text = b"".join(chunks).decode("utf-8", "replace")
                    success = 200 <= response.status < 300
                    return NotifyResult(
                        success,
                        response.status,
                        clip(text),
                        time.perf_counter() - started,
                        None if success else response.headers.get("Retry-After"),
                    )
        except TargetRefused as exc:  # log the refusal, never anything from the target
            return NotifyResult(False, None, describe_refusal(exc), time.perf_counter() - started)
        except TimeoutError:
            why = f"Timeout: no complete response within {self.total_timeout:g} s (connect to last byte)"
            return NotifyResult(False, None, why, time.perf_counter() - started)
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # refused, DNS, TLS, an unusable URL
            why = describe_error(exc).replace(subscription.recipient_url, redact_url(subscription.recipient_url))
            return NotifyResult(False, None, clip(why), time.perf_counter() - started)

    def notify(self, subscription: Subscription, body: bytes, uuid: str) -> NotifyResult:
        """One blocking attempt on a connection of its own (for callers outside an event loop)."""

        async def once() -> NotifyResult:
            async with self._new_session() as session:
                return await self._post(session, subscription, body, uuid)

        return asyncio.run(once())

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()

    def close(self) -> None:
        """Sessions are closed by `aclose` in their own loop; one left over is simply dropped."""
        self._session = None
