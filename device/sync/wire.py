"""The group's datagrams: time exchanges and the leader's plan, each authenticated.

Every datagram is ``MAGIC | kind | body | tag``, the tag HMAC-SHA256 (first 16
bytes) over everything before it under the group's 32-byte key, which only the
hub hands out (over MQTT, TLS).  Anyone else on the network can neither shift
a member's clock nor steer its playback: a datagram that fails its tag, is
malformed or too big is dropped (and counted by the caller).  A time answer
echoes the request's random nonce, so an old answer replayed is not taken; a
plan carries a revision and only a newer one is taken.

Kinds:

- ``TIME_REQ``  follower → leader: nonce (8 bytes), t1 (int64 ns, follower clock)
- ``TIME_RESP`` leader → follower: nonce, t1, t2, t3 (leader clock), plan revision
- ``PLAN``      leader → follower: revision (uint64), then the plan as UTF-8 JSON
  (``{"anchor": {...} | null, "current": TrackRef | null, "next": TrackRef | null}``)
- ``PLAN_REQ``  follower → leader: nonce, asking for the plan now (it saw a newer revision)

Pure: bytes in, values out.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from connect_protocol.codec import from_obj
from connect_protocol.messages import TrackRef
from device.sync.anchor import Anchor

MAGIC = b"LGS1"
TAG_BYTES = 16
KEY_BYTES = 32
MAX_DATAGRAM = 1400  # fits one Ethernet frame with room for IP and UDP headers
_TIME_REQ = struct.Struct(">8sq")
_TIME_RESP = struct.Struct(">8sqqqQ")
_PLAN_HEAD = struct.Struct(">Q")


class Kind(IntEnum):
    TIME_REQ = 1
    TIME_RESP = 2
    PLAN = 3
    PLAN_REQ = 4


class WireError(ValueError):
    """A datagram that is not for us (bad tag, malformed, too big): drop it."""


@dataclass(frozen=True, slots=True)
class TimeRequest:
    nonce: bytes
    t1: int


@dataclass(frozen=True, slots=True)
class TimeResponse:
    nonce: bytes
    t1: int
    t2: int
    t3: int
    plan_revision: int


@dataclass(frozen=True, slots=True)
class PlanRequest:
    nonce: bytes


@dataclass(frozen=True, slots=True)
class Plan:
    """What the group plays: the timeline and the tracks it runs over.  ``revision``
    rises with every change the leader makes."""

    revision: int
    anchor: Anchor | None = None
    current: TrackRef | None = None
    next: TrackRef | None = None


Message = TimeRequest | TimeResponse | PlanRequest | Plan


def _tag(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()[:TAG_BYTES]


def _seal(key: bytes, kind: Kind, body: bytes) -> bytes:
    head = MAGIC + bytes([kind]) + body
    out = head + _tag(key, head)
    if len(out) > MAX_DATAGRAM:
        raise WireError(f"datagram of {len(out)} bytes is over {MAX_DATAGRAM}")
    return out


def encode(key: bytes, msg: Message) -> bytes:
    """One sealed datagram; raises ``WireError`` when a plan does not fit in one."""
    if len(key) != KEY_BYTES:
        raise ValueError("the group key must be 32 bytes")
    match msg:
        case TimeRequest(nonce=nonce, t1=t1):
            return _seal(key, Kind.TIME_REQ, _TIME_REQ.pack(nonce, t1))
        case TimeResponse():
            body = _TIME_RESP.pack(msg.nonce, msg.t1, msg.t2, msg.t3, msg.plan_revision)
            return _seal(key, Kind.TIME_RESP, body)
        case PlanRequest(nonce=nonce):
            return _seal(key, Kind.PLAN_REQ, nonce)
        case Plan():
            obj: dict[str, Any] = {
                "anchor": msg.anchor.to_obj() if msg.anchor else None,
                "current": _track_obj(msg.current) if msg.current else None,
                "next": _track_obj(msg.next) if msg.next else None,
            }
            text = json.dumps(obj, separators=(",", ":")).encode()
            return _seal(key, Kind.PLAN, _PLAN_HEAD.pack(msg.revision) + text)
    raise TypeError(f"not a sync message: {msg!r}")


def decode(key: bytes, data: bytes) -> Message:
    """Check the tag, then parse; raises ``WireError`` on anything not ours."""
    if len(data) > MAX_DATAGRAM or len(data) < len(MAGIC) + 1 + TAG_BYTES:
        raise WireError("datagram size out of range")
    head, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if not head.startswith(MAGIC) or not hmac.compare_digest(tag, _tag(key, head)):
        raise WireError("not sealed with this group's key")
    kind, body = head[len(MAGIC)], head[len(MAGIC) + 1 :]
    try:
        if kind == Kind.TIME_REQ:
            return TimeRequest(*_TIME_REQ.unpack(body))
        if kind == Kind.TIME_RESP:
            return TimeResponse(*_TIME_RESP.unpack(body))
        if kind == Kind.PLAN_REQ and len(body) == 8:
            return PlanRequest(body)
        if kind == Kind.PLAN:
            (revision,) = _PLAN_HEAD.unpack(body[: _PLAN_HEAD.size])
            return _plan(revision, json.loads(body[_PLAN_HEAD.size :]))
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WireError(f"malformed datagram: {exc}") from None
    raise WireError(f"unknown datagram kind {kind}")


def _track_obj(track: TrackRef) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(track).items()}


def _track(obj: object) -> TrackRef | None:
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise WireError("a track must be an object")
    track = from_obj(TrackRef, obj)
    if not isinstance(track, TrackRef):
        raise WireError(f"bad track: {track.message}")
    return track


def _plan(revision: int, obj: object) -> Plan:
    if not isinstance(obj, dict):
        raise WireError("a plan must be an object")
    anchor = None if obj.get("anchor") is None else Anchor.from_obj(obj["anchor"])
    return Plan(revision, anchor, _track(obj.get("current")), _track(obj.get("next")))
