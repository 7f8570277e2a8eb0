"""The virtual speakers: worker processes, each driving its speakers from one asyncio loop.

Each speaker has its own broker login and runs the real speaker logic (``decode_command``
-> ``Controller`` -> ``ClockEngine``), publishing as ``device/service.py`` does: retained
status and state on connect; per command state (retained), then ack, then events.  Over
TLS, each worker pins the hub's CA in one client context shared by its speakers.

The parent talks to a worker over a pipe: it sends ``connect``, ``stats`` and ``stop``;
the worker answers ``ready``, ``progress``, ``connected``, ``stats``, ``error`` and
``stopped``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import signal
import ssl
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as paho

from connect_protocol.codec import encode
from connect_protocol.messages import DeviceInfo
from connect_protocol.tls import pinned_context
from connect_protocol.topics import Channel, device_topic
from device.clock_engine import ClockEngine
from device.controller import Controller, Outcome

from .common import HOST, BenchError, poll_until
from .pump import LoopPump, keep_alive, new_client

Spec = tuple[str, str]  # (speaker id, its broker secret)

# --- in the worker process ------------------------------------------------------------


@dataclass(slots=True)
class WorkerCounters:
    commands: int = 0
    unexpected_disconnects: int = 0
    refused: int = 0
    errors: list[str] = field(default_factory=list)


class VirtualSpeaker:
    """One speaker: its own broker login and the real Controller, published as the daemon does."""

    def __init__(
        self,
        device_id: str,
        secret: str,
        loop: asyncio.AbstractEventLoop,
        counters: WorkerCounters,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.id = device_id
        self.counters = counters
        self.info = DeviceInfo(
            id=device_id, name=f"Bench {device_id}", model="legato-bench", fw="bench"
        )
        engine = ClockEngine(self._on_track_ended, loop=loop)
        engine.set_volume(50)
        self.controller = Controller(engine)
        self.topics = {c: device_topic(device_id, c) for c in Channel}
        client = new_client(device_id, secret, tls)
        offline = encode(dataclasses.replace(self.info, online=False))
        client.will_set(self.topics[Channel.STATUS], offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        self.pump = LoopPump(client, loop, counters.errors)
        self.pump.after_read = self._run_commands
        self.inbox: list[bytes] = []
        self.connected: asyncio.Future[bool] = loop.create_future()
        self.stopping = False

    def _on_connect(
        self, client: paho.Client, _ud: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.counters.refused += 1
            if not self.connected.done():
                self.connected.set_result(False)
            return
        # As SpeakerService: subscribe, then retained status and state on every connect.
        client.subscribe(self.topics[Channel.CMD], qos=1)
        self._publish(Channel.STATUS, encode(self.info), retain=True)
        self._publish(Channel.STATE, encode(self.controller.state), retain=True)
        if not self.connected.done():
            self.connected.set_result(True)

    def _on_disconnect(self, *_args: Any) -> None:
        if not self.stopping:
            self.counters.unexpected_disconnects += 1

    def _on_message(self, _client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        # Only queued here: paho sends the PUBACK when this returns, and the daemon's
        # consumer task also runs after it, so state and ack follow the PUBACK on the wire.
        if msg.topic == self.topics[Channel.CMD]:
            self.inbox.append(bytes(msg.payload))

    def _run_commands(self) -> None:
        inbox, self.inbox = self.inbox, []
        for payload in inbox:
            # the hub tells every speaker that comes online in no group to leave any it
            # kept (groups, issue 19): not one of the bench's commands
            if b'"type":"leave_group"' not in payload:
                self.counters.commands += 1
            self._emit(self.controller.handle_bytes(payload))

    def _on_track_ended(self, uri: str) -> None:
        self._emit(self.controller.track_ended(uri))
        self.pump.flush()  # called from a timer, not from a read: nothing else flushes

    def _emit(self, outcome: Outcome) -> None:
        # State before ack, as device/service.py: whoever sees the ack finds the state there.
        if outcome.state is not None:
            self._publish(Channel.STATE, encode(outcome.state), retain=True)
        if outcome.ack is not None:
            self._publish(Channel.ACK, encode(outcome.ack))
        for event in outcome.events:
            self._publish(Channel.EVENTS, encode(event))

    def _publish(self, channel: Channel, payload: bytes, *, retain: bool = False) -> None:
        self.client.publish(self.topics[channel], payload, qos=1, retain=retain)

    def disconnect(self) -> None:
        self.stopping = True
        self.pump.disconnect()


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    port: int
    batch: int
    ca_pem: str = ""  # the hub's CA, pinned: MQTT over TLS; empty: plain MQTT


def worker_main(conn: Connection, specs: list[Spec], cfg: WorkerConfig) -> None:
    """Entry point of a speaker worker process (multiprocessing, spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us in order on Ctrl-C
    try:
        asyncio.run(_worker(conn, specs, cfg))
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"worker crashed: {type(exc).__name__}: {exc}"))


async def _connect_all(
    conn: Connection, speakers: list[VirtualSpeaker], counters: WorkerCounters, cfg: WorkerConfig
) -> None:
    """Connect in batches of ``cfg.batch``, each awaited (CONNACK) before the next."""
    done = 0
    for start in range(0, len(speakers), cfg.batch):
        group = speakers[start : start + cfg.batch]
        for speaker in group:
            try:
                speaker.pump.connect(HOST, cfg.port)
            except OSError as exc:
                conn.send(("error", f"{speaker.id}: cannot connect to the broker: {exc}"))
                return
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*(s.connected for s in group)), timeout=20
            )
        except TimeoutError:
            conn.send(("error", f"no CONNACK within 20 s for a batch of {len(group)}"))
            return
        if not all(results):
            conn.send(("error", f"broker refused {counters.refused} speaker login(s)"))
            return
        done += len(group)
        conn.send(("progress", done))
    conn.send(("connected", done))


async def _worker(conn: Connection, specs: list[Spec], cfg: WorkerConfig) -> None:
    loop = asyncio.get_running_loop()
    counters = WorkerCounters()
    tls = pinned_context(cfg.ca_pem) if cfg.ca_pem else None
    speakers = [VirtualSpeaker(i, s, loop, counters, tls) for i, s in specs]
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def drain() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone: stop
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), drain)
    tasks = [asyncio.create_task(keep_alive([s.pump for s in speakers]))]
    conn.send(("ready", len(speakers)))
    try:
        while True:
            message = await inbox.get()
            match message[0]:
                case "connect":
                    tasks.append(asyncio.create_task(_connect_all(conn, speakers, counters, cfg)))
                case "stats":
                    stats = {
                        "commands": counters.commands,
                        "unexpected_disconnects": counters.unexpected_disconnects,
                        "errors": counters.errors[:5],
                    }
                    conn.send(("stats", stats))
                case "stop":
                    break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for speaker in speakers:
            speaker.disconnect()
        with contextlib.suppress(OSError):
            conn.send(("stopped",))


# --- in the parent --------------------------------------------------------------------


class WorkerHandle:
    """A speaker worker process and its pipe, read from the parent's event loop."""

    def __init__(self, ctx: Any, index: int, specs: list[Spec], cfg: WorkerConfig) -> None:
        self.index = index
        parent_conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main,
            args=(child_conn, specs, cfg),
            name=f"legato-bench-speakers-{index}",
            daemon=True,  # multiprocessing kills it if we die unexpectedly
        )
        self.proc.start()
        child_conn.close()
        self.conn: Connection = parent_conn
        self.ready = False
        self.connected = 0
        self.connected_at: float | None = None
        self.error: str | None = None
        self.stopped = False
        self._stats: asyncio.Future[dict[str, Any]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.conn.fileno(), self._drain)

    def _drain(self) -> None:
        try:
            while self.conn.poll():
                self._handle(self.conn.recv())
        except (EOFError, OSError):
            assert self._loop is not None
            self._loop.remove_reader(self.conn.fileno())
            if not self.stopped and self.error is None:
                self.error = f"speaker worker {self.index} exited unexpectedly"

    def _handle(self, message: tuple[Any, ...]) -> None:
        match message[0]:
            case "ready":
                self.ready = True
            case "progress":
                self.connected = int(message[1])
            case "connected":
                self.connected = int(message[1])
                self.connected_at = time.perf_counter()
            case "stats":
                if self._stats is not None and not self._stats.done():
                    self._stats.set_result(dict(message[1]))
            case "error":
                self.error = self.error or str(message[1])
            case "stopped":
                self.stopped = True

    def check(self) -> None:
        if self.error is not None:
            raise BenchError(self.error)

    def send(self, *message: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(message)

    async def stats(self, timeout_s: float = 10) -> dict[str, Any]:
        assert self._loop is not None
        self._stats = self._loop.create_future()
        self.send("stats")
        try:
            return await asyncio.wait_for(self._stats, timeout_s)
        except TimeoutError:
            raise BenchError(f"speaker worker {self.index} did not report its counters") from None

    def stop(self) -> None:
        """Ask it to disconnect its speakers and exit; terminate, then kill, if it does not."""
        if self._loop is not None:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self.conn.fileno())
        self.stopped = True
        self.send("stop")
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self.conn.close()


def check_workers(workers: list[WorkerHandle]) -> None:
    for w in workers:
        w.check()


async def start_workers(
    stack: contextlib.AsyncExitStack, specs: list[Spec], count: int, cfg: WorkerConfig
) -> list[WorkerHandle]:
    """Spawn ``count`` workers (they import no hub code, so start small), each with an
    equal share of ``specs``, and wait until every one is ready to connect."""
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    workers: list[WorkerHandle] = []
    for index in range(count):
        share = specs[index::count]
        if share:
            worker = WorkerHandle(ctx, index, share, cfg)
            stack.callback(worker.stop)
            worker.attach(loop)
            workers.append(worker)

    def ready() -> bool:
        check_workers(workers)
        return all(w.ready for w in workers)

    if not await poll_until(ready, 60, interval_s=0.02):
        raise BenchError("speaker workers did not start within 60 s")
    return workers
