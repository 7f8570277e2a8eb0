"""The dashboard in a real browser (Debian's Chromium): an operator's tour, a listener refused.

Screenshots of every page at phone and desktop widths go to
test-output/screenshots/dashboard-*.png for a person to look at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from connect_protocol.tls import fingerprint
from hub.accounts import users
from hub.clock import now_ms
from hub.demo_music.seed import seed_demo
from hub.fleet import enrolment
from tests.browser import chromium, js_errors, log_in, new_page, screenshot
from tests.system import PASSWORD, System, wait_for

pytestmark = [pytest.mark.integration]

ADMIN_PASSWORD = "operator-password"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("dashboard-browser"))
    users.add_user(sysm.db, "operator", ADMIN_PASSWORD, admin=True)
    seed_demo(sysm.db)
    enrolment.register(
        sysm.db, sysm.data, name="Shelf", code=None, admin="operator", now_ms=now_ms()
    )
    with sysm.running("kitchen", "lounge"):
        _some_history(sysm)
        yield sysm


def _some_history(system: System) -> None:
    """Play and skip on the kitchen speaker (events, plays) and leave a licence to list."""
    with system.db.reading() as conn:
        rows = conn.execute("SELECT id FROM tracks ORDER BY album_id, track_number LIMIT 4")
        uris = [f"spotify:track:{r[0]}" for r in rows]
    with httpx.Client(
        base_url=system.url, headers={"Authorization": f"Bearer {system.token()}"}, timeout=15
    ) as api:

        def online() -> bool:
            devices = api.get("/v1/me/player/devices").json()["devices"]
            return sum(1 for d in devices if d["is_active"] or d["id"]) >= 2

        wait_for(online, 30, "both speakers", system.logs)
        r = api.put("/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": uris})
        assert r.status_code == 204, r.text
        for _ in range(2):
            api.post("/v1/me/player/next", params={"device_id": "kitchen"})

    def events() -> bool:
        with system.db.reading() as conn:
            return bool(conn.execute("SELECT COUNT(*) FROM device_events").fetchone()[0] >= 3)

    wait_for(events, 15, "events stored", system.logs)
    now = now_ms()
    with system.db.transaction() as conn:
        uid = conn.execute("SELECT id FROM users WHERE name = 'listener'").fetchone()[0]
        conn.execute(
            "INSERT INTO licences (id, device_id, user_id, epoch, device_x25519, issued_ms,"
            " expires_ms, signed_json) VALUES ('lic-b', 'lounge', ?, 0, 'x', ?, ?, '{}')",
            (uid, now, now + 30 * 86_400_000),
        )


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def no_horizontal_overflow(page: Page) -> None:
    screen = page.viewport_size["width"] if page.viewport_size else 0
    wide: Any = page.evaluate("document.documentElement.scrollWidth")
    assert wide <= screen, f"{page.url} is {wide} px wide on a {screen} px screen"


@pytest.mark.parametrize("phone", [True, False], ids=["phone", "desktop"])
def test_an_operator_tours_the_console(system: System, browser: Browser, phone: bool) -> None:
    context, page = new_page(browser, phone=phone)
    try:
        log_in(page, system.url, "operator", ADMIN_PASSWORD, path="/dashboard")
        expect(page.get_by_role("heading", name="Fleet", level=1)).to_be_visible()
        kitchen = page.locator('#fleet-rows tr[data-id="kitchen"]')
        expect(kitchen).to_contain_text("online")
        expect(page.locator('#fleet-rows tr[data-id="lounge"]')).to_contain_text("online")
        expect(kitchen).to_contain_text("▶")  # playing, from the live state
        no_horizontal_overflow(page)
        screenshot(page, "dashboard-fleet")

        # the page follows the fleet by itself: a pause shows up without a reload
        httpx.put(
            f"{system.url}/v1/me/player/pause",
            params={"device_id": "kitchen"},
            headers={"Authorization": f"Bearer {system.token()}"},
        )
        expect(kitchen).to_contain_text("paused", timeout=10_000)
        httpx.put(
            f"{system.url}/v1/me/player/play",
            params={"device_id": "kitchen"},
            headers={"Authorization": f"Bearer {system.token()}"},
        )

        page.get_by_role("link", name="Charts").click()
        page.wait_for_url("**/dashboard/charts")
        chart = page.locator('svg.chart[role="img"]').first
        expect(chart).to_be_visible()
        assert page.locator("svg.chart rect.bar").count() > 0
        no_horizontal_overflow(page)
        screenshot(page, "dashboard-charts")

        page.goto(f"{system.url}/dashboard")
        page.locator('#fleet-rows tr[data-id="kitchen"] a').click()
        page.wait_for_url("**/dashboard/speakers/kitchen")
        expect(page.get_by_role("heading", name="Recent events")).to_be_visible()
        expect(page.locator("#events tbody tr").first).to_be_visible()
        expect(page.locator("#events")).to_contain_text("skipped")
        no_horizontal_overflow(page)
        screenshot(page, "dashboard-speaker")

        page.get_by_role("link", name="Speakers", exact=True).click()
        page.wait_for_url("**/dashboard/speakers")
        expect(page.get_by_role("heading", name="Speakers", level=1)).to_be_visible()
        expect(page.locator('#setups tr[data-id^="shelf-"]')).to_contain_text(
            "waiting for first boot"
        )
        page.get_by_role("button", name="New enrolment code").click()
        expect(page.locator("#enrolment-code")).to_have_text(
            re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}$")
        )
        command = page.locator("#enrolment-command")
        expect(command).to_contain_text(f"--hub https://127.0.0.1:{system.tls_port} ")
        expect(command).to_contain_text(fingerprint(system.tls.ca_pem))
        no_horizontal_overflow(page)
        screenshot(page, "dashboard-speakers")

        for name, heading in [
            ("catalog", "Catalog"),
            ("users", "Users"),
            ("licences", "Offline licences"),
            ("health", "Hub health"),
        ]:
            page.get_by_role("link", name=name.title(), exact=True).click()
            page.wait_for_url(f"**/dashboard/{name}")
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
            no_horizontal_overflow(page)
            screenshot(page, f"dashboard-{name}")
        assert js_errors(page) == []
    finally:
        context.close()


def test_a_listener_is_refused(system: System, browser: Browser) -> None:
    context, page = new_page(browser, phone=True)
    try:
        log_in(page, system.url, "listener", PASSWORD, path="/dashboard")
        expect(
            page.get_by_role("heading", name="This console is for hub operators")
        ).to_be_visible()
        assert page.locator("#fleet").count() == 0
        assert "Kitchen" not in page.content()
        screenshot(page, "dashboard-refused")
        # the only error is the page's own 403 status
        assert all("403" in e for e in js_errors(page)), js_errors(page)
    finally:
        context.close()
