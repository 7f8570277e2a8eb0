"""Which speaker is offered which release, and when a rollout halts by itself.

Pure: values in, values out, the clock passed in.  The rules:

- a speaker is in a rollout when it is named in its device list, or when
  ``int(sha256(f"{version}:{device_id}")[:8], 16) % 100 < percent`` (so the 50% set
  lies inside the 100% set, and widening never drops anyone);
- it is offered the release unless the rollout is not active, it already runs that
  version or a newer one, or it was good, rolled back or failed on it;
- at most ``wave`` of the speakers it targets are in flight (offered .. trial, heard
  from within :data:`STALE_MS`) at once; a speaker already in flight is offered again (it may
  have restarted its download); the default wave is ``max(2, ceil(25%))`` of the
  speakers targeted;
- of several active rollouts, the newest release the speaker may have wins;
- a rollout halts by itself when failures (rolled back + failed) reach
  ``max(2, ceil(10% of the speakers tried))``, tried = those the rollout targets that
  reported anything past ``offered`` since the rollout (re)started (a resumed rollout
  counts afresh); ``skipped`` (the speaker did not try, for its own reasons) is
  neither tried nor failed, and a skipped speaker is offered the release again (its
  reason may be gone: a key pinned, disk freed) without holding a place in the wave.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from releases.versions import is_version, newer

IN_FLIGHT = frozenset({"offered", "downloading", "installing", "trial"})
FAILED = frozenset({"rolled_back", "failed"})
#: not tried, for the speaker's own reasons: never counted against the release
SKIPPED = "skipped"
#: what a speaker reports once it acted on an offer (``tried``)
PAST_OFFERED = frozenset({"downloading", "installing", "trial", "good", "rolled_back", "failed"})
#: a speaker in one of these is never offered that release again
FINAL = frozenset({"good", "rolled_back", "failed"})
#: an in-flight speaker silent for this long no longer holds a place in the wave
STALE_MS = 60 * 60 * 1000
DEFAULT_WAVE_PERCENT = 25
MIN_WAVE = 2
HALT_PERCENT = 10
HALT_MINIMUM = 2
STATES = ("active", "halted", "done")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollout:
    version: str
    percent: int | None = None  # None when ``devices`` names the speakers
    devices: frozenset[str] | None = None
    wave: int | None = None  # None: the default for the speakers targeted
    state: str = "active"
    reason: str = ""
    started_ms: int = 0
    halted_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one speaker got with one release, as it last reported."""

    state: str
    updated_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One rollout as a speaker asking for an offer sees it."""

    rollout: Rollout
    mine: Progress | None  # this speaker's progress on the release, if any
    in_flight: int  # targeted speakers in flight on it now, this one included if it is
    targeted: int  # speakers the rollout targets (for the default wave)


def selected(version: str, device_id: str, percent: int) -> bool:
    """The speaker falls in the first ``percent`` of this release's rollout."""
    bucket = int(hashlib.sha256(f"{version}:{device_id}".encode()).hexdigest()[:8], 16) % 100
    return bucket < percent


def in_rollout(rollout: Rollout, device_id: str) -> bool:
    if rollout.devices is not None:
        return device_id in rollout.devices
    return rollout.percent is not None and selected(rollout.version, device_id, rollout.percent)


def default_wave(targeted: int) -> int:
    return max(MIN_WAVE, -(-targeted * DEFAULT_WAVE_PERCENT // 100))


def wave_of(rollout: Rollout, targeted: int) -> int:
    return rollout.wave if rollout.wave is not None else default_wave(targeted)


def runs_it_or_newer(fw: str, version: str) -> bool:
    """The speaker's reported release is ``version`` or later (an unreadable one is not)."""
    return fw == version or (is_version(fw) and is_version(version) and newer(fw, version))


def counts_in_flight(progress: Progress, now_ms: int) -> bool:
    return progress.state in IN_FLIGHT and now_ms - progress.updated_ms < STALE_MS


def may_offer(candidate: Candidate, device_id: str, fw: str, now_ms: int) -> bool:
    rollout, mine = candidate.rollout, candidate.mine
    if rollout.state != "active" or not in_rollout(rollout, device_id):
        return False
    if runs_it_or_newer(fw, rollout.version):
        return False
    if mine is not None and mine.state in FINAL:
        return False
    if mine is not None and counts_in_flight(mine, now_ms):
        return True  # already holds its place in the wave
    return candidate.in_flight < wave_of(rollout, candidate.targeted)


def choose_offer(
    device_id: str, fw: str, candidates: Sequence[Candidate], now_ms: int
) -> str | None:
    """The release to offer ``device_id`` (running ``fw``), or None."""
    allowed = [c.rollout.version for c in candidates if may_offer(c, device_id, fw, now_ms)]
    if not allowed:
        return None
    best = allowed[0]
    for version in allowed[1:]:
        if newer(version, best):
            best = version
    return best


@dataclass(frozen=True, slots=True)
class Tally:
    tried: int
    failed: int

    @property
    def threshold(self) -> int:
        return max(HALT_MINIMUM, -(-self.tried * HALT_PERCENT // 100))


def tally(states: Iterable[str]) -> Tally:
    tried = failed = 0
    for state in states:
        tried += state in PAST_OFFERED
        failed += state in FAILED
    return Tally(tried, failed)


def halt_reason(states: Iterable[str]) -> str | None:
    """Why the rollout must halt now, given every speaker's state on it; else None."""
    t = tally(states)
    if t.failed < t.threshold:
        return None
    return (
        f"halted by itself: {t.failed} of {t.tried} speakers failed "
        f"(threshold {HALT_PERCENT}%, at least {HALT_MINIMUM})"
    )
