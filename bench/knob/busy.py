"""The load: another process keeping one core busy while the speaker is measured.

The issue's figures are asked for with one core busy, as on a Pi running something
else besides the speaker.  A plain Python loop, bounded in time, killed at the end.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

LOOP = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end:\n    pass\n"


@contextmanager
def busy_core(enabled: bool, max_s: float) -> Iterator[int | None]:
    """A busy-loop process (its pid) while the block runs; None when not ``enabled``."""
    if not enabled:
        yield None
        return
    proc = subprocess.Popen([sys.executable, "-c", LOOP.format(s=max_s)])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
