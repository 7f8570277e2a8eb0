"""``SyncPeer``: a speaker's one UDP socket for its group, used both ways.

- As **leader** it answers ``TIME_REQ`` with its clock (``t2`` on arrival,
  ``t3`` on answering) and its plan's revision, answers ``PLAN_REQ`` with the
  plan, and pushes each new plan to every follower heard from lately.
- As **follower** it asks the leader's time (every 50 ms for 2 s after
  joining, then every 500 ms) into a ``ClockFilter``, fetches the plan when an
  answer shows a newer revision, and takes a pushed plan only if it is newer.
  When the leader stops answering it keeps its last estimate (the music plays
  on, freewheeling) and keeps asking.

Everything not sealed with the group's key (or not expected: an answer to no
question of ours, a datagram while in no group) is dropped and counted, with a
warning at most every 30 s, never one per datagram.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import struct
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from connect_protocol.messages import TrackRef
from device.sync.anchor import Anchor
from device.sync.clock import ClockFilter, Estimate, Exchange
from device.sync.membership import MembershipError, split_addr
from device.sync.wire import (
    MAX_DATAGRAM,
    Message,
    Plan,
    PlanRequest,
    TimeRequest,
    TimeResponse,
    WireError,
    decode,
    encode,
)

logger = logging.getLogger(__name__)

Addr = tuple[str, int]


class Role(Enum):
    NONE = "none"
    LEADER = "leader"
    FOLLOWER = "follower"


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerTiming:
    fast_interval_s: float = 0.05  # time requests this often ...
    fast_period_s: float = 2.0  # ... for this long after joining (a new leader, a rejoin)
    slow_interval_s: float = 0.125  # then this often (the filter wants many floors)
    lost_after_s: float = 5.0  # no answer for this long: the leader is lost (freewheel)
    follower_ttl_s: float = 10.0  # plans are pushed to followers heard within this
    max_followers: int = 16
    max_pending: int = 16  # time requests awaiting an answer
    warn_every_s: float = 30.0
    step_ns: int = 50_000_000  # an exchange this far off the estimate: the leader's clock jumped


class LeaderClock:
    """The leader's group clock: its own monotonic clock."""

    def now_ns(self) -> int | None:
        return time.monotonic_ns()


class FollowerClock:
    """A follower's group clock: the leader's, estimated (None until the first estimate).
    Read from the sink thread: ``estimate`` is replaced whole, never changed in place."""

    def __init__(self) -> None:
        self.estimate: Estimate | None = None

    def now_ns(self) -> int | None:
        est = self.estimate
        return None if est is None else est.leader_ns(time.monotonic_ns())


#: Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS; Python has no name for it)
SO_TIMESTAMPNS = 35
_READS_PER_WAKE = 64  # bounded: a flood cannot hold the event loop


def _wall_minus_monotonic() -> int:
    """The wall clock less the monotonic one, read so that a thread switch between the
    two reads (the audio threads hold the interpreter for milliseconds) cannot shift it:
    the wall clock between two monotonic reads, the tightest of a few tries."""
    best: tuple[int, int] | None = None
    for _ in range(4):
        before = time.monotonic_ns()
        wall = time.time_ns()
        after = time.monotonic_ns()
        if best is None or after - before < best[0]:
            best = (after - before, wall - (before + after) // 2)
        if after - before < 20_000:
            break
    assert best is not None
    return best[1]


def kernel_rx_ns(ancillary: list[tuple[int, int, bytes]]) -> int:
    """When the kernel took the datagram in, on the monotonic clock; now when it did not say.

    A speaker's event loop shares the interpreter with its audio threads, so it
    may run a datagram's handler milliseconds after it arrived; the kernel's own
    stamp (wall clock, turned into monotonic here) leaves that wait out of t2/t4.
    """
    now = time.monotonic_ns()
    for level, kind, payload in ancillary:
        if level != socket.SOL_SOCKET or kind != SO_TIMESTAMPNS:
            continue
        if len(payload) >= 16:
            sec, nsec = struct.unpack("qq", payload[:16])
        elif len(payload) == 8:  # a 32-bit kernel's timespec
            sec, nsec = struct.unpack("ii", payload)
        else:
            break
        stamp = int(sec) * 1_000_000_000 + int(nsec) - _wall_minus_monotonic()
        if now - 1_000_000_000 <= stamp <= now:  # a wall-clock step between: not to trust
            return stamp
        break
    return now


class SyncPeer:
    """The group's UDP endpoint for this speaker; see the module docstring."""

    def __init__(
        self,
        *,
        host: str = "",
        port: int = 0,
        timing: PeerTiming | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        on_clock: Callable[[], None] | None = None,
    ) -> None:
        self.host = host or "0.0.0.0"
        self.requested_port = port
        self.timing = timing or PeerTiming()
        #: a follower took a new plan / got its first clock estimate (on the event loop)
        self.on_plan = on_plan
        self.on_clock = on_clock
        self.role = Role.NONE
        self.dropped: Counter[str] = Counter()
        self.exchanges = 0  # time answers taken (follower)
        self.answered = 0  # time requests answered (leader)
        self.plans_sent = 0
        self._key = b""
        self._sock: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._warned_at = 0.0
        self._warned_total = 0
        # leader
        self.leader_clock = LeaderClock()
        self._followers: OrderedDict[Addr, float] = OrderedDict()  # addr -> last heard
        self._revision = 0
        self.plan: Plan | None = None  # the leader's plan, or the one a follower took
        # follower
        self.clock = FollowerClock()
        self._filter = ClockFilter()
        self._leader_addr = ""
        self._leader: Addr | None = None  # resolved
        self._pending: OrderedDict[bytes, int] = OrderedDict()  # nonce -> t1
        self._leader_revision = 0  # the leader's revision, from its latest fresh answer
        self._fast_until = 0.0
        self._last_answer = 0.0
        self.leader_lost = False

    # --- life --------------------------------------------------------------------

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, self.requested_port))
            with contextlib.suppress(OSError):  # without it: stamped when handled
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        logger.info("multiroom sync socket on UDP %s:%d", self.host, self.port)

    @property
    def port(self) -> int:
        assert self._sock is not None
        return int(self._sock.getsockname()[1])

    async def close(self) -> None:
        self._stop_task()
        if self._sock is not None:
            asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def _readable(self) -> None:
        assert self._sock is not None
        for _ in range(_READS_PER_WAKE):
            try:
                data, ancillary, _flags, addr = self._sock.recvmsg(MAX_DATAGRAM + 1, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. an ICMP port unreachable for an earlier send
                self.drop("send_error")
                continue
            self.received(data, (str(addr[0]), int(addr[1])), kernel_rx_ns(ancillary))

    def _stop_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # --- roles ---------------------------------------------------------------------

    def lead(self, key: bytes) -> None:
        """Lead (a group's clock and plan); a plan held as a follower carries on."""
        self._stop_task()
        if key != self._key:
            self._followers.clear()
        self._key = key
        self.role = Role.LEADER
        self._revision = max(self._revision, self.plan.revision if self.plan else 0)

    def follow(self, key: bytes, leader_addr: str) -> None:
        """Follow the leader at ``leader_addr`` (``host:port``); a new leader or key starts
        the clock and the plan afresh."""
        if self.role is Role.FOLLOWER and key == self._key and leader_addr == self._leader_addr:
            return
        self._stop_task()
        self._key = key
        self.role = Role.FOLLOWER
        self._leader_addr = leader_addr
        self._leader = None
        self._filter.reset()
        self.clock = FollowerClock()
        self._pending.clear()
        self.plan = None
        self._leader_revision = 0
        self._fast_until = time.monotonic() + self.timing.fast_period_s
        self._last_answer = time.monotonic()
        self.leader_lost = False
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="sync-follow")

    def leave(self) -> None:
        self._stop_task()
        self.role = Role.NONE
        self._key = b""
        self._followers.clear()
        self._pending.clear()
        self.plan = None
        self._filter.reset()
        self.clock = FollowerClock()

    @property
    def estimate(self) -> Estimate | None:
        return self.clock.estimate

    # --- the leader's plan -----------------------------------------------------------

    def publish(
        self, anchor: Anchor | None, current: TrackRef | None, nxt: TrackRef | None
    ) -> Plan:
        """A new plan (the revision rises; from the wall clock's microseconds, so a
        restarted leader's plans are still newer than those its followers hold)."""
        self._revision = max(self._revision + 1, time.time_ns() // 1000)
        self.plan = Plan(self._revision, anchor, current, nxt)
        if self.role is Role.LEADER:
            data = self._plan_bytes(self.plan)
            horizon = time.monotonic() - self.timing.follower_ttl_s
            for addr, seen in list(self._followers.items()):
                if seen >= horizon:
                    self._send(data, addr)
        return self.plan

    def _plan_bytes(self, plan: Plan) -> bytes:
        try:
            return encode(self._key, plan)
        except WireError:  # long names: the tracks' uris and durations are what matters
            slim = Plan(plan.revision, plan.anchor, _slim(plan.current), _slim(plan.next))
            return encode(self._key, slim)

    def _heard(self, addr: Addr) -> None:
        followers = self._followers
        followers[addr] = time.monotonic()
        followers.move_to_end(addr)
        while len(followers) > self.timing.max_followers:
            followers.popitem(last=False)

    @property
    def followers(self) -> list[Addr]:
        return list(self._followers)

    # --- datagrams in ------------------------------------------------------------------

    def received(self, data: bytes, addr: Addr, t_rx: int | None = None) -> None:
        """One datagram; ``t_rx`` is when it arrived (t2 as leader, t4 as follower)."""
        if t_rx is None:
            t_rx = time.monotonic_ns()
        if self.role is Role.NONE:
            self.drop("ungrouped")
            return
        if len(data) > MAX_DATAGRAM:
            self.drop("size")
            return
        try:
            msg = decode(self._key, data)
        except WireError:
            self.drop("seal")
            return
        if self.role is Role.LEADER:
            self._as_leader(msg, addr, t_rx)
        else:
            self._as_follower(msg, addr, t_rx)

    def _as_leader(self, msg: Message, addr: Addr, t_rx: int) -> None:
        match msg:
            case TimeRequest(nonce=nonce, t1=t1):
                rev = self.plan.revision if self.plan else 0
                resp = TimeResponse(nonce, t1, t_rx, time.monotonic_ns(), rev)
                self._send(encode(self._key, resp), addr)
                self.answered += 1
                self._heard(addr)
            case PlanRequest():
                self._heard(addr)
                if self.plan is not None:
                    self._send(self._plan_bytes(self.plan), addr)
            case _:
                self.drop("unexpected")

    def _as_follower(self, msg: Message, addr: Addr, t_rx: int) -> None:
        if addr != self._leader:  # an old leader cut off, or a replay from elsewhere
            self.drop("not_leader")
            return
        match msg:
            case TimeResponse():
                self._answer(msg, t_rx)
            case Plan():
                self._take(msg)
            case _:
                self.drop("unexpected")

    def _answer(self, resp: TimeResponse, t4: int) -> None:
        t1 = self._pending.pop(resp.nonce, None)
        if t1 is None or t1 != resp.t1:
            self.drop("stale")  # an answer to no question of ours: late, duplicated, replayed
            return
        ex = Exchange(resp.t1, resp.t2, resp.t3, t4)
        est = self._filter.estimate
        if est is not None:
            off = est.leader_ns(round(ex.local_ns)) - ex.local_ns
            if abs(ex.offset_ns - off) > self.timing.step_ns + ex.delay_ns:
                logger.warning("the group leader's clock jumped; estimating it afresh")
                self._filter.reset()
        had = self.clock.estimate is not None
        self.clock.estimate = self._filter.add(ex)
        self.exchanges += 1
        self._last_answer = time.monotonic()
        if self.leader_lost:
            logger.info("the group leader answers again")
            self.leader_lost = False
            self._fast_until = time.monotonic() + self.timing.fast_period_s
        if not had and self.clock.estimate is not None and self.on_clock is not None:
            self.on_clock()
        self._leader_revision = resp.plan_revision
        held = self.plan.revision if self.plan else 0
        if resp.plan_revision and resp.plan_revision != held and self._leader is not None:
            self._send(encode(self._key, PlanRequest(secrets.token_bytes(8))), self._leader)

    def _take(self, plan: Plan) -> None:
        held = self.plan.revision if self.plan else 0
        # newer, or the leader's own current revision (a restarted leader may count lower)
        if plan.revision == held or (
            plan.revision < held and plan.revision != self._leader_revision
        ):
            self.drop("old_plan")
            return
        self.plan = plan
        if self.on_plan is not None:
            self.on_plan(plan)

    # --- the follower's questions ---------------------------------------------------------

    async def _follow(self) -> None:
        t = self.timing
        while True:
            if self._leader is None:
                self._leader = await self._resolve()
                if self._leader is None:
                    await asyncio.sleep(2.0)
                    continue
            self._ask()
            now = time.monotonic()
            if not self.leader_lost and now - self._last_answer > t.lost_after_s:
                self.leader_lost = True
                logger.warning(
                    "the group leader at %s does not answer; playing on by the last estimate",
                    self._leader_addr,
                )
            await asyncio.sleep(t.fast_interval_s if now < self._fast_until else t.slow_interval_s)

    async def _resolve(self) -> Addr | None:
        try:
            host, port = split_addr(self._leader_addr)
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, family=family, type=socket.SOCK_DGRAM
            )
        except (OSError, MembershipError) as exc:
            self._warn_once(f"cannot reach the group leader at {self._leader_addr}: {exc}")
            return None
        sockaddr = infos[0][4]
        return str(sockaddr[0]), int(sockaddr[1])

    def _ask(self) -> None:
        assert self._leader is not None
        nonce = secrets.token_bytes(8)
        t1 = time.monotonic_ns()
        self._pending[nonce] = t1
        while len(self._pending) > self.timing.max_pending:
            self._pending.popitem(last=False)
        self._send(encode(self._key, TimeRequest(nonce, t1)), self._leader)

    # --- out, and what was dropped --------------------------------------------------------

    def _send(self, data: bytes, addr: Addr) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self.drop("send_busy")  # the socket buffer is full: like a lost datagram
            return
        except OSError:
            self.drop("send_error")
            return
        if data[4:5] == b"\x03":
            self.plans_sent += 1

    def drop(self, reason: str) -> None:
        """Count a dropped datagram; warn now and then (never once per datagram)."""
        self.dropped[reason] += 1
        now = time.monotonic()
        if now - self._warned_at >= self.timing.warn_every_s:
            total = sum(self.dropped.values())
            self._warn_once(
                f"dropped {total - self._warned_total} sync datagrams lately "
                f"({dict(self.dropped)} since start)"
            )
            self._warned_total = total

    def _warn_once(self, message: str) -> None:
        now = time.monotonic()
        if now - self._warned_at >= self.timing.warn_every_s:
            self._warned_at = now
            logger.warning("multiroom: %s", message)

    def stats(self) -> dict[str, object]:
        """For diagnostics: role, clock, traffic, drops."""
        est = self.clock.estimate if self.role is Role.FOLLOWER else None
        return {
            "role": self.role.value,
            "port": self.port if self._sock is not None else None,
            "plan_revision": self.plan.revision if self.plan else 0,
            "followers": len(self._followers),
            "exchanges": self.exchanges,
            "offset_ns": round(est.offset_ns) if est else None,
            "skew_ppm": round(est.skew * 1e6, 3) if est else None,
            "leader_lost": self.leader_lost,
            "dropped": dict(self.dropped),
        }


def _slim(track: TrackRef | None) -> TrackRef | None:
    if track is None:
        return None
    return TrackRef(uri=track.uri, duration_ms=track.duration_ms, name=track.name[:64])
