"""One transport's system under test, as the phases see it, and its name in messages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .common import BenchError, Options, Progress
from .speakers import WorkerHandle
from .stats import CpuMeter
from .system import Broker, Hub

#: How each transport is named in the report.
LABELS = {"plain": "plain", "tls": "TLS"}


@dataclass(slots=True)
class Rig:
    """Everything a phase works on: the system under test, the speakers, the run's state."""

    opts: Options
    transport: str  # "plain" or "tls": MQTT in clear, or over TLS under the hub's CA
    broker: Broker
    hub: Hub
    workers: list[WorkerHandle]
    stack: contextlib.AsyncExitStack  # what to stop at the end, whatever happens
    progress: Progress
    failures: list[str]

    @property
    def label(self) -> str:
        return LABELS[self.transport]

    def fail(self, why: str) -> None:
        """A failure the run goes on after (reported, and the exit status is non-zero)."""
        self.failures.append(f"{self.label}: {why}")

    def cpu_meter(self) -> CpuMeter:
        return CpuMeter(
            {
                "hub": [self.hub.pid],
                "mosquitto": [self.broker.pid],
                "speakers": [w.pid for w in self.workers],
            }
        )

    def connected(self) -> int:
        return sum(w.connected for w in self.workers)

    def broker_done_at(self) -> float | None:
        """When the last worker had all its speakers connected (perf_counter), if all have."""
        if all(w.connected_at for w in self.workers):
            return max(w.connected_at or 0 for w in self.workers)
        return None


@contextlib.contextmanager
def labelled(rig: Rig) -> Iterator[None]:
    """A failure inside names the transport it happened on."""
    try:
        yield
    except BenchError as exc:
        raise BenchError(f"{rig.label}: {exc}") from exc
