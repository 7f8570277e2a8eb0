"""Adding a release: check the wheel is Legato's, sign a bundle of it, store both the
file and its row, or nothing at all.

The bundle is made under a name of its own first; the row is inserted and the file
moved to ``<data>/releases/legato-<v>.legato`` in one transaction, so two adds of
one version cannot overwrite each other's bundle and a failure leaves no row without
its file (a file without its row, after a crash, is replaced by the next add).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import secrets
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from hub.db import Database
from hub.errors import ReleaseConflict, ReleaseRefused
from hub.releases import store
from releases import bundle, pins
from releases.errors import BundleRefusedError
from releases.manifest import WHEEL_NAME
from releases.signing import ReleaseKey
from releases.versions import is_version

MAX_WHEEL_BYTES = 100 * 1024**2
MAX_CONSTRAINTS_BYTES = 256 * 1024


def hub_version() -> str:
    """This hub's own release: what a bundle it makes needs at least (``min_hub``)."""
    try:
        return importlib.metadata.version("legato")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def release_key(data_dir: Path) -> ReleaseKey:
    """The operator's release key, ``<data>/keys/release.key`` (made at first use)."""
    try:
        return ReleaseKey.load_or_create(data_dir / "keys" / "release.key")
    except (OSError, ValueError) as exc:
        raise ReleaseRefused(f"cannot open the release key: {exc}") from exc


def wheel_version(wheel: Path) -> str:
    """The Legato release in ``wheel``, after checking its name and its own metadata."""
    return wheel_metadata(wheel)[0]


def wheel_metadata(wheel: Path) -> tuple[str, list[str]]:
    """The Legato release in ``wheel`` and its own ``Requires-Dist`` lines, after
    checking its name and its metadata."""
    found = WHEEL_NAME.fullmatch(wheel.name)
    if found is None or not is_version(found["version"]):
        raise ReleaseRefused(
            f"{wheel.name} is not a Legato wheel (legato-VERSION-py3-none-any.whl)"
        )
    version = found["version"]
    try:
        size = wheel.stat().st_size
        if size > MAX_WHEEL_BYTES:
            raise ReleaseRefused(f"{wheel.name} is larger than {MAX_WHEEL_BYTES // 1024**2} MiB")
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(f"legato-{version}.dist-info/METADATA")
    except FileNotFoundError:
        raise ReleaseRefused(f"{wheel}: no such file") from None
    except KeyError:
        raise ReleaseRefused(
            f"{wheel.name} holds no legato-{version}.dist-info/METADATA: not Legato's wheel "
            "of that version"
        ) from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReleaseRefused(f"{wheel.name} is not a readable wheel: {exc}") from exc
    meta = HeaderParser().parsestr(raw.decode("utf-8", "replace"))
    if (meta["Name"] or "").lower() != "legato" or meta["Version"] != version:
        raise ReleaseRefused(
            f"{wheel.name} says it is {meta['Name']} {meta['Version']}, not legato {version}"
        )
    return version, [str(line) for line in meta.get_all("Requires-Dist") or []]


def release_pins(requires: list[str]) -> str:
    """The constraints a release carries: the wheel's own requirements (for a speaker,
    on a Pi or here) pinned to the versions beside this hub, and those it has not
    named bare (a speaker takes them from the index, and knows its slot lacks them)."""
    try:
        return pins.constraints(requires)
    except ValueError as exc:
        raise ReleaseRefused(
            f"the wheel's requirements cannot be read ({exc}); pass --constraints FILE"
        ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def add_release(
    db: Database,
    data_dir: Path,
    wheel: Path,
    *,
    notes: str = "",
    constraints: str | None = None,
    now_ms: int,
) -> store.Release:
    """Sign ``wheel`` into a bundle and record it; ``ReleaseRefused`` (nothing written)
    for a wheel that is not Legato's, a version already added or a bad file."""
    version, requires = wheel_metadata(wheel)
    with db.reading() as conn:
        if store.release(conn, version) is not None:
            raise ReleaseConflict(f"release {version} is already added")
    pinned = release_pins(requires) if constraints is None else constraints
    if len(pinned.encode()) > MAX_CONSTRAINTS_BYTES:
        raise ReleaseRefused("the constraints file is larger than 256 KiB")
    key = release_key(data_dir)
    folder = data_dir / "releases"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    final = folder / bundle.bundle_name(version)
    staged = folder / f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}"
    try:
        manifest = bundle.make(
            staged, wheel, pinned, key, notes=notes, min_hub=hub_version(), created_s=now_ms // 1000
        )
        bundle.verify(staged, key.public)  # what every speaker will check, checked here
        row = store.Release(
            version=version,
            created_ms=now_ms,
            size=staged.stat().st_size,
            sha256=_sha256(staged),
            notes=notes,
            key_id=key.id,
            path=str(final),
            manifest_json=manifest.to_json().decode(),
        )
        with db.transaction() as conn:
            if store.release(conn, version) is not None:
                raise ReleaseConflict(f"release {version} is already added")
            store.insert_release(conn, row)
            staged.replace(final)  # an error here rolls the row back
        return row
    except BundleRefusedError as exc:
        raise ReleaseRefused(str(exc)) from exc
    except OSError as exc:
        raise ReleaseRefused(f"could not write the bundle in {folder}: {exc}") from exc
    finally:
        staged.unlink(missing_ok=True)
        staged.with_name(f".{staged.name}.part").unlink(missing_ok=True)
