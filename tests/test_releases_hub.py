"""The hub's releases against the real app on loopback: a real wheel signed into a
bundle, rolled out, offered to speakers over HTTP (their broker logins), downloaded
with resume, halted by hand and by itself from speakers' reports."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import socket
import sqlite3
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from connect_protocol.messages import DeviceInfo, Event, EventKind
from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.catalog import sql_functions
from hub.context import HubContext
from hub.db import Database
from hub.fleet import provisioning, registry
from hub.http.app import create_app
from hub.http.routes.audio import AudioAccess
from hub.media.signing import KeyRing
from hub.schema import MIGRATIONS
from hub.server import open_database
from releases import bundle
from releases.signing import ReleaseKey
from tests.release_wheels import build_wheel, wheel_at
from tests.serving import offline_context, serving

PASSWORD = "release-password"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real Legato wheels: this checkout, and copies at other versions."""
    built = build_wheel(tmp_path_factory.mktemp("wheel"))
    out = tmp_path_factory.mktemp("wheels")
    return {v: wheel_at(built, v, out) for v in ("2.0.0", "2.1.0", "3.0.0")}


@dataclass(frozen=True)
class Speaker:
    id: str
    auth: httpx.BasicAuth


@dataclass
class Hub:
    url: str
    data: Path
    db: Database
    ctx: HubContext
    tokens: dict[str, str]

    def admin(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.tokens['root']}", **(headers or {})}
        return httpx.request(method, f"{self.url}{path}", headers=sent, timeout=30, **kw)

    def speaker(self, device_id: str, fw: str = "1.0.0") -> Speaker:
        """A paired speaker whose retained status says it runs ``fw``."""
        secret = provisioning.add_broker_user(self.db, device_id, "speaker")
        info = DeviceInfo(id=device_id, name=device_id.title(), model="pi", fw=fw)
        with self.db.transaction() as conn:
            registry.save(conn, [(info, 1)])
        return Speaker(device_id, httpx.BasicAuth(device_id, secret))

    def offer(self, speaker: Speaker, device_id: str = "") -> httpx.Response:
        path = f"/v1/devices/{device_id or speaker.id}/update"
        return httpx.get(f"{self.url}{path}", auth=speaker.auth, timeout=10)

    def upload(self, wheel: Path, **kw: Any) -> httpx.Response:
        with wheel.open("rb") as f:
            return self.admin("POST", "/v1/releases", files={"wheel": (wheel.name, f)}, **kw)

    def report(self, device_id: str, version: str, state: str, reason: str = "") -> None:
        """What the relay hands the recorder for a speaker's update event."""
        event = Event(
            kind=EventKind.UPDATE,
            timestamp_ms=int(time.time() * 1000),
            version=version,
            state=state,
            message=reason,
        )
        self.ctx.update_recorder.record(device_id, event)

    def states(self, version: str) -> dict[str, dict[str, Any]]:
        r = self.admin("GET", f"/v1/releases/{version}/devices")
        assert r.status_code == 200, r.text
        return {s["id"]: s for s in r.json()["speakers"]}

    def wait_state(self, version: str, device_id: str, state: str) -> dict[str, Any]:
        deadline = time.monotonic() + 10
        while True:
            found = self.states(version).get(device_id, {})
            if found.get("state") == state:
                return found
            assert time.monotonic() < deadline, f"{device_id} never {state}: {found}"
            time.sleep(0.02)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    data = tmp_path / "hub-data"
    db = open_database(data)
    tokens = {}
    for name, admin in (("ann", False), ("root", True)):
        user = users.add_user(db, name, PASSWORD, admin=admin)
        tokens[name] = accounts.issue_token(db, user).access_token
    ctx = offline_context(db, data)
    access = AudioAccess(
        keys=KeyRing.open(data), speakers=provisioning.BrokerUserCache(db, ttl_s=0.0)
    )
    app = create_app(ctx, manage_relay=False, audio_access=access, rate_limits=None)
    try:
        with serving(app) as url:
            yield Hub(url, data, db, ctx, tokens)
    finally:
        ctx.update_recorder.close()
        ctx.recorder.close()


def added(hub: Hub, wheel: Path) -> dict[str, Any]:
    r = hub.upload(wheel)
    assert r.status_code == 201, r.text
    doc: dict[str, Any] = r.json()
    return doc


# --- adding --------------------------------------------------------------------------


def test_an_uploaded_wheel_becomes_a_bundle_signed_with_the_hubs_key(
    hub: Hub, wheels: dict[str, Path], tmp_path: Path
) -> None:
    doc = added(hub, wheels["2.0.0"])
    assert doc["version"] == "2.0.0"
    key = ReleaseKey.load_or_create(hub.data / "keys" / "release.key")
    assert (hub.data / "keys" / "release.key").stat().st_mode & 0o777 == 0o600
    assert doc["key_id"] == key.id
    stored = hub.data / "releases" / "legato-2.0.0.legato"
    assert doc["sha256"] == hashlib.sha256(stored.read_bytes()).hexdigest()
    manifest = bundle.verify(stored, key.public)
    assert manifest.version == "2.0.0"
    assert manifest.min_hub  # the hub's own version
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    bundle.extract(stored, key.public, bundle.Compatibility(), unpacked)
    assert (unpacked / wheels["2.0.0"].name).read_bytes() == wheels["2.0.0"].read_bytes()
    assert "numpy==" in (unpacked / "constraints.txt").read_text()
    listed = hub.admin("GET", "/v1/releases").json()["releases"]
    assert [r["version"] for r in listed] == ["2.0.0"]
    assert listed[0]["rollout"] is None


def with_requirements(wheel: Path, out: Path, extra: list[str]) -> Path:
    """``wheel`` whose METADATA states ``extra`` requirements too (a release that
    adds dependencies the hub's own Legato does not have)."""
    out.mkdir(parents=True, exist_ok=True)
    target = out / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(".dist-info/METADATA"):
                head, _, body = data.decode().partition("\n\n")
                lines = "".join(f"\nRequires-Dist: {line}" for line in extra)
                data = f"{head}{lines}\n\n{body}".encode()
            dst.writestr(item, data)
    return target


def test_the_pins_are_the_uploaded_wheels_own_requirements(
    hub: Hub, wheels: dict[str, Path], tmp_path: Path
) -> None:
    """Not the hub's installed Legato's: a release that adds a dependency carries its
    pin, and a Pi-only one the hub lacks is named (bare), so a speaker knows its
    running slot's packages will not do."""
    wheel = with_requirements(
        wheels["3.0.0"],
        tmp_path / "more",
        [
            'PyYAML>=6; extra == "speaker"',
            'pi-only-driver>=1; platform_machine == "aarch64" and extra == "speaker"',
            'win-only; sys_platform == "win32" and extra == "speaker"',
        ],
    )
    added(hub, wheel)
    stored = hub.data / "releases" / "legato-3.0.0.legato"
    key = ReleaseKey.load_or_create(hub.data / "keys" / "release.key")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    bundle.extract(stored, key.public, bundle.Compatibility(), unpacked)
    lines = (unpacked / "constraints.txt").read_text().splitlines()
    assert f"PyYAML=={importlib.metadata.version('PyYAML')}" in lines
    assert "pi-only-driver" in lines
    assert not any(line.startswith("win-only") for line in lines)
    assert any(line.startswith("numpy==") for line in lines)


def test_a_raw_body_upload_with_its_file_name_works_too(hub: Hub, wheels: dict[str, Path]) -> None:
    wheel = wheels["2.1.0"]
    r = hub.admin(
        "POST",
        "/v1/releases",
        params={"filename": wheel.name, "notes": "quieter fans"},
        content=wheel.read_bytes(),
    )
    assert r.status_code == 201, r.text
    assert r.json()["notes"] == "quieter fans"


def _nothing_written(hub: Hub) -> None:
    folder = hub.data / "releases"
    assert not folder.exists() or [p.name for p in folder.iterdir()] == []
    with hub.db.reading() as conn:
        assert conn.execute("SELECT COUNT(*) FROM releases").fetchone()[0] == 0


def test_what_is_not_a_legato_wheel_is_refused_and_nothing_is_written(
    hub: Hub, wheels: dict[str, Path], tmp_path: Path
) -> None:
    junk = tmp_path / "legato-4.0.0-py3-none-any.whl"
    junk.write_bytes(b"not a zip at all")
    r = hub.upload(junk)
    assert r.status_code == 400
    assert "not a readable wheel" in r.json()["error"]["message"]
    other = tmp_path / "other" / "legato-4.0.0-py3-none-any.whl"
    other.parent.mkdir()
    with zipfile.ZipFile(other, "w") as zf:  # a wheel, but not Legato's
        zf.writestr("requests-4.0.0.dist-info/METADATA", "Name: requests\nVersion: 4.0.0\n")
    r = hub.upload(other)
    assert r.status_code == 400
    assert "not Legato's wheel" in r.json()["error"]["message"]
    named = tmp_path / "requests-2.0-py3-none-any.whl"
    named.write_bytes(wheels["2.0.0"].read_bytes())
    r = hub.upload(named)
    assert r.status_code == 400
    assert "is not a Legato wheel" in r.json()["error"]["message"]
    _nothing_written(hub)


def test_a_version_already_added_is_a_conflict(hub: Hub, wheels: dict[str, Path]) -> None:
    first = added(hub, wheels["2.0.0"])
    r = hub.upload(wheels["2.0.0"])
    assert r.status_code == 409
    assert r.json()["error"]["message"] == "release 2.0.0 is already added"
    bundle_file = hub.data / "releases" / "legato-2.0.0.legato"
    assert hashlib.sha256(bundle_file.read_bytes()).hexdigest() == first["sha256"]


# --- offers and downloads ------------------------------------------------------------


def test_a_speaker_is_offered_the_release_and_resumes_its_download_byte_exact(
    hub: Hub, wheels: dict[str, Path]
) -> None:
    kitchen = hub.speaker("kitchen")
    assert hub.offer(kitchen).status_code == 204  # added, not rolled out
    doc = added(hub, wheels["2.0.0"])
    r = hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 100})
    assert r.status_code == 200, r.text
    assert r.json()["rollout"]["state"] == "active"
    offer = hub.offer(kitchen)
    assert offer.status_code == 200, offer.text
    assert offer.json() == {
        "version": "2.0.0",
        "size": doc["size"],
        "sha256": doc["sha256"],
        "url": "/v1/releases/2.0.0/bundle",
    }
    assert hub.states("2.0.0")["kitchen"]["state"] == "offered"

    url = f"{hub.url}{offer.json()['url']}"
    first = httpx.get(url, auth=kitchen.auth, headers={"Range": "bytes=0-99999"})
    assert first.status_code == 206
    assert len(first.content) == 100_000
    etag = first.headers["etag"]
    rest = httpx.get(url, auth=kitchen.auth, headers={"Range": "bytes=100000-", "If-Range": etag})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes 100000-{doc['size'] - 1}/{doc['size']}"
    whole = first.content + rest.content
    assert hashlib.sha256(whole).hexdigest() == doc["sha256"]
    # a changed bundle (another ETag) is sent whole rather than spliced
    stale = httpx.get(url, auth=kitchen.auth, headers={"Range": "bytes=5-", "If-Range": '"other"'})
    assert stale.status_code == 200
    assert stale.content == whole
    assert httpx.get(url, auth=kitchen.auth, headers={"If-None-Match": etag}).status_code == 304
    many = httpx.get(url, auth=kitchen.auth, headers={"Range": "bytes=0-1,5-9"})
    assert many.status_code == 200  # one range at most: the whole file, not a multipart
    assert many.content == whole
    beyond = httpx.get(url, auth=kitchen.auth, headers={"Range": f"bytes={doc['size']}-"})
    assert beyond.status_code == 416


def test_a_speaker_may_not_ask_for_another_speakers_offer(
    hub: Hub, wheels: dict[str, Path]
) -> None:
    kitchen = hub.speaker("kitchen")
    hub.speaker("lounge")
    added(hub, wheels["2.0.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 100})
    r = hub.offer(kitchen, "lounge")
    assert r.status_code == 403
    assert "its own" in r.json()["error"]["message"]
    assert (
        "lounge" not in hub.states("2.0.0") or hub.states("2.0.0")["lounge"]["state"] == "waiting"
    )
    anonymous = httpx.get(f"{hub.url}/v1/devices/kitchen/update")
    assert anonymous.status_code == 401
    wrong = httpx.get(
        f"{hub.url}/v1/devices/kitchen/update", auth=httpx.BasicAuth("kitchen", "guess")
    )
    assert wrong.status_code == 401
    assert httpx.get(f"{hub.url}/v1/releases/2.0.0/bundle").status_code == 401
    listener = {"Authorization": f"Bearer {hub.tokens['ann']}"}
    assert httpx.get(f"{hub.url}/v1/releases/2.0.0/bundle", headers=listener).status_code == 401


def test_only_administrators_manage_releases(hub: Hub, wheels: dict[str, Path]) -> None:
    added(hub, wheels["2.0.0"])
    listener = {"Authorization": f"Bearer {hub.tokens['ann']}"}
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "/v1/releases", {}),
        ("POST", "/v1/releases", {"content": b"x", "params": {"filename": wheels["2.1.0"].name}}),
        ("POST", "/v1/releases/2.0.0/rollout", {"json": {"percent": 100}}),
        ("POST", "/v1/releases/2.0.0/halt", {}),
        ("GET", "/v1/releases/2.0.0/devices", {}),
    ]
    for method, path, kw in calls:
        as_listener = httpx.request(method, f"{hub.url}{path}", headers=listener, **kw)
        assert as_listener.status_code == 403, path
        assert httpx.request(method, f"{hub.url}{path}", **kw).status_code == 401, path
    with hub.db.reading() as conn:
        assert conn.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0] == 0


def _raw_post(hub: Hub, head: str) -> tuple[int, dict[str, Any]]:
    """Send only a request's head; the hub's answer (it must not wait for the body)."""
    host, port = hub.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        data = b""
        while b"\r\n\r\n" not in data or not data.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    return int(top.split()[1]), json.loads(body)


def test_a_wheel_over_the_cap_is_refused_before_it_is_read(hub: Hub) -> None:
    path = "/v1/releases?filename=legato-9.0.0-py3-none-any.whl"
    over = 200 * 1024**2
    admin = f"Authorization: Bearer {hub.tokens['root']}\r\n"
    status, body = _raw_post(
        hub, f"POST {path} HTTP/1.1\r\nHost: x\r\n{admin}Content-Length: {over}\r\n\r\n"
    )
    assert status == 413
    assert body["error"]["message"] == "The request body is over 101 MiB"
    # anyone else is held to the default cap
    status, body = _raw_post(
        hub, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {4 * 1024**2}\r\n\r\n"
    )
    assert status == 413
    assert body["error"]["message"] == "The request body is over 1 MiB"


# --- rollouts ------------------------------------------------------------------------


def test_widening_halting_and_resuming_a_rollout(hub: Hub, wheels: dict[str, Path]) -> None:
    from hub.releases.policy import selected

    ids = [f"spk-{n}" for n in range(40)]
    auth = {i: hub.speaker(i) for i in ids}
    added(hub, wheels["2.0.0"])
    in_10 = [i for i in ids if selected("2.0.0", i, 10)]
    out_10 = [i for i in ids if not selected("2.0.0", i, 100 // 2)]
    assert in_10
    assert out_10
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 10, "wave": 40})
    assert hub.offer(auth[in_10[0]]).status_code == 200
    assert hub.offer(auth[out_10[0]]).status_code == 204
    narrower = hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 5})
    assert narrower.status_code == 400
    assert "only widens" in narrower.json()["error"]["message"]
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 100, "wave": 40})
    assert hub.offer(auth[out_10[0]]).status_code == 200
    halted = hub.admin("POST", "/v1/releases/2.0.0/halt")
    assert halted.json()["rollout"]["state"] == "halted"
    assert halted.json()["rollout"]["reason"] == "halted by the operator"
    assert hub.offer(auth[in_10[0]]).status_code == 204
    assert hub.offer(auth[ids[-1]]).status_code == 204
    resumed = hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"devices": [ids[-1]]})
    assert resumed.json()["rollout"]["state"] == "active"
    assert hub.offer(auth[ids[-1]]).status_code == 200
    assert hub.offer(auth[in_10[0]]).status_code == 204  # not named this time
    both = hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 5, "devices": ["a"]})
    assert both.status_code == 400
    missing = hub.admin("POST", "/v1/releases/9.9.9/rollout", json={"percent": 5})
    assert missing.status_code == 404


def test_a_wave_lets_the_next_speaker_in_when_one_is_done(
    hub: Hub, wheels: dict[str, Path]
) -> None:
    a, b = hub.speaker("attic"), hub.speaker("bath")
    added(hub, wheels["2.0.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"devices": ["attic", "bath"], "wave": 1})
    assert hub.offer(a).status_code == 200
    assert hub.offer(b).status_code == 204  # the wave is full
    assert hub.offer(a).status_code == 200  # the one in flight may ask again
    hub.report("attic", "2.0.0", "downloading")
    hub.report("attic", "2.0.0", "good")
    hub.wait_state("2.0.0", "attic", "good")
    assert hub.offer(b).status_code == 200
    assert hub.offer(a).status_code == 204  # good on it: nothing more


def test_too_many_failures_halt_the_rollout_by_itself(hub: Hub, wheels: dict[str, Path]) -> None:
    names = ["attic", "bath", "cellar", "den", "east"]
    auth = {n: hub.speaker(n) for n in names}
    added(hub, wheels["2.0.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"devices": names, "wave": 5})
    for n in names:
        assert hub.offer(auth[n]).status_code == 200
    for n in names:
        hub.report(n, "2.0.0", "downloading")
    hub.report("attic", "2.0.0", "good")
    hub.report("bath", "2.0.0", "trial")
    hub.report("cellar", "2.0.0", "rolled_back", "did not reach the hub within 120 s")
    hub.wait_state("2.0.0", "cellar", "rolled_back")
    assert hub.admin("GET", "/v1/releases").json()["releases"][0]["rollout"]["state"] == "active"
    hub.report("den", "2.0.0", "failed", "signature: not this hub's key")
    hub.wait_state("2.0.0", "den", "failed")
    release = hub.admin("GET", "/v1/releases").json()["releases"][0]
    assert release["rollout"]["state"] == "halted"
    assert release["rollout"]["reason"] == (
        "halted by itself: 2 of 5 speakers failed (threshold 10%, at least 2)"
    )
    assert release["counts"]["rolled_back"] == 1
    assert release["counts"]["failed"] == 1
    states = hub.states("2.0.0")
    assert states["cellar"]["reason"] == "did not reach the hub within 120 s"
    assert states["den"]["reason"] == "signature: not this hub's key"
    assert hub.offer(auth["east"]).status_code == 204  # halted: nothing more is offered
    # the operator resumes it: failures count afresh, one more does not halt it again
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"devices": names, "wave": 5})
    assert hub.offer(auth["east"]).status_code == 200
    hub.report("east", "2.0.0", "failed", "no space left on device")
    hub.wait_state("2.0.0", "east", "failed")
    assert hub.admin("GET", "/v1/releases").json()["releases"][0]["rollout"]["state"] == "active"


def test_skips_and_speakers_outside_the_rollout_never_halt_it(
    hub: Hub, wheels: dict[str, Path]
) -> None:
    names = ["attic", "bath", "cellar", "den", "east"]
    auth = {n: hub.speaker(n) for n in names}
    added(hub, wheels["2.0.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"devices": names, "wave": 2})
    assert hub.offer(auth["attic"]).status_code == 200
    assert hub.offer(auth["bath"]).status_code == 200
    assert hub.offer(auth["cellar"]).status_code == 204  # the wave of 2 is full
    hub.report("attic", "2.0.0", "skipped", "this speaker pins no release key")
    hub.report("bath", "2.0.0", "skipped", "not enough disk space: 400 MiB needed")
    # USB installs elsewhere that went wrong are not this rollout's failures
    hub.report("usb-1", "2.0.0", "failed", "refused (hash): wheel does not match")
    hub.report("usb-2", "2.0.0", "rolled_back", "did not reach the hub within 120 s")
    # nor is a report about a release this hub never had kept at all
    hub.report("attic", "7.7.7", "failed", "made up")
    hub.report("cellar", "2.0.0", "downloading")  # after the rest, on the same writer
    hub.wait_state("2.0.0", "cellar", "downloading")
    release = hub.admin("GET", "/v1/releases").json()["releases"][0]
    assert release["rollout"]["state"] == "active"
    assert release["counts"]["skipped"] == 2
    states = hub.states("2.0.0")
    assert states["attic"]["state"] == "skipped"
    assert states["attic"]["reason"] == "this speaker pins no release key"
    with hub.db.reading() as conn:
        found = conn.execute("SELECT count(*) FROM device_updates WHERE version = '7.7.7'")
        assert found.fetchone()[0] == 0
    # skipped speakers hold no place in the wave, and are offered it again (the key
    # may be pinned by now); their reason stays shown until they try
    assert hub.offer(auth["den"]).status_code == 200
    assert hub.offer(auth["attic"]).status_code == 204  # cellar and den fly
    hub.report("den", "2.0.0", "good")
    hub.wait_state("2.0.0", "den", "good")
    assert hub.offer(auth["attic"]).status_code == 200
    assert hub.states("2.0.0")["attic"]["state"] == "skipped"
    hub.report("attic", "2.0.0", "downloading")
    hub.wait_state("2.0.0", "attic", "downloading")
    page = httpx.get(
        f"{hub.url}/dashboard/releases", cookies={"legato_token": hub.tokens["root"]}, timeout=10
    )
    assert page.status_code == 200
    assert '<span class="pill plain">skipped</span>' in page.text
    assert "not enough disk space: 400 MiB needed" in page.text


def test_a_version_12_database_keeps_its_update_reports_and_takes_skips(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sql_functions.register(conn)
    for number, script in enumerate(MIGRATIONS[:12], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.execute(
        "INSERT INTO device_updates (device_id, version, state, reason, updated_ms)"
        " VALUES ('den', '2.0.0', 'rolled_back', 'no hub', 5)"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO device_updates (device_id, version, state, updated_ms)"
            " VALUES ('bath', '2.0.0', 'skipped', 6)"
        )
    conn.close()
    db = open_database(tmp_path)
    with db.transaction() as c:
        c.execute(
            "INSERT INTO device_updates (device_id, version, state, updated_ms)"
            " VALUES ('bath', '2.0.0', 'skipped', 6)"
        )
    with db.reading() as c:
        rows = c.execute(
            "SELECT device_id, state, reason FROM device_updates ORDER BY 1"
        ).fetchall()
        plan = c.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM device_updates WHERE version = '2.0.0'"
        ).fetchall()
    assert [tuple(r) for r in rows] == [("bath", "skipped", ""), ("den", "rolled_back", "no hub")]
    assert "device_updates_version" in str([tuple(r) for r in plan])


def test_a_speaker_whose_status_names_the_release_counts_as_on_it(
    hub: Hub, wheels: dict[str, Path]
) -> None:
    usb = hub.speaker("usb-stick", fw="2.0.0")
    newer = hub.speaker("newer", fw="3.0.0")
    added(hub, wheels["2.0.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 100})
    assert hub.offer(usb).status_code == 204
    assert hub.offer(newer).status_code == 204
    states = hub.states("2.0.0")
    assert states["usb-stick"]["state"] == "good"
    assert "newer" not in states
    assert hub.admin("GET", "/v1/releases").json()["releases"][0]["counts"]["good"] == 1


def test_the_newest_rollout_supersedes_older_ones(hub: Hub, wheels: dict[str, Path]) -> None:
    kitchen = hub.speaker("kitchen")
    added(hub, wheels["2.0.0"])
    added(hub, wheels["2.1.0"])
    hub.admin("POST", "/v1/releases/2.0.0/rollout", json={"percent": 100})
    hub.admin("POST", "/v1/releases/2.1.0/rollout", json={"percent": 100})
    assert hub.offer(kitchen).json()["version"] == "2.1.0"
    listed = {r["version"]: r for r in hub.admin("GET", "/v1/releases").json()["releases"]}
    assert listed["2.0.0"]["rollout"]["state"] == "done"
    assert listed["2.0.0"]["rollout"]["reason"] == "superseded by 2.1.0"


def test_a_version_11_database_gains_the_release_tables(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    conn = sqlite3.connect(path, isolation_level=None)
    sql_functions.register(conn)
    for number, script in enumerate(MIGRATIONS[:11], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.execute("INSERT INTO devices (id, name, fw) VALUES ('den', 'Den', '1.0.0')")
    conn.close()
    db = open_database(tmp_path)
    with db.reading() as c:
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"releases", "rollouts", "device_updates"} <= tables
    with db.reading() as c:
        assert c.execute("SELECT fw FROM devices").fetchone()[0] == "1.0.0"


def test_a_speaker_enrolled_for_legato_flash_pins_the_hubs_release_key(hub: Hub) -> None:
    r = hub.admin("POST", "/api/speakers", json={"name": "Shelf"})
    assert r.status_code == 201, r.text
    config = tomllib.loads(r.json()["files"]["speaker.toml"]["text"])
    key = ReleaseKey.load_or_create(hub.data / "keys" / "release.key")
    assert config["updates"]["release_key"] == key.public_text
