"""Each speaker's progress on one release, as the operator reads it (dashboard,
``legato-hub release status``, ``GET /v1/releases/{v}/devices``).

Pure: built from the speakers' reports, their retained status (``fw``) and the
rollout.  A speaker whose status names the release counts as on it even if it never
reported (installed from a USB stick); a targeted speaker not yet offered is
``waiting``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connect_protocol.messages import UPDATE_STATES
from hub.releases import policy

#: the order the operator reads them in: not yet offered, then the speakers' own
DISPLAY_STATES = ("waiting", *UPDATE_STATES)
NEVER_REPORTED = "runs it (no report: installed another way)"


class KnownSpeaker(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def fw(self) -> str: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerUpdate:
    device_id: str
    name: str
    fw: str
    state: str  # one of DISPLAY_STATES
    reason: str
    updated_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "name": self.name,
            "fw": self.fw,
            "state": self.state,
            "reason": self.reason,
            "updated_ms": self.updated_ms,
        }


def _state(
    version: str, fw: str, reported: tuple[policy.Progress, str] | None, targeted: bool
) -> tuple[str, str, int] | None:
    on_it = fw == version
    if reported is not None:
        progress, reason = reported
        if on_it and progress.state in ("offered", "downloading", "installing", "skipped"):
            return "good", NEVER_REPORTED, progress.updated_ms
        return progress.state, reason, progress.updated_ms
    if on_it:
        return "good", NEVER_REPORTED, 0
    if targeted and not policy.runs_it_or_newer(fw, version):
        return "waiting", "", 0
    return None


def speaker_updates(
    version: str,
    rollout: policy.Rollout | None,
    speakers: Mapping[str, KnownSpeaker],
    progress: Mapping[str, tuple[policy.Progress, str]],
) -> list[SpeakerUpdate]:
    """One row per speaker that has anything to do with ``version``, by name."""
    rows = []
    named = rollout.devices if rollout is not None and rollout.devices is not None else ()
    for device_id in sorted({*speakers, *progress, *named}):
        known = speakers.get(device_id)
        fw = known.fw if known is not None else ""
        targeted = (
            rollout is not None
            and rollout.state == "active"
            and policy.in_rollout(rollout, device_id)
        )
        found = _state(version, fw, progress.get(device_id), targeted)
        if found is None:
            continue
        state, reason, updated_ms = found
        rows.append(
            SpeakerUpdate(
                device_id=device_id,
                name=known.name if known is not None else device_id,
                fw=fw,
                state=state,
                reason=reason,
                updated_ms=updated_ms,
            )
        )
    return sorted(rows, key=lambda r: (r.name.lower(), r.device_id))


def counts(rows: Iterable[SpeakerUpdate]) -> dict[str, int]:
    """Speakers per state, every state present (0 when none)."""
    out = dict.fromkeys(DISPLAY_STATES, 0)
    for row in rows:
        out[row.state] = out.get(row.state, 0) + 1
    return out
