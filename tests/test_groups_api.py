"""Multiroom groups through the Web API and spotipy, on a real hub, Mosquitto and speakers.

Three speakers (the clock engine) on loopback.  What the hub tells the speakers is
read off the broker by an independent subscriber (mosquitto_sub on every speaker's
command topic); what they did, from the Web API.  Until a speaker's engine plays in
groups it answers ``JoinGroup`` with its reason, which the group's listing shows.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import spotipy

from hub.accounts import users
from hub.demo_music.seed import seed_demo
from tests.system import Api, System, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
SPEAKERS = ("kitchen", "bedroom", "study")
GUEST_PASSWORD = "guest-password"


class CommandLog:
    """Every command the hub publishes to a speaker, and each speaker's latest state, as
    the broker delivers them.  The broker takes an observer's user name as its client
    id: while this runs, no other observer may connect (it would end this one)."""

    def __init__(self, system: System) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.states: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [
                *("stdbuf", "-oL"),  # a line as soon as a message arrives
                *("mosquitto_sub", "-h", "127.0.0.1", "-p", str(system.mqtt_port)),
                *("--cafile", str(system.tls.ca_cert), "-u", "observer"),
                *("-P", system.observer_secret, "-i", "groups-cmd-log", "-v"),
                *("-t", "legato/v1/device/+/cmd", "-t", "legato/v1/device/+/status"),
                *("-t", "legato/v1/device/+/state"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self._subscribed = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        # the speakers' retained statuses arrive first: then commands are heard too
        assert self._subscribed.wait(10), "mosquitto_sub did not subscribe"

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            topic, _, payload = line.partition(" ")
            if topic.endswith("/status"):
                self._subscribed.set()
                continue
            device_id, channel = topic.split("/")[3:5]
            with self._lock:
                if channel == "state":
                    self.states[device_id] = json.loads(payload)
                else:
                    self.commands.append((device_id, json.loads(payload)))

    def of_type(self, kind: str, *, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(d, c) for d, c in self.commands[since:] if c["type"] == kind]

    def state(self, device_id: str) -> dict[str, Any]:
        with self._lock:
            return self.states.get(device_id, {})

    def __len__(self) -> int:
        with self._lock:
            return len(self.commands)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("groups"))
    seed_demo(sysm.db)
    users.add_user(sysm.db, "guest", GUEST_PASSWORD)
    with sysm.running(*SPEAKERS):
        yield sysm


@pytest.fixture(scope="module")
def log(system: System) -> Iterator[CommandLog]:
    cmd_log = CommandLog(system)
    try:
        yield cmd_log
    finally:
        cmd_log.close()


@pytest.fixture
def api(system: System, log: CommandLog) -> Iterator[Api]:
    client = Api(system)
    client.wait_online(*[s for s in SPEAKERS if system.speakers[s].proc.poll() is None])
    try:
        yield client
    finally:
        for group in client.client.get("/v1/groups").json()["groups"]:
            client.client.delete(f"/v1/groups/{group['id']}")
        client.close()


@pytest.fixture
def sp(system: System, api: Api) -> spotipy.Spotify:
    client = spotipy.Spotify(auth=system.token(), requests_timeout=10, retries=0, status_retries=0)
    client.prefix = f"{system.url}/v1/"
    logging.getLogger("spotipy").setLevel(logging.CRITICAL)  # errors are asserted on
    return client


def error_of(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["status"] == status
    return str(error["message"])


def test_groups_are_made_listed_changed_and_removed(
    api: Api, system: System, log: CommandLog
) -> None:
    made = api.client.post(
        "/v1/groups", json={"name": "Downstairs", "device_ids": ["bedroom", "kitchen"]}
    )
    assert made.status_code == 201, made.text
    group = made.json()
    assert (group["name"], group["device_ids"]) == ("Downstairs", ["bedroom", "kitchen"])
    gid = group["id"]

    # every member was told: the leader (the first online member) and its key
    def told() -> dict[str, dict[str, Any]] | None:
        joined = {d: c for d, c in log.of_type("join_group") if c["group_id"] == gid}
        return joined if len(joined) == 2 else None

    joins = wait_for(told, 5, "both members told to join")
    assert set(joins) == {"bedroom", "kitchen"}
    assert {c["leader_id"] for c in joins.values()} == {"bedroom"}
    assert joins["bedroom"]["leader_addr"] == ""
    assert len(base64.urlsafe_b64decode(joins["kitchen"]["key"])) == 32
    assert joins["kitchen"]["key"] == joins["bedroom"]["key"]
    listed = {g["id"]: g for g in api.client.get("/v1/groups").json()["groups"]}
    members = listed[gid]["members"]
    assert [m["id"] for m in members] == ["bedroom", "kitchen"]
    assert [m["is_leader"] for m in members] == [True, False]
    assert all(m["membership"] != "pending" for m in members)  # each speaker answered
    assert listed[gid]["owner"]["id"] == "listener"

    changed = api.client.put(
        f"/v1/groups/{gid}", json={"device_ids": ["kitchen", "bedroom", "study"], "name": "House"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["device_ids"] == ["kitchen", "bedroom", "study"]
    assert changed.json()["leader_id"] == "bedroom"  # an online leader stays where it is
    mark = len(log)
    api.client.put(f"/v1/groups/{gid}", json={"device_ids": ["kitchen", "bedroom"]})
    wait_for(lambda: log.of_type("leave_group", since=mark), 5, "study told to leave")
    assert [d for d, _ in log.of_type("leave_group", since=mark)] == ["study"]
    assert api.client.get("/v1/groups").json()["groups"][0]["name"] == "House"

    assert api.client.delete(f"/v1/groups/{gid}").status_code == 204
    assert api.client.get("/v1/groups").json()["groups"] == []
    wait_for(lambda: len(log.of_type("leave_group", since=mark)) == 3, 5, "all told to leave")
    assert {d for d, _ in log.of_type("leave_group", since=mark)} == {"study", "kitchen", "bedroom"}
    assert error_of(api.client.delete(f"/v1/groups/{gid}"), 404).startswith("Group not found")


def test_bad_groups_are_refused_in_the_web_api_format(api: Api, system: System) -> None:
    post = api.client.post
    gid = post("/v1/groups", json={"name": "Up", "device_ids": ["kitchen", "study"]}).json()["id"]
    taken = post("/v1/groups", json={"name": "Other", "device_ids": ["bedroom", "kitchen"]})
    assert "already in another group" in error_of(taken, 409)
    ghost = post("/v1/groups", json={"name": "G", "device_ids": ["bedroom", "ghost"]})
    assert "ghost" in error_of(ghost, 404)
    error_of(post("/v1/groups", json={"name": "G", "device_ids": ["bedroom"]}), 400)
    many = [f"s{i}" for i in range(17)]
    error_of(post("/v1/groups", json={"name": "G", "device_ids": many}), 400)
    error_of(post("/v1/groups", json={"name": "", "device_ids": ["bedroom", "study"]}), 400)
    error_of(post("/v1/groups", json={"name": "x" * 65, "device_ids": ["a", "b"]}), 400)
    error_of(post("/v1/groups", json={"device_ids": ["bedroom", "study"]}), 400)
    twice = post("/v1/groups", json={"name": "G", "device_ids": ["bedroom", "bedroom"]})
    error_of(twice, 400)
    error_of(api.client.put("/v1/groups/nope", json={"device_ids": ["a", "b"]}), 404)
    # someone else's group: seen, not changed
    guest = httpx.Client(
        base_url=system.url,
        headers={"Authorization": f"Bearer {system.token('guest', GUEST_PASSWORD)}"},
    )
    with guest:
        assert [g["id"] for g in guest.get("/v1/groups").json()["groups"]] == [gid]
        error_of(guest.delete(f"/v1/groups/{gid}"), 403)
        error_of(guest.put(f"/v1/groups/{gid}", json={"device_ids": ["kitchen", "bedroom"]}), 403)
    # a member's own commands are refused (its own volume is not)
    refused = api.client.put("/v1/me/player/pause", params={"device_id": "kitchen"})
    assert "play to the group" in error_of(refused, 409)
    own = api.client.put(
        "/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 20}
    )
    assert own.status_code == 204, own.text
    assert api.devices()["kitchen"]["volume_percent"] == 20


def test_a_group_plays_through_spotipy(
    sp: spotipy.Spotify, api: Api, system: System, log: CommandLog
) -> None:
    api.client.put("/v1/me/player/volume", params={"device_id": "kitchen", "volume_percent": 20})
    api.client.put("/v1/me/player/volume", params={"device_id": "study", "volume_percent": 60})
    made = api.client.post("/v1/groups", json={"name": "Party", "device_ids": ["kitchen", "study"]})
    gid = made.json()["id"]
    listed = {d["id"]: d for d in sp.devices()["devices"]}
    assert listed[gid]["type"] == "Group"
    assert listed[gid]["name"] == "Party"
    assert listed[gid]["volume_percent"] == 40  # the members' mean
    assert listed["kitchen"]["group_id"] == gid
    with system.db.reading() as conn:
        album = conn.execute("SELECT album_id FROM tracks ORDER BY album_id LIMIT 1").fetchone()[0]
    sp.start_playback(device_id=gid, context_uri=f"spotify:album:{album}")
    state = wait_for(lambda: (s := sp.current_playback()) and s["is_playing"] and s, 10, "playing")
    assert state["device"]["id"] == gid  # the group is the active device
    assert api.devices()["kitchen"]["is_active"] is False
    # the leader plays the group's session: its own state says so
    assert api.client.get("/v1/groups").json()["groups"][0]["leader_id"] == "kitchen"
    wait_for(lambda: log.state("kitchen").get("is_playing"), 5, "the leader playing")
    assert log.state("study").get("is_playing") is not True  # its engine does not follow yet
    first = state["item"]["id"]
    sp.next_track(device_id=gid)
    wait_for(lambda: sp.current_playback()["item"]["id"] != first, 10, "the next track")
    sp.volume(60, device_id=gid)
    volumes = api.devices()
    assert (volumes["kitchen"]["volume_percent"], volumes["study"]["volume_percent"]) == (30, 90)
    assert volumes[gid]["volume_percent"] == 60
    sp.pause_playback()  # no device named: the active group's leader
    wait_for(lambda: not sp.current_playback()["is_playing"], 10, "paused")
    assert sp.current_playback()["device"]["id"] == gid


def test_the_next_member_leads_when_the_leader_goes_offline(
    sp: spotipy.Spotify, api: Api, system: System, log: CommandLog
) -> None:
    made = api.client.post("/v1/groups", json={"name": "Pair", "device_ids": ["bedroom", "study"]})
    gid = made.json()["id"]
    with system.db.reading() as conn:
        track = conn.execute("SELECT id FROM tracks ORDER BY id LIMIT 1").fetchone()[0]
    sp.start_playback(device_id=gid, uris=[f"spotify:track:{track}"], position_ms=5000)
    wait_for(lambda: (s := sp.current_playback()) and s["is_playing"], 10, "playing")
    mark = len(log)
    system.speakers["bedroom"].stop()  # the leader leaves (its status says offline)

    def took_over() -> dict[str, Any] | None:
        group = api.client.get("/v1/groups").json()["groups"][0]
        return group if group["leader_id"] == "study" else None

    wait_for(took_over, 10, "study to lead", system.logs)
    adopted = wait_for(
        lambda: [c for d, c in log.of_type("adopt", since=mark) if d == "study"],
        10,
        "study to take the session over",
        system.logs,
    )
    assert adopted[0]["current"]["uri"].endswith(track)
    assert adopted[0]["position_ms"] >= 5000  # where the old leader was, not the start
    state = wait_for(
        lambda: (s := sp.current_playback()) and s["is_playing"] and s,
        10,
        "playing on",
        system.logs,
    )
    assert state["device"]["id"] == gid
    assert state["item"]["id"] == track
    # back online, the old leader follows the new one
    mark = len(log)
    system.start_speaker("bedroom")
    back = wait_for(
        lambda: [c for d, c in log.of_type("join_group", since=mark) if d == "bedroom"],
        30,
        "bedroom told to follow",
        system.logs,
    )
    assert back[0]["leader_id"] == "study"
    assert took_over() is not None


def test_a_speaker_back_from_a_deleted_group_is_told_to_leave(
    api: Api, system: System, log: CommandLog
) -> None:
    made = api.client.post("/v1/groups", json={"name": "Gone", "device_ids": ["kitchen", "study"]})
    gid = made.json()["id"]
    system.speakers["study"].stop()  # offline: it keeps its group.json
    wait_for(lambda: not api.devices()["study"]["is_online"], 10, "study offline", system.logs)
    assert api.client.delete(f"/v1/groups/{gid}").status_code == 204
    mark = len(log)
    system.start_speaker("study")
    wait_for(
        lambda: [d for d, _ in log.of_type("leave_group", since=mark) if d == "study"],
        30,
        "study told to leave the group it kept",
        system.logs,
    )


def test_a_request_naming_no_device_goes_to_the_group_of_the_active_member(
    sp: spotipy.Spotify, api: Api, system: System, log: CommandLog
) -> None:
    with system.db.reading() as conn:
        track = conn.execute("SELECT id FROM tracks ORDER BY id LIMIT 1").fetchone()[0]
    sp.start_playback(device_id="kitchen", uris=[f"spotify:track:{track}"], position_ms=3000)
    wait_for(lambda: (s := sp.current_playback()) and s["is_playing"], 10, "kitchen playing")
    mark = len(log)
    made = api.client.post("/v1/groups", json={"name": "Duo", "device_ids": ["bedroom", "kitchen"]})
    gid = made.json()["id"]
    assert made.json()["leader_id"] == "bedroom"  # kitchen, the active speaker, follows
    adopted = wait_for(
        lambda: [c for d, c in log.of_type("adopt", since=mark) if d == "bedroom"],
        5,
        "bedroom to take kitchen's session over",
    )
    assert adopted[0]["current"]["uri"].endswith(track)  # its session goes on
    sp.pause_playback()  # no device named: the group's leader, not the follower
    wait_for(lambda: not sp.current_playback()["is_playing"], 10, "paused")
    assert sp.current_playback()["device"]["id"] == gid
    pauses = [d for d, _ in log.of_type("pause", since=mark)]
    assert pauses == ["bedroom"]
