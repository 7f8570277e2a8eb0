"""What this speaker has told the hub about releases, kept across restarts.

``<state>/reported.json``: the outcome reported per version (so the release that
runs after a rollback tells the hub once, and a restart does not repeat it) and
when a "failed" was reported per version (a refused bundle is not fetched again for
a while; a version rolled back here is reported once).  Small and bounded: the
newest :data:`KEEP` entries of each.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from releases.guard import Outcome, write_atomic

logger = logging.getLogger(__name__)

FILE = "reported.json"
KEEP = 32
T = TypeVar("T")


@dataclass(slots=True)
class Reported:
    outcomes: dict[str, str] = field(default_factory=dict)  # version -> good | rolled_back
    failed_at_s: dict[str, float] = field(default_factory=dict)  # version -> wall time

    def to_json(self) -> str:
        doc = {"outcomes": self.outcomes, "failed_at_s": self.failed_at_s}
        return json.dumps(doc, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Reported:
        doc = json.loads(text)
        outcomes = {str(k): str(v) for k, v in dict(doc.get("outcomes", {})).items()}
        failed = {str(k): float(v) for k, v in dict(doc.get("failed_at_s", {})).items()}
        return cls(_newest(outcomes), _newest(failed))


def _newest(entries: dict[str, T]) -> dict[str, T]:
    return dict(list(entries.items())[-KEEP:])


def unreported(last: Outcome | None, reported: Reported) -> Outcome | None:
    """The last trial's outcome when the hub has not been told it yet."""
    if last is None or last.state not in ("good", "rolled_back"):
        return None
    return None if reported.outcomes.get(last.version) == last.state else last


def said(reported: Reported, version: str, state: str) -> Reported:
    outcomes = {k: v for k, v in reported.outcomes.items() if k != version}
    outcomes[version] = state
    return Reported(_newest(outcomes), dict(reported.failed_at_s))


def said_failed(reported: Reported, version: str, at_s: float) -> Reported:
    failed = {k: v for k, v in reported.failed_at_s.items() if k != version}
    failed[version] = at_s
    return Reported(dict(reported.outcomes), _newest(failed))


class ReportedFile:
    """``reported.json`` in the state directory; a damaged file is started afresh."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE

    def load(self) -> Reported:
        try:
            return Reported.from_json(self.path.read_text())
        except FileNotFoundError:
            return Reported()
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.warning("%s is damaged (%s); starting it afresh", self.path, exc)
            return Reported()

    def save(self, reported: Reported) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, reported.to_json(), 0o644)
        except OSError as exc:
            logger.warning("cannot keep %s: %s", self.path, exc)
