"""The hand-written alternative `ae` is measured against: one Celery task per webhook.

The harness runs it as

    celery -A celery_peer worker -c 2 -P prefork --without-gossip --without-mingle --without-heartbeat

with this folder on PYTHONPATH and ``BENCH_CELERY_BROKER`` naming the
benchmark's own RabbitMQ vhost, and publishes one `deliver` task per
(event, subscription), as an application would. Each task signs the body with
HMAC-SHA256 and POSTs it with httpx's sync client; acks late; a prefetch of 50
on the channel (a multiplier of 25 for 2 processes). There is no delivery log:
that is work `ae` does and this peer does not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

import httpx
from celery import Celery

QUEUE = "bench.celery"
PROCESSES = 2
PREFETCH = 50

app = Celery("ae_bench_peer", broker=os.environ.get("BENCH_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2F"))
app.conf.update(
    task_default_queue=QUEUE,
    task_acks_late=True,
    task_ignore_result=True,
    worker_prefetch_multiplier=PREFETCH // PROCESSES,
    worker_enable_remote_control=False,  # no pidbox queues in the benchmark vhost
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    accept_content=["json"],
)

_client: httpx.Client | None = None


def client() -> httpx.Client:
    """One keep-alive client per worker process, made after the fork."""
    global _client
    if _client is None:
        _client = httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0))
    return _client


@app.task(name="bench.deliver", bind=True, max_retries=5)
def deliver(self: Any, url: str, secret: str, payload: Any, uuid: str) -> None:
    body = json.dumps({"data": payload}, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "x-magento-signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "Idempotency-Key": uuid,
    }
    try:
        response = client().post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise self.retry(exc=exc, countdown=2**self.request.retries) from exc
    if not response.is_success:
        raise self.retry(countdown=2**self.request.retries)
