"""The ``[updates]`` section of the speaker's config, and where this speaker runs from.

Parsed here, validated here; ``device.config`` turns a ``ValueError`` into the
``ConfigError`` that names the key (the message begins with it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releases import signing
from releases.guard import DEFAULT_ROOT, DEFAULT_STATE, Layout

MAX_INTERVAL_S = 7 * 24 * 3600
MAX_DEADLINE_S = 3600


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSettings:
    """How this speaker takes releases from its hub."""

    release_key: bytes = field(default=b"", repr=False)  # the pinned public key; b"": none
    check_interval_s: float = 600.0  # 0 = never ask the hub
    trial_deadline_s: float = 120.0  # a release in trial must reach the hub within this
    grace_s: float = 30.0  # ... and have been able to play this long
    root: Path = DEFAULT_ROOT
    state_dir: Path = DEFAULT_STATE

    @property
    def layout(self) -> Layout:
        return Layout(self.root, self.state_dir)

    @property
    def settle_limit_s(self) -> float:
        """A trial that reached the hub but whose engine kept failing ends here."""
        return self.trial_deadline_s + 2 * self.grace_s


def default_state_dir(root: Path) -> Path:
    """``/var/lib/legato/update`` for the system's slots, ``<root>/state`` for any other."""
    return DEFAULT_STATE if root == DEFAULT_ROOT else root / "state"


def _number(table: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"updates.{key} must be a number of seconds")
    if not low <= value <= high:
        raise ValueError(f"updates.{key} must be between {low:g} and {high:g} seconds")
    return float(value)


def _text(table: dict[str, Any], key: str, default: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"updates.{key} must be a string")
    return value


def from_table(table: dict[str, Any]) -> UpdateSettings:
    """The ``[updates]`` table, validated; ``ValueError`` naming the key otherwise."""
    unknown = set(table) - {
        "release_key",
        "check_interval_s",
        "trial_deadline_s",
        "grace_s",
        "root",
        "state_dir",
    }
    if unknown:
        raise ValueError(f"updates.{sorted(unknown)[0]} is not a setting of [updates]")
    key_text = _text(table, "release_key", "").strip()
    try:
        key = signing.parse_public(key_text) if key_text else b""
    except ValueError as exc:
        raise ValueError(f"updates.release_key: {exc}") from exc
    interval = _number(table, "check_interval_s", 600, 0, MAX_INTERVAL_S)
    if 0 < interval < 1:
        raise ValueError("updates.check_interval_s must be 0 (never) or at least 1 second")
    root = Path(_text(table, "root", str(DEFAULT_ROOT)) or str(DEFAULT_ROOT))
    state = _text(table, "state_dir", "")
    state_dir = Path(state) if state else default_state_dir(root)
    # absolute: root's installer reads the same keys from another working directory
    for name, path in (("root", root), ("state_dir", state_dir)):
        if not path.is_absolute():
            raise ValueError(f"updates.{name} must be an absolute path, not {str(path)!r}")
    return UpdateSettings(
        release_key=key,
        check_interval_s=interval,
        trial_deadline_s=_number(table, "trial_deadline_s", 120, 1, MAX_DEADLINE_S),
        grace_s=_number(table, "grace_s", 30, 0, MAX_DEADLINE_S),
        root=root,
        state_dir=state_dir,
    )


def running_slot(layout: Layout, version: str, prefix: str = sys.prefix) -> str | None:
    """``version`` when this interpreter's environment is the slot ``releases/<version>``
    of ``layout`` (through the ``current`` link or not); None for any other install (a
    source checkout, a developer's venv), which takes no releases from a hub."""
    try:
        slot = layout.slot(version)
    except ValueError:
        return None
    try:
        return version if Path(prefix).resolve() == slot.resolve(strict=True) else None
    except OSError:
        return None
