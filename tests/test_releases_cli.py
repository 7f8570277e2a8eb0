"""``legato-hub release ...`` as an operator meets it, on a hub that is running
(``serve`` on the same --data), and the dashboard's Releases page."""

from __future__ import annotations

import json
import tarfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from device import config as speaker_config
from hub.accounts import users
from releases.signing import ReleaseKey
from tests.release_wheels import build_wheel, wheel_at
from tests.system import PASSWORD, System, wait_for
from tests.test_cli import BIN, run

ADMIN_PASSWORD = "operator-password"


def hub_cli(data: Path, *args: str) -> Any:
    return run(str(BIN / "legato-hub"), *args, "--data", str(data))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    built = build_wheel(tmp_path_factory.mktemp("wheel"))
    out = tmp_path_factory.mktemp("wheels")
    return {"0.1.0": built, "2.0.0": wheel_at(built, "2.0.0", out)}


# --- without a running hub ----------------------------------------------------------


def test_release_help_says_what_each_action_does() -> None:
    out = run(str(BIN / "legato-hub"), "release", "--help")
    assert out.returncode == 0
    for action in ("add", "list", "rollout", "halt", "status"):
        assert action in out.stdout
    roll = run(str(BIN / "legato-hub"), "release", "rollout", "--help")
    assert "--percent" in roll.stdout
    assert "--devices" in roll.stdout
    assert "halts by itself" in roll.stdout


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, wheels: dict[str, Path]) -> None:
    data = tmp_path / "d"
    missing = hub_cli(data, "release", "add", str(tmp_path / "legato-1.0.0-py3-none-any.whl"))
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("no such file")
    assert missing.stderr.count("\n") == 1
    assert hub_cli(data, "release", "add", str(wheels["2.0.0"])).returncode == 0
    again = hub_cli(data, "release", "add", str(wheels["2.0.0"]))
    assert again.returncode == 2
    assert again.stderr == "legato-hub: release 2.0.0 is already added\n"
    neither = hub_cli(data, "release", "rollout", "2.0.0")
    assert neither.returncode == 2
    assert "one of the arguments --percent --devices is required" in neither.stderr
    over = hub_cli(data, "release", "rollout", "2.0.0", "--percent", "101")
    assert over.returncode == 2
    assert "1 to 100" in over.stderr
    unknown = hub_cli(data, "release", "halt", "9.9.9")
    assert unknown.returncode == 2
    assert "no release '9.9.9'" in unknown.stderr
    constraints = tmp_path / "pins.txt"
    constraints.write_text("numpy==1.26.4\n")
    wheel = wheel_at(wheels["0.1.0"], "2.1.0", tmp_path / "w")
    pinned = hub_cli(
        data, "release", "add", str(wheel), "--constraints", str(constraints), "--json"
    )
    assert pinned.returncode == 0, pinned.stderr
    assert json.loads(pinned.stdout)["version"] == "2.1.0"
    with tarfile.open(data / "releases" / "legato-2.1.0.legato") as tar:
        member = tar.extractfile("constraints.txt")
        assert member is not None
        assert member.read() == b"numpy==1.26.4\n"


def test_every_speaker_config_the_hub_writes_pins_its_release_key(tmp_path: Path) -> None:
    data = tmp_path / "d"
    out = run(
        str(BIN / "legato-hub"), "device", "add", "den", "--out", str(tmp_path / "den.toml"),
        "--data", str(data),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    key = ReleaseKey.load_or_create(data / "keys" / "release.key")
    doc = tomllib.loads((tmp_path / "den.toml").read_text())
    assert doc["updates"]["release_key"] == key.public_text
    assert speaker_config.load(tmp_path / "den.toml").id == "den"


# --- beside a running hub, and the dashboard ----------------------------------------


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("releases"))
    users.add_user(sysm.db, "operator", ADMIN_PASSWORD, admin=True)
    with sysm.running("kitchen", "lounge"):
        yield sysm


def client(system: System, user: str, password: str) -> httpx.Client:
    r = httpx.post(
        f"{system.url}/api/token",
        data={"grant_type": "password", "username": user, "password": password},
    )
    r.raise_for_status()
    token = r.json()["access_token"]
    return httpx.Client(
        base_url=system.url,
        headers={"Authorization": f"Bearer {token}"},
        cookies={"legato_token": token},
        timeout=15,
    )


def speaker_offer(system: System, device_id: str) -> httpx.Response:
    secret = (system.root / f"{device_id}.secret").read_text().strip()
    return httpx.get(
        f"{system.url}/v1/devices/{device_id}/update", auth=(device_id, secret), timeout=10
    )


def test_the_cli_works_beside_a_running_hub_and_its_page_shows_it(
    system: System, wheels: dict[str, Path]
) -> None:
    data = str(system.data)
    for version, notes in (("0.1.0", "what the speakers run"), ("2.0.0", "louder")):
        added = hub_cli(Path(data), "release", "add", str(wheels[version]), "--notes", notes)
        assert added.returncode == 0, added.stderr
    assert hub_cli(Path(data), "release", "rollout", "0.1.0", "--percent", "100").returncode == 0
    rolled = hub_cli(Path(data), "release", "rollout", "2.0.0", "--devices", "kitchen")
    assert rolled.stdout == "release 2.0.0 is offered to kitchen\n"

    # the running hub offers what the CLI rolled out
    offer = speaker_offer(system, "kitchen")
    assert offer.status_code == 200, offer.text
    assert offer.json()["version"] == "2.0.0"
    assert speaker_offer(system, "lounge").status_code == 204

    # the speakers' retained status says they run 0.1.0: on it, though never reported
    def on_it() -> dict[str, Any] | None:
        out = hub_cli(Path(data), "release", "status", "0.1.0", "--json")
        doc: dict[str, Any] = json.loads(out.stdout)
        found = {s["id"]: s["state"] for s in doc["speakers"]}
        return doc if found == {"kitchen": "good", "lounge": "good"} else None

    wait_for(on_it, 15, "both speakers counted on 0.1.0", system.logs)
    listed = hub_cli(Path(data), "release", "list")
    assert "active kitchen" in listed.stdout
    assert "done 100% (superseded by 2.0.0)" in listed.stdout

    with client(system, "operator", ADMIN_PASSWORD) as admin:
        page = admin.get("/dashboard/releases")
        assert page.status_code == 200
        assert '<a href="/dashboard/releases" aria-current="page">Releases</a>' in page.text
        assert "louder" in page.text
        assert 'id="release-form"' in page.text
        assert "offered 1" in page.text
        assert 'class="danger halt-release" data-version="2.0.0"' in page.text
        assert "ed25519:" in page.text
        halted = admin.post("/v1/releases/2.0.0/halt", json={"reason": "fans too loud"})
        assert halted.status_code == 200
        assert "fans too loud" in admin.get("/dashboard/releases").text
    status = hub_cli(Path(data), "release", "status", "2.0.0")
    assert "halted kitchen (fans too loud)" in status.stdout
    assert "kitchen" in status.stdout.splitlines()[2]
    assert speaker_offer(system, "kitchen").status_code == 204


def test_the_releases_page_is_for_operators_only(system: System) -> None:
    r = httpx.get(f"{system.url}/dashboard/releases", follow_redirects=False)
    assert r.status_code == 303
    with client(system, "listener", PASSWORD) as listener:
        refused = listener.get("/dashboard/releases")
        assert refused.status_code == 403
        assert "ed25519:" not in refused.text
        assert listener.get("/v1/releases").status_code == 403


def test_an_operator_adds_rolls_out_and_halts_in_a_browser(
    system: System, wheels: dict[str, Path], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser import chromium, js_errors, log_in, new_page, screenshot

    wheel = wheel_at(wheels["0.1.0"], "3.0.0", tmp_path)
    with chromium() as browser:
        context, page = new_page(browser, phone=False)
        try:
            log_in(page, system.url, "operator", ADMIN_PASSWORD, path="/dashboard/releases")
            page.get_by_label("Legato wheel").set_input_files(str(wheel))
            page.get_by_label("Notes").fill("from the browser")
            page.get_by_role("button", name="Sign and add").click()
            row = page.locator('#releases tr[data-version="3.0.0"]')
            expect(row).to_contain_text("from the browser")
            expect(row).to_contain_text("not rolled out")
            row.get_by_label("Percent of speakers for 3.0.0").fill("100")
            row.get_by_role("button", name="Roll out").click()
            row = page.locator('#releases tr[data-version="3.0.0"]')
            expect(row.locator(".rollout-state")).to_contain_text("active")
            # two speakers targeted, none asked yet: both wait
            expect(row.locator(".counts")).to_contain_text("waiting 2")
            page.once("dialog", lambda dialog: dialog.accept())
            row.get_by_role("button", name="Halt").click()
            expect(page.locator('#releases tr[data-version="3.0.0"]')).to_contain_text(
                "halted by the operator"
            )
            screenshot(page, "dashboard-releases")
            assert js_errors(page) == []
        finally:
            context.close()
