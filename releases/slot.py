"""Building a release slot: a virtual environment made at a staging path
(``releases/.new-<version>-<pid>``), filled, compiled, marked complete and only then
renamed to ``releases/<version>``, so a slot under a version's name is always whole.

The dependencies come, when the running release was installed with the same pinned
list, from its own site-packages as hard links (no download, almost no disk), with
only Legato's own files left out; otherwise from the package index under the
bundle's constraints.
"""

from __future__ import annotations

import csv
import errno
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from releases import guard, native
from releases.errors import InstallError

#: Legato's own top-level packages: never carried from one slot to the next
PACKAGES = ("connect_protocol", "device", "hub", "offline_cache", "hardware", "releases")
#: each slot keeps the pinned dependency list it was installed with
CONSTRAINTS_COPY = "constraints.txt"
#: pip learnt ``--python`` (install into another environment) in 22.3
PIP_PYTHON_OPTION = (22, 3)
PIP_FLAGS = ("--no-input", "--disable-pip-version-check", "--no-warn-script-location")
#: what an install from the package index adds: wheels only (no ``setup.py`` of an
#: sdist, nor its unpinned build dependencies, runs as root) and no pip configuration;
#: except pyalsaaudio, which publishes no wheel and is built on the Pi from its pinned
#: source (first boot installs the compiler for it)
BUILT_HERE = ("pyalsaaudio",)
INDEX_FLAGS = ("--isolated", "--only-binary=:all:", *(f"--no-binary={n}" for n in BUILT_HERE))
MAX_REWRITE_BYTES = 1 << 20

#: a long step's progress: its label and the share of the whole install done (0..1)
Progress = Callable[[str, float], None]


def quiet(step: str, share: float) -> None:
    """The progress callback that shows nothing."""


def base_python() -> str:
    """The interpreter new slots are made from: the system's, even when this runs
    inside a slot's virtual environment (whose python is only a link to it)."""
    return getattr(sys, "_base_executable", "") or sys.executable


def site_packages(env: Path) -> Path:
    found = sorted(env.glob("lib/python3*/site-packages"))
    if not found:
        raise InstallError(f"{env} is not a Python environment (no site-packages)")
    return found[0]


def clean_env() -> dict[str, str]:
    """The environment for a slot's processes: nothing of the caller's own Python path
    (a checkout on PYTHONPATH would pass for an installed Legato, and pip would skip it),
    and no pip configuration (root's ``PIP_*`` or ``/etc/pip.conf`` could add an index,
    or allow a source build, to an install that runs as root)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # pip then reads no configuration file at all
    return env


def run(args: list[str], what: str, timeout_s: float = 1800.0) -> None:
    """A step in a subprocess, in ``/`` (``python -m`` imports from the working directory
    first); ``InstallError`` with the end of its output if it fails."""
    try:
        done = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            cwd="/",
            env=clean_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InstallError(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip())[-800:]
        raise InstallError(f"{what} failed (status {done.returncode}): {tail}")


def make_venv(staging: Path, version: str) -> None:
    """An empty environment (pip comes with the dependencies, or from ensurepip)."""
    args = [base_python(), "-m", "venv", "--without-pip", "--prompt", f"legato-{version}"]
    run([*args, str(staging)], "making the environment")


@dataclass(frozen=True, slots=True)
class Owned:
    """What of a site-packages belongs to Legato: whole top-level entries, and the files
    its RECORD lists elsewhere (an editable install's finder, say)."""

    top: frozenset[str]
    files: frozenset[str]


def legato_owned(site: Path) -> Owned:
    top = set(PACKAGES)
    files: set[str] = set()
    for info in site.glob("legato-*.dist-info"):
        top.add(info.name)
        top.update(_lines(info / "top_level.txt"))
        for row in csv.reader(_lines(info / "RECORD")):
            if not row or not row[0]:
                continue
            parts = PurePosixPath(row[0]).parts
            if parts and parts[0] != ".." and not PurePosixPath(row[0]).is_absolute():
                files.add(PurePosixPath(*parts).as_posix())
    return Owned(frozenset(t for t in top if t and "/" not in t), frozenset(files))


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return []


def link_tree(source: Path, dest: Path, skip: Owned) -> int:
    """Hard-link every file of ``source`` into ``dest`` but what ``skip`` names, copying
    instead across filesystems; the number of files."""
    count = 0
    copy = False
    dest.mkdir(parents=True, exist_ok=True)
    for here, dirs, names in os.walk(source):
        rel = Path(here).relative_to(source)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in skip.top]
            names = [n for n in names if n not in skip.top]
        (dest / rel).mkdir(exist_ok=True)
        for name in names:
            if (rel / name).as_posix() in skip.files:
                continue
            src, dst = Path(here) / name, dest / rel / name
            if src.is_symlink():
                dst.symlink_to(os.readlink(src))
            elif copy:
                shutil.copy2(src, dst)
            else:
                try:
                    os.link(src, dst)
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                        raise
                    copy = True
                    shutil.copy2(src, dst)
            count += 1
        for name in dirs:
            if (Path(here) / name).is_symlink():  # os.walk lists, never follows, these
                (dest / rel / name).symlink_to(os.readlink(Path(here) / name))
        dirs[:] = [d for d in dirs if not (Path(here) / d).is_symlink()]
    return count


def running_pip() -> tuple[int, int] | None:
    """The version of the pip beside this interpreter, if there is one."""
    try:
        text = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return None
    numbers = [int(n) for n in re.findall(r"[0-9]+", text)[:2]]
    return (numbers[0], numbers[1]) if len(numbers) == 2 else None


def has_pip(env: Path) -> bool:
    return (site_packages(env) / "pip").is_dir()


def ensure_pip(env: Path) -> None:
    """A pip of its own in ``env``: the next install runs from this slot."""
    if not has_pip(env):
        run([str(env / "bin" / "python"), "-m", "ensurepip"], "installing pip into the slot")


def pip_command(env: Path) -> list[str]:
    """The pip that installs into ``env``: the running environment's with ``--python``
    where it has that option, else ``env``'s own."""
    version = running_pip()
    if version is not None and version >= PIP_PYTHON_OPTION:
        return [sys.executable, "-m", "pip", "--python", str(env / "bin" / "python")]
    ensure_pip(env)
    return [str(env / "bin" / "python"), "-m", "pip"]


def install_wheel(env: Path, wheel: Path) -> None:
    """Legato alone: its dependencies are in place already."""
    pip = pip_command(env)
    run([*pip, "install", *PIP_FLAGS, "--no-deps", "--no-compile", str(wheel)], "installing Legato")


def index_install_args(
    pip: list[str], wheel: Path, constraints: Path, cache: Path, wheelhouse: Path | None
) -> list[str]:
    """The pip command that installs Legato for a speaker with its dependencies at the
    signed pins: wheels only, pip's configuration ignored.  The dependencies' own
    bytes are whatever the index serves for those versions (the index is trusted for
    them: the pins carry no hashes yet)."""
    args = [*pip, "install", *INDEX_FLAGS, *PIP_FLAGS, "--no-compile", "--cache-dir", str(cache)]
    if wheelhouse is not None and wheelhouse.is_dir():
        args += ["--find-links", str(wheelhouse)]
    return [*args, "-c", str(constraints), f"{wheel}[speaker]"]


def install_from_index(
    env: Path, wheel: Path, constraints: Path, cache: Path, wheelhouse: Path | None
) -> None:
    """Legato for a speaker and its dependencies at the pinned versions, from the index
    (and a local wheelhouse, when there is one)."""
    args = index_install_args(pip_command(env), wheel, constraints, cache, wheelhouse)
    run(args, "installing the dependencies")
    ensure_pip(env)


def compile_tree(env: Path, final: Path, paths: Iterable[Path]) -> None:
    """Byte-code compiled now, under the slot's final path (so tracebacks find the
    source): the speaker cannot write into its slot later.  A module that does not
    compile is not an install failure: Python then reads its source."""
    targets = [str(p) for p in paths if p.exists()]
    if not targets:
        return
    args = [str(env / "bin" / "python"), "-m", "compileall", "-q", "-j", "0"]
    args += ["-s", str(env), "-p", str(final), *targets]
    subprocess.run(args, capture_output=True, timeout=1800, check=False, cwd="/", env=clean_env())


def rewrite_paths(env: Path, final: Path) -> None:
    """Scripts made in ``bin/`` name the staging path in their ``#!`` line (and the
    activate scripts and pyvenv.cfg name it too): point them at the final slot."""
    old, new = str(env).encode(), str(final).encode()
    candidates = [p for p in (env / "bin").iterdir() if not p.is_symlink()]
    for path in [*candidates, env / "pyvenv.cfg"]:
        if not path.is_file() or path.stat().st_size > MAX_REWRITE_BYTES:
            continue
        data = path.read_bytes()
        if old not in data:
            continue
        staged = path.with_name(f".{path.name}.new")
        staged.write_bytes(data.replace(old, new))
        os.chmod(staged, path.stat().st_mode & 0o7777)
        os.replace(staged, path)


def finish(layout: guard.Layout, staging: Path, version: str) -> Path:
    """Everything on disk, the marker written, then the one rename that makes the slot
    exist under its version (a leftover of that name, never the current one, goes
    first)."""
    final = layout.slot(version)
    if version == layout.current():
        raise InstallError(f"release {version} is the running one; it is not replaced")
    os.sync()
    fd = os.open(staging / guard.COMPLETE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    guard.fsync_dir(staging)
    if final.exists() or final.is_symlink():
        layout.remove(version)
        if final.exists():
            shutil.rmtree(final)
    os.rename(staging, final)
    guard.fsync_dir(layout.releases)
    return final


def seed(
    layout: guard.Layout,
    version: str,
    site_packages_source: Path,
    wheel: Path | None,
    *,
    constraints: str | None = None,
) -> Path:
    """A complete slot for ``version`` made from an existing environment's
    ``site_packages_source`` (hard links), with ``wheel`` installed over it when given
    (the source's own Legato left out then); ``current`` and ``<root>/guard.py`` made
    when missing.  For an environment made some other way (a hand install from before
    slots: ``python -c "from releases import slot, guard; ..."`` as root), and for tests;
    first boot, which imports nothing of Legato, makes its slot itself."""
    final = layout.slot(version)
    with layout.staging(version) as staging:
        make_venv(staging, version)
        skip = legato_owned(site_packages_source) if wheel else Owned(frozenset(), frozenset())
        link_tree(site_packages_source, site_packages(staging), skip)
        if wheel is not None:
            install_wheel(staging, wheel)
        if constraints is not None:
            (staging / CONSTRAINTS_COPY).write_text(constraints)
        native.build(staging)
        owned = legato_owned(site_packages(staging)).top
        compile_tree(staging, final, [site_packages(staging) / name for name in sorted(owned)])
        rewrite_paths(staging, final)
        with layout.locked():
            finish(layout, staging, version)
            if layout.current() is None:
                layout.switch(version)
    place_guard(layout, version)
    return final


def place_guard(layout: guard.Layout, version: str) -> None:
    """``<root>/guard.py`` from the slot's own copy, when there is none yet."""
    ours = layout.root / "guard.py"
    if ours.exists():
        return
    found = sorted(layout.slot(version).glob("lib/python3*/site-packages/releases/guard.py"))
    source = found[0] if found else Path(guard.__file__)
    guard.write_atomic(ours, source.read_text(), 0o755)
