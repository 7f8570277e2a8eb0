"""The hub's releases: add, list, roll out, halt, offer to a speaker, and each
speaker's progress; the decisions are :mod:`hub.releases.policy`'s.

Every change runs in one ``BEGIN IMMEDIATE`` transaction, so a CLI and a running
hub on the same data directory (SQLite WAL) never undo each other, and two speakers
asking at once cannot both take the wave's last place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from connect_protocol.messages import UPDATE_STATES
from connect_protocol.topics import is_valid_device_id
from hub.clock import now_ms
from hub.db import Database
from hub.errors import ReleaseNotFound, ReleaseRefused
from hub.releases import adding, policy, store
from hub.releases.status import SpeakerUpdate, counts, speaker_updates
from releases.signing import ReleaseKey
from releases.versions import newer

MAX_DEVICES = 10_000
OPERATOR_HALT = "halted by the operator"


@dataclass(frozen=True, slots=True)
class Offer:
    version: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, Any]:
        url = f"/v1/releases/{self.version}/bundle"
        return {"version": self.version, "size": self.size, "sha256": self.sha256, "url": url}


def rollout_json(r: policy.Rollout | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "percent": r.percent,
        "devices": sorted(r.devices) if r.devices is not None else None,
        "wave": r.wave,
        "state": r.state,
        "reason": r.reason,
        "started_ms": r.started_ms,
        "halted_ms": r.halted_ms,
    }


class Releases:
    """``live_fw`` gives the release each connected speaker's retained status names
    (the relay's view), which wins over the registry's copy in the database."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        *,
        live_fw: Callable[[], Mapping[str, str]] = dict,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db, self.data_dir = db, data_dir
        self.live_fw, self.clock = live_fw, clock
        self._key: ReleaseKey | None = None

    @property
    def key(self) -> ReleaseKey:
        if self._key is None:
            self._key = adding.release_key(self.data_dir)
        return self._key

    # --- the operator's side ------------------------------------------------------

    def add(self, wheel: Path, *, notes: str = "", constraints: str | None = None) -> store.Release:
        return adding.add_release(
            self.db, self.data_dir, wheel, notes=notes, constraints=constraints, now_ms=self.clock()
        )

    def summaries(self) -> list[dict[str, Any]]:
        """Every release, newest first, with its rollout and its speakers per state."""
        with self.db.reading() as conn:
            found = store.releases(conn)
            out = []
            for r in found:
                rollout = store.rollout(conn, r.version)
                rows = self._updates(conn, r.version, rollout)
                out.append(
                    {**r.to_json(), "rollout": rollout_json(rollout), "counts": counts(rows)}
                )
        return out

    def release(self, version: str) -> store.Release:
        with self.db.reading() as conn:
            found = store.release(conn, version)
        if found is None:
            raise _missing(version)
        return found

    def rollout(
        self,
        version: str,
        *,
        percent: int | None = None,
        devices: Sequence[str] | None = None,
        wave: int | None = None,
    ) -> policy.Rollout:
        """Start, widen or resume ``version``'s rollout; older active rollouts are done."""
        wanted = _checked_target(percent, devices, wave)
        now = self.clock()
        with self.db.transaction() as conn:
            if store.release(conn, version) is None:
                raise _missing(version)
            old = store.rollout(conn, version)
            active = old is not None and old.state == "active"
            if active and old is not None and old.percent and percent and percent < old.percent:
                raise ReleaseRefused(
                    f"release {version} is already out to {old.percent}%: a rollout only "
                    "widens (halt it to stop it)"
                )
            new = replace(
                wanted,
                version=version,
                started_ms=old.started_ms if active and old is not None else now,
            )
            store.save_rollout(conn, new)
            for other in store.rollouts(conn, active_only=True):
                if other.version != version and newer(version, other.version):
                    done = replace(other, state="done", reason=f"superseded by {version}")
                    store.save_rollout(conn, done)
        return new

    def halt(self, version: str, reason: str = OPERATOR_HALT) -> policy.Rollout:
        """Stop offering ``version``; speakers already on it keep it."""
        with self.db.transaction() as conn:
            return self._halt_in(conn, version, reason, self.clock())

    def _halt_in(
        self, conn: sqlite3.Connection, version: str, reason: str, now: int
    ) -> policy.Rollout:
        current = store.rollout(conn, version)
        if current is None:
            if store.release(conn, version) is None:
                raise _missing(version)
            raise ReleaseRefused(f"release {version} has no rollout to halt")
        if current.state != "active":
            return current
        halted = replace(current, state="halted", reason=reason, halted_ms=now)
        store.save_rollout(conn, halted)
        return halted

    def devices(self, version: str) -> tuple[policy.Rollout | None, list[SpeakerUpdate]]:
        """The rollout of ``version`` and each speaker's progress on it, with reasons."""
        with self.db.reading() as conn:
            if store.release(conn, version) is None:
                raise _missing(version)
            rollout = store.rollout(conn, version)
            return rollout, self._updates(conn, version, rollout)

    def _speakers(self, conn: sqlite3.Connection) -> dict[str, store.Speaker]:
        known = store.known_speakers(conn)
        for device_id, fw in self.live_fw().items():
            name = known[device_id].name if device_id in known else device_id
            known[device_id] = store.Speaker(name, fw)
        return known

    def _updates(
        self, conn: sqlite3.Connection, version: str, rollout: policy.Rollout | None
    ) -> list[SpeakerUpdate]:
        return speaker_updates(
            version, rollout, self._speakers(conn), store.progress_of(conn, version)
        )

    # --- the speakers' side -------------------------------------------------------

    def offer(self, device_id: str) -> Offer | None:
        """What ``device_id`` should install now, recorded as ``offered``; or None."""
        now = self.clock()
        with self.db.transaction() as conn:
            speakers = self._speakers(conn)
            fw = speakers[device_id].fw if device_id in speakers else ""
            mine = store.device_progress(conn, device_id)
            candidates = []
            for r in store.rollouts(conn, active_only=True):
                progress = store.progress_of(conn, r.version)
                flying = sum(
                    policy.counts_in_flight(p, now) and policy.in_rollout(r, d)
                    for d, (p, _) in progress.items()
                )
                targeted = (
                    len(r.devices)
                    if r.devices is not None
                    else sum(policy.in_rollout(r, d) for d in {*speakers, device_id})
                )
                candidates.append(
                    policy.Candidate(
                        rollout=r, mine=mine.get(r.version), in_flight=flying, targeted=targeted
                    )
                )
            version = policy.choose_offer(device_id, fw, candidates, now)
            if version is None:
                return None
            release = store.release(conn, version)
            if release is None:
                return None
            held = mine.get(version)
            if held is not None and held.state == policy.SKIPPED:
                pass  # its reason stays shown until it tries (downloading) or says again
            elif held is None or held.state == "offered" or not policy.counts_in_flight(held, now):
                store.set_progress(conn, device_id, version, "offered", "", now)
            return Offer(release.version, release.size, release.sha256)

    def bundle_path(self, version: str) -> Path | None:
        with self.db.reading() as conn:
            found = store.release(conn, version)
        return Path(found.path) if found is not None else None

    def record_in(
        self, conn: sqlite3.Connection, device_id: str, version: str, state: str, reason: str
    ) -> str | None:
        """Keep a speaker's report on a release this hub has (others are dropped: a
        speaker cannot fill the table with made-up versions); after a failure, halt its
        rollout if too many of the speakers it targets failed.  Returns the halt's
        reason when it halted.  ``conn`` autocommits."""
        if state not in UPDATE_STATES:
            return None
        now = self.clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            if store.release(conn, version) is None:
                conn.execute("ROLLBACK")
                return None
            store.set_progress(conn, device_id, version, state, reason, now)
            halted = None
            rollout = store.rollout(conn, version)
            if state in policy.FAILED and rollout is not None and rollout.state == "active":
                # the rollout's own speakers (not a USB install elsewhere), counted since
                # it (re)started: a resumed one starts afresh
                reports = store.progress_of(conn, version).items()
                states = [
                    p.state
                    for d, (p, _) in reports
                    if p.updated_ms >= rollout.started_ms and policy.in_rollout(rollout, d)
                ]
                halted = policy.halt_reason(states)
                if halted is not None:
                    self._halt_in(conn, version, halted, now)
            conn.execute("COMMIT")
            return halted
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _missing(version: str) -> ReleaseNotFound:
    return ReleaseNotFound(f"no release {version[:64]!r} (see `legato-hub release list`)")


def _checked_target(
    percent: int | None, devices: Sequence[str] | None, wave: int | None
) -> policy.Rollout:
    if (percent is None) == (devices is None):
        raise ReleaseRefused("a rollout takes either a percent or a list of speakers")
    if wave is not None and not 1 <= wave <= MAX_DEVICES:
        raise ReleaseRefused(f"the wave must be 1 to {MAX_DEVICES} speakers")
    if percent is not None:
        if isinstance(percent, bool) or not 1 <= percent <= 100:
            raise ReleaseRefused("the percent must be a whole number from 1 to 100")
        return policy.Rollout(version="", percent=percent, wave=wave)
    assert devices is not None
    names = {d.strip() for d in devices if d.strip()}
    if not names or len(names) > MAX_DEVICES:
        raise ReleaseRefused(f"name 1 to {MAX_DEVICES} speakers")
    bad = sorted(d for d in names if not is_valid_device_id(d))
    if bad:
        raise ReleaseRefused(f"not a speaker id: {bad[0][:64]!r}")
    return policy.Rollout(version="", devices=frozenset(names), wave=wave)
