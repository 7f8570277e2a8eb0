"""Two speakers' sync sockets on 127.0.0.1, real UDP: the follower keeps the leader's
clock, plans reach it (pushed, or fetched when a push is lost), and nothing unsealed,
tampered, replayed or oversized moves it."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from connect_protocol.messages import TrackRef
from connect_protocol.mqtt import BrokerAddress
from device import config
from device.config import ConfigError
from device.hub_link import sync_address
from device.sync.anchor import Anchor
from device.sync.peer import PeerTiming, SyncPeer
from device.sync.wire import MAX_DATAGRAM, Kind, Plan, TimeRequest, encode

KEY = secrets.token_bytes(32)
TRACK = TrackRef(uri="legato:track:a", duration_ms=120_000, name="A")


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.01)


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


async def peer(plans: list[Plan] | None = None, timing: PeerTiming | None = None) -> SyncPeer:
    p = SyncPeer(host="127.0.0.1", timing=timing)
    if plans is not None:
        p.on_plan = plans.append
    await p.start()
    return p


def anchor(frame: int = 0) -> Anchor:
    return Anchor(uri=TRACK.uri, frame=frame, at_ns=time.monotonic_ns(), rate=44100)


@dataclass
class Relay(asyncio.DatagramProtocol):
    """A hop between follower and leader that can lose the leader's next plans and
    keeps what it carried (to replay it)."""

    leader: tuple[str, int]
    lose_plans: int = 0
    carried: list[bytes] = field(default_factory=list)
    follower: tuple[str, int] | None = None
    transport: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        if addr != self.leader:
            self.follower = addr
            self.transport.sendto(data, self.leader)
            return
        self.carried.append(data)
        if data[4] == Kind.PLAN and self.lose_plans > 0:
            self.lose_plans -= 1
            return
        if self.follower is not None:
            self.transport.sendto(data, self.follower)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def addr(self) -> str:
        assert self.transport is not None
        return f"127.0.0.1:{self.transport.get_extra_info('sockname')[1]}"


async def relay_to(leader: SyncPeer) -> Relay:
    loop = asyncio.get_running_loop()
    relay = Relay(("127.0.0.1", leader.port))
    transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
    relay.transport = transport
    return relay


def test_a_follower_keeps_the_leaders_clock_within_a_fifth_of_a_millisecond() -> None:
    async def go() -> None:
        leader, follower = await peer(), await peer()
        leader.lead(KEY)
        follower.follow(KEY, f"127.0.0.1:{leader.port}")
        assert follower.clock.now_ns() is None  # nothing known yet: members play silence
        await until(lambda: follower.estimate is not None)
        await asyncio.sleep(1.0)
        worst = 0
        for _ in range(50):
            before = time.monotonic_ns()
            group = follower.clock.now_ns()
            after = time.monotonic_ns()
            assert group is not None
            # same host: the true offset is 0, so the group clock reads our own clock
            worst = max(worst, abs(group - (before + after) // 2) - (after - before) // 2)
        assert worst < 200_000, f"off by {worst / 1e3:.0f} us"
        assert follower.exchanges >= 15  # fast at first: every 50 ms
        assert not follower.dropped
        assert not leader.dropped
        await follower.close()
        await leader.close()

    run(go)


def test_plans_are_pushed_and_fetched_again_when_a_push_is_lost() -> None:
    async def go() -> None:
        plans: list[Plan] = []
        leader, follower = await peer(), await peer(plans)
        relay = await relay_to(leader)
        leader.lead(KEY)
        follower.follow(KEY, relay.addr)
        await until(lambda: leader.followers != [])
        first = leader.publish(anchor(), TRACK, None)
        await until(lambda: len(plans) == 1)  # pushed
        assert plans[0] == first
        relay.lose_plans = 1
        second = leader.publish(anchor(44100), TRACK, None)
        # the push is lost; the next time answer shows the newer revision: fetched
        await until(lambda: len(plans) == 2)
        assert plans[1] == second
        assert plans[1].revision > first.revision
        assert follower.plan == second
        # an old plan replayed (sealed, but older) is not taken
        old = next(d for d in relay.carried if d[4] == Kind.PLAN)
        assert relay.transport is not None
        assert relay.follower is not None
        relay.transport.sendto(old, relay.follower)
        await until(lambda: follower.dropped["old_plan"] >= 1)
        assert follower.plan == second
        assert len(plans) == 2
        relay.close()
        await follower.close()
        await leader.close()

    run(go)


def test_unsealed_tampered_replayed_and_oversized_datagrams_are_dropped_and_counted() -> None:
    async def go() -> None:
        leader, follower = await peer(), await peer()
        relay = await relay_to(leader)
        leader.lead(KEY)
        follower.follow(KEY, relay.addr)
        await until(lambda: follower.estimate is not None)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.bind(("127.0.0.1", 0))
            raw.settimeout(0.3)
            to_leader = ("127.0.0.1", leader.port)
            good = encode(KEY, TimeRequest(secrets.token_bytes(8), 1))
            raw.sendto(encode(secrets.token_bytes(32), TimeRequest(b"12345678", 1)), to_leader)
            raw.sendto(good[:-1] + bytes([good[-1] ^ 1]), to_leader)
            raw.sendto(bytes(MAX_DATAGRAM + 100), to_leader)
            await until(lambda: leader.dropped["seal"] == 2 and leader.dropped["size"] == 1)
            assert raw.getsockname() not in leader.followers
            try:  # none of them was answered
                raw.recvfrom(2048)
                raise AssertionError("the leader answered a datagram it should have dropped")
            except TimeoutError:
                pass
        # an old time answer replayed to the follower: its nonce was used
        answer = next(d for d in relay.carried if d[4] == Kind.TIME_RESP)
        estimate = follower.estimate
        assert relay.transport is not None
        assert relay.follower is not None
        for _ in range(3):
            relay.transport.sendto(answer, relay.follower)
        await until(lambda: follower.dropped["stale"] >= 3)
        assert follower.dropped.keys() <= {"stale"}
        # a speaker in no group takes nothing at all
        loner = await peer()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
            raw.sendto(answer, ("127.0.0.1", loner.port))
        await until(lambda: loner.dropped["ungrouped"] == 1)
        assert estimate is not None
        relay.close()
        for p in (loner, follower, leader):
            await p.close()

    run(go)


def test_the_leader_remembers_at_most_16_followers() -> None:
    async def go() -> None:
        leader = await peer()
        leader.lead(KEY)
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(20)]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
                s.settimeout(2)
                s.sendto(
                    encode(KEY, TimeRequest(secrets.token_bytes(8), 1)), ("127.0.0.1", leader.port)
                )
            await until(lambda: leader.answered >= 20)
            assert len(leader.followers) == 16
            # the latest 16 are kept: a plan reaches them, not the first four
            assert set(leader.followers) == {s.getsockname() for s in socks[4:]}
        finally:
            for s in socks:
                s.close()
        await leader.close()

    run(go)


def test_the_sync_socket_is_configured_checked_and_advertised(tmp_path: Path) -> None:
    conf = tmp_path / "speaker.toml"
    conf.write_text('[speaker]\nid = "s1"\n[sync]\nport = 7700\nbind = "127.0.0.1"\n')
    cfg = config.load(conf)
    assert (cfg.sync_port, cfg.sync_bind, cfg.sync_advertise) == (7700, "127.0.0.1", "")
    assert sync_address(cfg, None, 7700) == "127.0.0.1:7700"  # the bound address
    for bad in ("port = 70000", 'bind = "kitchen"', 'advertise = "host"', 'advertise = "h:0"'):
        conf.write_text(f'[speaker]\nid = "s1"\n[sync]\n{bad}\n')
        with pytest.raises(ConfigError, match="sync"):
            config.load(conf)
    # NAT or a relay: the override, as given
    relayed = config.with_overrides(cfg, sync_advertise="relay.example:9000")
    assert sync_address(relayed, None, 7700) == "relay.example:9000"
    # all interfaces: the address the broker is reached from, with the bound port
    anywhere = config.with_overrides(cfg, sync_bind="")
    broker = BrokerAddress(host="127.0.0.1", port=1883, username="s1", password="x")
    assert sync_address(anywhere, broker, 7700) == "127.0.0.1:7700"


def test_arrival_times_come_from_the_kernel_when_it_stamps_them() -> None:
    """t2/t4 are the kernel's arrival stamps (wall clock, made monotonic), so a handler
    run late by a busy interpreter does not add to the measured delay."""
    import socket
    import struct
    import time

    from device.sync.peer import SO_TIMESTAMPNS, kernel_rx_ns

    arrived_wall = time.time_ns() - 3_000_000  # 3 ms ago
    sec, nsec = divmod(arrived_wall, 1_000_000_000)
    stamp = kernel_rx_ns([(socket.SOL_SOCKET, SO_TIMESTAMPNS, struct.pack("qq", sec, nsec))])
    assert 2_500_000 <= time.monotonic_ns() - stamp <= 50_000_000
    # no stamp, or one the wall clock stepped past: the time it is handled
    before = time.monotonic_ns()
    assert kernel_rx_ns([]) >= before
    future = struct.pack("qq", sec + 3600, nsec)
    assert kernel_rx_ns([(socket.SOL_SOCKET, SO_TIMESTAMPNS, future)]) >= before


def test_a_restarted_speaker_binds_the_sync_port_it_had(tmp_path: Path) -> None:
    """Followers keep the leader's address; with the hub down nobody tells them a new one."""
    from device.sync.membership import PortMemory

    ports = PortMemory(tmp_path / "state" / "sync-port")
    assert ports.load() == 0  # nothing kept: any free port
    ports.save(40123)
    assert PortMemory(tmp_path / "state" / "sync-port").load() == 40123
    (tmp_path / "state" / "sync-port").write_text("80\n")  # junk or a privileged port
    assert ports.load() == 0
