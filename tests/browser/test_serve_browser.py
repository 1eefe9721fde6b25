"""The admin pages in a real headless browser: Debian's chromium driven by Selenium
through chromium-driver (the `chrome` fixture, tests/chromium.py). Skips without them,
unless AE_REQUIRE_BROWSER=1 (CI), where a missing browser fails instead of passing silently."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ok, serving_receiver, write_config
from serving import start_server

EVENT = "sales.order.created"
ORDER = {"increment_id": "CK00000101", "customer_email": "roni_cost@example.com", "grand_total": 45.5}


@pytest.fixture(scope="module")
def delivered_after_a_retry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("browser")
    config = write_config(folder)
    with serving_receiver() as receiver:
        receiver.script("/orders", 500, 200)
        ok(config, "subscribe", EVENT, receiver.endpoint("/orders"), "--secret", "orders-secret")
        ok(config, "publish", EVENT, "--data", json.dumps(ORDER))
        ok(config, "consume", "all", "--until-empty")
        [uuid] = {row["uuid"] for row in json.loads(ok(config, "logs", "--json").stdout)}
        token = ok(config, "tokens", "create", "admin").stdout.splitlines()[-1]
        server = start_server(config, folder / "serve.log")
        yield {"url": server.url, "uuid": uuid, "token": token, "config": config}
        assert server.stop() == 0


def test_sign_in_through_the_form_and_read_a_trace(
    chrome: Any, delivered_after_a_retry: dict[str, Any], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    site = delivered_after_a_retry
    trace_url = f"{site['url']}/trace/{site['uuid']}"
    chrome.delete_all_cookies()
    chrome.get(trace_url)
    assert chrome.current_url.startswith(f"{site['url']}/login?next=")
    chrome.find_element(By.NAME, "token").send_keys(site["token"])
    chrome.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()

    # click() returns before the form's POST and redirect finish: wait for the page
    # `next` pointed at (a TimeoutException fails the test if it never comes).
    WebDriverWait(chrome, 15).until(expected_conditions.url_to_be(trace_url))
    assert chrome.current_url == trace_url
    expected = json.loads(ok(site["config"], "trace", site["uuid"], "--json").stdout)["status"]
    assert expected == "Delivered with 1 retry"
    assert chrome.find_element(By.ID, "status").text == expected
    payload = json.loads(chrome.find_element(By.ID, "payload").text)
    assert payload == {"data": ORDER}
    cells = [
        [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        for row in chrome.find_elements(By.CSS_SELECTOR, "#attempts tbody tr")
    ]
    assert [(c[0], c[2], c[3]) for c in cells] == [("1", "no", "500"), ("2", "yes", "200")]
    assert "orders-secret" not in chrome.page_source and site["token"] not in chrome.page_source
    shot = tmp_path / "trace.png"
    assert chrome.save_screenshot(str(shot)) and shot.stat().st_size > 10_000

    cookie = chrome.get_cookie("ae_session")
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert chrome.execute_script("return document.cookie") == ""  # HttpOnly: scripts cannot read it


def test_signed_out_the_trace_page_shows_nothing(chrome: Any, delivered_after_a_retry: dict[str, Any]) -> None:
    from selenium.webdriver.common.by import By

    site = delivered_after_a_retry
    chrome.delete_all_cookies()
    chrome.get(f"{site['url']}/trace/{site['uuid']}")
    assert "/login" in chrome.current_url
    assert chrome.find_elements(By.ID, "status") == [] and chrome.find_elements(By.ID, "payload") == []
    text = chrome.find_element(By.TAG_NAME, "body").text
    for secret in ("Delivered", "roni_cost", "CK00000101", "orders"):
        assert secret not in text


def test_the_health_badge_leads_to_the_subscriptions_page(chrome: Any, delivered_after_a_retry: dict[str, Any]) -> None:
    """/subscriptions shows the state `ae subscriptions health` gives; its badge opens
    the subscription's page with the same state, rates and last error."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    site = delivered_after_a_retry
    (health,) = json.loads(ok(site["config"], "subscriptions", "health", "--json").stdout)
    assert health["state"] == "degraded" and health["success_rate_15m"] == 0.5  # a 500, then a 200
    chrome.delete_all_cookies()
    chrome.get(f"{site['url']}/login?next=/subscriptions")
    chrome.find_element(By.NAME, "token").send_keys(site["token"])
    chrome.find_element(By.CSS_SELECTOR, "form[action='/login'] button[type=submit]").click()
    WebDriverWait(chrome, 15).until(expected_conditions.url_to_be(f"{site['url']}/subscriptions"))
    badge = chrome.find_element(By.CSS_SELECTOR, "a[data-health]")
    assert badge.text == "degraded"
    badge.click()
    page = f"{site['url']}/subscriptions/{health['subscription_id']}"
    WebDriverWait(chrome, 15).until(expected_conditions.url_to_be(page))
    assert chrome.find_element(By.CSS_SELECTOR, "#health [data-health]").text == "degraded"
    facts = chrome.find_element(By.ID, "facts").text
    assert "50.0% of 2" in facts and "500" in facts
    assert "orders-secret" not in chrome.page_source
