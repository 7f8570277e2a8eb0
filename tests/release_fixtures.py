"""Real releases for the installer's tests: wheels of this checkout under other
versions (one whose ``device`` package cannot even be imported), signed bundles of
them, and slot layouts seeded from the test environment's own site-packages.

Only the distributions ``legato[speaker]`` needs (its requirement closure, the same
list a flashed speaker is pinned to) and pip are linked into a seeded slot, so a
slot holds what a speaker's holds, not the hub's or the tests' libraries.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from releases import bundle, guard, signing, slot
from releases.pins import constraints

ROOT = Path(__file__).resolve().parent.parent
BASE, NEW, BROKEN = "0.1.0", "0.2.0", "0.3.0"
BROKEN_LINE = 'raise RuntimeError("this release cannot start")\n'


def tracked_source(dest: Path) -> Path:
    """A copy of the checkout's tracked files (``git ls-files``): what a release is
    built from, without this worktree's build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


def build_wheel(source: Path, out: Path, version: str, *, broken: bool = False) -> Path:
    """The checkout's wheel as release ``version``; ``broken``: ``import device`` raises."""
    pyproject = source / "pyproject.toml"
    text = re.sub(r'(?m)^version = "[^"]*"', f'version = "{version}"', pyproject.read_text())
    pyproject.write_text(text)
    init = source / "device" / "__init__.py"
    original = init.read_text().replace(BROKEN_LINE, "")
    init.write_text(original + BROKEN_LINE if broken else original)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(source),
        ],
        cwd=source,
        capture_output=True,
        check=True,
        timeout=300,
    )
    shutil.rmtree(source / "build", ignore_errors=True)
    return out / f"legato-{version}-py3-none-any.whl"


def speaker_distributions(pins: str) -> list[str]:
    """The distributions in the speaker's pins, and pip (the installer runs it)."""
    names = [line.split("==")[0] for line in pins.splitlines() if "==" in line]
    return [*names, "pip"]


def speaker_site(dest: Path, names: list[str]) -> Path:
    """A site-packages of hard links to those distributions' files, as installed here."""
    for name in names:
        dist = importlib.metadata.distribution(name)
        base = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files or ():
            source = Path(str(dist.locate_file(file))).resolve()
            if not source.is_relative_to(base) or not source.is_file():
                continue  # scripts in bin/, files pip listed but did not keep
            target = dest / source.relative_to(base)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
    return dest


@dataclass(frozen=True)
class Releases:
    """What a session builds once: the key, the pins, wheels and bundles."""

    key: signing.ReleaseKey
    pins: str
    site: Path  # the speaker's distributions, linked from the test environment
    wheels: dict[str, Path]
    bundles: dict[str, Path]


def build_releases(work: Path) -> Releases:
    key = signing.ReleaseKey.generate()
    pins = constraints()
    source = tracked_source(work / "src")
    wheels = {
        BASE: build_wheel(source, work / "wheels", BASE),
        NEW: build_wheel(source, work / "wheels", NEW),
        BROKEN: build_wheel(source, work / "wheels", BROKEN, broken=True),
    }
    bundles = {}
    for version, wheel in wheels.items():
        out = work / "bundles" / bundle.bundle_name(version)
        out.parent.mkdir(parents=True, exist_ok=True)
        bundle.make(out, wheel, pins, key)
        bundles[version] = out
    site = speaker_site(work / "site-packages", speaker_distributions(pins))
    return Releases(key, pins, site, wheels, bundles)


def seeded_layout(base: Path, releases: Releases) -> guard.Layout:
    """A slot layout under ``base`` running release BASE, as first boot leaves it."""
    layout = guard.Layout(base / "opt", base / "state")
    layout.state.mkdir(parents=True)
    slot.seed(layout, BASE, releases.site, releases.wheels[BASE], constraints=releases.pins)
    return layout


def slot_env() -> dict[str, str]:
    """The environment for a slot's processes: nothing pointing at this checkout, so
    what runs is what the slot holds."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_config(path: Path, releases: Releases, layout: guard.Layout) -> Path:
    """A speaker config whose [updates] pins the session's release key."""
    path.write_text(
        "[updates]\n"
        f'release_key = "{releases.key.public_text}"\n'
        f'root = "{layout.root}"\n'
        f'state_dir = "{layout.state}"\n'
    )
    return path
