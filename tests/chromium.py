"""Debian's headless chromium, driven by Selenium through chromium-driver: the `chrome` fixture.

Tests that take it skip when the browser or its driver is missing, and fail instead when
AE_REQUIRE_BROWSER=1 (CI), so a missing browser cannot pass silently. conftest marks
them `browser`, which the fast test command leaves out.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest


def _browser_problem() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    for name in ("chromium", "chromedriver"):
        if not shutil.which(name):
            return f"{name} is not on PATH (apt-get install chromium chromium-driver)"
    return None


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    problem = _browser_problem()
    if problem:
        if os.environ.get("AE_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(f"AE_REQUIRE_BROWSER is set but {problem}")
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--disable-extensions",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
