"""How a benchmark script runs: SIGTERM cancels it, failures keep the logs, the rest is cleaned.

Both benchmarks (control latency and the audio engine) end the same way, so
that one place decides what a failure, an interruption and a clean run leave
behind.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from latency.common import BenchError


def drive(
    name: str,
    root: Path,
    run: Callable[[], Awaitable[dict[str, Any]]],
    finish: Callable[[dict[str, Any]], int],
    *,
    keep: bool = False,
) -> int:
    """Run ``run`` in a fresh event loop and hand its result to ``finish`` (the exit code).

    A failure prints why and keeps ``root`` with the logs; Ctrl-C or SIGTERM
    gives 130; ``root`` is removed unless kept.
    """

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run()

    code = 1
    try:
        code = finish(asyncio.run(guarded()))
    except BenchError as exc:
        print(f"\n{name}: FAILED: {exc}", file=sys.stderr)
        print(f"  logs: {root} (kept)", file=sys.stderr)
        keep = True
    except Exception:  # a bug or a part that would not start: say so, keep the logs
        traceback.print_exc()
        print(f"\n{name}: FAILED; logs kept in {root}", file=sys.stderr)
        keep = True
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"\n{name}: interrupted; everything it started is stopped", file=sys.stderr)
        code = 130
    finally:
        if keep:
            print(f"  temporary files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code
