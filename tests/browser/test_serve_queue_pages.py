"""The dead-letters and status pages (issue 20), over real HTTP, and every admin page in a real
headless Chromium at 1280x900 and 1024x768: none may scroll sideways, and no table may hide
columns behind its own scrollbar.

Screenshots go to a temporary folder; `PAGE_SCREENSHOTS=docs/pages` (from the repository root)
writes the ones docs/serve.md shows.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ok, serving_receiver, write_config
from serving import start_server

from asyncevents_cli.messages import TriggerMessage
from asyncevents_cli.queues.base import TRIGGER
from asyncevents_cli.runtime import Runtime

EVENT = "sales.order.created"
LONG_PATH = "/hooks/" + "-".join(["northern-warehouse-order-intake"] * 6)
LONG_ORDER = {
    "increment_id": "CK00000101",
    "customer_email": "veronica_costello_of_the_northern_warehouse@example.com",
    "items": [{"sku": f"24-MB0{n}", "name": "Joust Duffle Bag, the large one with the long strap"} for n in range(6)],
    "unbroken": "x" * 400,
}
SIZES = [(1280, 900), (1024, 768)]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A dead-lettered retry, a parked trigger, a delivery whose subscription moved, long values."""
    folder = tmp_path_factory.mktemp("queue-pages")
    config = write_config(folder, max_deaths=1)
    with serving_receiver() as receiver:
        receiver.script(LONG_PATH, 503)
        broken = ok(config, "subscribe", EVENT, receiver.endpoint(LONG_PATH), "--secret", "s").stdout.strip()
        ok(config, "subscribe", EVENT, receiver.endpoint("/moved-from"), "--secret", "s")
        ok(config, "publish", EVENT, "--data", json.dumps(LONG_ORDER))
        ok(config, "consume", "all", "--until-empty")
        ok(config, "subscriptions", "update", "2", "--url", receiver.endpoint("/moved-to"))
        logs = json.loads(ok(config, "logs", "--json").stdout)
        uuids = {row["subscription_id"]: row["uuid"] for row in logs}
        with Runtime(config) as rt:
            rt.queue.dead_letter(TriggerMessage(EVENT, LONG_ORDER).encode(), "service failed: " + "y" * 300, TRIGGER)
        token = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
        server = start_server(config, folder / "serve.log")
        yield {"config": config, "url": server.url, "token": token, "dead": uuids[int(broken)], "moved": uuids[2]}
        assert server.stop() == 0, server.log()


def signed_in(site: dict[str, Any]) -> httpx.Client:
    client = httpx.Client(base_url=site["url"], timeout=30)
    assert client.post("/login", data={"token": site["token"], "next": "/status"}).status_code == 303
    return client


def parked(config: Path) -> list[dict[str, Any]]:
    return json.loads(ok(config, "deadletters", "--json").stdout)


def test_pages_need_a_session(site: dict[str, Any]) -> None:
    for path in ("/deadletters", "/status", "/deadletters/purge"):
        response = httpx.get(site["url"] + path, timeout=30)
        assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    response = httpx.post(site["url"] + "/deadletters/purge", data={"confirm": "yes"}, timeout=30)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert len(parked(site["config"])) == 2


def test_status_page_shows_the_depths_and_the_last_activity(site: dict[str, Any]) -> None:
    page = signed_in(site).get("/status")
    assert page.status_code == 200
    status = json.loads(ok(site["config"], "status", "--json").stdout)
    depths = re.findall(r'<td class="num">(?:<a href="/deadletters">)?(\d+)', page.text.split('id="queues"')[1])[:5]
    queues = status["queues"]
    assert depths == [str(queues[k]) for k in ("trigger", "retry_due", "retry_delayed", "dead_letters", "in_flight")]
    newest = json.loads(ok(site["config"], "logs", "--limit", "1", "--json").stdout)[0]["created"]
    assert f'<span id="last-activity">{newest[:19].replace("T", " ")} UTC</span>' in page.text


def test_dead_letters_page_lists_and_needs_csrf_and_a_confirmation(site: dict[str, Any]) -> None:
    client = signed_in(site)
    listing = client.get("/deadletters")
    assert listing.status_code == 200 and f'href="/trace/{site["dead"]}"' in listing.text
    assert "Requeue 1 parked trigger" in listing.text
    for forged in ({"confirm": "yes"}, {"confirm": "yes", "csrf": "guess"}):
        assert client.post("/deadletters/purge", data=forged).status_code == 403
    assert len(parked(site["config"])) == 2
    question = client.get("/deadletters/requeue")
    assert question.status_code == 200 and "Put every parked trigger back" in question.text
    unconfirmed = client.post("/deadletters/requeue", data={"csrf": csrf_of(question.text)})
    assert unconfirmed.status_code == 303 and unconfirmed.headers["location"] == "/deadletters/requeue"
    assert len(parked(site["config"])) == 2
    done = client.post("/deadletters/requeue", data={"csrf": csrf_of(question.text), "confirm": "yes"})
    assert done.status_code == 303 and "Requeued 1 parked trigger(s)." in client.get("/deadletters").text
    assert [r["origin"] for r in parked(site["config"])] == ["retry"]
    status = json.loads(ok(site["config"], "status", "--json").stdout)
    assert status["queues"]["trigger"] == 1


def test_purge_empties_the_dead_letters_after_its_confirmation(site: dict[str, Any]) -> None:
    client = signed_in(site)
    question = client.get("/deadletters/purge")
    assert "Delete every parked message for good?" in question.text
    done = client.post("/deadletters/purge", data={"csrf": csrf_of(question.text), "confirm": "yes"})
    assert done.status_code == 303 and "Purged 1 dead letter(s)." in client.get("/deadletters").text
    assert parked(site["config"]) == []


def page_paths(site: dict[str, Any]) -> list[str]:
    return [
        "/subscriptions",
        "/logs",
        "/logs?q=success:false",
        f"/trace/{site['dead']}",
        f"/trace/{site['moved']}",
        "/deadletters",
        "/deadletters/purge",
        "/status",
    ]


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_no_page_scrolls_sideways(
    chrome: Any,
    site: dict[str, Any],
    width: int,
    height: int,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("PAGE_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    chrome.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        chrome.delete_all_cookies()
        chrome.get(site["url"] + "/login")
        chrome.save_screenshot(str(shots / f"login-{width}.png"))
        chrome.find_element(By.NAME, "token").send_keys(site["token"])
        chrome.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
        for path in page_paths(site):
            chrome.get(site["url"] + path)
            assert "/login" not in chrome.current_url, path
            overflow = chrome.execute_script(
                "return [document.documentElement.scrollWidth - window.innerWidth,"
                " Math.max(0, ...Array.from(document.querySelectorAll('.scroll, pre'),"
                " e => e.scrollWidth - e.clientWidth))]"
            )
            assert overflow[0] <= 0 and overflow[1] <= 0, (path, width, overflow)
            name = path.strip("/").split("?")[0].replace("/", "-").split("-")[0] or "home"
            if path.startswith("/trace/"):
                name = "trace-moved" if site["moved"] in path else "trace"
            elif path == "/deadletters/purge":
                name = "confirm"
            elif "?q=" in path:
                name = "search"
            assert chrome.save_screenshot(str(shots / f"{name}-{width}.png"))
    finally:
        chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_trace_page_shows_whole_values_and_where_an_attempt_went(
    chrome: Any,
    site: dict[str, Any],
) -> None:
    from selenium.webdriver.common.by import By

    chrome.delete_all_cookies()
    chrome.get(site["url"] + "/login?next=/trace/" + site["moved"])
    chrome.find_element(By.NAME, "token").send_keys(site["token"])
    chrome.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    chrome.get(site["url"] + "/trace/" + site["moved"])
    payload = json.loads(chrome.find_element(By.ID, "payload").text)
    assert payload == {"data": LONG_ORDER}  # whole, however long
    sent_to = [td.text for td in chrome.find_elements(By.CSS_SELECTOR, "#attempts td.sent-to")]
    assert sent_to and sent_to[0].endswith("/moved-from")
