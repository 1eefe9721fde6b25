"""`ae serve`'s /metrics (its own requests, by route template and status) and its JSON
logs, over real HTTP against a real `ae serve` process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from conftest import ok, write_config
from serving import start_server

EVENT = "sales.order.created"


def samples(text: str, name: str) -> dict[str, float]:
    """`name{labels} value` lines of a Prometheus text page: labels -> value."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) :].rsplit(" ", 1)
            found[labels] = float(value)
    return found


def test_serve_metrics_count_requests_by_route_template(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    token = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    server = start_server(config, tmp_path / "serve.log")
    try:
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, timeout=30) as client:
            refused = client.get("/metrics")
            wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
            for subscription_id in (101, 202, 303):  # three paths, one route
                assert client.get(f"/rest/V1/async_event/{subscription_id}", headers=auth).status_code == 404
            assert client.get("/no/such/page/abc123").status_code == 404
            page = client.get("/metrics", headers=auth)
    finally:
        assert server.stop() == 0, server.log()
    assert refused.status_code == 401 and "message" in refused.json()
    assert wrong.status_code == 401
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    counts = samples(page.text, "ae_http_requests_total")
    assert counts['{method="GET",route="/rest/V1/async_event/{subscription_id}",status="404"}'] == 3
    assert counts['{method="GET",route="/metrics",status="401"}'] == 2
    assert counts['{method="GET",route="unmatched",status="404"}'] == 1
    assert not any(f"/{n}" in page.text or f'"{n}"' in page.text for n in (101, 202, 303))
    assert "abc123" not in page.text
    durations = samples(page.text, "ae_http_request_duration_seconds_count")
    assert durations['{method="GET",route="/rest/V1/async_event/{subscription_id}"}'] == 3


def test_serve_metrics_public_and_json_logs(tmp_path: Path) -> None:
    """metrics_public = true opens /metrics; log_format = "json" makes every log line
    of the server a JSON object, access lines with method, path and status_code."""
    config = write_config(tmp_path, metrics_public=True, log_format="json")
    server = start_server(config, tmp_path / "serve.log")
    try:
        page = httpx.get(server.url + "/metrics", timeout=30)
    finally:
        assert server.stop() == 0, server.log()
    assert page.status_code == 200 and "ae_http_requests_total" in page.text
    entries = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert all({"time", "level", "message"} <= set(e) for e in entries)
    assert any(e["message"].startswith("ae serve: listening on") for e in entries)
    access = [e for e in entries if e.get("path") == "/metrics"]
    assert access and access[0]["method"] == "GET" and access[0]["status_code"] == 200
