"""Worker processes for ingest: one job at a time each, under a memory limit.

Workers are spawned (fork is unsafe beside the hub's threads), ignore Ctrl-C
(the parent's to handle) and limit their own address space (``RLIMIT_AS``)
before their first job, so a file that needs more memory fails with
``MemoryError`` inside its worker.  A worker that dies anyway (killed, or a
codec that crashes) is seen through its process sentinel: the one job it held
comes back as ``Lost`` with the reason, and a fresh worker takes the next job.
Each worker has its own pipe, so a death is always pinned on the right job.

    with WorkerPool(2, memory_bytes=1 << 30) as pool:
        for job, outcome in pool.run(task, jobs):
            ...  # outcome is task(job), or Lost; task must be a module-level function
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

J = TypeVar("J")
R = TypeVar("R")

#: A worker may always grow this far beyond what it maps once started: a machine
#: with many cores maps more before any work (a BLAS buffer per core).
HEADROOM_BYTES = 512 * 1024**2
_STOP_S = 5.0


@dataclass(frozen=True, slots=True)
class Lost:
    """A job with no answer: its worker died, or the job raised."""

    reason: str


def died(exitcode: int | None) -> str:
    """Why a worker is gone, from its exit code (negative: the signal that ended it)."""
    if exitcode is not None and exitcode < 0:
        try:
            name = f" ({signal.Signals(-exitcode).name})"
        except ValueError:
            name = ""
        return f"the worker died: signal {-exitcode}{name}"
    if exitcode:
        return f"the worker died: exit status {exitcode}"
    return "the worker died"


def limit_memory(limit_bytes: int) -> int:
    """Limit this process's address space; return the limit set (0: not possible here).

    The limit is at least ``HEADROOM_BYTES`` above what the process maps now.
    """
    wanted = max(limit_bytes, _mapped_bytes() + HEADROOM_BYTES)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    except (ValueError, OSError) as exc:
        logger.warning("ingest worker without a memory limit: %s", exc)
        return 0
    if wanted > limit_bytes:
        logger.warning(
            "an ingest worker maps %d MiB before any work: its limit is %d MiB, not %d",
            _mapped_bytes() >> 20,
            wanted >> 20,
            limit_bytes >> 20,
        )
    return wanted


def _mapped_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def _serve(conn: Connection, memory_bytes: int) -> None:
    """A worker's life: (task, job) in, answers out, until the parent closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(memory_bytes)
    while True:
        try:
            task, job = conn.recv()
        except EOFError:
            return
        try:
            answer: object = task(job)
        except MemoryError:
            answer = Lost("the worker ran out of memory")
        except Exception as exc:  # the job's failure, not the worker's
            answer = Lost(f"unexpected {type(exc).__name__}: {exc}")
        conn.send(answer)


class _Worker:
    def __init__(self, ctx: SpawnContext, memory_bytes: int) -> None:
        self.conn, theirs = ctx.Pipe()
        self.process: SpawnProcess = ctx.Process(
            target=_serve, args=(theirs, memory_bytes), name="legato-ingest", daemon=True
        )
        with _children_ignore_interrupts():
            self.process.start()
        theirs.close()

    def send(self, task: Callable[[Any], Any], job: object) -> bool:
        try:
            self.conn.send((task, job))
        except OSError:  # it died while idle
            return False
        return True

    def answer(self) -> Any:
        """What the worker sent back, or ``Lost`` when it died instead."""
        if self.conn.poll():
            try:
                return self.conn.recv()
            except (EOFError, OSError):
                pass
        self.process.join(_STOP_S)
        return Lost(died(self.process.exitcode))

    @property
    def alive(self) -> bool:
        return self.process.exitcode is None

    def stop(self, *, now: bool) -> None:
        """Close the pipe (the worker then exits by itself), or kill it ``now``."""
        self.conn.close()
        if now:
            self.process.kill()
        self.process.join(_STOP_S)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()


class WorkerPool:
    """Up to ``workers`` worker processes, started as jobs need them and kept between runs.

    Leaving the ``with`` block stops them (at once, killing them, on an exception).
    """

    def __init__(self, workers: int, *, memory_bytes: int) -> None:
        self.workers, self.memory_bytes = max(1, workers), memory_bytes
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: list[_Worker] = []
        self._busy: dict[_Worker, object] = {}

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self.close(now=exc_type is not None)

    def close(self, *, now: bool = False) -> None:
        for worker in [*self._busy, *self._idle]:
            worker.stop(now=now or worker in self._busy)
        self._busy.clear()
        self._idle.clear()

    def run(
        self, task: Callable[[J], R], jobs: Iterable[J]
    ) -> Generator[tuple[J, R | Lost], None, None]:
        """Each job with ``task(job)`` or ``Lost``, in completion order.

        ``task`` must be a module-level function (it is sent by name).  Closing
        the iterator early (or an exception in the caller) kills the busy workers.
        """
        waiting = deque(jobs)
        busy: dict[_Worker, J] = {}
        try:
            while waiting or busy:
                while waiting and len(busy) < self.workers:
                    job = waiting.popleft()
                    worker, reused = self._worker()
                    if worker.send(task, job):
                        busy[worker] = self._busy[worker] = job
                        continue
                    worker.stop(now=reused)
                    if reused:  # it died between jobs: the job is innocent, try a new worker
                        waiting.appendleft(job)
                    else:  # a new worker that cannot take a job: say why, and go on
                        yield job, Lost(died(worker.process.exitcode))
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
                for worker in [w for w in busy if w.conn in ready or w.process.sentinel in ready]:
                    job = busy.pop(worker)
                    del self._busy[worker]
                    answer: R | Lost = worker.answer()
                    if worker.alive:
                        self._idle.append(worker)
                    else:
                        worker.stop(now=True)
                    yield job, answer
        except BaseException:  # Ctrl-C, or the caller stopped early: stop them now
            for worker in busy:
                del self._busy[worker]
                worker.stop(now=True)
            raise

    def _worker(self) -> tuple[_Worker, bool]:
        if self._idle:
            return self._idle.pop(), True
        return _Worker(self._ctx, self.memory_bytes), False


@contextlib.contextmanager
def _children_ignore_interrupts() -> Iterator[None]:
    """Spawn workers with SIGINT ignored from their first instruction.

    ``_serve`` runs only after a worker's imports; a Ctrl-C before that would
    print each worker's traceback.  (Only the main thread may do this.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
