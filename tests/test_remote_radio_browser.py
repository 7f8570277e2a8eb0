"""Radio, "More like this" and autoplay on the phone remote, in a real browser.

One hub on Mosquitto with one speaker (clock engine) and the demo catalog with
its audio features; what the page starts is checked on the speaker's retained
MQTT state, and the autoplay setting through the Web API.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request, expect

from hub.demo_music import catalog_extras
from hub.demo_music.seed import seed_demo
from tests.browser import chromium, js_errors, log_in, new_page, screenshot
from tests.system import PASSWORD, Api, System, retained_state, wait_for

pytestmark = pytest.mark.timeout(240)
ALBUM = "Harbour Lights"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root: Path = tmp_path_factory.mktemp("radio-remote")
    s = System(root)
    seed_demo(s.db)
    with s.db.transaction() as conn:
        catalog_extras.apply(conn)
    with s.running("kitchen"):
        api = Api(s)
        api.wait_online("kitchen")
        api.close()
        yield s


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b


def album(system: System) -> tuple[str, dict[str, str]]:
    """The album's id and its tracks (id -> name)."""
    with system.db.reading() as conn:
        rows = conn.execute("SELECT id, name, album_id FROM tracks WHERE album = ?", (ALBUM,))
        found = rows.fetchall()
    return found[0]["album_id"], {r["id"]: r["name"] for r in found}


def on_speaker(system: System, what: str, check: Any) -> dict[str, Any]:
    return wait_for(
        lambda: (s := retained_state(system, "kitchen")) and check(s) and s, 10, what, system.logs
    )


def signed_in(browser: Browser, system: System) -> Page:
    _context, page = new_page(browser)
    log_in(page, system.url, "listener", PASSWORD)
    expect(page.locator("#connection")).to_have_text("")
    expect(page.locator("#speaker-name")).to_have_text("Kitchen")  # the only speaker
    return page


def test_start_radio_and_more_like_this_from_album_and_track_pages(
    system: System, browser: Browser
) -> None:
    album_id, tracks = album(system)
    page = signed_in(browser, system)
    page.goto(f"{system.url}/remote#/album/{album_id}")
    expect(page.get_by_role("heading", name=ALBUM)).to_be_visible()

    more = page.get_by_role("region", name=f"More like {ALBUM}")
    rows = more.locator("li.row")
    expect(rows.first).to_be_visible()
    shown = rows.locator(".title").all_inner_texts()
    assert shown
    assert not set(shown) & set(tracks.values())  # like the album, not from it
    screenshot(page, "remote-album-radio")

    page.get_by_role("button", name=f"Start a radio based on {ALBUM}").click()
    expect(page.locator("#now-context")).to_have_text("Radio")
    state = on_speaker(
        system, "the album's radio", lambda s: s["context_uri"] == f"legato:radio:album:{album_id}"
    )
    assert state["is_playing"]
    assert state["current"]["uri"].rsplit(":", 1)[-1] not in tracks
    screenshot(page, "remote-now-radio")

    # a row of "More like this" plays that track, and it is no radio
    page.goto(f"{system.url}/remote#/album/{album_id}")
    first = more.locator("li.row").first
    title = first.locator(".title").inner_text()
    first.get_by_role("button", name=re.compile(f"^Play {re.escape(title)}")).click()
    expect(page.locator("#track-title")).to_have_text(title)
    expect(page.locator("#now-context")).to_be_hidden()
    on_speaker(system, f"{title} playing", lambda s: s["current"]["name"] == title)

    # from an album row to that track's page, and a radio from the track
    track_id, name = next(iter(tracks.items()))
    page.goto(f"{system.url}/remote#/album/{album_id}")
    page.get_by_role("link", name=f"{name}: radio and more like this").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(
        page.get_by_role("region", name=f"More like {name}").locator("li.row").first
    ).to_be_visible()
    page.get_by_role("button", name=f"Start a radio based on {name}").click()
    on_speaker(
        system, "the track's radio", lambda s: s["context_uri"] == f"legato:radio:track:{track_id}"
    )
    assert js_errors(page) == []


def test_the_autoplay_toggle_flips_the_listeners_setting(system: System, browser: Browser) -> None:
    api = Api(system)
    try:
        page = signed_in(browser, system)
        toggle = page.get_by_role("button", name=re.compile("^Autoplay"))
        expect(toggle).to_have_text("Autoplay: on")
        expect(toggle).to_have_attribute("aria-pressed", "true")
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        wait_for(
            lambda: api.client.get("/v1/me/player/autoplay").json() == {"autoplay": False},
            5,
            "autoplay off on the hub",
        )
        page.reload()
        expect(page.get_by_role("button", name=re.compile("^Autoplay"))).to_have_text(
            "Autoplay: off"
        )
        screenshot(page, "remote-autoplay-off")
        page.get_by_role("button", name=re.compile("^Autoplay")).click()
        wait_for(
            lambda: api.client.get("/v1/me/player/autoplay").json() == {"autoplay": True},
            5,
            "autoplay on again on the hub",
        )
    finally:
        api.close()


def test_clearing_the_history_asks_first(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    page.get_by_role("link", name=re.compile("^Playlists$")).click()
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.method == "DELETE" else None)
    page.once("dialog", lambda d: d.dismiss())
    page.get_by_role("button", name="Clear my listening history").click()
    page.wait_for_timeout(300)
    assert sent == []  # said no: nothing asked of the hub
    page.once("dialog", lambda d: d.accept())
    with page.expect_request(lambda r: r.method == "DELETE") as asked:
        page.get_by_role("button", name="Clear my listening history").click()
    assert asked.value.url.endswith("/v1/me/player/recently-played")
    expect(page.get_by_role("alert")).to_be_visible()
