"""Training runs in a worker process (``python -m hub.recommend.worker``), started on
demand (``legato-hub recommend train``) or on a schedule inside ``serve``: the hub's
event loop only awaits the process, then reloads the new model in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hub.recommend.service import Recommender
from hub.recommend.weekly import GENERATED

logger = logging.getLogger(__name__)
HOUR_S = 3600.0
WEEK_MS = 7 * 86_400_000
CHECK_S = 10.0  # how often the schedule looks for a due run or a new model (two cheap reads)
FIRST_CHECK_S = 60.0  # a hub just started has other things to do first


def worker_command(data_dir: Path, trigger: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "hub.recommend.worker", "--data", str(data_dir),
        "--trigger", trigger, *extra,
    ]  # fmt: skip


def worker_env() -> dict[str, str]:
    return {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def train_now(data_dir: Path, trigger: str = "cli", *extra: str) -> dict[str, Any]:
    """Run a training to its end (progress passes through to our stderr); its figures."""
    done = subprocess.run(
        worker_command(data_dir, trigger, *extra),
        stdout=subprocess.PIPE,
        env=worker_env(),
        check=False,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the training process failed (exit status {done.returncode})")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class Schedule:
    """Retrain every ``every_h`` hours (0: only to renew week-old Weekly Mixes); reload
    the model when a run finishes, ours or one ``legato-hub recommend train`` made
    (polled cheaply)."""

    def __init__(self, recommender: Recommender, every_h: float) -> None:
        self.recommender = recommender
        self.every_s = every_h * HOUR_S
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="recommender-schedule")

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._proc.wait(), 10)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _due(self) -> bool:
        """A run is due when the last started ``every_h`` ago (or none ever did), and,
        even with the schedule off, when the Weekly Mixes (written by every run) are
        older than a week."""
        now = int(time.time() * 1000)
        with self.recommender.db.reading() as conn:
            last = conn.execute("SELECT MAX(started_ms) FROM recommender_runs").fetchone()[0]
            mixes = conn.execute(
                "SELECT 1 FROM playlists WHERE generated = ? LIMIT 1", (GENERATED,)
            ).fetchone()
        if self.every_s > 0 and (last is None or now - last >= self.every_s * 1000):
            return True
        return mixes is not None and last is not None and now - last >= WEEK_MS

    async def _loop(self) -> None:
        try:  # the model there is now, loaded before anyone asks (seconds on a big catalog)
            await asyncio.to_thread(self.recommender.refresh)
        except Exception:
            logger.exception("could not load the recommender's model")
        await asyncio.sleep(FIRST_CHECK_S)
        while True:
            try:
                if await asyncio.to_thread(self._due):
                    await self.run_once()
                else:
                    await asyncio.to_thread(self.recommender.refresh)
            except Exception:
                logger.exception("recommender training failed; trying again later")
            await asyncio.sleep(CHECK_S)

    async def run_once(self) -> None:
        recommender = self.recommender
        self._proc = await asyncio.create_subprocess_exec(
            *worker_command(recommender.data_dir, "schedule"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=worker_env(),
        )
        code = await self._proc.wait()
        if code != 0:
            logger.warning("recommender training exited with status %s", code)
        await asyncio.to_thread(recommender.refresh)
