"""A release bundle is refused, with its reason and nothing written outside the
directory it was asked to unpack into, whenever it is not exactly what the pinned
key signed: a changed manifest or wheel, another key, a downgrade not asked for, a
download cut short anywhere, a member the manifest does not name, a member that
climbs out of its directory, a member that is not a plain file."""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from pathlib import Path

import pytest

from releases import bundle, signing
from releases.bundle import Compatibility
from releases.errors import BundleRefusedError
from releases.manifest import CONSTRAINTS, BundleFile, Manifest

VERSION = "1.2.0"
WHEEL = f"legato-{VERSION}-py3-none-any.whl"
PINS = "numpy==2.0.0\n"


@pytest.fixture(scope="module")
def key() -> signing.ReleaseKey:
    return signing.ReleaseKey.generate()


@pytest.fixture
def made(tmp_path: Path, key: signing.ReleaseKey) -> Path:
    wheel = tmp_path / WHEEL
    wheel.write_bytes(random.Random(7).randbytes(300_000))
    out = tmp_path / bundle.bundle_name(VERSION)
    bundle.make(out, wheel, PINS, key, notes="test")
    return out


def refused(path: Path, public: bytes, compat: Compatibility | None = None) -> str:
    with pytest.raises(BundleRefusedError) as caught:
        bundle.verify(path, public, compat or Compatibility())
    return caught.value.reason


def members(path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(path, "r:") as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar]  # type: ignore[union-attr]


def write_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for info, body in entries:
            tar.addfile(info, io.BytesIO(body) if info.isreg() else None)
    return path


def regular(name: str, body: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(body)
    return info, body


def signed(key: signing.ReleaseKey, files: dict[str, bytes]) -> list[tuple[tarfile.TarInfo, bytes]]:
    """A manifest naming ``files`` exactly as given (names unchecked), signed by ``key``."""
    manifest = Manifest(
        version=VERSION,
        files=tuple(
            BundleFile(name, len(body), hashlib.sha256(body).hexdigest())
            for name, body in files.items()
        ),
        created_s=1,
        key_id=key.id,
    )
    data = manifest.to_json()
    return [regular(bundle.MANIFEST, data), regular(bundle.SIGNATURE, key.sign(data))]


def test_a_good_bundle_verifies_and_unpacks_exactly(
    made: Path, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    manifest = bundle.verify(made, key.public, Compatibility(installed="1.1.0"))
    assert manifest.version == VERSION
    assert {f.name for f in manifest.files} == {WHEEL, CONSTRAINTS}
    dest = tmp_path / "out"
    dest.mkdir()
    bundle.extract(made, key.public, Compatibility(), dest)
    assert (dest / CONSTRAINTS).read_text() == PINS
    assert (dest / WHEEL).read_bytes() == (tmp_path / WHEEL).read_bytes()


def test_a_changed_manifest_fails_its_signature(made: Path, key: signing.ReleaseKey) -> None:
    raw = bytearray(made.read_bytes())
    at = raw.index(b'"notes":"test"')
    raw[at + 9 : at + 13] = b"TEST"  # same length: only the signature can tell
    made.write_bytes(bytes(raw))
    assert refused(made, key.public) == "signature"


def test_a_changed_wheel_fails_its_hash(made: Path, key: signing.ReleaseKey) -> None:
    (wheel, _body), *_ = [(m, b) for m, b in members(made) if m.name == WHEEL]
    raw = bytearray(made.read_bytes())
    raw[wheel.offset_data + 1000] ^= 0x01
    made.write_bytes(bytes(raw))
    assert refused(made, key.public) == "hash"


def test_a_bundle_changed_after_it_was_verified_is_not_unpacked(
    made: Path, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    bundle.verify(made, key.public)
    wheel = next(m for m, _ in members(made) if m.name == WHEEL)
    raw = bytearray(made.read_bytes())
    raw[wheel.offset_data + wheel.size - 1] ^= 0xFF
    made.write_bytes(bytes(raw))
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(BundleRefusedError) as caught:
        bundle.extract(made, key.public, Compatibility(), dest)
    assert caught.value.reason == "hash"


def test_another_key_is_refused(made: Path) -> None:
    assert refused(made, signing.ReleaseKey.generate().public) == "signature"


def test_a_downgrade_or_the_same_release_only_when_asked(
    made: Path, key: signing.ReleaseKey
) -> None:
    assert refused(made, key.public, Compatibility(installed="1.3.0")) == "downgrade"
    assert refused(made, key.public, Compatibility(installed=VERSION)) == "installed"
    allowed = Compatibility(installed="1.3.0", allow_downgrade=True)
    assert bundle.verify(made, key.public, allowed).version == VERSION
    assert refused(made, key.public, Compatibility(python=(3, 10))) == "incompatible"


def test_a_download_cut_short_anywhere_is_refused(
    made: Path, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    """Every cut before the last file's last byte: refused (the tar's end-of-archive
    padding after it carries nothing)."""
    last = members(made)[-1][0]
    end = last.offset_data + last.size
    rng = random.Random(18)
    boundaries = {m.offset for m, _ in members(made)} | {m.offset_data for m, _ in members(made)}
    cuts = sorted({0, 1, 511, 512, end - 1} | boundaries | {rng.randrange(end) for _ in range(80)})
    raw = made.read_bytes()
    cut = tmp_path / "cut.legato"
    for n, size in enumerate(c for c in cuts if c < end):
        cut.write_bytes(raw[:size])
        assert refused(cut, key.public) in {"truncated", "format"}, size
        dest = tmp_path / f"out{n}"
        dest.mkdir()
        with pytest.raises(BundleRefusedError):
            bundle.extract(cut, key.public, Compatibility(), dest)


def test_a_member_the_manifest_does_not_name_is_refused(
    made: Path, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    entries = [*members(made), regular("extra.sh", b"#!/bin/sh\nrm -rf /\n")]
    assert refused(write_tar(tmp_path / "extra.legato", entries), key.public) == "format"
    twice = [*members(made), members(made)[2]]
    assert refused(write_tar(tmp_path / "twice.legato", twice), key.public) == "format"


def test_a_member_climbing_out_is_refused_and_nothing_lands_outside(
    key: signing.ReleaseKey, tmp_path: Path
) -> None:
    wheel, pins = b"wheel", PINS.encode()
    files = {WHEEL: wheel, CONSTRAINTS: pins}
    climbing = [
        *signed(key, files),
        regular(WHEEL, wheel),
        regular(CONSTRAINTS, pins),
        regular(f"../{WHEEL}", wheel),
    ]
    path = write_tar(tmp_path / "climb.legato", climbing)
    dest = tmp_path / "a" / "out"
    dest.mkdir(parents=True)
    with pytest.raises(BundleRefusedError) as caught:
        bundle.extract(path, key.public, Compatibility(), dest)
    assert caught.value.reason == "format"
    assert not (tmp_path / "a" / WHEEL).exists()
    # nor a manifest that names such a file, even when signed
    named = {f"../{WHEEL}": wheel, CONSTRAINTS: pins}
    entries = [*signed(key, named), regular(f"../{WHEEL}", wheel), regular(CONSTRAINTS, pins)]
    assert refused(write_tar(tmp_path / "named.legato", entries), key.public) == "format"


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE])
def test_a_member_that_is_not_a_plain_file_is_refused(
    kind: bytes, key: signing.ReleaseKey, tmp_path: Path
) -> None:
    wheel, pins = b"wheel", PINS.encode()
    odd = tarfile.TarInfo(WHEEL)
    odd.type = kind
    odd.linkname = "/etc/shadow"
    entries = [
        *signed(key, {WHEEL: wheel, CONSTRAINTS: pins}),
        (odd, b""),
        regular(CONSTRAINTS, pins),
    ]
    path = write_tar(tmp_path / "odd.legato", entries)
    assert refused(path, key.public) == "format"
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(BundleRefusedError):
        bundle.extract(path, key.public, Compatibility(), dest)
    assert not (dest / WHEEL).is_symlink()


def test_not_a_bundle_at_all(tmp_path: Path, key: signing.ReleaseKey) -> None:
    junk = tmp_path / "junk.legato"
    junk.write_bytes(b"\x1f\x8b" + bytes(2000))
    assert refused(junk, key.public) in {"truncated", "format"}
    empty = tmp_path / "empty.legato"
    empty.write_bytes(b"")
    assert refused(empty, key.public) in {"truncated", "format"}
