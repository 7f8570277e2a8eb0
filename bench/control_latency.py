"""Control-path latency: listener command -> hub -> Mosquitto -> speaker -> new state back.

Why this exists: the issue sets a target of p99 <= 30 ms from a listener's command to the
new state at 1,000 speakers on loopback.  This measures exactly that path with real parts
(Mosquitto 2, the hub as ``python -m hub serve``, the Connect WebSocket) and, in the same
run, the raw MQTT round trip on the same broker without the hub, so the report shows what
the hub adds (benchmark policy: a baseline measured alongside).

It does so over both MQTT transports, in the same run: TLS under the hub's own CA (what
the product ships, so the target is judged there) and plain MQTT, so the report shows
what TLS costs.  Each transport has its own system; the measured phases alternate
between them (``latency/commands.py``).

All on 127.0.0.1 and under one temporary directory: per transport, Mosquitto with one
provisioned login per speaker; the hub on that broker; N virtual speakers in W spawned
worker processes (``latency/speakers.py``); and in this process the Connect WebSocket
listener and the raw-MQTT baseline client.  ``--restart-hub`` also checks that a restarted
hub finds every connected speaker again.  The parts live in the ``latency`` package beside
this file.

Run: ``make bench BENCH_ARGS="--speakers 1000"`` (see ``--help`` and ``bench/README.md``).
It exits non-zero only when something fails (a command refused or timed out, a speaker
never online or dropped, the restart check); missing the latency target is reported,
not fatal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from latency.common import TRANSPORTS, Options
from latency.driver import drive
from latency.report import machine, report
from latency.run import run
from latency.system import raise_fd_limit


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Control-path latency through the hub vs raw MQTT, with N virtual speakers."
    )
    p.add_argument("--speakers", type=int, default=200, help="virtual speakers (default 200)")
    p.add_argument("--commands", type=int, default=2000, help="commands via the hub (2000)")
    p.add_argument(
        "--baseline-commands", type=int, default=None, help="raw MQTT commands (= --commands)"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="also run a phase with K commands in flight (default 1: one at a time only)",
    )
    p.add_argument("--workers", type=int, default=2, help="speaker worker processes (default 2)")
    p.add_argument(
        "--connect-batch", type=int, default=50, help="CONNECTs in flight per worker (50)"
    )
    p.add_argument("--order", choices=["round-robin", "random"], default="round-robin")
    p.add_argument("--seed", type=int, default=1, help="for --order random")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per command (10)")
    p.add_argument(
        "--online-timeout", type=float, default=180.0, help="seconds for all to be online"
    )
    p.add_argument(
        "--no-ws-compression",
        action="store_true",
        help="do not offer permessage-deflate on the WebSocket (browsers do)",
    )
    p.add_argument(
        "--watch",
        choices=["ws", "http"],
        default="ws",
        help="how onboarding is watched: a Connect WebSocket open throughout (ws, as an open "
        "app) or polling GET /v1/me/player/devices every 100 ms with no session open (http)",
    )
    p.add_argument(
        "--restart-hub",
        action="store_true",
        help="at the end, restart the hub with every speaker connected and time how long "
        "until it shows them all online again (it must, from their retained status)",
    )
    p.add_argument(
        "--transport",
        choices=[*TRANSPORTS, "both"],
        default="both",
        help="MQTT between hub, broker and speakers: in clear, over TLS under the hub's CA "
        "(as shipped), or both in the same run, taking turns (default: both)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    for name in ("speakers", "commands", "concurrency", "workers", "connect_batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.speakers > 9999:
        p.error("--speakers is at most 9999")
    if a.concurrency > 64:
        p.error("--concurrency is at most 64 (the hub's in-flight limit per session)")
    if a.concurrency > a.speakers:
        p.error("--concurrency cannot exceed --speakers (one command per speaker at a time)")
    return Options(
        speakers=a.speakers,
        commands=a.commands,
        baseline_commands=a.baseline_commands if a.baseline_commands else a.commands,
        concurrency=a.concurrency,
        workers=min(a.workers, a.speakers),
        connect_batch=a.connect_batch,
        order=a.order,
        seed=a.seed,
        timeout_s=a.timeout,
        online_timeout_s=a.online_timeout,
        compression=not a.no_ws_compression,
        json_path=a.json,
        keep=a.keep,
        watch=a.watch,
        restart_hub=a.restart_hub,
        transports=TRANSPORTS if a.transport == "both" else (a.transport,),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("mosquitto") is None:
        print("control_latency: mosquitto is not installed (make system-deps)", file=sys.stderr)
        return 2
    raise_fd_limit(opts.speakers + 1024)
    info = machine()
    root = Path(tempfile.mkdtemp(prefix="legato-bench-"))

    def finish(res: dict[str, Any]) -> int:
        figures = report(opts, res, info)
        if opts.json_path is not None:
            opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"\nwrote {opts.json_path}")
        code = 0
        if res["failures"]:
            print(file=sys.stderr)
            for failure in res["failures"]:
                print(f"control_latency: FAILED: {failure}", file=sys.stderr)
            code = 1
        return code

    return drive("control_latency", root, lambda: run(opts, root), finish, keep=opts.keep)


if __name__ == "__main__":
    raise SystemExit(main())
