"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright.

Playwright's own browser download is never used: the project's set-up installs
``chromium`` with apt (scripts/install-system-deps.sh) and ``playwright`` with
pip. Screenshots go to ``test-output/screenshots/`` (``LEGATO_TEST_OUTPUT`` to
move it) so a person can look at every page at phone and desktop widths.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
OUTPUT = Path(os.environ.get("LEGATO_TEST_OUTPUT", Path(__file__).parent.parent / "test-output"))


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser, *, phone: bool = True) -> tuple[BrowserContext, Page]:
    """A fresh profile (no cookies, storage or service worker) at phone or desktop size."""
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP,
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    return context, page


def js_errors(page: Page) -> list[str]:
    """Script errors and console errors the page raised so far."""
    return list(page.js_errors)  # type: ignore[attr-defined]


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot under the test output, named for the page and width."""
    width = page.viewport_size["width"] if page.viewport_size else 0
    path = OUTPUT / "screenshots" / f"{name}-{width}px.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(
    page: Page, base_url: str, username: str, password: str, *, path: str = "/remote"
) -> None:
    """Sign in through the login form, as a person would, and land on ``path``."""
    page.goto(f"{base_url}{path}")
    page.wait_for_url("**/login**")
    page.get_by_label("Account name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: urlsplit(url).path == path)
