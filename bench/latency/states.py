"""What a client knows of the speakers' states, and the commands waiting for a new one.

Shared by the WebSocket listener and the raw-MQTT probe: both send a volume command and
time it until a state with that volume and a higher revision arrives for that speaker.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(slots=True)
class _Waiter:
    volume: int
    after_revision: int
    future: asyncio.Future[int]


class StateTracker:
    """The newest revision and volume seen per speaker; at most one waiter per speaker."""

    def __init__(self) -> None:
        self.revisions: dict[str, int] = {}
        self.volumes: dict[str, int] = {}
        self._waiters: dict[str, _Waiter] = {}

    def expect_change(self, device_id: str) -> tuple[int, asyncio.Future[int]]:
        """A volume to set and a future for the time (ns) its state arrives; see ``done``."""
        volume = (self.volumes.get(device_id, 50) + 7) % 101
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters[device_id] = _Waiter(volume, self.revisions.get(device_id, -1), future)
        return volume, future

    def done(self, device_id: str, future: asyncio.Future[int]) -> None:
        waiter = self._waiters.get(device_id)
        if waiter is not None and waiter.future is future:
            del self._waiters[device_id]

    def saw(self, device_id: str, revision: int, volume: int, now_ns: int) -> None:
        if revision >= self.revisions.get(device_id, -1):
            self.revisions[device_id] = revision
            self.volumes[device_id] = volume
        waiter = self._waiters.get(device_id)
        if (
            waiter is not None
            and volume == waiter.volume
            and revision > waiter.after_revision
            and not waiter.future.done()
        ):
            waiter.future.set_result(now_ns)

    def fail_all(self, exc: BaseException) -> None:
        for waiter in self._waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(exc)
