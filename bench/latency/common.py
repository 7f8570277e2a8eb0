"""What every part of the bench shares: its options, its error, and small helpers."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"  # everything listens and connects on loopback only
#: MQTT in clear, and over TLS under the hub's own CA (what the product ships).
TRANSPORTS = ("plain", "tls")


class BenchError(Exception):
    """The run cannot produce valid figures (a command failed, a part did not start)."""


@dataclass(slots=True)
class Options:
    speakers: int
    commands: int
    baseline_commands: int
    concurrency: int
    workers: int
    connect_batch: int
    order: str
    seed: int
    timeout_s: float
    online_timeout_s: float
    compression: bool
    json_path: Path | None
    keep: bool
    watch: str
    restart_hub: bool
    transports: tuple[str, ...]  # of TRANSPORTS, in that order


async def poll_until(
    predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05
) -> bool:
    """Check ``predicate`` every ``interval_s`` until it holds (True) or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval_s)


def device_order(ids: list[str], count: int, order: str, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for k in range(count):
        yield ids[k % len(ids)] if order == "round-robin" else rng.choice(ids)


class Progress:
    """One progress line, rewritten in place on a terminal and throttled in a log."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.25 if self.tty else 10.0):
            return
        self.last = now
        if self.tty:
            print(f"\r{text:<100}", end="", flush=True)
        else:
            print(text, flush=True)

    def finish(self, text: str) -> None:
        """The phase's last line, always shown; on a terminal, the line is ended."""
        self.show(text, force=True)
        if self.tty:
            print(flush=True)
