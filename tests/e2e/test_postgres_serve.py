"""`ae serve` on a PostgreSQL store: the REST API and the admin pages read and
write the shared database (a real server process, a real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from conftest import Receiver, ok, ok_json, write_config
from postgres_db import TEST_SECRET_KEY
from serving import start_server

EVENT = "sales.order.created"
API = "/rest/V1"
pytestmark = pytest.mark.postgres


def test_the_rest_api_and_the_pages_on_postgresql(
    tmp_path: Path, postgres_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AE_SECRET_KEY", TEST_SECRET_KEY)  # the server process inherits it
    config = write_config(tmp_path, database=postgres_url)
    admin = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    server = start_server(config, tmp_path / "serve.log")
    try:
        auth = {"Authorization": f"Bearer {admin}"}
        made = httpx.post(
            server.url + API + "/async_event",
            headers=auth,
            timeout=30,
            json={
                "asyncEvent": {
                    "event_name": EVENT,
                    "recipient_url": receiver.endpoint("/hook"),
                    "verification_token": "rest-secret",
                }
            },
        )
        assert made.status_code == 200, made.text
        sid = made.json()["subscription_id"]
        listed = httpx.get(server.url + API + "/async_events", headers=auth, timeout=30).json()
        assert [item["subscription_id"] for item in listed["items"]] == [sid]
        published = httpx.post(
            server.url + API + "/async_event/publish",
            headers=auth,
            timeout=30,
            json={"event_name": EVENT, "arguments": {"increment_id": "REST1"}},
        )
        assert published.status_code == 200, published.text
        ok(config, "consume", "all", "--until-empty")
        assert receiver.to("/hook")[0].signed_with("rest-secret")
        uuid = ok_json(config, "logs")[0]["uuid"]

        pages = httpx.Client(base_url=server.url, timeout=30)
        signed_in = pages.post("/login", data={"token": admin, "next": "/logs"})
        assert signed_in.status_code == 303
        assert uuid in pages.get("/logs").text
        assert "REST1" in pages.get(f"/trace/{uuid}").text
        assert receiver.endpoint("/hook") in pages.get("/subscriptions").text
        assert json.loads(ok(config, "tokens", "list", "--json").stdout)[0]["last_used"] is not None
    finally:
        assert server.stop() == 0, server.log()
    # The host's own files: the session key, beside the config file; no SQLite file.
    assert (tmp_path / ".ae" / "ae.session-key").exists()
    assert not list(tmp_path.rglob("*.db"))
