"""The admin pages of `ae serve` over real HTTP: sessions, CSRF, the grids and the trace page.
(The browser test is in test_serve_browser.py.)"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import Receiver, ok, write_config
from serving import start_server

EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000101", "customer_email": "roni_cost@example.com"}


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One delivered-after-a-retry order, one dead-lettered one, and a running server."""
    from conftest import QuietServer, _handler_for  # the receiver fixture is function-scoped

    folder = tmp_path_factory.mktemp("pages")
    config = write_config(folder, max_deaths=1)
    receiver = Receiver()
    server_http = QuietServer(("127.0.0.1", 0), _handler_for(receiver))
    receiver.url = f"http://127.0.0.1:{server_http.server_address[1]}"
    import threading

    threading.Thread(target=server_http.serve_forever, daemon=True).start()
    receiver.script("/orders", 500, 200)
    receiver.script("/broken", 503)
    orders = int(ok(config, "subscribe", EVENT, receiver.endpoint("/orders"), "--secret", "orders-secret").stdout)
    broken = int(ok(config, "subscribe", EVENT, receiver.endpoint("/broken"), "--secret", "broken-secret").stdout)
    ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
    ok(config, "consume", "all", "--until-empty")
    logs = json.loads(ok(config, "logs", "--json").stdout)
    uuids = {row["subscription_id"]: row["uuid"] for row in logs}
    admin = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
    scoped = ok(config, "tokens", "create", "crm", "--events", "customer.*").stdout.splitlines()[-1]
    server = start_server(config, folder / "serve.log")
    yield {
        "config": config,
        "url": server.url,
        "admin": admin,
        "scoped": scoped,
        "orders": orders,
        "broken": broken,
        "delivered": uuids[orders],
        "dead": uuids[broken],
        "receiver": receiver,
    }
    assert server.stop() == 0, server.log()
    server_http.shutdown()


def browser(shop: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=shop["url"], timeout=30)


def signed_in(shop: dict[str, Any], token: str | None = None) -> httpx.Client:
    client = browser(shop)
    response = client.post("/login", data={"token": token or shop["admin"], "next": "/subscriptions"})
    assert response.status_code == 303 and response.headers["location"] == "/subscriptions"
    return client


PAGES = [
    "/subscriptions",
    "/subscriptions/{broken}",
    "/logs",
    "/logs?q=success:false",
    "/trace/{delivered}",
    "/",
    "/deadletters",
    "/status",
]


@pytest.mark.parametrize("page", PAGES)
def test_signed_out_pages_redirect_to_login_and_show_nothing(shop: dict[str, Any], page: str) -> None:
    path = page.format(**shop)
    response = browser(shop).get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert httpx.URL(response.headers["location"]).params["next"] == path
    assert response.content == b""
    login = browser(shop).get(response.headers["location"])
    assert login.status_code == 200 and 'name="token"' in login.text
    # (The login form carries the asked-for path back as `next`; nothing else.)
    for secret in (shop["delivered"], shop["dead"], "roni_cost", "CK00000101", "/orders", "orders-secret"):
        assert secret in path or secret not in login.text


@pytest.mark.parametrize("path", ["/logout", "/subscriptions", "/trace/{delivered}/replay"])
def test_signed_out_posts_change_nothing(shop: dict[str, Any], path: str) -> None:
    response = browser(shop).post(path.format(**shop), data={"action": "disable", "ids": [shop["orders"]]})
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    status = json.loads(ok(shop["config"], "subscriptions", "show", str(shop["orders"]), "--json").stdout)["status"]
    assert status == "enabled"


def test_login_sets_a_signed_httponly_samesite_cookie_and_honours_next(shop: dict[str, Any]) -> None:
    client = browser(shop)
    response = client.post("/login", data={"token": shop["admin"], "next": f"/trace/{shop['delivered']}"})
    assert response.status_code == 303 and response.headers["location"] == f"/trace/{shop['delivered']}"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("ae_session=")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert shop["admin"] not in cookie
    assert client.get(response.headers["location"]).status_code == 200

    tampered = browser(shop)
    value = client.cookies["ae_session"]
    tampered.cookies.set("ae_session", value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB"))
    assert tampered.get("/subscriptions").status_code == 303


@pytest.mark.parametrize("next_path", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)", ""])
def test_login_never_redirects_off_site(shop: dict[str, Any], next_path: str) -> None:
    response = browser(shop).post("/login", data={"token": shop["admin"], "next": next_path})
    assert response.status_code == 303 and response.headers["location"] == "/subscriptions"


def test_login_refuses_unknown_and_scoped_tokens(shop: dict[str, Any]) -> None:
    client = browser(shop)
    wrong = client.post("/login", data={"token": "ae_wrong", "next": "/logs"})
    assert wrong.status_code == 401 and "Unknown or revoked token." in wrong.text
    assert "ae_session" not in client.cookies or client.get("/logs").status_code == 303
    scoped = client.post("/login", data={"token": shop["scoped"], "next": "/logs"})
    assert scoped.status_code == 403 and "limited to customer.*" in scoped.text
    assert client.get("/logs").status_code == 303


def test_trace_page_words_the_status_as_ae_trace_does(shop: dict[str, Any]) -> None:
    client = signed_in(shop)
    for uuid, wording in ((shop["delivered"], "Delivered with 1 retry"), (shop["dead"], "Dead Lettered with 1 retry")):
        cli = json.loads(ok(shop["config"], "trace", uuid, "--json").stdout)
        assert cli["status"] == wording
        page = client.get(f"/trace/{uuid}")
        assert page.status_code == 200
        assert re.search(r'id="status">([^<]*)</p>', page.text).group(1) == wording
        rows = re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>", page.text.split('id="attempts"')[1])
        assert rows == ["1", "2"]
        assert "orders-secret" not in page.text and "broken-secret" not in page.text
        assert "&#34;customer_email&#34;: &#34;roni_cost@example.com&#34;" in page.text  # pretty-printed, escaped
        assert 'action="/trace/' + uuid + '/replay"' in page.text
    delivered = client.get(f"/trace/{shop['delivered']}").text
    assert ">500</td>" in delivered and ">200</td>" in delivered
    missing = client.get("/trace/no-such-uuid")
    assert missing.status_code == 404 and "no delivery with uuid no-such-uuid" in missing.text


def test_replay_needs_the_csrf_secret(shop: dict[str, Any]) -> None:
    client = signed_in(shop)
    path = f"/trace/{shop['dead']}"
    before = json.loads(ok(shop["config"], "trace", shop["dead"], "--json").stdout)
    for forged in ({}, {"csrf": "guess"}):
        refused = client.post(path + "/replay", data=forged)
        assert refused.status_code == 403 and "CSRF" in refused.text
    assert json.loads(ok(shop["config"], "trace", shop["dead"], "--json").stdout) == before

    replayed = client.post(path + "/replay", data={"csrf": csrf_of(client.get(path).text)})
    assert replayed.status_code == 303 and replayed.headers["location"] == path
    page = client.get(path).text
    assert "Replayed: first attempt due at" in page
    assert re.search(r'id="status">Retrying, (next attempt at|overdue since) [^<]+ UTC[^<]*</p>', page)
    assert json.loads(ok(shop["config"], "trace", shop["dead"], "--json").stdout)["state"] == "retrying"


def test_subscription_grid_and_its_mass_actions(shop: dict[str, Any]) -> None:
    client = signed_in(shop)
    grid = client.get("/subscriptions")
    assert grid.status_code == 200
    assert shop["receiver"].endpoint("/orders") in grid.text and "orders-secret" not in grid.text
    token = csrf_of(grid.text)
    ids = [shop["orders"], shop["broken"]]

    refused = client.post("/subscriptions", data={"action": "disable", "ids": ids})
    assert refused.status_code == 403
    shown = json.loads(ok(shop["config"], "subscriptions", "list", "--json").stdout)
    assert {s["status"] for s in shown} == {"enabled"}

    done = client.post("/subscriptions", data={"action": "disable", "ids": ids, "csrf": token})
    assert done.status_code == 303
    assert "Disabled 2 subscriptions." in client.get("/subscriptions").text
    shown = json.loads(ok(shop["config"], "subscriptions", "list", "--json").stdout)
    assert {s["status"] for s in shown} == {"disabled"}

    skipped = client.post("/subscriptions", data={"action": "replay", "ids": [shop["orders"]], "csrf": token})
    assert skipped.status_code == 303
    assert "Replayed 0 deliveries. Skipped 1: subscription 1 is disabled" in client.get("/subscriptions").text

    client.post("/subscriptions", data={"action": "enable", "ids": ids, "csrf": token})
    shown = json.loads(ok(shop["config"], "subscriptions", "list", "--json").stdout)
    assert {s["status"] for s in shown} == {"enabled"}
    client.post("/subscriptions", data={"action": "replay", "ids": [shop["orders"]], "csrf": token})
    assert "Replayed 1 delivery." in client.get("/subscriptions").text
    assert json.loads(ok(shop["config"], "trace", shop["delivered"], "--json").stdout)["state"] == "retrying"

    none = client.post("/subscriptions", data={"action": "enable", "csrf": token})
    assert none.status_code == 303 and "Select at least one" in client.get("/subscriptions").text
    unknown = client.post("/subscriptions", data={"action": "enable", "ids": [999], "csrf": token})
    assert unknown.status_code == 404 and "no subscription with id 999" in unknown.text


def test_the_grid_shows_each_subscriptions_health_and_links_its_page(shop: dict[str, Any]) -> None:
    """/subscriptions shows the state `ae subscriptions health` gives; /subscriptions/ID
    shows its rates, counts and last error (the broken receiver's 503)."""
    client = signed_in(shop)
    expected = {
        r["subscription_id"]: r for r in json.loads(ok(shop["config"], "subscriptions", "health", "--json").stdout)
    }
    grid = client.get("/subscriptions").text
    for subscription_id, row in expected.items():
        link = f'<a href="/subscriptions/{subscription_id}" class="badge health-{row["state"]}"'
        assert link in grid, grid
    page = client.get(f"/subscriptions/{shop['broken']}")
    assert page.status_code == 200
    broken = expected[shop["broken"]]
    assert f'data-health="{broken["state"]}"' in page.text and broken["state"] == "degraded"
    assert "0.0% of 2" in page.text and "503" in page.text
    assert "broken-secret" not in page.text and shop["receiver"].endpoint("/broken") in page.text
    missing = client.get("/subscriptions/999")
    assert missing.status_code == 404 and "no subscription with id 999" in missing.text


def test_logs_grid_search_and_paging(shop: dict[str, Any]) -> None:
    client = signed_in(shop)
    everything = client.get("/logs")
    assert everything.status_code == 200
    assert everything.text.count('href="/trace/') == 4  # two attempts each
    assert f'href="/trace/{shop["dead"]}"' in everything.text

    found = client.get("/logs", params={"q": "data.data.customer_email: roni_cost@example.com AND success:true"})
    assert found.status_code == 200 and "1 match," in found.text
    assert found.text.count('href="/trace/') == 1 and f'href="/trace/{shop["delivered"]}"' in found.text

    for malformed in ("(success:true", 'success:""', "NOT NOT x"):
        bad = client.get("/logs", params={"q": malformed})
        assert bad.status_code == 400 and "malformed query" in bad.text, malformed
    started = time.perf_counter()
    too_long = client.get("/logs", params={"q": "roni " * 12_000})  # 60 KB (httpx caps URLs at 64 KB)
    assert too_long.status_code == 400 and "query too long: 60,000 characters" in too_long.text
    assert time.perf_counter() - started < 1.0

    beyond = client.get("/logs", params={"page": 9})
    assert beyond.status_code == 200 and "Page 9 of 1" in beyond.text and 'href="/trace/' not in beyond.text
    assert client.get("/logs", params={"page": "x"}).status_code == 400


def test_revoking_the_token_signs_its_sessions_out(shop: dict[str, Any]) -> None:
    secret = ok(shop["config"], "tokens", "create", "short-lived").stdout.splitlines()[-1]
    client = signed_in(shop, secret)
    assert client.get("/logs").status_code == 200
    ok(shop["config"], "tokens", "revoke", "short-lived")
    assert client.get("/logs").status_code == 303
    ok(shop["config"], "tokens", "create", "short-lived")  # the same name again is another token
    assert client.get("/logs").status_code == 303


def test_logout_ends_the_session(shop: dict[str, Any]) -> None:
    client = signed_in(shop)
    page = client.get("/subscriptions").text
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/subscriptions").status_code == 200
    out = client.post("/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/subscriptions").status_code == 303


def test_pages_are_not_in_the_api_document(shop: dict[str, Any]) -> None:
    document = httpx.get(shop["url"] + "/openapi.json").json()
    assert all(path.startswith("/rest/V1/") for path in document["paths"])
