"""The ``[updates]`` section of a speaker's config, as the installer needs it: the
pinned release key and where the slots and the update state are.

The installer runs as root from ``releases`` (which imports nothing of the speaker),
so it reads these few keys itself, with ``tomllib``.
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from releases import guard, signing
from releases.errors import BundleRefusedError

SECTION = "updates"
MAX_CONFIG_BYTES = 1024 * 1024


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


def read_config(config: Path) -> str:
    """The text of the config that pins the release key; ``ValueError`` naming the
    problem.  Run as root, a config that is not root's, or that its group or anyone
    may write, is refused: whoever can write it chooses the key root installs with."""
    try:
        fd = os.open(config, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(f"cannot read {config}: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{config} is not a regular file")
        if os.geteuid() == 0 and (info.st_uid != 0 or info.st_mode & 0o022):
            raise ValueError(
                f"{config} pins the release key but is not root's alone to change "
                f"(owner uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}): "
                f"run chown root:legato {config} && chmod 0640 {config}"
            )
        data = f.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise ValueError(f"{config} is larger than 1 MiB")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{config} is not UTF-8 text") from exc


def read(
    config: Path | None, root: Path | None = None, state: Path | None = None
) -> UpdateSettings:
    """The settings in ``config`` (none: the defaults), ``root`` and ``state`` winning;
    ``ValueError`` naming the problem for a config that cannot be read."""
    section: dict[str, object] = {}
    if config is not None:
        try:
            doc = tomllib.loads(read_config(config))
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
