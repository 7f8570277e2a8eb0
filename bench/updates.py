"""Signed updates on a fleet: how long a rollout takes, how fast a broken release rolls
back, and how many bytes an update costs.

Why this exists: updates are only safe to use if they are quick to reach a fleet and
quicker to undo.  The issue asks for three figures, each against a baseline measured
in the same run (the benchmark policy):

1. the time from ``legato-hub release rollout VERSION --percent 100`` to every speaker
   of the fleet (20) reported good; baseline: one plain ``pip install`` of the same
   wheel into a fresh virtual environment plus one restart of a speaker, i.e. what
   updating a single speaker by hand costs;
2. the rollback time after a broken release, from the failure being evident (a release
   that crashes at import: the moment it is switched to; one that never reaches the
   hub: the trial deadline after the switch) to the speaker back on the old release and
   online at the hub; p50/p95 over the speakers rolled back.  Target: p95 <= 15 s.
   Baseline: the plain restart of one speaker;
3. the bytes an update costs: the bundle's size, what the speakers fetched from the hub
   (counted by a TCP proxy between them and the hub's HTTPS port), and what the new
   slot holds that was linked from the old one instead of downloaded (its dependencies).

Everything is real: a hub with Mosquitto, speaker processes each run by
``releases.supervisor`` from their own release slots (the harness of
``tests/test_e2e_updates.py``: ``tests/update_fleet.py``), wheels of this checkout built
by pip.  Run: ``make bench`` or e.g. ``.venv/bin/python bench/updates.py --speakers 6``.
Exits non-zero only when something fails (a speaker never goes good, never rolls back);
a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))

from tests import release_fixtures as rf  # noqa: E402
from tests.throttle_proxy import ThrottleProxy  # noqa: E402
from tests.update_fleet import TRIAL_DEADLINE_S, Fleet, Transit  # noqa: E402

TARGET_ROLLBACK_P95_S = 15.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Rollout, rollback and download size of signed updates, with baselines."
    )
    p.add_argument("--speakers", type=int, default=20, help="speakers in the fleet (20)")
    p.add_argument(
        "--broken", type=int, default=4, help="speakers per broken release (two kinds) (4)"
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    if not 2 <= a.speakers <= 50:
        p.error("--speakers must be 2..50")
    if a.broken < 1 or 2 * a.broken > a.speakers:
        p.error("--broken must be at least 1 and at most half of --speakers")
    return a


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    at = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[at]


def tree_bytes(path: Path) -> tuple[int, int]:
    """Bytes and files under ``path`` (hard links counted as the files they are)."""
    total = count = 0
    for item in path.rglob("*"):
        if item.is_file() and not item.is_symlink():
            total += item.stat().st_size
            count += 1
    return total, count


# --- baselines ---------------------------------------------------------------------


def baseline_pip_install(wheel: Path, site: Path, work: Path) -> float:
    """A fresh virtual environment holding the speaker's dependencies (linked, as the
    installer links them) and this wheel installed by pip: a hand-made update."""
    started = time.monotonic()
    venv = work / "baseline-venv"
    subprocess.run([rf.base_python(), "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = rf.slot_site_packages(venv)
    for path in site.rglob("*"):
        if path.is_file() and path.name != ".complete":
            rf.link_or_copy(path, packages / path.relative_to(site))
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"),
            *("-q", "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)),
        ],
        check=True,
    )
    return time.monotonic() - started


def baseline_restart(fleet: Fleet, device_id: str) -> float:
    """One speaker stopped and started again by its supervisor, until online."""
    speaker = fleet.speakers[device_id]
    version = speaker.current() or ""
    speaker.stop()
    deadline = time.monotonic() + 30
    while fleet.seen().get(device_id, ("", True))[1] and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    speaker.start()
    fleet.wait_running({device_id: version}, timeout_s=60)
    return time.monotonic() - started


# --- the phases ----------------------------------------------------------------------


def rollout_phase(fleet: Fleet, proxy: ThrottleProxy) -> dict[str, Any]:
    ids = sorted(fleet.speakers)
    version = fleet.release_add(rf.GOOD)
    bundle_size = fleet.stored_bundle(version).stat().st_size
    fetched_before = proxy.link.bytes_down
    started = fleet.rollout(version, percent=100)
    good_at: dict[str, float] = {}
    deadline = started + 60 * len(ids)
    while len(good_at) < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all good within {60 * len(ids)} s: {fleet.updates(version)}")
        now = time.monotonic()
        for device_id, (state, _) in fleet.updates(version).items():
            if state == "good":
                good_at.setdefault(device_id, now - started)
        time.sleep(0.2)
    fleet.wait_running(dict.fromkeys(ids, version))
    fetched = proxy.link.bytes_down - fetched_before
    slot = fleet.speakers[ids[0]].layout.slot(version)
    slot_bytes, slot_files = tree_bytes(slot)
    wheel_bytes = fleet.shop.wheel(rf.GOOD).stat().st_size
    return {
        "version": version,
        "all_good_s": max(good_at.values()),
        "per_speaker_good_s_p50": statistics.median(good_at.values()),
        "bundle_bytes": bundle_size,
        "wheel_bytes": wheel_bytes,
        "fetched_bytes_per_speaker": fetched / len(ids),
        "slot_bytes": slot_bytes,
        "slot_files": slot_files,
    }


def settled(fleet: Fleet, version: str, transits: dict[str, Transit]) -> bool:
    """Every speaker that switched to the broken release is back and online; any other
    is not in flight (a halted rollout may leave an offered speaker where it was)."""
    seen, states = fleet.seen(), fleet.updates(version)
    for device_id, transit in transits.items():
        if transit.switched_s is not None:
            if transit.back_s is None or seen.get(device_id) != (transit.old, True):
                return False
        elif states.get(device_id, ("", ""))[0] in ("downloading", "installing", "trial"):
            return False
    return any(t.switched_s is not None for t in transits.values())


def measure_rollback(
    fleet: Fleet, variant: rf.Variant, ids: list[str]
) -> dict[str, tuple[float | None, float | None]]:
    """Roll ``variant`` out to ``ids`` all at once; each speaker's way there and back
    (the moment back: on its old release again and online at the hub), as
    monotonic times."""
    transits = {
        i: Transit(fleet.speakers[i], variant.version, fleet.speakers[i].current() or "")
        for i in ids
    }
    fleet.release_add(variant)
    fleet.rollout(variant.version, devices=ids, wave=len(ids))
    started = time.monotonic()
    deadline = started + 120 + TRIAL_DEADLINE_S
    online: dict[str, float] = {}
    while time.monotonic() < deadline:
        seen = fleet.seen()
        for device_id, transit in transits.items():
            transit.poll()
            if transit.back_s is not None and seen.get(device_id) == (transit.old, True):
                online.setdefault(device_id, time.monotonic())
        # before 20 s an unswitched speaker may still switch
        if time.monotonic() - started > 20 and settled(fleet, variant.version, transits):
            return {i: (t.switched_s, online.get(i)) for i, t in transits.items()}
        time.sleep(0.1)
    missing = sorted(i for i, t in transits.items() if t.switched_s and not t.back_s)
    raise RuntimeError(f"speakers never came back from {variant.why}: {missing}")


def rollback_phase(fleet: Fleet, crash_ids: list[str], deaf_ids: list[str]) -> dict[str, Any]:
    """A release that crashes at import, then one that never reaches the hub (a rollout
    supersedes the one before it), each to its own speakers; per speaker, the time
    from the failure being evident to the old release back and online."""
    times: list[float] = []
    by_kind: dict[str, list[float]] = {}
    never: list[str] = []
    cases = [(rf.CRASHES, crash_ids, 0.0), (rf.UNREACHABLE, deaf_ids, float(TRIAL_DEADLINE_S))]
    for variant, ids, evident_after in cases:
        for device_id, (switched_s, back_s) in measure_rollback(fleet, variant, ids).items():
            if switched_s is None or back_s is None:
                never.append(device_id)
                continue
            took = back_s - switched_s - evident_after
            times.append(took)
            by_kind.setdefault(variant.why, []).append(took)
    return {
        "rolled_back": len(times),
        "never_switched": never,
        "p50_s": percentile(times, 50),
        "p95_s": percentile(times, 95),
        "max_s": max(times) if times else float("nan"),
        "by_kind_p50_s": {k: percentile(v, 50) for k, v in by_kind.items()},
    }


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    shop = rf.WheelShop(root / "wheels")
    for variant in (rf.OLD, rf.GOOD, rf.CRASHES, rf.UNREACHABLE):
        shop.wheel(variant)
    ids = [f"spk-{i:02d}" for i in range(args.speakers)]
    fleet = Fleet(root / "fleet", shop)
    proxy = ThrottleProxy("127.0.0.1", fleet.system.tls_port).start()
    fleet.speaker_hub_port = proxy.port
    fleet.add(ids, rf.OLD)
    try:
        fleet.start()
        fleet.wait_running(dict.fromkeys(ids, rf.OLD.version), timeout_s=120)
        site = root / "fleet" / "speaker-site"
        pip_s = baseline_pip_install(shop.wheel(rf.GOOD), site, root)
        restart_s = statistics.median(baseline_restart(fleet, ids[-1]) for _ in range(3))
        rollout = rollout_phase(fleet, proxy)
        rollback = rollback_phase(fleet, ids[: args.broken], ids[args.broken : 2 * args.broken])
    finally:
        fleet.stop()
        proxy.stop()
    return {
        "baseline": {"pip_install_s": pip_s, "restart_s": restart_s},
        "rollout": rollout,
        "rollback": rollback,
        "speakers": args.speakers,
    }


def report(res: dict[str, Any]) -> bool:
    base, out, back = res["baseline"], res["rollout"], res["rollback"]
    by_hand = base["pip_install_s"] + base["restart_s"]
    mib = 1024 * 1024
    print(
        f"\nsigned updates, {res['speakers']} speakers ({platform.machine()}, "
        f"{os.cpu_count()} cores)"
    )
    print(
        f"  baseline: pip install into a fresh venv {base['pip_install_s']:.2f} s, "
        f"one speaker's restart {base['restart_s']:.2f} s (by hand: {by_hand:.2f} s)"
    )
    print(
        f"  rollout to all good:       {out['all_good_s']:.1f} s "
        f"({out['all_good_s'] / by_hand:.1f}x one update by hand; "
        f"per speaker p50 {out['per_speaker_good_s_p50']:.1f} s)"
    )
    ok = back["p95_s"] <= TARGET_ROLLBACK_P95_S
    print(
        f"  rollback after failure:    p50 {back['p50_s']:.1f} s, p95 {back['p95_s']:.1f} s, "
        f"max {back['max_s']:.1f} s over {back['rolled_back']} speakers "
        f"(target p95 <= {TARGET_ROLLBACK_P95_S:.0f} s: {'met' if ok else 'MISSED'}; "
        f"{back['p50_s'] / base['restart_s']:.1f}x a plain restart)"
    )
    for kind, p50 in back["by_kind_p50_s"].items():
        print(f"    {kind}: p50 {p50:.1f} s")
    print(
        f"  bytes per update: bundle {out['bundle_bytes'] / mib:.2f} MiB "
        f"(wheel {out['wheel_bytes'] / mib:.2f} MiB); fetched from the hub per speaker "
        f"{out['fetched_bytes_per_speaker'] / mib:.2f} MiB "
        f"({out['fetched_bytes_per_speaker'] / out['bundle_bytes']:.2f}x the bundle)"
    )
    print(
        f"  the new slot: {out['slot_bytes'] / mib:.1f} MiB in {out['slot_files']} files, "
        "its dependencies linked from the old slot, not downloaded"
    )
    return True


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="legato-updates-bench-"))
    try:
        res = run(args, root)
    except (RuntimeError, AssertionError, subprocess.SubprocessError, OSError) as exc:
        print(f"updates bench failed: {exc}\nlogs kept in {root}", file=sys.stderr)
        return 1
    report(res)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
