"""A real headless Chromium driven by selenium and the system chromedriver, for the report's tests.

Debian's ``chromium`` and ``chromium-driver`` packages provide both (``.ci/run`` installs them); without them the
tests that need a browser skip and say so.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

__all__ = ["BROWSER_FLAGS", "chromium"]

#: Flags that keep the browser from reaching the network or its profile: the report must work offline.
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,900",
]


def _binaries() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    return browser, driver


@contextmanager
def chromium() -> Iterator[Any]:
    """A selenium WebDriver for a fresh headless Chromium with its own profile folder; quit on exit."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (in the dev dependency group)")
    from selenium.webdriver.chrome.service import Service

    browser, driver = _binaries()
    profile = tempfile.mkdtemp(prefix="misen-report-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in [*BROWSER_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})  # script errors, for the tests
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)
