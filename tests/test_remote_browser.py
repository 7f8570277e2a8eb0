"""The listener's phone remote in a real browser (Debian's chromium, headless).

One hub on Mosquitto with two speakers; the page is driven as a person would
(labels and roles, not internal ids where a person would read a label), and
what it claims is checked against the speakers' retained MQTT state.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from hub.demo_music.seed import seed_demo
from tests.browser import chromium, js_errors, log_in, new_page, screenshot
from tests.system import PASSWORD, Api, System, retained_state, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    root: Path = tmp_path_factory.mktemp("remote")
    s = System(root)
    seed_demo(s.db)
    with s.running("kitchen", "lounge"):
        api = Api(s)
        api.wait_online("kitchen", "lounge")
        api.close()
        yield s


@pytest.fixture
def browser() -> Iterator[Browser]:
    # per test: Playwright's worker threads end with it (conftest checks for leaked threads)
    with chromium() as b:
        yield b


def mqtt_state(system: System, device_id: str) -> dict[str, Any]:
    return retained_state(system, device_id)


def signed_in(browser: Browser, system: System, *, phone: bool = True) -> Page:
    _context, page = new_page(browser, phone=phone)
    log_in(page, system.url, "listener", PASSWORD)
    expect(page.locator("#connection")).to_have_text("")  # connected: no banner
    return page


def choose(page: Page, speaker: str) -> None:
    page.get_by_role("link", name=re.compile("^Speakers$")).click()
    # The list renders after the view changes: only then does a missing Control button
    # mean the speaker is already this remote's.
    expect(page.locator("li.speaker", has_text=speaker)).to_be_visible()
    control = page.get_by_role("button", name=f"Control {speaker}")
    if control.count():
        control.click()
    expect(page.locator("#speaker-name")).to_have_text(speaker)


def test_signed_out_browser_is_sent_to_login_and_a_wrong_password_is_said_plainly(
    system: System, browser: Browser
) -> None:
    _context, page = new_page(browser)
    page.goto(f"{system.url}/remote")
    page.wait_for_url("**/login?next=/remote")
    page.get_by_label("Account name").fill("listener")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid username or password")
    screenshot(page, "remote-login-error")
    assert "/login" in page.url
    assert js_errors(page) == [] or all("401" in e or "400" in e for e in js_errors(page))


def test_search_play_volume_and_state_on_mqtt(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    screenshot(page, "remote-now-idle")
    choose(page, "Kitchen")

    # typeahead: results appear while typing (at a person's pace), without pressing enter
    page.get_by_role("link", name=re.compile("^Search$")).click()
    page.get_by_label("Search the catalog").press_sequentially("harb", delay=120)
    expect(page.get_by_label("Search the catalog")).to_have_value("harb")
    album = page.locator("#search-results a.row-main", has_text="Harbour Lights")
    expect(album).to_be_visible()
    screenshot(page, "remote-search")

    album.click()
    expect(page.get_by_role("heading", name="Harbour Lights")).to_be_visible()
    screenshot(page, "remote-album")
    page.get_by_role("button", name=re.compile(r"^Play Gulls at Dawn")).click()

    expect(page.locator("#track-title")).to_have_text("Gulls at Dawn")
    expect(page.get_by_role("button", name="Pause").first).to_be_visible()
    state = wait_for(
        lambda: (
            (s := mqtt_state(system, "kitchen"))["is_playing"]
            and s["current"]["name"] == "Gulls at Dawn"
            and s
        ),
        10,
        "kitchen playing Gulls at Dawn on MQTT",
        system.logs,
    )
    assert state["context_uri"].startswith("legato:album:")

    # the progress bar moves by itself, from the state's timestamps
    first = int(page.locator("#seek").input_value())
    page.wait_for_timeout(1500)
    assert int(page.locator("#seek").input_value()) >= first + 1000
    screenshot(page, "remote-playing")

    # volume: the slider, then the speaker's state on MQTT
    page.locator("#volume").fill("23")
    wait_for(
        lambda: mqtt_state(system, "kitchen")["volume_percent"] == 23,
        10,
        "volume 23 on MQTT",
        system.logs,
    )
    expect(page.locator("#volume-value")).to_have_text("23%")

    # pause shows at once and the speaker follows
    page.get_by_role("button", name="Pause").first.click()
    expect(page.locator("#play-pause")).to_have_attribute("aria-label", "Play")
    wait_for(
        lambda: not mqtt_state(system, "kitchen")["is_playing"], 10, "paused on MQTT", system.logs
    )
    # keyboard: the play button is reachable and works with the keyboard alone
    page.locator("#play-pause").focus()
    page.keyboard.press("Enter")
    wait_for(lambda: mqtt_state(system, "kitchen")["is_playing"], 10, "playing again", system.logs)
    page.get_by_role("button", name="Next track").click()
    expect(page.locator("#track-title")).to_have_text("Rope and Anchor")
    assert js_errors(page) == []


def test_search_keeps_every_key_typed_as_soon_as_it_opens(system: System, browser: Browser) -> None:
    """Keys typed right after opening Search all land in the box: typed through the box
    at a person's pace and at once, and on the keyboard straight after the tab is
    clicked or pressed with Enter, also with the CPU slowed down as on a cheap phone."""
    page = signed_in(browser, system)
    box = page.get_by_label("Search the catalog")
    search = page.get_by_role("link", name=re.compile("^Search$"))
    status = page.locator("#search-status")
    album = page.locator("#search-results a.row-main", has_text="Harbour Lights")

    def found() -> None:
        expect(box).to_have_value("harb")
        expect(status).to_have_text(re.compile(r"^\d+ results for “harb”$"))
        expect(album).to_be_visible()
        # empty again before the next round, so its results cannot be this round's
        box.fill("")
        expect(status).to_have_text("")
        expect(page.locator("#search-results")).to_be_empty()
        page.get_by_role("link", name=re.compile("^Playing$")).click()

    search.click()
    box.press_sequentially("harb", delay=120)
    found()
    search.click()
    box.press_sequentially("harb", delay=0)
    found()
    cdp = page.context.new_cdp_session(page)
    for rate in (1, 4):
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        for _ in range(5):
            search.click()
            page.keyboard.type("harb")  # wherever the focus is, as a keyboard does
            found()
            search.focus()
            page.keyboard.press("Enter")
            page.keyboard.type("harb")
            found()
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
    cdp.detach()
    # the views are still the browser's history: Back returns to the one before
    search.click()
    page.get_by_role("link", name=re.compile("^Queue$")).click()
    expect(page.get_by_role("heading", name="Queue", level=1)).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="Search", level=1)).to_be_visible()
    assert page.url.endswith("#/search")
    assert js_errors(page) == []


def test_move_playback_between_speakers(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    choose(page, "Kitchen")
    page.get_by_role("link", name=re.compile("^Search$")).click()
    page.get_by_label("Search the catalog").fill("lanterns")
    page.get_by_role("button", name=re.compile("^Play Lanterns")).first.click()
    expect(page.locator("#track-title")).to_have_text("Lanterns")
    wait_for(
        lambda: mqtt_state(system, "kitchen")["is_playing"], 10, "kitchen playing", system.logs
    )

    page.get_by_role("link", name=re.compile("^Speakers$")).click()
    move = page.get_by_role("button", name="Move playback from Kitchen to Lounge")
    expect(move).to_be_visible()
    screenshot(page, "remote-speakers")
    move.click()
    expect(page.locator("#speaker-name")).to_have_text("Lounge")
    expect(page.locator("#track-title")).to_have_text("Lanterns")
    lounge = wait_for(
        lambda: (s := mqtt_state(system, "lounge"))["is_playing"] and s,
        10,
        "lounge playing after the move",
        system.logs,
    )
    assert lounge["current"]["name"] == "Lanterns"
    wait_for(
        lambda: not mqtt_state(system, "kitchen")["is_playing"],
        10,
        "kitchen stopped after the move",
        system.logs,
    )
    assert js_errors(page) == []


def test_playlists_create_add_and_reorder(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    page.get_by_role("link", name=re.compile("^Playlists$")).click()
    page.get_by_label("New playlist name").fill("Sunday")
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#playlists")).to_contain_text("Sunday")

    page.get_by_role("link", name=re.compile("^Search$")).click()
    for name in ("Low Tide", "Lanterns"):
        page.get_by_label("Search the catalog").fill(name.lower())
        page.get_by_role("button", name=f"Add {name} to a playlist").first.click()
        page.get_by_role("dialog").get_by_role("button", name="Sunday").click()
        expect(page.locator("#toast")).to_contain_text("Added to “Sunday”")

    page.get_by_role("link", name=re.compile("^Playlists$")).click()
    page.locator("#playlists a", has_text="Sunday").click()
    rows = page.locator("#detail ol .title")
    expect(rows).to_have_text(["Low Tide", "Lanterns"])
    page.get_by_role("button", name="Move Lanterns up").click()
    expect(rows).to_have_text(["Lanterns", "Low Tide"])
    screenshot(page, "remote-playlist")
    # the order is the hub's, not only the page's
    page.reload()
    expect(page.locator("#detail ol .title")).to_have_text(["Lanterns", "Low Tide"])
    assert js_errors(page) == []


def test_download_dialog_shows_the_storage_estimate(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    choose(page, "Kitchen")
    page.get_by_role("link", name=re.compile("^Search$")).click()
    page.get_by_label("Search the catalog").fill("harbour")
    page.locator("#search-results a.row-main", has_text="Harbour Lights").click()
    page.get_by_role("button", name="Download this album to a speaker for offline play").click()
    estimate = page.locator("#download-estimate")
    expect(estimate).to_contain_text(re.compile(r"4 tracks, .* [kMG]B at high quality"))
    screenshot(page, "remote-download")
    page.get_by_role("button", name="Cancel").click()
    assert js_errors(page) == []


def test_lost_connection_shows_and_recovers(system: System, browser: Browser) -> None:
    page = signed_in(browser, system, phone=False)
    choose(page, "Kitchen")
    screenshot(page, "remote-now")
    assert system.hub is not None
    system.hub.stop()
    banner = page.locator("#connection")
    expect(banner).to_contain_text("reconnecting", timeout=15_000)
    screenshot(page, "remote-offline")
    system.start_hub()
    expect(banner).to_have_text("", timeout=30_000)
    expect(page.locator("#speaker-name")).to_have_text("Kitchen")
    # and it still controls the speaker
    page.locator("#volume").fill("41")
    wait_for(
        lambda: mqtt_state(system, "kitchen")["volume_percent"] == 41,
        15,
        "volume after reconnecting",
        system.logs,
    )


def test_installable_app_shell(system: System) -> None:
    manifest = httpx.get(f"{system.url}/remote/manifest.webmanifest", timeout=5)
    assert manifest.status_code == 200
    body = manifest.json()
    assert body["display"] == "standalone"
    assert body["start_url"].startswith("/remote")
    for icon in body["icons"]:
        assert httpx.get(f"{system.url}{icon['src']}", timeout=5).status_code == 200
    worker = httpx.get(f"{system.url}/remote/sw.js", timeout=5)
    assert worker.status_code == 200
    assert "javascript" in worker.headers["content-type"]
    page = httpx.get(f"{system.url}/login", timeout=5).text
    # nothing from another host: the hub must work with no internet
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


def test_the_app_shell_opens_with_the_network_gone(system: System, browser: Browser) -> None:
    context, page = new_page(browser)
    log_in(page, system.url, "listener", PASSWORD)
    page.wait_for_function(
        "navigator.serviceWorker && navigator.serviceWorker.controller !== null"
        " || navigator.serviceWorker.ready.then(() => true)"
    )
    page.reload()  # now controlled by the worker, which caches the shell
    page.wait_for_function("navigator.serviceWorker.controller !== null")
    time.sleep(0.5)
    context.set_offline(True)
    page.reload()
    expect(page.locator("#connection")).to_contain_text(re.compile("hub"), timeout=10_000)
    screenshot(page, "remote-no-network")
    context.set_offline(False)


def test_make_a_group_see_it_listed_and_delete_it(system: System, browser: Browser) -> None:
    page = signed_in(browser, system)
    page.get_by_role("link", name=re.compile("^Speakers$")).click()
    page.get_by_label("Group name").fill("Everywhere")
    page.get_by_role("checkbox", name="Kitchen").check()
    page.get_by_role("checkbox", name="Lounge").check()
    page.get_by_role("button", name="Make group").click()
    api = Api(system)
    try:
        row = page.locator("li.speaker.group", has_text="Everywhere")
        expect(row).to_contain_text("Group of Kitchen, Lounge")
        expect(page.locator("li.speaker", has_text="Kitchen").first).to_contain_text(
            "In Everywhere"
        )
        (group,) = api.client.get("/v1/groups").json()["groups"]
        assert (group["name"], group["device_ids"]) == ("Everywhere", ["kitchen", "lounge"])
        screenshot(page, "remote-group")
        page.get_by_role("button", name="Delete Everywhere").click()
        expect(row).to_have_count(0)
        assert api.client.get("/v1/groups").json()["groups"] == []
        assert js_errors(page) == []
    finally:
        for left in api.client.get("/v1/groups").json()["groups"]:
            api.client.delete(f"/v1/groups/{left['id']}")
        api.close()
