"""``legato-hub release add|list|rollout|halt|status``: signed releases from the shell.

They work on the data directory directly (SQLite WAL), so they may run while
``legato-hub serve`` or ``up`` does: the running hub offers what they roll out at
the speakers' next check.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hub.errors import CliError
from hub.releases.service import Releases, rollout_json
from hub.releases.status import DISPLAY_STATES
from hub.server import open_database

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

ROLLOUT_HELP = """\
A rollout offers the release to a share of the speakers (--percent: each speaker falls
in or out of it by a hash of the version and its id, so 50% lies inside 100%) or to
the speakers named (--devices).  At most --wave speakers update at once (default: a
quarter of those targeted, at least 2).  Raising the percent widens an active rollout;
rolling out a halted release resumes it.  It halts by itself when failures reach 10%
of the speakers that tried (at least 2).
"""


def add_parser(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    release = sub.add_parser(
        "release",
        help="signed releases: add a wheel, roll it out, halt it, follow it",
        description="Releases are Legato wheels signed (with <data>/keys/release.key) into "
        "bundles that speakers verify with the key pinned in their config.",
    )
    rsub = release.add_subparsers(dest="release_command", required=True, metavar="ACTION")
    add = rsub.add_parser(
        "add",
        parents=[common],
        help="sign a Legato wheel into a release bundle",
        description="Sign WHEEL (legato-VERSION-py3-none-any.whl) and the dependency pins "
        "into <data>/releases/legato-VERSION.legato.  Nothing is offered until `release "
        "rollout`.",
    )
    add.add_argument("wheel", type=Path, metavar="WHEEL")
    add.add_argument("--notes", default="", help="release notes shown to the operator")
    add.add_argument(
        "--constraints",
        type=Path,
        metavar="FILE",
        help="pip constraints the speakers install with (default: legato[speaker]'s "
        "dependencies as installed beside this hub)",
    )
    add.add_argument("--json", action="store_true", help="print the release as JSON")
    lst = rsub.add_parser("list", parents=[common], help="every release with its rollout")
    lst.add_argument("--json", action="store_true", help="print JSON")
    roll = rsub.add_parser(
        "rollout",
        parents=[common],
        help="offer a release to a share of the speakers or to named ones",
        description=ROLLOUT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    roll.add_argument("version", metavar="VERSION")
    target = roll.add_mutually_exclusive_group(required=True)
    target.add_argument("--percent", type=int, metavar="N", help="1 to 100")
    target.add_argument("--devices", metavar="ID,...", help="speaker ids, comma-separated")
    roll.add_argument("--wave", type=int, metavar="N", help="speakers updating at once")
    halt = rsub.add_parser(
        "halt", parents=[common], help="stop offering a release (speakers on it keep it)"
    )
    halt.add_argument("version", metavar="VERSION")
    halt.add_argument("--reason", default="halted by the operator", help="shown on the dashboard")
    st = rsub.add_parser(
        "status", parents=[common], help="each speaker's progress on a release, with reasons"
    )
    st.add_argument("version", metavar="VERSION")
    st.add_argument("--json", action="store_true", help="print JSON")


def cmd_release(args: argparse.Namespace, data: Path) -> int:
    service = Releases(open_database(data), data)
    match args.release_command:
        case "add":
            return _add(args, service)
        case "list":
            return _list(args, service)
        case "rollout":
            devices = args.devices.split(",") if args.devices is not None else None
            done = service.rollout(
                args.version, percent=args.percent, devices=devices, wave=args.wave
            )
            whom = f"{done.percent}% of the speakers" if done.percent else _names(done.devices)
            print(f"release {args.version} is offered to {whom}")
            return 0
        case "halt":
            done = service.halt(args.version, args.reason)
            print(f"release {args.version}: {done.state} ({done.reason})")
            return 0
        case _:
            return _status(args, service)


def _names(devices: frozenset[str] | None) -> str:
    return ", ".join(sorted(devices or ()))


def _add(args: argparse.Namespace, service: Releases) -> int:
    constraints = None
    if args.constraints is not None:
        try:
            constraints = args.constraints.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(f"cannot read {args.constraints}: {exc}") from exc
    added = service.add(args.wheel, notes=args.notes, constraints=constraints)
    if args.json:
        print(json.dumps(added.to_json()))
        return 0
    print(
        f"added release {added.version} ({added.size} bytes, signed by key {added.key_id}): "
        f"{added.path}\nnothing is offered yet; run: legato-hub release rollout "
        f"{added.version} --percent 10"
    )
    return 0


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000)) if ms else "-"


def _rollout_text(r: dict[str, Any] | None) -> str:
    if r is None:
        return "not rolled out"
    whom = f"{r['percent']}%" if r["percent"] else ",".join(r["devices"])
    reason = f" ({r['reason']})" if r["reason"] else ""
    return f"{r['state']} {whom}{reason}"


def _list(args: argparse.Namespace, service: Releases) -> int:
    found = service.summaries()
    if args.json:
        print(json.dumps({"releases": found}))
        return 0
    if not found:
        print("no releases yet; add one: legato-hub release add legato-VERSION-py3-none-any.whl")
        return 0
    print(f"{'VERSION':<16} {'ADDED':<17} {'SPEAKERS':<40} ROLLOUT")
    for r in found:
        tally = " ".join(f"{s}:{n}" for s, n in r["counts"].items() if n) or "-"
        print(
            f"{r['version']:<16} {_when(r['created_ms']):<17} {tally:<40} "
            f"{_rollout_text(r['rollout'])}"
        )
    return 0


def _status(args: argparse.Namespace, service: Releases) -> int:
    rollout, rows = service.devices(args.version)
    if args.json:
        doc = {
            "version": args.version,
            "rollout": rollout_json(rollout),
            "speakers": [r.to_json() for r in rows],
        }
        print(json.dumps(doc))
        return 0
    print(f"release {args.version}: {_rollout_text(rollout_json(rollout))}")
    if not rows:
        print("no speaker has anything to do with it yet")
        return 0
    print(f"{'SPEAKER':<24} {'RUNS':<12} {'STATE':<12} {'SINCE':<17} REASON")
    order = {s: n for n, s in enumerate(DISPLAY_STATES)}
    for r in sorted(rows, key=lambda r: (order.get(r.state, 99), r.device_id)):
        print(
            f"{r.device_id:<24} {r.fw or '?':<12} {r.state:<12} {_when(r.updated_ms):<17} "
            f"{r.reason}"
        )
    return 0
