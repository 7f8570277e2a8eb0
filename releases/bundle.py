"""A release bundle: one uncompressed tar (the wheel inside is compressed already)
holding, in this order, ``manifest.json``, ``manifest.sig`` (64 raw bytes of
Ed25519), then each file the manifest names.

Verification reads the bundle as a stream and writes nothing: the signature over the
manifest's bytes first, then every member's size and SHA-256 against the manifest,
no member missing and none extra.  Only then may :func:`extract` unpack it, and it
hashes again while it copies, so a bundle changed between the two is refused too.
"""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from releases import manifest as manifest_mod
from releases import signing
from releases.errors import BundleRefusedError
from releases.manifest import BundleFile, Manifest
from releases.versions import newer, version_key

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
SUFFIX = ".legato"
CHUNK = 256 * 1024


def bundle_name(version: str) -> str:
    return f"legato-{version}{SUFFIX}"


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def make(
    out: Path,
    wheel: Path,
    constraints: str,
    key: signing.ReleaseKey,
    *,
    notes: str = "",
    min_hub: str = "",
    created_s: int | None = None,
) -> Manifest:
    """Write the bundle for ``wheel`` (and the pinned dependency list it was built
    with) to ``out``, signed with ``key``; ``BundleRefusedError`` for a file that is not a
    Legato wheel."""
    found = manifest_mod.WHEEL_NAME.fullmatch(wheel.name)
    if found is None:
        raise BundleRefusedError(
            "format", f"{wheel.name} is not a Legato wheel (legato-VERSION-py3-none-any.whl)"
        )
    version = found["version"]
    pins = constraints.encode()
    files = (
        BundleFile(wheel.name, wheel.stat().st_size, _sha256_of(wheel)),
        BundleFile(manifest_mod.CONSTRAINTS, len(pins), hashlib.sha256(pins).hexdigest()),
    )
    manifest = Manifest(
        version=version,
        files=files,
        created_s=int(time.time()) if created_s is None else created_s,
        min_hub=min_hub,
        notes=notes,
        key_id=key.id,
    )
    manifest_mod.parse(manifest.to_json())  # what a speaker will check, checked here first
    data = manifest.to_json()
    staged = out.with_name(f".{out.name}.part")
    with tarfile.open(staged, "w", format=tarfile.USTAR_FORMAT) as tar:

        def add(name: str, body: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(body), manifest.created_s, 0o644
            tar.addfile(info, io.BytesIO(body))

        add(MANIFEST, data)
        add(SIGNATURE, key.sign(data))
        with open(wheel, "rb") as f:
            info = tarfile.TarInfo(wheel.name)
            info.size, info.mtime, info.mode = files[0].size, manifest.created_s, 0o644
            tar.addfile(info, f)
        add(manifest_mod.CONSTRAINTS, pins)
    staged.replace(out)
    return manifest


@dataclass(frozen=True, slots=True)
class Compatibility:
    """What the bundle is checked against besides its signature."""

    installed: str | None = None  # the running release; None: nothing installed yet
    allow_downgrade: bool = False
    python: tuple[int, int] = (sys.version_info[0], sys.version_info[1])


def _read_small(
    tar: tarfile.TarFile, member: tarfile.TarInfo | None, name: str, limit: int
) -> bytes:
    if member is None or member.name != name or not member.isreg() or member.size > limit:
        raise BundleRefusedError(
            "format", f"not a Legato bundle: it must begin with {MANIFEST} and {SIGNATURE}"
        )
    f = tar.extractfile(member)
    assert f is not None
    return f.read()


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tar.next()
        except tarfile.TarError as exc:
            raise BundleRefusedError(
                "truncated", f"the bundle is damaged or cut short: {exc}"
            ) from exc
        if member is None:
            return
        yield member


def _hash_member(tar: tarfile.TarFile, member: tarfile.TarInfo, out: BinaryIO | None) -> str:
    f = tar.extractfile(member)
    assert f is not None
    digest = hashlib.sha256()
    seen = 0
    while chunk := f.read(CHUNK):
        digest.update(chunk)
        seen += len(chunk)
        if out is not None:
            out.write(chunk)
    if seen != member.size:
        raise BundleRefusedError("truncated", f"the bundle is cut short inside {member.name}")
    return digest.hexdigest()


def _walk(path: Path, public: bytes, compat: Compatibility, dest: Path | None) -> Manifest:
    try:
        with tarfile.open(path, "r:") as tar:  # plain tar only: nothing to decompress
            members = _members(tar)
            data = _read_small(tar, next(members, None), MANIFEST, manifest_mod.MAX_MANIFEST_BYTES)
            signature = _read_small(tar, next(members, None), SIGNATURE, signing.SIGNATURE_BYTES)
            signing.verify(public, data, signature)
            manifest = manifest_mod.parse(data)
            check_compatible(manifest, compat)
            wanted = {f.name: f for f in manifest.files}
            seen: set[str] = set()
            for member in members:
                expected = wanted.get(member.name)
                if expected is None or member.name in seen or not member.isreg():
                    raise BundleRefusedError(
                        "format",
                        f"the bundle holds {member.name[:64]!r}, which its manifest does not name",
                    )
                if member.size != expected.size:
                    raise BundleRefusedError(
                        "hash", f"{member.name} is not the size the manifest says"
                    )
                if dest is None:
                    digest = _hash_member(tar, member, None)
                else:
                    with open(dest / member.name, "xb") as out:
                        digest = _hash_member(tar, member, out)
                if digest != expected.sha256:
                    raise BundleRefusedError(
                        "hash", f"{member.name} does not match its hash in the manifest"
                    )
                seen.add(member.name)
            if seen != set(wanted):
                missing = sorted(set(wanted) - seen)
                raise BundleRefusedError("truncated", f"the bundle is missing {', '.join(missing)}")
            return manifest
    except tarfile.TarError as exc:
        raise BundleRefusedError("truncated", f"the bundle is damaged or cut short: {exc}") from exc
    except EOFError as exc:
        raise BundleRefusedError("truncated", "the bundle is cut short") from exc


def check_compatible(manifest: Manifest, compat: Compatibility) -> None:
    if compat.python < manifest.requires_python:
        need = ".".join(map(str, manifest.requires_python))
        raise BundleRefusedError(
            "incompatible", f"release {manifest.version} needs Python {need} or later"
        )
    if compat.installed is None:
        return
    version_key(compat.installed)  # a damaged install's version is refused loudly
    if manifest.version == compat.installed:
        raise BundleRefusedError("installed", f"release {manifest.version} is already installed")
    if not newer(manifest.version, compat.installed) and not compat.allow_downgrade:
        raise BundleRefusedError(
            "downgrade",
            f"release {manifest.version} is older than the installed {compat.installed}; "
            "a downgrade must be asked for",
        )


def verify(path: Path, public: bytes, compat: Compatibility = Compatibility()) -> Manifest:
    """The bundle's manifest if ``public`` signed it, every file matches it and it may
    be installed over ``compat``; ``BundleRefusedError`` otherwise.  Writes nothing."""
    return _walk(path, public, compat, None)


def extract(path: Path, public: bytes, compat: Compatibility, dest: Path) -> Manifest:
    """Verify again while unpacking the bundle's files into the empty directory
    ``dest`` (a caller deletes it on ``BundleRefusedError``)."""
    return _walk(path, public, compat, dest)
