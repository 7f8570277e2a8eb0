"""A leader and a follower, each a real native engine on its own virtual DAC (a named
pipe read at its own clock), their sync sockets talking real UDP on 127.0.0.1.

The listener drives only the leader's controller, as the hub does; the follower
plays the same audio at the same moment (within a millisecond) through play,
pause, resume, seek and next, and after a restart rejoins the group by itself
from its saved membership."""

from __future__ import annotations

import asyncio
import base64
import itertools
import secrets
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from connect_protocol.messages import (
    Adopt,
    JoinGroup,
    LeaveGroup,
    Next,
    Pause,
    Play,
    PlayerState,
    Resume,
    Seek,
    SetVolume,
)
from device.audio.native import EngineOptions, NativeEngine
from device.audio.sinks.fifo import FifoSink
from device.controller import Controller
from device.sync.engine import GroupPlayer
from device.sync.membership import GroupMember, MembershipFile
from device.sync.peer import Role, SyncPeer
from tests.fifo_reader import FifoReader
from tests.media_fixtures import MemorySource, Track, make_track

RATE = 44100
MS = RATE // 1000
WINDOW = 4096
KEY = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
_ids = itertools.count()


def noise(frames: int, seed: int) -> NDArray[np.float32]:
    """Low-passed noise: any window of it is found in one place only."""
    rng = np.random.default_rng(seed)
    mono = np.convolve(rng.standard_normal(frames + 8), np.ones(8) / 8, mode="valid")[:frames]
    mono = 0.15 * mono / mono.std()
    return np.stack([mono, mono], axis=1).astype(np.float32)


def found_at(heard: NDArray[np.int16], at: int, ref: NDArray[np.float32], guess: int) -> int:
    """The frame of ``ref`` that ``heard[at:at+WINDOW]`` is, searched 30 ms about ``guess``."""
    y = heard[at : at + WINDOW, 0].astype(np.float64) / 32768
    lo = max(0, guess - 30 * MS)
    x = ref[lo : guess + WINDOW + 30 * MS, 0].astype(np.float64)
    corr = np.correlate(x, y, mode="valid")
    k = int(np.argmax(corr))
    peak = corr[k] / (np.linalg.norm(y) * np.linalg.norm(x[k : k + WINDOW]) + 1e-12)
    assert peak > 0.9, f"the output at {at} is not the track near {guess} ({peak:.2f})"
    return lo + k


async def until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@dataclass
class Member:
    """One speaker: engine on a virtual DAC, sync socket, group player, membership."""

    id: str
    reader: FifoReader
    source: MemorySource
    state_dir: Path
    ended: list[str] = field(default_factory=list)
    player: GroupPlayer | None = None
    member: GroupMember | None = None
    controller: Controller | None = None

    async def start(self) -> Member:
        peer = SyncPeer(host="127.0.0.1")
        await peer.start()
        engine = NativeEngine(
            self._ended,
            source=self.source,
            sink=FifoSink(self.reader.path, RATE),
            options=EngineOptions(quality="normal", normalisation="off"),
        )
        self.player = GroupPlayer(engine, peer)
        file = MembershipFile(self.state_dir / self.id / "group.json")
        self.member = GroupMember(self.id, self.player, file)
        self.controller = Controller(self.player, state=PlayerState(session=self.id))
        self.controller.handle(SetVolume(id=f"v{next(_ids)}", volume_percent=100))
        self.member.restore()
        return self

    def _ended(self, uri: str) -> None:
        self.ended.append(uri)
        assert self.player is not None
        assert self.controller is not None
        with self.player.track_ending(uri):
            self.controller.track_ended(uri)

    def command(self, cmd: object) -> None:
        assert self.controller is not None
        ack = self.controller.handle(cmd)  # type: ignore[arg-type]
        assert ack.ack is not None
        assert ack.ack.ok, ack.ack

    async def close(self) -> None:
        player, self.player = self.player, None
        if player is not None:
            player.close()
            await player.peer.close()


def join(member: Member, leader: Member) -> None:
    assert member.member is not None
    assert leader.player is not None
    addr = "" if member is leader else f"127.0.0.1:{leader.player.peer.port}"
    cmd = JoinGroup(
        id=f"j{next(_ids)}", group_id="g1", leader_id=leader.id, leader_addr=addr, key=KEY
    )
    assert member.member.on_group(cmd) is None


def check_aligned(members: list[Member], refs: dict[str, NDArray[np.float32]]) -> list[int]:
    """Where each member's output is, 150 ms ago, against the leader's timeline: frames off."""
    anchor = members[0].player.anchor if members[0].player else None
    assert anchor is not None
    assert anchor.playing
    t_ns = time.monotonic_ns() - 150_000_000
    expected = round(anchor.frame_at(t_ns))
    errors = []
    for m in members:
        heard = m.reader.heard()
        try:
            found = found_at(heard, m.reader.frame_at(t_ns), refs[anchor.uri], expected)
        except AssertionError as exc:
            raise AssertionError(f"{m.id}: {exc}") from None
        errors.append(found - expected)
    assert max(abs(e) for e in errors) <= MS, f"off the timeline by {errors} frames"
    return errors


def quiet(member: Member, since_ns: int) -> bool:
    """Nothing but silence heard from ``since_ns`` on."""
    heard = member.reader.heard()
    return not np.any(heard[member.reader.frame_at(since_ns) :])


def test_a_follower_plays_what_the_leader_plays_in_sync_and_rejoins_after_a_restart(
    tmp_path: Path,
) -> None:
    source = MemorySource()
    pcm_a, pcm_b, pcm_c = noise(RATE * 6, 1), noise(RATE * 3, 2), noise(RATE * 5, 3)
    a: Track = source.add(make_track("a" * 22, pcm_a, RATE))
    b: Track = source.add(make_track("b" * 22, pcm_b, RATE))
    c: Track = source.add(make_track("c" * 22, pcm_c, RATE))
    refs = {a.ref.uri: pcm_a, b.ref.uri: pcm_b, c.ref.uri: pcm_c}
    readers = [
        FifoReader(tmp_path / f"dac{i}", RATE, ppm=p).start() for i, p in enumerate((-100, 100))
    ]

    started: list[Member] = []

    async def member(name: str, reader: FifoReader) -> Member:
        started.append(Member(name, reader, source, tmp_path))
        return await started[-1].start()

    async def go() -> None:
        try:
            await scenario()
        finally:
            for m in started:
                await m.close()

    async def scenario() -> None:
        leader = await member("leader", readers[0])
        follower = await member("follower", readers[1])
        join(leader, leader)
        join(follower, leader)
        assert leader.player is not None
        assert follower.player is not None
        assert leader.player.role is Role.LEADER
        assert follower.player.role is Role.FOLLOWER
        await until(
            lambda: follower.player is not None and follower.player.peer.estimate is not None
        )

        leader.command(Play(id="p", tracks=(a.ref, b.ref, c.ref), offset=0))
        await until(lambda: follower.player is not None and follower.player.current == a.ref)
        await asyncio.sleep(1.2)
        check_aligned([leader, follower], refs)

        leader.command(Pause(id="pause"))
        # both stop writing at once (the follower on the plan); what the pipe holds plays out
        paused_at = time.monotonic_ns() + 300_000_000
        await asyncio.sleep(0.6)
        assert quiet(follower, paused_at)
        assert quiet(leader, paused_at)

        leader.command(Resume(id="resume"))
        await asyncio.sleep(0.8)
        check_aligned([leader, follower], refs)

        leader.command(Seek(id="seek", position_ms=4600))
        await asyncio.sleep(0.6)
        check_aligned([leader, follower], refs)

        # the gapless join: the timeline runs on into b, no new start
        seeked = leader.player.anchor
        assert seeked is not None
        await until(lambda: follower.player is not None and follower.player.current == b.ref)
        await asyncio.sleep(0.6)
        assert leader.player.anchor == seeked.rebased(b.ref.uri, len(pcm_a))
        check_aligned([leader, follower], refs)

        leader.command(Next(id="next"))
        await until(lambda: follower.player is not None and follower.player.current == c.ref)
        await asyncio.sleep(0.8)
        check_aligned([leader, follower], refs)
        assert follower.player.sync_stats().synced

        # the follower restarts: it rejoins from its saved membership, without the hub
        path = tmp_path / "follower" / "group.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        await follower.close()
        follower = await member("follower", readers[1])
        assert follower.player is not None
        assert follower.player.role is Role.FOLLOWER
        await until(lambda: follower.player is not None and follower.player.current == c.ref)
        await asyncio.sleep(1.0)
        check_aligned([leader, follower], refs)

        # the hub makes the follower the leader: it plays on, on a timeline continuous
        # with the old one (converted to its own clock), and the old leader follows it
        old = leader.player.anchor
        assert old is not None
        join(follower, follower)
        join(leader, follower)
        assert (follower.player.role, leader.player.role) == (Role.LEADER, Role.FOLLOWER)
        new = follower.player.anchor
        assert new is not None
        now = time.monotonic_ns()  # one process: both clocks are this one
        assert abs(new.frame_at(now) - old.frame_at(now)) <= MS
        # the hub hands it the group's queue: it carries on what it plays, no reload
        await asyncio.sleep(0.3)  # its engine aligns to its own clock now (a start)
        starts = follower.player.sync_stats().starts
        adopt = Adopt(
            id="adopt",
            tracks=(a.ref, b.ref, c.ref),
            order=(0, 1, 2),
            index=2,
            current=c.ref,
            position_ms=follower.player.position_ms(),
        )
        follower.command(adopt)
        await until(lambda: leader.player is not None and leader.player.current == c.ref)
        await asyncio.sleep(1.0)
        check_aligned([follower, leader], refs)
        assert follower.player.sync_stats().starts == starts
        # and it drives the group now
        follower.command(Pause(id="pause-2"))
        paused_at = time.monotonic_ns() + 300_000_000
        await asyncio.sleep(0.6)
        assert quiet(leader, paused_at)
        assert quiet(follower, paused_at)

    try:
        asyncio.run(asyncio.wait_for(go(), 30))
    finally:
        for reader in readers:
            reader.stop()


@dataclass
class Roles:
    """What the membership asked of the player, in order."""

    calls: list[tuple[str, ...]] = field(default_factory=list)

    def lead(self, key: bytes) -> None:
        self.calls.append(("lead",))

    def follow(self, key: bytes, leader_addr: str, leader_id: str) -> None:
        self.calls.append(("follow", leader_addr, leader_id))

    def leave(self) -> None:
        self.calls.append(("leave",))


def test_a_join_is_checked_kept_private_rejoined_after_a_restart_and_left(tmp_path: Path) -> None:
    file = MembershipFile(tmp_path / "s1" / "group.json")
    roles = Roles()
    member = GroupMember("s1", roles, file)

    def join(
        leader_id: str = "s0", leader_addr: str = "10.0.0.2:7700", key: str = KEY
    ) -> str | None:
        cmd = JoinGroup(
            id=f"j{next(_ids)}", group_id="g", leader_id=leader_id, leader_addr=leader_addr, key=key
        )
        return member.on_group(cmd)

    assert "key" in (join(key="c2hvcnQ") or "")
    assert "leader_addr" in (join(leader_addr="") or "")
    assert "leader_addr" in (join(leader_addr="10.0.0.2") or "")
    assert not file.path.exists()
    assert roles.calls == []
    assert join() is None
    assert join() is None  # said again (a reconnect): nothing changes
    assert roles.calls == [("follow", "10.0.0.2:7700", "s0")]
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600

    again = Roles()
    GroupMember("s1", again, file).restore()  # a restart: back in the group, hub or not
    assert again.calls == [("follow", "10.0.0.2:7700", "s0")]

    assert join(leader_id="s1", leader_addr="") is None  # now it leads
    assert member.on_group(LeaveGroup(id="l")) is None
    assert roles.calls[1:] == [("lead",), ("leave",)]
    assert not file.path.exists()

    mpv = GroupMember("s2", None, MembershipFile(tmp_path / "s2.json"), cannot="no sync (mpv)")
    assert mpv.on_group(JoinGroup(id="j", group_id="g", leader_id="s2", key=KEY)) == "no sync (mpv)"
