"""Real releases of this checkout, for the update tests and the bench: wheels built by
pip from a copy of the sources with another version (and, for the broken ones, a
source patch), bundles signed as the hub signs them, and slot layouts seeded as a
speaker's first boot leaves them.

A wheel costs about 1.5 s to build; each (version, patches) is built once per
session (``WheelShop``).  Versions are our own series (``OLD`` then newer ones), so
no test depends on the checkout's version.  A patch names the text it replaces and
fails loudly when that text is no longer there, so a refactoring cannot quietly
turn a broken release into a working one.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from releases import bundle, signing
from releases.manifest import WHEEL_NAME

if TYPE_CHECKING:
    from releases.guard import Layout

SOURCE_ROOT = Path(__file__).resolve().parent.parent
#: what goes into the wheel: pyproject names the readme; the packages
WHEEL_SOURCES = ("pyproject.toml", "README.md", "LICENSE")
PACKAGES = ("connect_protocol", "device", "hub", "offline_cache", "hardware", "releases")


@dataclass(frozen=True, slots=True)
class Patch:
    """Replace ``old`` (which must occur exactly once) by ``new`` in ``path``; with
    ``old`` empty, append ``new``."""

    path: str
    new: str
    old: str = ""

    def apply(self, root: Path) -> None:
        target = root / self.path
        text = target.read_text()
        if not self.old:
            target.write_text(text + self.new)
            return
        count = text.count(self.old)
        if count != 1:
            raise AssertionError(
                f"patch for {self.path} expects its text once, found it {count} times: "
                f"{self.old!r} (the source changed: update tests/release_fixtures.py)"
            )
        target.write_text(text.replace(self.old, self.new))


@dataclass(frozen=True, slots=True)
class Variant:
    """A release as a test wants it: its version, and what is wrong with it."""

    version: str
    patches: tuple[Patch, ...] = ()
    why: str = "works"


CRASH_AT_IMPORT = Patch(
    "device/__init__.py",
    '\nraise RuntimeError("this Legato release is broken: it fails at import")\n',
)
#: the release's own code sends the speaker to a broker port where nothing listens, so
#: the same config that works on the old release reaches no hub on this one
NEVER_REACHES_HUB = Patch(
    "device/config.py",
    old='broker_url=_get(hub, "hub", "broker", str, ""),',
    new='broker_url="mqtts://127.0.0.1:9",',
)
#: the release ships its self-check's sample tone cut short: it starts, but cannot decode
FAILS_SELF_CHECK = Patch(
    "device/updates/self_check.py",
    old='return resources.files("device.updates").joinpath(SAMPLE).read_bytes()',
    new='return resources.files("device.updates").joinpath(SAMPLE).read_bytes()[:600]',
)

OLD = Variant("5.0.0")
GOOD = Variant("5.0.1")
CRASHES = Variant("5.1.1", (CRASH_AT_IMPORT,), "crashes at import")
UNREACHABLE = Variant("5.1.2", (NEVER_REACHES_HUB,), "never reaches the hub")
SELF_CHECK_FAILS = Variant("5.1.3", (FAILS_SELF_CHECK,), "fails its self-check")
FLEET_BROKEN = Variant("5.2.0", (CRASH_AT_IMPORT,), "crashes at import (fleet)")


def wheel_sources(root: Path = SOURCE_ROOT) -> list[str]:
    """The checkout's files that go into a wheel, tracked or new (not ignored)."""
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    names = [n for n in out.split("\0") if n]
    return sorted(
        n
        for n in names
        if (n in WHEEL_SOURCES or n.split("/", 1)[0] in PACKAGES) and (root / n).is_file()
    )


def set_version(pyproject: Path, version: str) -> None:
    text = pyproject.read_text()
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith("version = ")]
    if len(hits) != 1:
        raise AssertionError(f"{pyproject} has no single 'version = ' line to bump")
    lines[hits[0]] = f'version = "{version}"\n'
    pyproject.write_text("".join(lines))


class WheelShop:
    """Builds wheels of this checkout under ``workdir``, each (version, patches) once."""

    def __init__(self, workdir: Path, source_root: Path = SOURCE_ROOT) -> None:
        self.workdir = workdir
        self.source_root = source_root
        self._built: dict[Variant, Path] = {}
        self._lock = threading.Lock()

    def wheel(self, variant: Variant) -> Path:
        with self._lock:
            found = self._built.get(variant)
            if found is None:
                found = self._build(variant)
                self._built[variant] = found
            return found

    def _build(self, variant: Variant) -> Path:
        key = hashlib.sha256(repr(variant).encode()).hexdigest()[:12]
        src, out = self.workdir / f"src-{key}", self.workdir / f"wheel-{key}"
        shutil.rmtree(src, ignore_errors=True)
        for name in wheel_sources(self.source_root):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.source_root / name, src / name)
        set_version(src / "pyproject.toml", variant.version)
        for patch in variant.patches:
            patch.apply(src)
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"),
                *("--no-build-isolation", "--disable-pip-version-check", "-w", str(out), str(src)),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        shutil.rmtree(src, ignore_errors=True)
        (wheel,) = out.glob(f"legato-{variant.version}-*.whl")
        return wheel


# --- the speaker's dependencies, and seeded slots -----------------------------------


def speaker_constraints() -> str:
    """The pins of ``legato[speaker]`` as installed here: what a bundle carries, and
    what every seeded slot holds, so an installer finds the dependencies unchanged."""
    from releases.pins import constraints

    return constraints()


def pinned_distributions(constraints: str) -> list[str]:
    """The distributions in the speaker's pins, and pip (the installer runs it)."""
    return [line.split("==", 1)[0] for line in constraints.splitlines() if "==" in line] + ["pip"]


def link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def speaker_site_packages(dest: Path, constraints: str) -> Path:
    """A site-packages holding only the speaker's pinned distributions, hard-linked from
    this environment: the tree each seeded slot is linked from."""
    if (dest / ".complete").exists():
        return dest
    for name in pinned_distributions(constraints):
        dist = importlib.metadata.distribution(name)
        for file in dist.files or ():
            if file.parts and file.parts[0] == "..":
                continue  # scripts in bin/: a slot runs `python -m`
            src = Path(str(dist.locate_file(file)))
            if src.is_file() and "__pycache__" not in file.parts:
                link_or_copy(src, dest / file)
    (dest / ".complete").touch()
    return dest


def base_python() -> str:
    """The interpreter a slot's virtual environment is made from (not this venv's)."""
    return str(getattr(sys, "_base_executable", sys.executable))


def slot_site_packages(slot: Path) -> Path:
    return slot / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def seed_slots(root: Path, state: Path, wheel: Path, site: Path, constraints: str) -> str:
    """A slot layout at ``root`` as a speaker's first boot leaves it: one complete
    release (``wheel`` installed over the dependencies in ``site``), ``current`` naming
    it, the guard beside them, an empty state dir.  Made by the installer's own
    ``releases.slot.seed`` (pip, the engine's C library, byte code).  Returns the
    version."""
    from releases import slot
    from releases.guard import Layout

    found = WHEEL_NAME.fullmatch(wheel.name)
    assert found is not None, wheel
    version = found["version"]
    state.mkdir(parents=True, exist_ok=True)
    slot.seed(Layout(root, state), version, site, wheel, constraints=constraints)
    return version


class SlotTemplate:
    """One seeded layout per (wheel, site), copied for each speaker with hard links:
    seeding costs seconds (pip, a C compiler, byte code), a copy a fraction of one."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._made: dict[tuple[Path, Path], Path] = {}
        self._lock = threading.Lock()

    def copy(self, root: Path, state: Path, wheel: Path, site: Path, constraints: str) -> str:
        with self._lock:
            template = self._made.get((wheel, site))
            if template is None:
                template = self.workdir / f"template-{len(self._made)}"
                seed_slots(template / "opt", template / "state", wheel, site, constraints)
                self._made[(wheel, site)] = template
        copy_layout(template / "opt", root)
        state.mkdir(parents=True, exist_ok=True)
        return os.readlink(root / "current").rsplit("/", 1)[-1]


def copy_layout(source: Path, dest: Path) -> None:
    """``source``'s slots at ``dest``: files hard-linked, links kept, and the paths a
    virtual environment holds of itself (``pyvenv.cfg``, ``bin/`` scripts) rewritten;
    a rewritten file is a new file, so the template is never changed through a link."""
    for here, dirs, names in os.walk(source):
        rel = Path(here).relative_to(source)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in [*names, *(d for d in dirs if (Path(here) / d).is_symlink())]:
            src, dst = Path(here) / name, dest / rel / name
            if src.is_symlink():
                dst.symlink_to(os.readlink(src))
            else:
                os.link(src, dst)
        dirs[:] = [d for d in dirs if not (Path(here) / d).is_symlink()]
    old, new = str(source).encode(), str(dest).encode()
    for venv_file in [*dest.glob("releases/*/pyvenv.cfg"), *dest.glob("releases/*/bin/*")]:
        if venv_file.is_symlink() or not venv_file.is_file():
            continue
        data = venv_file.read_bytes()
        if old in data:
            mode = venv_file.stat().st_mode & 0o7777
            venv_file.unlink()
            venv_file.write_bytes(data.replace(old, new))
            venv_file.chmod(mode)


def bundle_constraints_name() -> str:
    from releases.manifest import CONSTRAINTS

    return CONSTRAINTS


# --- bundles, good and bad ---------------------------------------------------------


def make_bundle(out_dir: Path, wheel: Path, key: signing.ReleaseKey, constraints: str) -> Path:
    """The bundle the hub would make of ``wheel`` with ``key``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    found = WHEEL_NAME.fullmatch(wheel.name)
    assert found is not None, wheel
    out = out_dir / bundle.bundle_name(found["version"])
    bundle.make(out, wheel, constraints, key)
    return out


def member_offset(path: Path, name_suffix: str) -> tuple[int, int]:
    """Where a member's data starts in the bundle, and its size."""
    with tarfile.open(path, "r:") as tar:
        for member in tar.getmembers():
            if member.name.endswith(name_suffix):
                return member.offset_data, member.size
    raise AssertionError(f"{path} has no member ending in {name_suffix}")


def tampered_wheel(src: Path, dst: Path) -> Path:
    """The bundle with one byte of its wheel changed (the manifest still signed)."""
    data = bytearray(src.read_bytes())
    start, size = member_offset(src, ".whl")
    data[start + size // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    return dst


def tampered_manifest(src: Path, dst: Path) -> Path:
    """The bundle with one byte of its signed manifest changed."""
    data = bytearray(src.read_bytes())
    start, size = member_offset(src, bundle.MANIFEST)
    text = bytes(data[start : start + size])
    at = text.index(b'"version"')
    data[start + at + 1] = ord("V")  # still JSON-shaped, no longer what was signed
    dst.write_bytes(bytes(data))
    return dst


def truncated(src: Path, dst: Path, keep_fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep_fraction)])
    return dst


# --- pytest fixtures (registered in conftest.py) -------------------------------------


@pytest.fixture(scope="session")
def release_shop(tmp_path_factory: pytest.TempPathFactory) -> WheelShop:
    """Wheels of this checkout, each (version, patches) built once per session."""
    return WheelShop(tmp_path_factory.mktemp("release-wheels"))


@pytest.fixture(scope="session")
def speaker_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The speaker's pinned dependencies as one site-packages tree, hard-linked."""
    return speaker_site_packages(tmp_path_factory.mktemp("speaker-site"), speaker_constraints())


@pytest.fixture(scope="session")
def slot_templates(tmp_path_factory: pytest.TempPathFactory) -> SlotTemplate:
    """Seeded layouts, each made once per session and copied per test."""
    return SlotTemplate(tmp_path_factory.mktemp("slot-templates"))


@pytest.fixture
def slot_layout(
    tmp_path: Path, release_shop: WheelShop, speaker_site: Path, slot_templates: SlotTemplate
) -> Layout:
    """A slot layout in ``tmp_path`` with ``OLD`` installed and current."""
    from releases.guard import Layout

    layout = Layout(tmp_path / "opt", tmp_path / "state")
    wheel, pins = release_shop.wheel(OLD), speaker_constraints()
    slot_templates.copy(layout.root, layout.state, wheel, speaker_site, pins)
    return layout


# --- the installer's tests' view: a key, pins, three releases, bundles ------------------

BASE, NEW, BROKEN = "0.1.0", "0.2.0", "0.3.0"


@dataclass(frozen=True)
class Releases:
    """What a session builds once: the key, the pins, wheels and bundles."""

    key: signing.ReleaseKey
    pins: str
    site: Path  # the speaker's distributions, linked from the test environment
    wheels: dict[str, Path]
    bundles: dict[str, Path]


def build_releases(work: Path) -> Releases:
    """BASE, NEW and BROKEN (``import device`` raises) as wheels and signed bundles."""
    key = signing.ReleaseKey.generate()
    pins = speaker_constraints()
    shop = WheelShop(work / "wheels")
    variants = {
        BASE: Variant(BASE),
        NEW: Variant(NEW),
        BROKEN: Variant(BROKEN, (CRASH_AT_IMPORT,), "crashes at import"),
    }
    wheels = {version: shop.wheel(variant) for version, variant in variants.items()}
    bundles = {v: make_bundle(work / "bundles", w, key, pins) for v, w in wheels.items()}
    site = speaker_site_packages(work / "site-packages", pins)
    return Releases(key, pins, site, wheels, bundles)


def seeded_layout(base: Path, releases: Releases) -> Layout:
    """A slot layout under ``base`` running release BASE, as first boot leaves it."""
    from releases.guard import Layout

    layout = Layout(base / "opt", base / "state")
    layout.state.mkdir(parents=True)
    seed_slots(layout.root, layout.state, releases.wheels[BASE], releases.site, releases.pins)
    return layout


def slot_env() -> dict[str, str]:
    """The environment for a slot's processes: nothing pointing at this checkout, so
    what runs is what the slot holds."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_config(path: Path, releases: Releases, layout: Layout) -> Path:
    """A speaker config whose [updates] pins the session's release key."""
    path.write_text(
        "[updates]\n"
        f'release_key = "{releases.key.public_text}"\n'
        f'root = "{layout.root}"\n'
        f'state_dir = "{layout.state}"\n'
    )
    return path
