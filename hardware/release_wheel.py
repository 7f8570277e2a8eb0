"""The Legato a flashed speaker installs: a wheel of the flasher's own Legato and the
versions its environment pins.

The wheel is ``--wheel FILE`` when given; otherwise, from a source checkout, it is
built once (``pip wheel``, no network) and kept in the user's cache under a digest
of the sources, so flashing again costs nothing.  The constraints pin every
distribution installed next to the flasher (``releases.pins``, shared with the hub's release
bundles): the speaker gets the versions this release was tested with.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from hardware.errors import FlashError

SOURCE_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("connect_protocol", "device", "hub", "offline_cache", "hardware", "releases")


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "legato" / "wheels"


def source_digest(root: Path = SOURCE_ROOT) -> str:
    """A digest of what goes into the wheel: pyproject and the packages' files."""
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".so":
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def legato_wheel(explicit: Path | None) -> Path:
    if explicit is not None:
        if not explicit.is_file() or not explicit.name.startswith("legato-"):
            raise FlashError(f"--wheel {explicit} is not a Legato wheel (legato-VERSION-….whl)")
        return explicit
    if not (SOURCE_ROOT / "pyproject.toml").exists():
        raise FlashError(
            "this Legato is not a source checkout, so it cannot build the wheel a speaker "
            "installs: pass --wheel legato-VERSION-py3-none-any.whl"
        )
    out = _cache_dir() / source_digest()
    found = sorted(out.glob("legato-*.whl"))
    if found:
        return found[-1]
    print("building the Legato wheel the speaker installs (once per version)…", file=sys.stderr)
    # Without build isolation first (no network); with it if the local setuptools
    # cannot build wheels by itself.
    for isolation in (["--no-build-isolation"], []):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                *isolation,
                "--quiet",
                "-w",
                str(out),
                str(SOURCE_ROOT),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode == 0:
            break
    found = sorted(out.glob("legato-*.whl"))
    if done.returncode != 0 or not found:
        raise FlashError(f"building the Legato wheel failed: {done.stderr.strip()[-500:]}")
    return found[-1]
