"""The installer with real releases: wheels of this checkout under other versions,
signed, installed into a slot layout seeded from the test environment, run from its
slots.  A bumped release installs into a new slot and starts in trial; a bundle that
is refused or fails to install changes nothing; ``legato-speaker update`` says which
with its exit status; the install request the speaker leaves is served; the
installer killed (with everything it started, as a power cut would) at 200 random
points never leaves ``current`` on a half-written slot; and a release that crashes
at import is rolled back by the supervisor and the guard by itself.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from releases import bundle, guard, install, signing, slot
from releases.errors import BundleRefusedError, InstallError
from releases.guard import MAX_TRIAL_STARTS, Slots
from tests.release_fixtures import (
    BASE,
    BROKEN,
    NEW,
    Releases,
    build_releases,
    seeded_layout,
    slot_env,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

# 200 by default; CI's smoke run (.ci/run) sets fewer to stay inside its time limit
CUTS = int(os.environ.get("LEGATO_POWER_CUTS", "200"))
LANES = 2  # the cuts run in two independent layouts at once (two cores)
IMPORT_CHECK_EVERY = 8


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    return build_releases(tmp_path_factory.mktemp("releases"))


@pytest.fixture
def layout(tmp_path: Path, releases: Releases) -> guard.Layout:
    return seeded_layout(tmp_path / "speaker", releases)


def python_of(layout: guard.Layout, version: str | None = None) -> Path:
    return layout.slot(version or layout.current() or "") / "bin" / "python"


def release_of(layout: guard.Layout) -> str:
    """The version the current slot's Python imports: what it would run."""
    done = subprocess.run(
        [
            str(layout.current_link / "bin" / "python"),
            "-c",
            "import device.config, releases; print(device.config.FIRMWARE_VERSION)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=slot_env(),
        cwd="/",  # not this checkout: `python -m` imports from the working directory
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def staging_left(layout: guard.Layout) -> list[str]:
    return [p.name for p in layout.releases.iterdir() if p.name.startswith(guard.STAGING_PREFIX)]


def test_a_bumped_release_installs_into_a_new_slot_in_trial(
    layout: guard.Layout, releases: Releases
) -> None:
    steps: list[tuple[str, float]] = []
    manifest = install.install(
        releases.bundles[NEW],
        releases.key.public,
        layout,
        progress=lambda step, share: steps.append((step, share)),
    )
    assert manifest.version == NEW
    assert layout.current() == NEW
    assert layout.complete() == (NEW, BASE)
    slots = layout.load()
    assert slots.previous == BASE
    assert slots.trial is not None
    assert slots.trial.version == NEW
    assert slots.trial.starts == 0
    assert release_of(layout) == NEW
    assert staging_left(layout) == []
    # the dependencies are the running slot's, linked; Legato's own files are new
    new_site, old_site = slot.site_packages(layout.slot(NEW)), slot.site_packages(layout.slot(BASE))
    numpy_init = Path("numpy") / "__init__.py"
    assert (new_site / numpy_init).stat().st_ino == (old_site / numpy_init).stat().st_ino
    ours = Path("device") / "__init__.py"
    assert (new_site / ours).stat().st_ino != (old_site / ours).stat().st_ino
    assert (layout.slot(NEW) / slot.CONSTRAINTS_COPY).read_text() == releases.pins
    # scripts name the slot itself, not the staging directory it was built in
    # (pip writes a /bin/sh trampoline instead of a #! line for a path this long)
    script = (layout.slot(NEW) / "bin" / "legato-speaker").read_text()
    assert f"{layout.slot(NEW)}/bin/python" in script.split("import", 1)[0]
    assert guard.STAGING_PREFIX not in script
    assert next(s for s, _ in steps) == "verifying"
    assert steps[-1] == ("installed", 1.0)
    assert [share for _, share in steps] == sorted(share for _, share in steps)
    # the guard starts it (start 1 of its trial)
    assert guard.prepare(layout) == NEW
    assert layout.load().trial.starts == 1  # type: ignore[union-attr]


def test_a_refused_or_failed_install_changes_nothing(
    layout: guard.Layout, releases: Releases, tmp_path: Path
) -> None:
    def tree() -> list[str]:
        paths = (p.relative_to(layout.root).as_posix() for p in layout.root.rglob("*"))
        # root's pip cache (made by an install from the index) is no change to the slots
        kept = (install.LOCK, ".lock", "cache", install.PIP_CACHE)
        return sorted(p for p in paths if p not in kept)

    before = tree()
    tampered = tmp_path / "tampered.legato"
    raw = bytearray(releases.bundles[NEW].read_bytes())
    with tarfile.open(releases.bundles[NEW]) as tar:
        wheel = next(m for m in tar if m.name.endswith(".whl"))
    raw[wheel.offset_data + wheel.size // 2] ^= 0x01
    tampered.write_bytes(bytes(raw))
    other_key = signing.ReleaseKey.generate().public
    cases = [
        (tampered, releases.key.public, "hash"),
        (releases.bundles[NEW], other_key, "signature"),
        (releases.bundles[BASE], releases.key.public, "installed"),
    ]
    for path, key, reason in cases:
        with pytest.raises(BundleRefusedError) as caught:
            install.install(path, key, layout)
        assert caught.value.reason == reason
    # a signed bundle whose wheel pip cannot install: refused by pip, cleaned up (its
    # requirements cannot be read, so it is not given the running slot's packages)
    junk_wheel = tmp_path / "legato-9.0.0-py3-none-any.whl"
    junk_wheel.write_bytes(b"not a zip")
    junk = tmp_path / "junk.legato"
    bundle.make(junk, junk_wheel, releases.pins, releases.key)
    with pytest.raises(InstallError, match=r"installing the dependencies failed.*is invalid"):
        install.install(junk, releases.key.public, layout)
    assert layout.current() == BASE
    assert tree() == before
    assert release_of(layout) == BASE


def update(layout: guard.Layout, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``legato-speaker update`` as a maker runs it, from the current slot."""
    return subprocess.run(
        [
            str(layout.current_link / "bin" / "legato-speaker"),
            "update",
            "--config",
            str(config),
            *list(args),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=slot_env(),
        cwd="/",  # not this checkout: `python -m` imports from the working directory
    )


def test_legato_speaker_update_from_a_file(
    layout: guard.Layout, releases: Releases, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "speaker.toml", releases, layout)
    checked = update(layout, config, "--check", "--bundle", str(releases.bundles[NEW]))
    assert checked.returncode == 0, checked.stderr
    assert f"Legato {NEW}" in checked.stdout
    assert BASE in checked.stdout
    assert layout.current() == BASE
    assert staging_left(layout) == []
    missing = update(layout, config, "--bundle", str(tmp_path / "nope.legato"))
    assert missing.returncode == 2
    assert "nope.legato is not a file" in missing.stderr
    unpinned = write_config(tmp_path / "unpinned.toml", releases, layout)
    unpinned.write_text(unpinned.read_text().replace(releases.key.public_text, ""))
    refused = update(layout, unpinned, "--check", "--bundle", str(releases.bundles[NEW]))
    assert refused.returncode == 3
    assert "refused (key)" in refused.stderr
    older = update(layout, config, "--check", "--bundle", str(releases.bundles[BASE]))
    assert older.returncode == 3
    assert "already installed" in older.stderr
    done = update(layout, config, "--bundle", str(releases.bundles[NEW]))
    assert done.returncode == 0, done.stderr
    assert "restarts into it in trial" in done.stdout
    assert "installing: done in" in done.stderr
    assert layout.current() == NEW
    assert release_of(layout) == NEW


def test_the_install_request_the_speaker_leaves_is_served(
    layout: guard.Layout, releases: Releases, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "speaker.toml", releases, layout)
    incoming = layout.state / install.INCOMING
    incoming.mkdir()
    request, result = layout.state / install.REQUEST, layout.state / install.RESULT

    def serve(bundle_path: Path) -> dict[str, object]:
        request.write_text(json.dumps({"bundle": str(bundle_path), "version": NEW}))
        subprocess.run(
            [
                str(python_of(layout)),
                "-m",
                "releases.install",
                "--config",
                str(config),
                "--request",
            ],
            capture_output=True,
            timeout=300,
            env=slot_env(),
            cwd="/",  # not this checkout: `python -m` imports from the working directory
        )
        assert not request.exists()
        answer: dict[str, object] = json.loads(result.read_text())
        return answer

    outside = serve(releases.bundles[NEW])  # not in <state>/incoming: not touched
    assert outside["ok"] is False
    assert "incoming" in str(outside["reason"])
    assert layout.current() == BASE
    placed = incoming / bundle.bundle_name(NEW)
    placed.write_bytes(releases.bundles[NEW].read_bytes())
    assert serve(placed) == {"version": NEW, "ok": True, "reason": "", "code": "", "state": "done"}
    assert layout.current() == NEW
    again = serve(placed)
    assert again["ok"] is False
    assert again["code"] == "installed"


# --- power cuts --------------------------------------------------------------------


def installer(layout: guard.Layout, config: Path) -> subprocess.Popen[bytes]:
    """The installer in its own process group: a cut takes down pip and cc with it."""
    return subprocess.Popen(
        [
            str(python_of(layout, BASE)),
            "-m",
            "releases.install",
            "--config",
            str(config),
            "--bundle",
            str(config.parent / "new.legato"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=slot_env(),
        cwd="/",  # not this checkout: `python -m` imports from the working directory
    )


def cut(process: subprocess.Popen[bytes], after_s: float) -> bool:
    """SIGKILL to the installer's whole group ``after_s`` in; False if it finished."""
    try:
        process.wait(after_s)
        return False
    except subprocess.TimeoutExpired:
        pass
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def group_alive(group: int) -> bool:
    """A process of ``group`` still runs (zombies, which write nothing, do not count:
    this machine's init reaps the orphans only every second or two)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def boot(layout: guard.Layout) -> None:
    """What the next start does first: the guard outside the slots, as systemd runs it."""
    done = subprocess.run(
        [
            slot.base_python(),
            str(layout.root / "guard.py"),
            "--root",
            str(layout.root),
            "--state",
            str(layout.state),
            "prepare",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def back_to_base(layout: guard.Layout) -> None:
    if layout.current() != BASE:
        layout.switch(BASE)
    layout.save(Slots())
    layout.remove(NEW)


def cut_lane(lane: int, base: Path, releases: Releases) -> dict[str, float]:
    """One layout: a whole install timed (with the other lane running, as the cuts
    will), then half the cuts, each at a point uniform over that time."""
    layout = seeded_layout(base / f"lane{lane}", releases)
    config = write_config(base / f"lane{lane}" / "speaker.toml", releases, layout)
    (config.parent / "new.legato").write_bytes(releases.bundles[NEW].read_bytes())
    started = time.monotonic()
    assert installer(layout, config).wait(300) == 0
    duration_s = time.monotonic() - started
    boot(layout)
    assert layout.current() == NEW
    assert release_of(layout) == NEW
    back_to_base(layout)
    rng = random.Random(1800 + lane)
    seen: dict[str, float] = {"cut": 0, "finished": 0, "new": 0, "half": 0, "imports": 0}
    seen["install_s"] = duration_s
    for n in range(CUTS // LANES):
        seen[
            "cut" if cut(installer(layout, config), rng.uniform(0, duration_s)) else "finished"
        ] += 1
        seen["half"] += bool(staging_left(layout))
        boot(layout)
        current = layout.current()
        assert current in (BASE, NEW), current
        assert current in layout.complete(), f"{current} is not complete"
        assert (layout.slot(current) / guard.COMPLETE).read_text().strip() == current
        assert staging_left(layout) == []
        if current == NEW or n % IMPORT_CHECK_EVERY == 0:
            assert release_of(layout) == current
            seen["imports"] += 1
        if current == NEW:
            seen["new"] += 1
            back_to_base(layout)
    return seen


def test_a_power_cut_anywhere_in_an_install_leaves_a_release_that_runs(
    releases: Releases, tmp_path: Path
) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(LANES) as pool:
        lanes = list(pool.map(lambda n: cut_lane(n, tmp_path, releases), range(LANES)))
    total = {k: sum(lane[k] for lane in lanes) for k in lanes[0]}
    installs = ", ".join(f"{lane['install_s']:.2f}" for lane in lanes)
    print(f"\ninstall {installs} s; {CUTS} cuts in {time.monotonic() - started:.0f} s: {total}")
    assert total["cut"] + total["finished"] == CUTS
    assert total["cut"] > CUTS // 2
    assert total["half"] > CUTS // 4  # most cuts landed mid-install (a staging dir left)


# --- the supervisor ----------------------------------------------------------------


SPEAKER_ARGS = ["--no-mdns", "--engine", "clock", "--sink", "null", "--listen", "127.0.0.1"]


@pytest.fixture
def supervised(
    layout: guard.Layout, releases: Releases, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    config = write_config(tmp_path / "speaker.toml", releases, layout)
    log = tmp_path / "supervisor.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                str(python_of(layout, BASE)),
                "-m",
                "releases.supervisor",
                "--root",
                str(layout.root),
                "--state",
                str(layout.state),
                "--restart-s",
                "0.3",
                "--config",
                str(config),
                "--max-starts",
                "30",
                "--",
                *SPEAKER_ARGS,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env={**slot_env(), "LEGATO_SPEAKER_STATE": str(tmp_path / "speaker-state")},
            cwd="/",
        )
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_log(log: Path, pattern: str, timeout_s: float = 60.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text())
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in the supervisor's log:\n{log.read_text()[-3000:]}")


def test_a_release_that_crashes_at_import_is_rolled_back_by_itself(
    layout: guard.Layout,
    releases: Releases,
    supervised: tuple[subprocess.Popen[str], Path],
) -> None:
    process, log = supervised
    wait_log(log, rf"started release {BASE} \(pid \d+, start 1\)")
    # the speaker asks for the broken release, as the daemon does once it downloaded it
    incoming = layout.state / install.INCOMING
    incoming.mkdir()
    placed = incoming / bundle.bundle_name(BROKEN)
    placed.write_bytes(releases.bundles[BROKEN].read_bytes())
    (layout.state / install.REQUEST).write_text(
        json.dumps({"bundle": str(placed), "version": BROKEN})
    )
    wait_log(log, r"installer finished with status 0", timeout_s=180)
    assert layout.current() == BROKEN
    # the running speaker exits when current moves (the daemon's part): here, by hand
    running = int(wait_log(log, rf"started release {BASE} \(pid (\d+)")[1])
    os.kill(running, signal.SIGTERM)
    back = wait_log(
        log,
        rf"started release {BASE} \(pid \d+, start (\d+)\)[^\n]*\n(?:.|\n)*"
        rf"started release {BASE} \(pid \d+, start (\d+)\)",
        timeout_s=90,
    )
    broken_starts = len(re.findall(rf"started release {BROKEN}", log.read_text()))
    assert broken_starts == MAX_TRIAL_STARTS, log.read_text()
    assert int(back[2]) - int(back[1]) == MAX_TRIAL_STARTS + 1
    assert f"rolling back {BROKEN} to {BASE}" in log.read_text()
    assert layout.current() == BASE
    slots = layout.load()
    assert slots.last is not None
    assert slots.last.state == "rolled_back"
    assert "exited 1" in slots.last.reason
    assert BROKEN in slots.refused
    assert not layout.slot(BROKEN).exists()
    # asked again, it is refused: it was rolled back here
    with pytest.raises(BundleRefusedError, match="rolled back"):
        install.check(releases.bundles[BROKEN], releases.key.public, layout, False)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert "stopping on SIGTERM" in log.read_text()
