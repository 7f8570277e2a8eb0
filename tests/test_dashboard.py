"""/dashboard against a real hub (System: hub process, Mosquitto, speakers on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.accounts import users
from hub.clock import now_ms
from hub.demo_music.seed import seed_demo
from tests.audio_files import FileTags, sine, write_audio
from tests.system import PASSWORD, System, wait_for

pytestmark = [pytest.mark.integration]

ADMIN_PASSWORD = "operator-password"
PAGES = [
    "/dashboard",
    "/dashboard/charts",
    "/dashboard/catalog",
    "/dashboard/users",
    "/dashboard/licences",
    "/dashboard/health",
    "/dashboard/speakers/kitchen",
]


def token(system: System, user: str, password: str) -> str:
    r = httpx.post(
        f"{system.url}/api/token",
        data={"grant_type": "password", "username": user, "password": password},
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("dashboard"))
    users.add_user(sysm.db, "operator", ADMIN_PASSWORD, admin=True)
    seed_demo(sysm.db)
    with sysm.running("kitchen", "lounge"):
        yield sysm


def signed_in(system: System, user: str, password: str) -> httpx.Client:
    """A client holding the user's token as a browser does: bearer for the API, cookie for pages."""
    t = token(system, user, password)
    return httpx.Client(
        base_url=system.url,
        headers={"Authorization": f"Bearer {t}"},
        cookies={"legato_token": t},
        timeout=15,
        follow_redirects=False,
    )


@pytest.fixture(scope="module")
def admin(system: System) -> Iterator[httpx.Client]:
    with signed_in(system, "operator", ADMIN_PASSWORD) as client:
        yield client


@pytest.fixture(scope="module")
def listener(system: System) -> Iterator[httpx.Client]:
    with signed_in(system, "listener", PASSWORD) as client:
        yield client


def fleet(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    r = admin.get("/api/admin/fleet")
    assert r.status_code == 200, r.text
    return {s["id"]: s for s in r.json()["speakers"]}


def wait_online(admin: httpx.Client, system: System, *ids: str) -> dict[str, dict[str, Any]]:
    def ready() -> dict[str, dict[str, Any]] | None:
        found = fleet(admin)
        return found if all(found.get(i, {}).get("online") for i in ids) else None

    return wait_for(ready, 30, f"{ids} online", system.logs)


@pytest.mark.parametrize("path", PAGES)
def test_no_cookie_goes_to_the_login_page(system: System, path: str) -> None:
    r = httpx.get(f"{system.url}{path}", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=/dashboard")
    expired = httpx.get(f"{system.url}{path}", cookies={"legato_token": "nope"})
    assert expired.status_code == 303


def test_a_listener_is_refused_plainly(system: System, listener: httpx.Client) -> None:
    for path in PAGES:
        r = listener.get(path)
        assert r.status_code == 403, path
        assert "This console is for hub operators" in r.text
        assert "kitchen" not in r.text.lower()  # no fleet data in the refusal
        assert "<table" not in r.text
    for method, path in [
        ("GET", "/api/admin/fleet"),
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users/1/revoke-tokens"),
        ("GET", "/api/admin/ingest"),
        ("POST", "/api/admin/ingest/path"),
        ("GET", "/api/admin/health"),
    ]:
        assert listener.request(method, path, json={"path": "/tmp"}).status_code == 403, path
    # the cookie alone authorises no JSON: the bearer header is needed
    bare = httpx.get(f"{system.url}/api/admin/fleet", cookies=dict(listener.cookies))
    assert bare.status_code == 401


def test_the_fleet_shows_the_running_speakers(system: System, admin: httpx.Client) -> None:
    speakers = wait_online(admin, system, "kitchen", "lounge")
    kitchen = speakers["kitchen"]
    assert kitchen["model"]
    assert kitchen["fw"]
    page = admin.get("/dashboard")
    assert page.status_code == 200
    html = page.text
    assert "Kitchen" in html
    assert "Lounge" in html
    assert kitchen["model"] in html
    assert f"fw {kitchen['fw']}" in html
    assert html.count('<span class="pill ok">online</span>') >= 2
    assert '<th scope="col">Licence expires</th>' in html
    for path in PAGES:
        assert admin.get(path).status_code == 200, path
    assert admin.get("/dashboard/speakers/nobody").status_code == 404


def test_events_are_kept_and_feed_the_charts(system: System, admin: httpx.Client) -> None:
    wait_online(admin, system, "kitchen")
    with system.db.reading() as conn:
        rows = conn.execute("SELECT id FROM tracks ORDER BY album_id, track_number LIMIT 3")
        uris = [f"spotify:track:{r[0]}" for r in rows]
    listen = httpx.Client(
        base_url=system.url, headers={"Authorization": f"Bearer {system.token()}"}, timeout=15
    )
    with listen:
        r = listen.put("/v1/me/player/play", params={"device_id": "kitchen"}, json={"uris": uris})
        assert r.status_code == 204, r.text
        assert listen.post("/v1/me/player/next", params={"device_id": "kitchen"}).status_code == 204

    def stored() -> set[str] | None:
        with system.db.reading() as conn:
            kinds = {
                r[0]
                for r in conn.execute("SELECT kind FROM device_events WHERE device_id = 'kitchen'")
            }
        return kinds if {"started", "skipped"} <= kinds else None

    wait_for(stored, 15, "started and skipped events stored", system.logs)
    detail = admin.get("/dashboard/speakers/kitchen")
    assert detail.status_code == 200
    assert 'class="ev-skipped"' in detail.text
    assert 'class="ev-started"' in detail.text
    charts = admin.get("/dashboard/charts").text
    assert charts.count('<svg class="chart"') == 4
    assert 'class="bar s2"' in charts  # kitchen's skip in the per-speaker chart
    assert 'class="bar" x=' in charts  # plays drawn per hour and per day
    assert "No plays yet" not in charts.split("Top tracks")[1].split("Trouble")[0]
    assert "100%" in charts or "skip rate" in charts


def wait_job(admin: httpx.Client, system: System, job_id: int) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = admin.get("/api/admin/ingest").json()["job"]
        return job if job and job["id"] == job_id and job["state"] != "running" else None

    return wait_for(finished, 120, f"ingest job {job_id}", system.logs)


def test_ingest_by_upload_reports_each_file(
    system: System, admin: httpx.Client, tmp_path: Path
) -> None:
    good = write_audio(
        tmp_path / "tone.flac",
        sine(44100 * 3, 44100),
        44100,
        FileTags(title="Dashboard Tone", artist="Test Rig", album="Uploads", track=1),
    )
    files = [
        ("files", ("tone.flac", good.read_bytes(), "audio/flac")),
        ("files", ("../../broken.flac", b"this is not audio at all" * 20, "audio/flac")),
    ]
    r = admin.post("/api/admin/ingest/upload", files=files)
    assert r.status_code == 202, r.text
    job = wait_job(admin, system, r.json()["job"]["id"])
    assert job["state"] == "done", job
    assert job["counts"] == {"added": 1, "present": 0, "failed": 1}
    assert [e["path"] for e in job["errors"]] == ["broken.flac"]  # no path from the browser
    assert job["errors"][0]["error"]
    with system.db.reading() as conn:
        assert conn.execute("SELECT 1 FROM tracks WHERE name = 'Dashboard Tone'").fetchone()
    assert not any((system.data / "uploads").glob("*/*"))  # the upload is gone
    page = admin.get("/dashboard/catalog").text
    assert "broken.flac" not in page or "Errors" in page

    again = admin.post("/api/admin/ingest/path", json={"path": str(good)})
    assert again.status_code == 202, again.text
    assert wait_job(admin, system, again.json()["job"]["id"])["counts"]["present"] == 1
    missing = admin.post("/api/admin/ingest/path", json={"path": "/no/such/folder"})
    assert missing.status_code == 400
    assert "No such file" in missing.json()["error"]["message"]


def test_add_user_and_revoke_their_tokens(system: System, admin: httpx.Client) -> None:
    r = admin.post("/api/admin/users", json={"name": "guest", "password": "guest-password"})
    assert r.status_code == 201, r.text
    guest_id = r.json()["id"]
    assert (
        admin.post("/api/admin/users", json={"name": "guest", "password": "x" * 9}).status_code
        == 400
    )
    assert (
        admin.post("/api/admin/users", json={"name": "short", "password": "x"}).status_code == 400
    )
    guest = token(system, "guest", "guest-password")
    me = httpx.get(f"{system.url}/v1/me", headers={"Authorization": f"Bearer {guest}"})
    assert me.status_code == 200
    users = {u["name"]: u for u in admin.get("/api/admin/users").json()["users"]}
    assert users["guest"]["live_tokens"] >= 1
    assert not users["guest"]["is_admin"]
    assert "guest" in admin.get("/dashboard/users").text
    revoked = admin.post(f"/api/admin/users/{guest_id}/revoke-tokens")
    assert revoked.status_code == 200
    assert revoked.json()["revoked"] >= 1
    me = httpx.get(f"{system.url}/v1/me", headers={"Authorization": f"Bearer {guest}"})
    assert me.status_code == 401
    assert admin.post("/api/admin/users/99999/revoke-tokens").status_code == 404


def test_licence_revoke_through_the_pages_endpoint(system: System, admin: httpx.Client) -> None:
    now = now_ms()
    with system.db.transaction() as conn:
        listener_id = conn.execute("SELECT id FROM users WHERE name = 'listener'").fetchone()[0]
        conn.execute(
            "INSERT INTO licences (id, device_id, user_id, epoch, device_x25519, issued_ms,"
            " expires_ms, signed_json) VALUES ('lic-1', 'lounge', ?, 0, 'x', ?, ?, '{}')",
            (listener_id, now, now + 30 * 86_400_000),
        )
    page = admin.get("/dashboard/licences").text
    assert 'data-device="lounge"' in page
    assert 'data-user="listener"' in page
    r = admin.delete("/v1/devices/lounge/licence", params={"user": "listener"})
    assert r.status_code == 204, r.text
    with system.db.reading() as conn:
        assert conn.execute("SELECT revoked_ms FROM licences WHERE id = 'lic-1'").fetchone()[0]
    assert '<span class="pill bad">revoked</span>' in admin.get("/dashboard/licences").text


def test_health(system: System, admin: httpx.Client) -> None:
    body = admin.get("/api/admin/health").json()
    assert body["ok"]
    assert body["database"]
    assert body["broker_connected"]
    assert body["speakers_online"] >= 1
    assert "all good" in admin.get("/dashboard/health").text
    time.sleep(0)  # (nothing to wait for: health is read on each request)


def test_an_admins_narrow_token_cannot_administer(system: System) -> None:
    """A token an administrator asked for with narrower scopes carries no legato-admin:
    it can neither create accounts nor open the dashboard."""
    r = httpx.post(
        f"{system.url}/api/token",
        data={
            "grant_type": "password",
            "username": "operator",
            "password": ADMIN_PASSWORD,
            "scope": "user-read-playback-state",
        },
    )
    r.raise_for_status()
    narrow = r.json()
    assert "legato-admin" not in narrow["scope"].split()
    headers = {"Authorization": f"Bearer {narrow['access_token']}"}
    made = httpx.post(
        f"{system.url}/api/admin/users",
        json={"name": "sneaky", "password": "sneaky-password", "admin": True},
        headers=headers,
    )
    assert made.status_code == 403
    assert "legato-admin" in made.json()["error"]["message"]
    page = httpx.get(
        f"{system.url}/dashboard/users", cookies={"legato_token": narrow["access_token"]}
    )
    assert page.status_code == 403
    full = token(system, "operator", ADMIN_PASSWORD)  # no scope asked: an admin's all
    listed = httpx.get(f"{system.url}/api/admin/users", headers={"Authorization": f"Bearer {full}"})
    assert listed.status_code == 200
    assert "sneaky" not in {u["name"] for u in listed.json()["users"]}


def test_a_listener_cannot_ask_for_the_admin_scope(system: System) -> None:
    r = httpx.post(
        f"{system.url}/api/token",
        data={
            "grant_type": "password",
            "username": "listener",
            "password": PASSWORD,
            "scope": "legato-admin",
        },
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_scope"


def test_local_control_tokens_come_from_the_hub(
    system: System, admin: httpx.Client, listener: httpx.Client
) -> None:
    """The token a speaker's own port accepts: on the dashboard, and for a signed-in phone."""
    expected = system.local_token("kitchen")
    assert expected in admin.get("/dashboard/speakers/kitchen").text
    r = listener.get("/v1/devices/kitchen/local-access")
    assert r.status_code == 200, r.text
    assert r.json() == {"device_id": "kitchen", "token": expected}
    assert listener.get("/v1/devices/nobody/local-access").status_code == 404
    assert httpx.get(f"{system.url}/v1/devices/kitchen/local-access").status_code == 401
    # the speaker's own config holds that token, written at pairing (0600)
    token_file = system.configs["kitchen"].with_suffix(".local-token")
    assert token_file.read_text().strip() == expected
    assert token_file.stat().st_mode & 0o777 == 0o600
