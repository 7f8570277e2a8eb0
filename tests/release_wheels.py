"""Real Legato wheels for release tests: this checkout built once (``pip wheel``),
and copies of it at other versions (the dist-info renamed, METADATA's version and
RECORD's hashes rewritten, as a build of that version would have them)."""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

from tests.release_fixtures import Variant, WheelShop

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out: Path) -> Path:
    """This checkout as a wheel in ``out`` (no dependencies, no network), built from a
    copy of its sources so the checkout gains no build/ directory."""
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return WheelShop(out).wheel(Variant(version))


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def wheel_at(source: Path, version: str, out: Path) -> Path:
    """``source`` re-versioned as ``version``, written into the folder ``out``."""
    old = source.name.split("-")[1]
    old_info, new_info = f"legato-{old}.dist-info/", f"legato-{version}.dist-info/"
    target = out / f"legato-{version}-py3-none-any.whl"
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        records = []
        for item in src.infolist():
            name = item.filename.replace(old_info, new_info, 1)
            data = src.read(item)
            if name == f"{new_info}RECORD":
                continue
            if name == f"{new_info}METADATA":
                data = data.replace(
                    f"\nVersion: {old}\n".encode(), f"\nVersion: {version}\n".encode()
                )
            dst.writestr(name, data)
            records.append(f"{name},{_record_hash(data)},{len(data)}")
        records.append(f"{new_info}RECORD,,")
        dst.writestr(f"{new_info}RECORD", "\n".join(records) + "\n")
    return target
