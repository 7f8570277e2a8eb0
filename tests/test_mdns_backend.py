"""connect_protocol.mdns beyond one record: the backend choice, avahi's TXT form, the
browser's bookkeeping, one advertiser for several records, and the hand-over file.

Pure parts first; then python-zeroconf on loopback (the avahi backend runs against
a real daemon in tests/test_mdns_avahi.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect_protocol import mdns
from connect_protocol.mdns import (
    ENV_BACKEND,
    Advertiser,
    ServiceRecord,
    backend_setting,
    choose_backend,
    record_from_json,
    record_to_json,
    txt_from_items,
    txt_items,
)
from connect_protocol.mdns.backend import which_backend
from connect_protocol.mdns.tracking import Tracker


def new_id() -> str:
    return f"t{uuid.uuid4().hex[:11]}"


def record(kind: mdns.Kind = "speaker", **changes: object) -> ServiceRecord:
    base = ServiceRecord(
        kind=kind,
        id=new_id(),
        name="Kitchen",
        model="legato-pi",
        proto=mdns.PROTO_VERSION,
        fw="1.0.0",
        host="127.0.0.1",
        port=41000,
        extra={"room": "kitchen"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the choice


@pytest.mark.parametrize(
    ("raw", "setting"),
    [("", "auto"), (" Auto ", "auto"), ("AVAHI", "avahi"), ("zeroconf", "zeroconf")],
)
def test_backend_setting_reads_the_environment(raw: str, setting: str) -> None:
    assert backend_setting({ENV_BACKEND: raw}) == setting
    assert backend_setting({}) == "auto"


def test_backend_setting_names_the_variable_when_wrong() -> None:
    with pytest.raises(ValueError, match=ENV_BACKEND):
        backend_setting({ENV_BACKEND: "bonjour"})


def test_choose_backend() -> None:
    def choose(setting: mdns.choice.Setting, interfaces: list[str] | None, running: bool) -> str:
        return choose_backend(setting, interfaces=interfaces, avahi_running=running)[0]

    assert choose("auto", None, True) == "avahi"
    assert choose("auto", None, False) == "zeroconf"
    assert choose("auto", ["127.0.0.1"], True) == "zeroconf"  # avahi ignores loopback
    assert choose("avahi", ["127.0.0.1"], False) == "avahi"  # the operator said so
    assert choose("zeroconf", None, True) == "zeroconf"
    reason = choose_backend("auto", interfaces=None, avahi_running=True)[1]
    assert "avahi-daemon" in reason


def test_which_backend_asks_the_bus_and_says_so_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connect_protocol.mdns")
    monkeypatch.delenv(mdns.ENV_INTERFACES)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")

    async def twice() -> list[str]:
        return [await which_backend(), await which_backend()]

    assert asyncio.run(twice()) == ["zeroconf", "zeroconf"]
    said = [r.getMessage() for r in caplog.records if r.name == "connect_protocol.mdns.backend"]
    assert said == ["mDNS through python-zeroconf (no avahi-daemon on the system bus)"]


# --------------------------------------------------------------------------- pure values


def test_txt_items_are_what_avahi_takes_and_gives() -> None:
    rec = record()
    items = txt_items(rec)
    assert items[0] == f"id={rec.id}".encode()
    assert b"room=kitchen" in items
    back = mdns.record_from_service("speaker", txt_from_items(items), ["127.0.0.1"], rec.port)
    assert back == rec


def test_txt_from_items_keeps_the_first_of_a_key_and_bare_flags() -> None:
    assert txt_from_items([b"a=1", b"a=2", b"flag", b"e=", b"x==y"]) == {
        b"a": b"1",
        b"flag": None,
        b"e": b"",
        b"x": b"=y",
    }


def test_record_json_round_trips() -> None:
    for rec in (record(), record("hub", extra={}), record(name="Ünïcode", extra={"k": "v=w"})):
        assert record_from_json(record_to_json(rec)) == rec


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        "{}",
        '{"kind": "speaker"}',
        record_to_json(record()).replace('"kind": "speaker"', '"kind": "toaster"'),
        record_to_json(record()).replace('"port": 41000', '"port": 0'),
        record_to_json(record()).replace('"port": 41000', '"port": true'),
        record_to_json(record()).replace('"host": "127.0.0.1"', '"host": "::1"'),
        record_to_json(record()).replace('"room": "kitchen"', '"id": "x"'),
        record_to_json(record()).replace('"room": "kitchen"', '"room": 1'),
        record_to_json(record()).replace('"name": "Kitchen"', '"name": null'),
        "[" * 10000,
    ],
)
def test_record_from_json_refuses_what_is_not_a_record(text: str) -> None:
    assert record_from_json(text) is None


@settings(database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300) | st.binary(max_size=300))
def test_record_from_json_never_raises(text: str | bytes) -> None:
    record_from_json(text)


def test_tracker_turns_names_into_changes_of_records() -> None:
    tracker = Tracker("speaker")
    rec = record()
    txt = txt_from_items(txt_items(rec))
    resolved = tracker.resolved("A", txt, ["127.0.0.1"], rec.port)
    assert resolved.changes == [("added", rec)]
    assert tracker.resolved("A", txt, ["127.0.0.1"], rec.port).changes == []  # no news
    moved = dataclasses.replace(rec, port=42000)
    assert tracker.resolved("B", txt, ["127.0.0.1"], 42000).changes == [("updated", moved)]
    assert tracker.gone("B") == [("updated", rec)]  # the other instance still claims the id
    assert tracker.gone("A") == [("removed", rec)]
    assert tracker.gone("A") == []
    assert tracker.records == {}


def test_tracker_warns_once_per_malformed_name_and_drops_it() -> None:
    tracker = Tracker("speaker")
    rec = record()
    tracker.resolved("A", txt_from_items(txt_items(rec)), ["127.0.0.1"], rec.port)
    bad = {b"id": b"not valid!"}
    first = tracker.resolved("A", bad, ["127.0.0.1"], 1)
    assert first.warn_malformed
    assert first.changes == [("removed", rec)]
    assert not tracker.resolved("A", bad, ["127.0.0.1"], 1).warn_malformed


# --------------------------------------------------------------------------- hand-over


class Sink:
    """What follow_handoff drives: the calls an advertiser gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ServiceRecord]] = []
        self.changed = asyncio.Event()

    async def add(self, record: ServiceRecord) -> None:
        self.calls.append(("add", record))
        self.changed.set()

    async def remove(self, record: ServiceRecord) -> None:
        self.calls.append(("remove", record))
        self.changed.set()


def test_follow_handoff_adds_updates_and_withdraws(tmp_path: Path) -> None:
    path = tmp_path / "speaker" / "record.json"
    first, alive = record(), [True]
    updated = dataclasses.replace(first, fw="2.0.0")
    other = record(name="Porch")

    async def main() -> list[tuple[str, ServiceRecord]]:
        sink = Sink()
        follow = asyncio.create_task(
            mdns.follow_handoff(path, sink, alive=lambda: alive[0], poll_s=0.01)
        )

        async def step(action: object) -> None:
            sink.changed.clear()
            if callable(action):
                action()
            async with asyncio.timeout(5):
                await sink.changed.wait()

        await step(lambda: mdns.write_handoff(path, first))
        await step(lambda: mdns.write_handoff(path, updated))
        await step(lambda: mdns.write_handoff(path, other))  # a new id: old out, new in
        await step(path.unlink)
        await step(lambda: mdns.write_handoff(path, first))
        alive[0] = False  # the speaker stopped
        async with asyncio.timeout(5):
            await follow
        return sink.calls

    calls = asyncio.run(main())
    assert calls == [
        ("add", first),
        ("add", updated),
        ("remove", updated),
        ("add", other),
        ("remove", other),
        ("add", first),
        ("remove", first),
    ]


def test_handoff_writes_the_record_and_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    rec = record()

    async def main() -> None:
        async with mdns.Handoff(rec, path) as handoff:
            assert mdns.read_handoff(path) == rec
            await handoff.update(dataclasses.replace(rec, fw="9"))
            assert mdns.read_handoff(path) == dataclasses.replace(rec, fw="9")
        assert not path.exists()

    asyncio.run(main())
    assert mdns.read_handoff(path) is None


# --------------------------------------------------------------------------- on loopback


def dig(service: str, wanted: str, tries: int = 5) -> str:
    """A unicast query for ``service``; asked again (up to ``tries`` times) until the
    answer has ``wanted``: it reaches one socket bound to 5353, and other mDNS responders
    on this machine (other tests' hubs) may hold one."""
    found = shutil.which("dig")
    if found is None:
        pytest.fail("dig (dnsutils) is not on PATH: make test installs it")
    cmd = [found, "-p", "5353", "@127.0.0.1", service, "PTR", "+time=2", "+tries=1"]
    out = ""
    for _ in range(tries):
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        if wanted in out:
            break
    return out


@pytest.mark.integration
def test_one_advertiser_answers_for_several_records() -> None:
    """A hub and the speaker it advertises for: one responder answers for both."""
    hub, speaker = record("hub"), record()

    async def main() -> tuple[str, str, str]:
        async with Advertiser(hub) as advertiser:
            await advertiser.add(speaker)
            assert advertiser.records == [hub, speaker]
            assert advertiser.name_of(speaker) == mdns.instance_name(speaker)
            both = await asyncio.to_thread(dig, "_legato._tcp.local", f'"id={speaker.id}"')
            hubs = await asyncio.to_thread(dig, "_legato-hub._tcp.local", f'"id={hub.id}"')
            await advertiser.remove(speaker)
            gone = await asyncio.to_thread(dig, "_legato._tcp.local", "", 1)
            return both, hubs, gone

    both, hubs, gone = asyncio.run(main())
    assert f'"id={speaker.id}"' in both, both
    assert f'"id={hub.id}"' in hubs, hubs
    assert f'"id={speaker.id}"' not in gone, gone


@pytest.mark.integration
def test_an_added_record_is_refused_if_it_is_the_main_one() -> None:
    rec = record()

    async def main() -> None:
        advertiser = Advertiser(rec)
        with pytest.raises(ValueError, match="main record"):
            await advertiser.add(dataclasses.replace(rec, port=1))
        with pytest.raises(ValueError, match="main record"):
            await advertiser.remove(rec)
        await advertiser.close()

    asyncio.run(main())
