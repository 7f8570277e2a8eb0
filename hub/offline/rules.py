"""The rules of offline downloads as pure functions: values in, a decision out.

No database, files or clock in here: callers pass counts, names, stored licence
facts and the time, and get back ``None`` (go ahead) or a refusal message a
listener can act on, or the value the rule decides (an epoch, a state).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from offline_cache.licence import DAY_MS, MAX_OFFLINE_DEVICES_PER_ACCOUNT, MAX_TRACKS_PER_DEVICE

#: A licence this close to its end is replaced by a fresh one at the next chance.
RENEW_WITHIN_MS = 10 * DAY_MS
#: A signed sync whose timestamp is further than this from the hub's clock is refused.
SYNC_CLOCK_WINDOW_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldLicence:
    """What the rules need of a stored licence."""

    epoch: int
    expires_ms: int
    revoked_ms: int | None
    device_x25519: str  # b64, the key its KEK was sealed to


def next_epoch(latest: HeldLicence | None) -> int:
    """The KEK epoch of the next licence for a (device, account): a revocation moves
    it on, so what was downloaded before the revocation never opens again."""
    if latest is None:
        return 0
    return latest.epoch + 1 if latest.revoked_ms is not None else latest.epoch


def needs_new_licence(latest: HeldLicence | None, *, device_x25519: str, now_ms: int) -> bool:
    """Issue (or renew) unless the latest licence is live, addressed to the key the
    device holds now, and more than :data:`RENEW_WITHIN_MS` from its end."""
    return (
        latest is None
        or latest.revoked_ms is not None
        or latest.device_x25519 != device_x25519
        or latest.expires_ms - now_ms <= RENEW_WITHIN_MS
    )


def live(licence: HeldLicence, now_ms: int) -> bool:
    return licence.revoked_ms is None and now_ms < licence.expires_ms


def device_limit_refusal(
    other_devices: Sequence[str], *, limit: int = MAX_OFFLINE_DEVICES_PER_ACCOUNT
) -> str | None:
    """Refuse a new offline device when the account already has downloads on ``limit``
    others (``other_devices``: their names, this device not among them)."""
    if len(other_devices) < limit:
        return None
    names = ", ".join(sorted(other_devices))
    return (
        f"you already have offline downloads on {len(other_devices)} speakers ({names}), "
        "the most per account; remove the downloads from one of them first"
    )


def track_limit_refusal(
    device_name: str, tracks: int, *, limit: int = MAX_TRACKS_PER_DEVICE
) -> str | None:
    """Refuse downloads that would put more than ``limit`` distinct tracks on a device."""
    if tracks <= limit:
        return None
    return (
        f"speaker {device_name} would hold {tracks:,} tracks offline; "
        f"a speaker holds at most {limit:,}; remove some downloads first"
    )


def clock_refusal(ts_ms: int, now_ms: int) -> str | None:
    """Refuse a signed sync stamped too far from the hub's time (a replay, or a clock
    that is wrong)."""
    off = ts_ms - now_ms
    if abs(off) <= SYNC_CLOCK_WINDOW_MS:
        return None
    way = "ahead of" if off > 0 else "behind"
    return (
        f"the sync is stamped {abs(off) // 1000} s {way} the hub's clock (at most "
        f"{SYNC_CLOCK_WINDOW_MS // 60_000} minutes allowed): set the speaker's clock right, "
        "or this is a replayed request"
    )


class ItemState(StrEnum):
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackProgress:
    """What a speaker last reported for one track."""

    state: ItemState
    bytes_done: int
    bytes_total: int
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemProgress:
    state: ItemState
    tracks: int
    tracks_ready: int
    bytes_done: int
    bytes_total: int
    error: str


def item_progress(tracks: Sequence[TrackProgress | None]) -> ItemProgress:
    """One download item (a track, album or playlist) from its tracks' reports, in
    track order (``None``: nothing reported yet).  Failed if any failed (with the
    first failure's reason), ready when all are ready, downloading once anything has
    arrived, else queued."""
    reported = [t for t in tracks if t is not None]
    ready = sum(1 for t in reported if t.state is ItemState.READY)
    failures = [t.error or "failed" for t in reported if t.state is ItemState.FAILED]
    if failures:
        state, error = ItemState.FAILED, failures[0]
    elif ready == len(tracks):
        state, error = ItemState.READY, ""
    elif any(t.bytes_done > 0 or t.state is not ItemState.QUEUED for t in reported):
        state, error = ItemState.DOWNLOADING, ""
    else:
        state, error = ItemState.QUEUED, ""
    return ItemProgress(
        state=state,
        tracks=len(tracks),
        tracks_ready=ready,
        bytes_done=sum(t.bytes_done for t in reported),
        bytes_total=sum(t.bytes_total for t in reported),
        error=error,
    )
