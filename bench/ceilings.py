"""Raw HTTP client ceilings: signed POSTs to the sink, with no queue and no log.

    python bench/ceilings.py aiohttp|httpx URL REQUESTS [IN_FLIGHT]

Prints one JSON object: requests sent, and seconds from the first request to
the last response. Each client gets a process of its own (the harness reads
its CPU time), and sends the body and headers a delivery carries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time

BODY = json.dumps(
    {"data": {"increment_id": "CK00000001", "customer_email": "user1@example.com", "grand_total": 100.5}},
    separators=(",", ":"),
).encode()
SECRET = b"bench-secret"


def headers(n: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "x-magento-signature": hmac.new(SECRET, BODY, hashlib.sha256).hexdigest(),
        "Idempotency-Key": f"ceiling-{n}",
    }


def httpx_sync(url: str, requests: int) -> float:
    """One request at a time on one keep-alive connection: how a sync consumer delivers."""
    import httpx

    with httpx.Client() as client:
        client.post(url, content=BODY, headers=headers(-1))  # connect outside the timing
        started = time.perf_counter()
        for n in range(requests):
            client.post(url, content=BODY, headers=headers(n)).raise_for_status()
        return time.perf_counter() - started


async def aiohttp_window(url: str, requests: int, in_flight: int) -> float:
    """`in_flight` requests outstanding at all times over a pool of keep-alive connections."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.post(url, data=BODY, headers=headers(-1)) as response:
            await response.read()
        remaining = iter(range(requests))

        async def lane() -> None:
            for n in remaining:
                async with session.post(url, data=BODY, headers=headers(n)) as response:
                    await response.read()
                    response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(in_flight)))
        return time.perf_counter() - started


def main(argv: list[str]) -> None:
    client, url, requests = argv[0], argv[1], int(argv[2])
    in_flight = int(argv[3]) if len(argv) > 3 else 32
    if client == "httpx":
        seconds = httpx_sync(url, requests)
    elif client == "aiohttp":
        seconds = asyncio.run(aiohttp_window(url, requests, in_flight))
    else:
        raise SystemExit(f"unknown client {client!r}")
    print(json.dumps({"requests": requests, "seconds": seconds}))


if __name__ == "__main__":
    main(sys.argv[1:])
