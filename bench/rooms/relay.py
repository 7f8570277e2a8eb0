"""A UDP relay between the members and one member's sync socket: the network between them.

Why: on loopback the members' time exchanges take microseconds, which would flatter any
sync.  Each member advertises this relay as its sync address (``[sync] advertise``), so
followers reach the leader only through it, and every datagram is held for a delay:

- from a follower to the leader: ``floor + uniform(0, mean)``;
- back: ``floor + triangular(0, mean, mode 0)`` (mostly quick, sometimes slow);

with ``floor = mean / 2`` (``--jitter-ms 2``: 1 to 3 ms each way, 2 ms on average towards
the leader, 1.67 ms back).  The two ways' jitter differs (asymmetric) while their shortest
delay is the same: a constant difference between the ways is invisible to any two-way
exchange (NTP's, PTP's), so it would only shift every follower by half of it, which no
protocol can measure.

Each follower gets its own socket towards the leader (as a NAT does), so the leader sees
one address per follower and its pushes find their way back.  A process of its own, so
the bench's event loop cannot add to the delays.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any, cast

HOST = "127.0.0.1"
MAX_CLIENTS = 32


@dataclass(frozen=True, slots=True)
class Delays:
    mean_ms: float

    @property
    def floor_s(self) -> float:
        return self.mean_ms / 2 / 1000

    def up_s(self, rng: random.Random) -> float:
        return self.floor_s + rng.uniform(0, self.mean_ms / 1000)

    def down_s(self, rng: random.Random) -> float:
        return self.floor_s + rng.triangular(0, self.mean_ms / 1000, 0)


class _Upstream(asyncio.DatagramProtocol):
    def __init__(
        self,
        front: asyncio.DatagramTransport,
        client: tuple[str, int],
        delays: Delays,
        rng: random.Random,
    ) -> None:
        self.front = front
        self.client = client
        self.delays = delays
        self.rng = rng
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self.delays.down_s(self.rng), self.front.sendto, data, self.client)


class _Front(asyncio.DatagramProtocol):
    def __init__(self, target: tuple[str, int], delays: Delays, seed: int) -> None:
        self.target = target
        self.delays = delays
        self.rng = random.Random(seed)
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[tuple[str, int], _Upstream] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        asyncio.get_running_loop().create_task(self._forward(data, addr))

    async def _forward(self, data: bytes, addr: tuple[str, int]) -> None:
        up = self.clients.get(addr)
        if up is None:
            if len(self.clients) >= MAX_CLIENTS or self.transport is None:
                return
            loop = asyncio.get_running_loop()
            up = _Upstream(self.transport, addr, self.delays, self.rng)
            self.clients[addr] = up
            await loop.create_datagram_endpoint(lambda: up, remote_addr=self.target)
        delay = self.delays.up_s(self.rng)
        transport = up.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(delay, transport.sendto, data)


async def _serve(port: int, target: tuple[str, int], mean_ms: float, seed: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(
        lambda: _Front(target, Delays(mean_ms), seed), local_addr=(HOST, port)
    )
    await asyncio.Event().wait()


def _main(port: int, target_port: int, mean_ms: float, seed: int) -> None:
    asyncio.run(_serve(port, (HOST, target_port), mean_ms, seed))


def start_relay(port: int, target_port: int, mean_ms: float, seed: int) -> BaseProcess:
    """The relay as a process: datagrams to ``port`` go on to ``target_port`` and back."""
    ctx: Any = multiprocessing.get_context("spawn")
    proc: BaseProcess = ctx.Process(
        target=_main, args=(port, target_port, mean_ms, seed), name=f"relay-{port}", daemon=True
    )
    proc.start()
    return proc
