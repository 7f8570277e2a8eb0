"""The load: another process keeping one core busy while the speaker is measured.

The issue's figures are asked for with one core busy, as on a Pi running something
else besides the speaker.  A plain Python loop, bounded in time, killed at the end; its
CPU share over its life is reported, to show the core really was taken.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from latency.stats import proc_cpu_s

LOOP = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@dataclass(slots=True)
class Busy:
    pid: int | None  # None: no load asked for
    started_s: float = field(default_factory=time.monotonic)
    cpu_share: float | None = None  # its CPU seconds / its wall seconds, once stopped

    def figures(self) -> dict[str, float | int | None]:
        share = None if self.cpu_share is None else round(self.cpu_share, 2)
        return {"pid": self.pid, "cpu_share": share}


@contextmanager
def busy_core(enabled: bool, max_s: float) -> Iterator[Busy]:
    """A busy-loop process while the block runs (a no-op when not ``enabled``)."""
    if not enabled:
        yield Busy(None)
        return
    proc = subprocess.Popen([sys.executable, "-c", LOOP.format(s=max_s)])
    busy = Busy(proc.pid)
    try:
        yield busy
    finally:
        cpu_s = proc_cpu_s(proc.pid)
        busy.cpu_share = cpu_s / max(1e-9, time.monotonic() - busy.started_s)
        proc.kill()
        proc.wait()
