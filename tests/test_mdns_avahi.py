"""The avahi backend against a real avahi-daemon, seen from another host running zeroconf.

tests/avahi_netns.py builds the two hosts (network namespaces on a veth link,
avahi-daemon and its own dbus-daemon on host ``a``).  This process publishes and
browses through that avahi, as a Legato process on host ``a`` would; host ``b``
runs python-zeroconf (tests/mdns_peer.py).  Skipped, with the reason, where
namespaces or the daemons cannot run (not root).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from connect_protocol import mdns
from connect_protocol.mdns import Advertiser, Browser, Change, ServiceRecord
from connect_protocol.mdns.backend import which_backend
from tests.avahi_netns import AvahiLink, Peer, why_avahi_cannot_run

pytestmark = pytest.mark.integration
T = TypeVar("T")
WAIT_S = 10.0


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AvahiLink]:
    reason = why_avahi_cannot_run()
    if reason is not None:
        pytest.skip(f"avahi tests need two network namespaces: {reason}")
    net = AvahiLink(tmp_path_factory.mktemp("avahi"))
    try:
        net.start()
        yield net
    finally:
        net.close()


@pytest.fixture
def avahi(link: AvahiLink, monkeypatch: pytest.MonkeyPatch) -> AvahiLink:
    """This process on host ``a``'s avahi, with the avahi backend; the daemon running."""
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", link.bus_address)
    monkeypatch.setenv(mdns.ENV_BACKEND, "avahi")
    monkeypatch.delenv(mdns.ENV_INTERFACES, raising=False)
    if link.avahi is None or link.avahi.poll() is not None:
        link.start_avahi()  # a test that stopped it failed before starting it again
    return link


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


def speaker(**changes: object) -> ServiceRecord:
    record = ServiceRecord(
        kind="speaker",
        id=f"t{uuid.uuid4().hex[:11]}",
        name="Kitchen",
        model="legato-pi",
        proto=mdns.PROTO_VERSION,
        fw="1.2.3",
        host="10.77.0.1",
        port=41883,
        extra={"room": "kitchen"},
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def parsed(line: str) -> ServiceRecord:
    record = mdns.record_from_json(line)
    assert record is not None, line
    return record


def seen_by(peer: Peer, change: Change, device_id: str) -> ServiceRecord:
    """The next ``change`` of ``device_id`` the watching peer reports (bounded)."""
    while True:
        record = parsed(peer.expect(f"{change} "))
        if record.id == device_id:
            return record


def avahi_lists(link: AvahiLink, device_id: str) -> bool:
    """Whether ``avahi-browse -rpt`` ends with ``device_id``'s service present
    (its lines: ``+`` new, ``=`` resolved, ``-`` removed)."""
    present = False
    for line in link.avahi_browse("_legato._tcp").splitlines():
        if f"\\040{device_id}\\041;" in line:  # the label "Kitchen (id)", escaped
            present = not line.startswith("-")
    return present


def test_auto_picks_avahi_when_its_daemon_is_on_the_bus(
    avahi: AvahiLink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(mdns.ENV_BACKEND)
    assert run(which_backend) == "avahi"
    monkeypatch.setenv(mdns.ENV_INTERFACES, avahi.a.address)
    assert run(which_backend) == "zeroconf"  # an explicit list is zeroconf's setting


def test_avahi_publishes_what_zeroconf_on_another_host_resolves(avahi: AvahiLink) -> None:
    record = speaker()
    watcher = avahi.peer("watch", "speaker")
    try:
        watcher.expect("watching")

        async def main() -> None:
            async with Advertiser(record) as advertiser:
                assert advertiser.service_name == f"Kitchen ({record.id})._legato._tcp.local."
                seen = await asyncio.to_thread(seen_by, watcher, "added", record.id)
                assert seen == dataclasses.replace(record, host=avahi.a.address)
                listed = avahi.avahi_browse("_legato._tcp")
                assert f'"id={record.id}"' in listed, listed
                assert '"room=kitchen"' in listed, listed
                await advertiser.update(dataclasses.replace(record, fw="2.0.0"))
                seen = await asyncio.to_thread(seen_by, watcher, "updated", record.id)
                assert seen.fw == "2.0.0"
            await asyncio.to_thread(seen_by, watcher, "removed", record.id)

        run(main)
        # close() freed the entry group: avahi itself lets the record go
        deadline = time.monotonic() + WAIT_S
        while avahi_lists(avahi, record.id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not avahi_lists(avahi, record.id), avahi.avahi_browse("_legato._tcp")
    finally:
        watcher.stop()


async def next_change(
    queue: asyncio.Queue[tuple[Change, ServiceRecord]], device_id: str
) -> tuple[Change, ServiceRecord]:
    async with asyncio.timeout(WAIT_S):
        while True:
            change, record = await queue.get()
            if record.id == device_id:
                return change, record


def test_avahi_browses_what_zeroconf_publishes_on_another_host(avahi: AvahiLink) -> None:
    record = speaker(host=avahi.b.address, port=5151)

    async def main() -> None:
        queue: asyncio.Queue[tuple[Change, ServiceRecord]] = asyncio.Queue()
        async with Browser("speaker", lambda c, r: queue.put_nowait((c, r))) as browser:
            publisher = avahi.peer("publish", mdns.record_to_json(record))
            try:
                await asyncio.to_thread(publisher.expect, "published ")
                assert await next_change(queue, record.id) == ("added", record)
                assert browser.records[record.id] == record
            finally:
                await asyncio.to_thread(publisher.stop)
            assert await next_change(queue, record.id) == ("removed", record)
        assert (
            await mdns.find_one("speaker", timeout_s=0.5, where=lambda r: r.id == record.id) is None
        )

    run(main)


def test_avahi_renames_on_a_collision(avahi: AvahiLink) -> None:
    """Taken on the network (probing fails: COLLISION) or by another local client
    (AddService refuses): either way avahi's alternative name is used."""
    theirs = speaker(host=avahi.b.address, port=5151)
    ours = dataclasses.replace(theirs, host=avahi.a.address, port=6161)
    label = mdns.instance_label(theirs)
    publisher = avahi.peer("publish", mdns.record_to_json(theirs))
    try:
        publisher.expect("published ")

        async def main() -> None:
            async with Advertiser(ours) as first:
                assert first.service_name == f"{label} #2._legato._tcp.local."
                again = dataclasses.replace(ours, port=7171)
                async with Advertiser(again) as second:
                    assert second.service_name == f"{label} #3._legato._tcp.local."

        run(main)
    finally:
        publisher.stop()


def test_avahi_restarting_brings_records_and_browsing_back(
    avahi: AvahiLink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="connect_protocol.mdns")
    ours = speaker()
    theirs = speaker(host=avahi.b.address, port=5151)
    watcher = avahi.peer("watch", "speaker", mdns.record_to_json(theirs))
    try:
        watcher.expect("watching")

        async def main() -> None:
            queue: asyncio.Queue[tuple[Change, ServiceRecord]] = asyncio.Queue()
            async with (
                Advertiser(ours),
                Browser("speaker", lambda c, r: queue.put_nowait((c, r))),
            ):
                assert await next_change(queue, theirs.id) == ("added", theirs)
                await asyncio.to_thread(seen_by, watcher, "added", ours.id)
                await asyncio.to_thread(avahi.stop_avahi)
                assert await next_change(queue, theirs.id) == ("removed", theirs)
                await asyncio.to_thread(avahi.start_avahi)
                assert await next_change(queue, theirs.id) == ("added", theirs)
                # avahi said goodbye for our record as it stopped, and published it
                # again once back: host b sees it leave and return
                await asyncio.to_thread(seen_by, watcher, "removed", ours.id)
                await asyncio.to_thread(seen_by, watcher, "added", ours.id)

        run(main)
    finally:
        watcher.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert "avahi-daemon left the system bus" in messages
    assert "avahi-daemon is back on the system bus" in messages


def test_the_harness_leaves_nothing_behind(tmp_path: Path) -> None:
    """What the fixture builds goes away: daemons stopped, namespaces deleted."""
    reason = why_avahi_cannot_run()
    if reason is not None:
        pytest.skip(reason)
    net = AvahiLink(tmp_path / "avahi")
    try:
        net.start()
        daemons = [net.dbus, net.avahi]
    finally:
        net.close()
    assert all(p is not None and p.poll() is not None for p in daemons)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert net.a.netns not in listed.stdout, listed.stdout
    assert net.b.netns not in listed.stdout, listed.stdout
