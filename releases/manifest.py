"""A release's manifest: what a bundle holds, with the hash of every file, and what
it needs (the hub version that may serve it, the Python that may run it).

Its JSON is written once, by the hub, and signed as bytes; a speaker verifies those
exact bytes and only then parses them, strictly: every field typed and bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from releases.errors import BundleRefusedError
from releases.versions import is_version

FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 1024
MAX_FILES = 8
MAX_NOTES = 4000
#: a bundle member's name: plain, no directories, nothing hidden
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,127}")
SHA256 = re.compile(r"[0-9a-f]{64}")
WHEEL_NAME = re.compile(r"legato-(?P<version>[^-]+)-py3-none-any\.whl")
CONSTRAINTS = "constraints.txt"


@dataclass(frozen=True, slots=True)
class BundleFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    version: str
    files: tuple[BundleFile, ...]
    created_s: int
    min_hub: str = ""
    requires_python: tuple[int, int] = (3, 11)
    notes: str = ""
    key_id: str = ""  # which release key signed it (the first 16 hex of its hash)
    format: int = FORMAT

    @property
    def wheel(self) -> BundleFile:
        return next(f for f in self.files if WHEEL_NAME.fullmatch(f.name))

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> bytes:
        doc = {
            "format": self.format,
            "version": self.version,
            "created_s": self.created_s,
            "min_hub": self.min_hub,
            "requires_python": list(self.requires_python),
            "notes": self.notes,
            "key_id": self.key_id,
            "files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in self.files],
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _refuse(message: str) -> BundleRefusedError:
    return BundleRefusedError("format", f"the release manifest is not valid: {message}")


def _field(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _refuse(f"{name} must be {kind.__name__}")
    return value


def _file(entry: Any) -> BundleFile:
    if not isinstance(entry, dict):
        raise _refuse("each file must be an object")
    name, size, digest = (
        _field(entry, "name", str),
        _field(entry, "size", int),
        _field(entry, "sha256", str),
    )
    if not FILE_NAME.fullmatch(name) or ".." in name:
        raise _refuse(f"file name {name[:64]!r} is not a plain name")
    if not 0 <= size <= 1 << 31 or not SHA256.fullmatch(digest):
        raise _refuse(f"{name}: bad size or sha256")
    return BundleFile(name, size, digest)


def parse(data: bytes) -> Manifest:
    """The manifest in ``data`` (already verified as signed), or ``BundleRefusedError``."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise _refuse("larger than 64 KiB")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise _refuse("not JSON") from exc
    if not isinstance(doc, dict):
        raise _refuse("not an object")
    if doc.get("format") != FORMAT:
        raise BundleRefusedError(
            "incompatible", f"bundle format {doc.get('format')!r} is not one this Legato reads"
        )
    version = _field(doc, "version", str)
    if not is_version(version):
        raise _refuse(f"version {version[:64]!r}")
    min_hub = _field(doc, "min_hub", str)
    if min_hub and not is_version(min_hub):
        raise _refuse("min_hub is not a version")
    python = _field(doc, "requires_python", list)
    if len(python) != 2 or not all(isinstance(p, int) and 0 <= p < 1000 for p in python):
        raise _refuse("requires_python must be [major, minor]")
    raw_files = _field(doc, "files", list)
    if not 1 <= len(raw_files) <= MAX_FILES:
        raise _refuse("a bundle holds 1 to 8 files")
    files = tuple(_file(entry) for entry in raw_files)
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise _refuse("a file is named twice")
    wheels = [f for f in files if WHEEL_NAME.fullmatch(f.name)]
    if len(wheels) != 1 or WHEEL_NAME.fullmatch(wheels[0].name)["version"] != version:  # type: ignore[index]
        raise _refuse(f"it must hold exactly one wheel, legato-{version}-py3-none-any.whl")
    notes = _field(doc, "notes", str)
    key_id = _field(doc, "key_id", str)
    if len(notes) > MAX_NOTES or len(key_id) > 64:
        raise _refuse("notes or key_id too long")
    return Manifest(
        version=version,
        files=files,
        created_s=_field(doc, "created_s", int),
        min_hub=min_hub,
        requires_python=(python[0], python[1]),
        notes=notes,
        key_id=key_id,
    )
