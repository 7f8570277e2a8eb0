"""The ``[updates]`` section of a speaker's config, as the installer needs it: the
pinned release key and where the slots and the update state are.

The installer runs as root from ``releases`` (which imports nothing of the speaker),
so it reads these few keys itself, with ``tomllib``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from releases import guard, signing
from releases.errors import BundleRefusedError

SECTION = "updates"


@dataclass(frozen=True, slots=True)
class UpdateSettings:
    release_key: str = ""  # "ed25519:<base64url>"; "" refuses every bundle
    root: Path = guard.DEFAULT_ROOT
    state: Path = guard.DEFAULT_STATE

    @property
    def layout(self) -> guard.Layout:
        return guard.Layout(self.root, self.state)

    def public_key(self) -> bytes:
        """The pinned key, or ``BundleRefusedError("key")``: no key, no install."""
        if not self.release_key:
            raise BundleRefusedError(
                "key", "no release key is pinned ([updates] release_key): every bundle is refused"
            )
        try:
            return signing.parse_public(self.release_key)
        except ValueError as exc:
            raise BundleRefusedError("key", f"[updates] release_key: {exc}") from exc


def default_state(root: Path) -> Path:
    return guard.DEFAULT_STATE if root == guard.DEFAULT_ROOT else root / "state"


def read(
    config: Path | None, root: Path | None = None, state: Path | None = None
) -> UpdateSettings:
    """The settings in ``config`` (none: the defaults), ``root`` and ``state`` winning;
    ``ValueError`` naming the problem for a config that cannot be read."""
    section: dict[str, object] = {}
    if config is not None:
        try:
            doc = tomllib.loads(config.read_text())
        except OSError as exc:
            raise ValueError(f"cannot read {config}: {exc.strerror or exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{config} is not valid TOML: {exc}") from exc
        found = doc.get(SECTION, {})
        if not isinstance(found, dict):
            raise ValueError(f"{config}: [{SECTION}] must be a table")
        section = found
    values = {}
    for key in ("release_key", "root", "state_dir"):
        value = section.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"{config}: [{SECTION}] {key} must be a string")
        values[key] = value
    root = root.absolute() if root else None
    state = state.absolute() if state else None
    root = root or (Path(values["root"]) if values["root"] else guard.DEFAULT_ROOT)
    state = state or (Path(values["state_dir"]) if values["state_dir"] else default_state(root))
    for name, path in (("root", root), ("state_dir", state)):
        if not path.is_absolute():  # as the speaker requires: this runs in another directory
            raise ValueError(f"[{SECTION}] {name} must be an absolute path, not {str(path)!r}")
    return UpdateSettings(values["release_key"].strip(), root, state)
