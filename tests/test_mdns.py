"""connect_protocol.mdns: pure parsing, then real mDNS on loopback.

The integration tests bind zeroconf to 127.0.0.1 only (``LEGATO_MDNS_INTERFACES``)
and use random ids, so they neither leak onto a LAN nor trip over other services
that happen to be advertised on the same machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zeroconf import ServiceInfo, current_time_millis
from zeroconf.asyncio import AsyncZeroconf

from connect_protocol import mdns
from connect_protocol.mdns import (
    ENV_INTERFACES,
    HUB_SERVICE,
    PROTO_VERSION,
    SPEAKER_SERVICE,
    Advertiser,
    Browser,
    Change,
    ServiceRecord,
    find_one,
    interfaces_from_env,
    make_zeroconf,
    record_from_service,
    txt_properties,
)

T = TypeVar("T")

#: Upper bound for any single wait on the network (registration alone is ~1.6 s).
WAIT_S = 10.0


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_INTERFACES, "127.0.0.1")


def new_id() -> str:
    return f"t{uuid.uuid4().hex[:11]}"


def speaker(device_id: str, **changes: object) -> ServiceRecord:
    record = ServiceRecord(
        kind="speaker",
        id=device_id,
        name="Kitchen",
        model="legato-one",
        proto=PROTO_VERSION,
        fw="1.2.3",
        host="127.0.0.1",
        port=41883,
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def hub(device_id: str) -> ServiceRecord:
    return ServiceRecord(
        kind="hub",
        id=device_id,
        name="Home hub",
        model="legato-hub",
        proto=PROTO_VERSION,
        fw="0.9.0",
        host="127.0.0.1",
        port=8080,
        extra={"mqtt": "1883", "api": "/api/v1"},
    )


def as_txt(props: dict[str, str]) -> dict[bytes, bytes | None]:
    return {k.encode(): v.encode() for k, v in props.items()}


def run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coro_fn()

    return asyncio.run(main())


# --------------------------------------------------------------------------- pure


def test_interfaces_from_env_unset_or_empty_means_all() -> None:
    assert interfaces_from_env({}) is None
    assert interfaces_from_env({ENV_INTERFACES: ""}) is None
    assert interfaces_from_env({ENV_INTERFACES: " , ,"}) is None


def test_interfaces_from_env_parses_lists() -> None:
    assert interfaces_from_env({ENV_INTERFACES: "127.0.0.1"}) == ["127.0.0.1"]
    assert interfaces_from_env({ENV_INTERFACES: " 127.0.0.1 , ::1 "}) == ["127.0.0.1", "::1"]
    assert interfaces_from_env({ENV_INTERFACES: "10.0.0.2,,"}) == ["10.0.0.2"]


@pytest.mark.parametrize("value", ["garbage", "127.0.0.1,eth0", "300.1.1.1", "127.0.0.1/8"])
def test_interfaces_from_env_rejects_non_addresses(value: str) -> None:
    with pytest.raises(ValueError, match=ENV_INTERFACES):
        interfaces_from_env({ENV_INTERFACES: value})


def test_txt_properties_has_core_keys_then_extra() -> None:
    assert txt_properties(speaker("abc123")) == {
        "id": "abc123",
        "name": "Kitchen",
        "model": "legato-one",
        "proto": "1",
        "fw": "1.2.3",
    }
    props = txt_properties(hub("hub1"))
    assert props["mqtt"] == "1883"
    assert props["api"] == "/api/v1"


@pytest.mark.parametrize(
    "record",
    [
        speaker("abc", extra={"ID": "other"}),
        speaker("abc", extra={"a=b": "c"}),
        speaker("abc", extra={"": "c"}),
        speaker("abc", name="x" * 251),
    ],
)
def test_txt_properties_rejects_what_dns_txt_cannot_carry(record: ServiceRecord) -> None:
    with pytest.raises(ValueError, match="TXT"):
        txt_properties(record)


@pytest.mark.parametrize("record", [speaker("abc123"), hub("hub-1_A")])
def test_record_round_trips_through_txt(record: ServiceRecord) -> None:
    txt = as_txt(txt_properties(record))
    back = record_from_service(record.kind, txt, ["127.0.0.1"], record.port)
    assert back == record


def test_record_from_service_is_lenient_where_it_can_be() -> None:
    txt: dict[bytes, bytes | None] = {b"ID": b"abc", b"flag": None, b"": b"ignored"}
    record = record_from_service("speaker", txt, ["fe80::1", "not-an-ip", "10.0.0.7"], 80)
    assert record == ServiceRecord(
        kind="speaker",
        id="abc",
        name="abc",  # no name: the id stands in
        model="",
        proto="",
        fw="",
        host="10.0.0.7",  # the first IPv4 address
        port=80,
        extra={"flag": ""},
    )


GOOD_TXT = as_txt(txt_properties(speaker("abc123")))


@pytest.mark.parametrize(
    ("txt", "addresses", "port"),
    [
        pytest.param(
            {k: v for k, v in GOOD_TXT.items() if k != b"id"}, ["127.0.0.1"], 1, id="no-id"
        ),
        pytest.param({**GOOD_TXT, b"id": None}, ["127.0.0.1"], 1, id="id-without-value"),
        pytest.param({**GOOD_TXT, b"id": b""}, ["127.0.0.1"], 1, id="empty-id"),
        pytest.param({**GOOD_TXT, b"id": b"a/b"}, ["127.0.0.1"], 1, id="id-bad-chars"),
        pytest.param({**GOOD_TXT, b"id": b"a" * 65}, ["127.0.0.1"], 1, id="id-too-long"),
        pytest.param({**GOOD_TXT, b"name": b"\xff\xfe"}, ["127.0.0.1"], 1, id="non-utf8-value"),
        pytest.param({**GOOD_TXT, b"\xffx": b"1"}, ["127.0.0.1"], 1, id="non-utf8-key"),
        pytest.param({**GOOD_TXT, b"name": b"n" * 251}, ["127.0.0.1"], 1, id="entry-over-255"),
        pytest.param(GOOD_TXT, ["127.0.0.1"], 0, id="port-0"),
        pytest.param(GOOD_TXT, ["127.0.0.1"], 65536, id="port-too-big"),
        pytest.param(GOOD_TXT, ["127.0.0.1"], -1, id="port-negative"),
        pytest.param(GOOD_TXT, ["127.0.0.1"], True, id="port-bool"),
        pytest.param(GOOD_TXT, [], 1, id="no-address"),
        pytest.param(GOOD_TXT, ["::1", "garbage"], 1, id="no-ipv4-address"),
    ],
)
def test_record_from_service_rejects_malformed(
    txt: dict[bytes, bytes | None], addresses: list[str], port: int
) -> None:
    assert record_from_service("speaker", txt, addresses, port) is None


def test_record_from_service_accepts_entry_of_exactly_255_bytes() -> None:
    txt = {**GOOD_TXT, b"name": b"n" * (255 - len(b"name="))}
    assert record_from_service("speaker", txt, ["127.0.0.1"], 1) is not None


def test_instance_name_is_a_safe_label() -> None:
    assert mdns.instance_name(speaker("abc123")) == "Kitchen (abc123)._legato._tcp.local."
    dotted = mdns.instance_label(speaker("abc", name="Mr. Speaker\n2"))
    assert dotted == "Mr Speaker 2 (abc)"
    long = mdns.instance_label(speaker("abc", name="ö" * 100))
    assert long.endswith(" (abc)")
    assert len(long.encode()) <= 63
    long_id = "i" * 64
    assert len(mdns.instance_label(speaker(long_id)).encode()) <= 63
    assert mdns.host_name(speaker("Ab_c")) == "legato-ab-c.local."


NO_DB = settings(database=None, suppress_health_check=[HealthCheck.too_slow])


@NO_DB
@given(
    txt=st.dictionaries(st.binary(max_size=300), st.none() | st.binary(max_size=300)),
    addresses=st.lists(st.ip_addresses().map(str) | st.text(max_size=20), max_size=4),
    port=st.integers(),
    kind=st.sampled_from(["speaker", "hub"]),
)
def test_record_from_service_never_raises(
    txt: dict[bytes, bytes | None], addresses: list[str], port: int, kind: mdns.Kind
) -> None:
    record = record_from_service(kind, txt, addresses, port)
    if record is not None:
        assert record.kind == kind
        assert 0 < record.port < 65536
        assert record.host in addresses


_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_values = st.text(max_size=40)


@NO_DB
@given(
    device_id=_ids.filter(lambda s: 0 < len(s) <= 64),
    name=_values.filter(bool),
    model=_values,
    fw=_values,
    port=st.integers(1, 65535),
    host=st.ip_addresses(v=4).map(str),
    extra=st.dictionaries(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8).filter(
            lambda k: k not in mdns.CORE_KEYS
        ),
        _values,
        max_size=3,
    ),
)
def test_valid_records_round_trip(
    device_id: str,
    name: str,
    model: str,
    fw: str,
    port: int,
    host: str,
    extra: dict[str, str],
) -> None:
    record = ServiceRecord(
        kind="speaker",
        id=device_id,
        name=name,
        model=model,
        proto=PROTO_VERSION,
        fw=fw,
        host=host,
        port=port,
        extra=extra,
    )
    txt = as_txt(txt_properties(record))
    assert record_from_service("speaker", txt, [host], port) == record


# --------------------------------------------------------------------------- network


async def next_event(
    queue: asyncio.Queue[tuple[Change, ServiceRecord]], change: Change, device_id: str
) -> ServiceRecord:
    """The next ``change`` for ``device_id``, skipping anything else (bounded)."""

    async def wait() -> ServiceRecord:
        while True:
            got, record = await queue.get()
            if record.id != device_id:
                continue  # someone else's service on this machine
            assert got == change, f"expected {change} for {device_id}, got {got}: {record}"
            return record

    return await asyncio.wait_for(wait(), WAIT_S)


@pytest.mark.integration
def test_browser_sees_speaker_added_updated_removed() -> None:
    device_id = new_id()

    async def main() -> None:
        queue: asyncio.Queue[tuple[Change, ServiceRecord]] = asyncio.Queue()
        browser_zc = make_zeroconf()  # separate from the advertiser's own instance
        browser = Browser("speaker", lambda c, r: queue.put_nowait((c, r)), zc=browser_zc)
        try:
            await browser.start()
            advertiser = Advertiser(speaker(device_id))
            async with advertiser:
                added = await next_event(queue, "added", device_id)
                assert (added.id, added.name, added.model, added.fw, added.port) == (
                    device_id,
                    "Kitchen",
                    "legato-one",
                    "1.2.3",
                    41883,
                )
                assert added.host == "127.0.0.1"
                assert browser.records[device_id] == added
                assert advertiser.service_name == f"Kitchen ({device_id}).{SPEAKER_SERVICE}"

                await advertiser.update(speaker(device_id, fw="1.2.4"))
                updated = await next_event(queue, "updated", device_id)
                assert updated.fw == "1.2.4"
                assert browser.records[device_id] == updated

            removed = await next_event(queue, "removed", device_id)
            assert removed.id == device_id
            assert device_id not in browser.records
        finally:
            await browser.close()
            await browser_zc.async_close()  # passed in, so the browser left it open

    run(main)


@pytest.mark.integration
def test_browser_survives_bad_callbacks_and_malformed_services(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good_id = new_id()
    bad_name = f"bad-{new_id()}.{SPEAKER_SERVICE}"
    caplog.set_level(logging.WARNING, logger="connect_protocol.mdns")

    def malformed(fw: bytes) -> ServiceInfo:
        return ServiceInfo(
            SPEAKER_SERVICE,
            bad_name,
            port=1,
            properties={b"id": b"not a valid id!", b"fw": fw},
            server=f"{bad_name.split('.')[0]}.local.",
            parsed_addresses=["127.0.0.1"],
        )

    async def main() -> None:
        seen: asyncio.Queue[tuple[Change, ServiceRecord]] = asyncio.Queue()

        def on_change(change: Change, record: ServiceRecord) -> None:
            seen.put_nowait((change, record))
            raise RuntimeError("callback bug")

        zc = make_zeroconf()
        try:
            info = malformed(b"1")
            await (await zc.async_register_service(info))
            async with (
                Browser("speaker", on_change) as browser,
                Advertiser(speaker(good_id), zc=zc),
            ):
                await next_event(seen, "added", good_id)
                await (await zc.async_update_service(malformed(b"2")))
                await asyncio.sleep(1.0)  # let the browser re-resolve the bad one
                assert browser.records.get(good_id) == speaker(good_id)
                assert all(r.id != "not a valid id!" for r in browser.records.values())
            assert not zc.zeroconf.done, "Advertiser closed a zeroconf it did not create"
        finally:
            await zc.async_close()

    run(main)
    failures = [r for r in caplog.records if "callback failed" in r.getMessage()]
    assert failures
    assert failures[0].levelno == logging.ERROR
    assert failures[0].exc_info is not None
    warned = [r for r in caplog.records if bad_name in r.getMessage()]
    assert len(warned) == 1, [r.getMessage() for r in warned]
    assert warned[0].levelno == logging.WARNING


@pytest.mark.integration
def test_find_one_finds_a_hub_with_extras() -> None:
    hub_id = new_id()

    async def main() -> ServiceRecord | None:
        async with Advertiser(hub(hub_id)) as advertiser:
            assert advertiser.service_name == f"Home hub ({hub_id}).{HUB_SERVICE}"
            # Another hub may exist on this machine; look until we see ours.
            async with asyncio.timeout(WAIT_S):
                while True:
                    found = await find_one("hub", timeout_s=WAIT_S)
                    if found is None or found.id == hub_id:
                        return found

    found = run(main)
    assert found == hub(hub_id)
    assert found.extra == {"mqtt": "1883", "api": "/api/v1"}


@pytest.mark.integration
def test_find_one_times_out_to_none() -> None:
    async def main() -> tuple[ServiceRecord | None, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # Nothing of ours advertises a hub here.
        result = await find_one("hub", timeout_s=0.5)
        return result, loop.time() - start

    result, elapsed = run(main)
    if result is not None:
        pytest.skip(f"some other hub is advertised on this machine: {result}")
    assert elapsed < 3.0


@pytest.mark.integration
def test_update_is_not_undone_by_an_answer_queued_before_it() -> None:
    """A multicast answer zeroconf queued before an update must not go out afterwards.

    zeroconf delays multicast answers (up to ~1.6 s); one built before the update
    carries the old TXT, arrives after the announcements, and receivers then keep
    resolving the old TXT.  Queue such an answer by hand, as a query would.
    """
    device_id = new_id()
    before = speaker(device_id)

    async def main() -> None:
        queue: asyncio.Queue[tuple[Change, ServiceRecord]] = asyncio.Queue()
        zc = make_zeroconf()
        browser_zc: AsyncZeroconf | None = None
        browser: Browser | None = None
        try:
            async with Advertiser(before, zc=zc) as advertiser:
                # The browser's zeroconf starts only now, so it never saw the old TXT.
                browser_zc = make_zeroconf()
                await browser_zc.zeroconf.async_wait_for_start()
                browser = Browser("speaker", lambda c, r: queue.put_nowait((c, r)), zc=browser_zc)
                await browser.start()
                old = ServiceInfo(
                    SPEAKER_SERVICE,
                    mdns.instance_name(before),
                    port=before.port,
                    properties=txt_properties(before),
                    server=mdns.host_name(before),
                    parsed_addresses=[before.host],
                )
                zc.zeroconf.out_delay_queue.async_add(
                    current_time_millis(), {old.dns_pointer(): {old.dns_service(), old.dns_text()}}
                )
                await advertiser.update(speaker(device_id, fw="2.0.0"))
                assert (await next_event(queue, "added", device_id)).fw == "2.0.0"
                await asyncio.sleep(2.0)  # the queued answer was due after ~1.1 s
                assert browser.records[device_id].fw == "2.0.0"
                while not queue.empty():
                    change, record = queue.get_nowait()
                    assert record.id != device_id, f"unexpected {change}: {record}"
        finally:
            if browser is not None:
                await browser.close()
            await zc.async_close()
            if browser_zc is not None:
                await browser_zc.async_close()

    run(main)


def dig_escape(label: str) -> str:
    """How dig prints a label: spaces as \\032, parentheses escaped."""
    return label.replace(" ", "\\032").replace("(", "\\(").replace(")", "\\)")


@pytest.mark.integration
def test_dig_sees_the_advertised_speaker() -> None:
    dig = shutil.which("dig")
    if dig is None:
        pytest.fail("dig (dnsutils) is not on PATH: make test installs it")
    device_id = new_id()
    record = speaker(device_id)
    cmd = [dig, "-p", "5353", "@127.0.0.1", "_legato._tcp.local", "PTR", "+time=2", "+tries=2"]

    async def main() -> str:
        async with Advertiser(record):
            out = ""
            # A unicast query reaches one of the sockets bound to port 5353
            # (SO_REUSEPORT); if another mDNS process holds one, retry.
            for _ in range(3):
                proc = await asyncio.create_subprocess_exec(
                    *cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
                )
                stdout, _ = await proc.communicate()
                out = stdout.decode(errors="replace")
                if f'"id={device_id}"' in out:
                    break
            return out

    out = run(main)
    instance = dig_escape(mdns.instance_label(record))
    assert f"PTR\t{instance}._legato._tcp.local." in out, out
    assert f'"id={device_id}"' in out, out
    assert '"fw=1.2.3"' in out, out
