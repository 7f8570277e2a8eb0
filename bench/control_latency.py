"""Control-path latency: listener command -> hub -> Mosquitto -> speaker -> new state back.

Why this exists: the issue sets a target of p99 <= 30 ms from a listener's command to the
new state at 1,000 speakers on loopback.  This measures exactly that path with real parts
(Mosquitto 2, the hub as ``python -m hub serve``, the Connect WebSocket) and, in the same
run, the raw MQTT round trip on the same broker without the hub, so the report shows what
the hub adds (benchmark policy: a baseline measured alongside).

Layout, all on 127.0.0.1 and under one temporary directory:

* Mosquitto with one provisioned login per speaker, as ``legato-hub device add`` makes;
* the hub process, on that broker;
* N virtual speakers in W worker processes (spawn).  A worker drives all of its paho
  clients from one thread: its asyncio loop watches every client socket and calls paho's
  external-loop API (``loop_read``/``loop_write``/``want_write``/``loop_misc``), so there is
  no network thread per client.  Each speaker runs the real speaker logic
  (``decode_command`` -> ``Controller`` -> ``ClockEngine``) and publishes like
  ``device/service.py``: retained status and state on connect; per command state
  (retained), then ack, then events;
* this process: the listener on the Connect WebSocket, and the raw-MQTT baseline client.

Run: ``make bench BENCH_ARGS="--speakers 1000"`` (see ``--help``).  It exits non-zero only
when something fails (a command refused or timed out, a speaker dropped); missing the
latency target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import json
import math
import multiprocessing
import os
import platform
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from connect_protocol.codec import encode
from connect_protocol.messages import DeviceInfo, SetVolume
from connect_protocol.topics import (
    HUB_USERNAME,
    Channel,
    all_devices_filter,
    device_topic,
    parse_device_topic,
)
from device.controller import Controller, Outcome
from device.engine import ClockEngine

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
LISTENER = "listener"
PASSWORD = "bench-listener-password"
TARGET_P99_MS = 30.0
TARGET_SPEAKERS = 1000
KEEPALIVE_S = 30
MiB = 1024 * 1024


class BenchError(Exception):
    """The run cannot produce valid figures (a command failed, a part did not start)."""


# --- small helpers ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def proc_rss_mib(pid: int) -> float:
    """Resident set size from /proc (what the issue asks for: VmRSS)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Percentiles in milliseconds (nearest-rank), over ``n`` samples."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, samples_ns: Sequence[int]) -> LatencyStats:
        if not samples_ns:
            return cls(0, math.nan, math.nan, math.nan, math.nan, math.nan)
        ms = sorted(s / 1e6 for s in samples_ns)

        def pct(p: float) -> float:
            return ms[max(0, math.ceil(p / 100 * len(ms)) - 1)]

        return cls(len(ms), pct(50), pct(90), pct(99), ms[-1], sum(ms) / len(ms))


# --- the virtual speakers (worker processes) ----------------------------------------


class LoopPump:
    """Runs one paho client on the running asyncio loop, with no network thread.

    Reads when the socket is readable; writes at once after every read (publishes made in
    paho callbacks are only queued), and watches for writability only while the kernel
    buffer is full.  That keeps it to the syscalls paho itself needs.
    """

    __slots__ = ("_sock", "_writing", "client", "errors", "loop")

    def __init__(
        self, client: paho.Client, loop: asyncio.AbstractEventLoop, errors: list[str]
    ) -> None:
        self.client = client
        self.loop = loop
        self.errors = errors
        self._sock: Any = None
        self._writing = False
        client.on_socket_close = self._on_socket_close

    @property
    def attached(self) -> bool:
        return self._sock is not None

    def connect(self, host: str, port: int) -> None:
        """TCP connect and send CONNECT (blocking only for a loopback connect())."""
        self.client.connect(host, port, KEEPALIVE_S)
        self._sock = self.client.socket()
        self.loop.add_reader(self._sock, self._readable)
        self.flush()

    def _readable(self) -> None:
        try:
            self.client.loop_read()
            self.flush()
        except Exception as exc:  # a bug in a callback: report it, keep the worker up
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _writable(self) -> None:
        self.client.loop_write()
        self.flush()

    def flush(self) -> None:
        client = self.client
        if client.want_write():
            client.loop_write()
        want = self._sock is not None and client.want_write()
        if want != self._writing:
            if want:
                self.loop.add_writer(self._sock, self._writable)
            else:
                self.loop.remove_writer(self._sock)
            self._writing = want

    def misc(self) -> None:
        """Keepalive pings; paho wants this about once a second."""
        if self._sock is not None:
            self.client.loop_misc()
            self.flush()

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        self.loop.remove_reader(sock)
        if self._writing:
            self.loop.remove_writer(sock)
            self._writing = False
        self._sock = None


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
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"speaker-{device_id}",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        client.username_pw_set(device_id, secret)
        offline = encode(dataclasses.replace(self.info, online=False))
        client.will_set(self.topics[Channel.STATUS], offline, qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        self.pump = LoopPump(client, loop, counters.errors)
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
        if msg.topic != self.topics[Channel.CMD]:
            return
        self.counters.commands += 1
        self._emit(self.controller.handle_bytes(bytes(msg.payload)))

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
        if self.pump.attached:
            self.client.disconnect()
            self.pump.flush()


def worker_main(conn: Connection, specs: list[tuple[str, str]], port: int, batch: int) -> None:
    """Entry point of a speaker worker process (multiprocessing, spawn)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us in order on Ctrl-C
    try:
        asyncio.run(_worker(conn, specs, port, batch))
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", f"worker crashed: {type(exc).__name__}: {exc}"))


async def _worker(conn: Connection, specs: list[tuple[str, str]], port: int, batch: int) -> None:
    loop = asyncio.get_running_loop()
    counters = WorkerCounters()
    speakers = [VirtualSpeaker(i, s, loop, counters) for i, s in specs]
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def drain() -> None:
        try:
            while conn.poll():
                inbox.put_nowait(conn.recv())
        except (EOFError, OSError):  # the parent is gone: stop
            loop.remove_reader(conn.fileno())
            inbox.put_nowait(("stop",))

    loop.add_reader(conn.fileno(), drain)

    async def keepalive() -> None:
        while True:
            await asyncio.sleep(1.0)
            for speaker in speakers:
                speaker.pump.misc()

    async def connect_all() -> None:
        done = 0
        for group in chunks(speakers, batch):
            for speaker in group:
                try:
                    speaker.pump.connect(HOST, port)
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

    tasks = [asyncio.create_task(keepalive())]
    conn.send(("ready", len(speakers)))
    try:
        while True:
            message = await inbox.get()
            match message[0]:
                case "connect":
                    tasks.append(asyncio.create_task(connect_all()))
                case "stats":
                    conn.send(
                        (
                            "stats",
                            {
                                "commands": counters.commands,
                                "unexpected_disconnects": counters.unexpected_disconnects,
                                "errors": counters.errors[:5],
                                "error_count": len(counters.errors),
                            },
                        )
                    )
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


# --- the parent: processes ---------------------------------------------------------


class WorkerHandle:
    """A speaker worker process and its pipe, read from the parent's event loop."""

    def __init__(
        self,
        ctx: Any,
        index: int,
        specs: list[tuple[str, str]],
        port: int,
        batch: int,
    ) -> None:
        self.index = index
        self.size = len(specs)
        parent_conn, child_conn = ctx.Pipe()
        self.proc = ctx.Process(
            target=worker_main,
            args=(child_conn, specs, port, batch),
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


def start_hub(data: Path, port: int, mqtt_port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["LEGATO_MDNS_INTERFACES"] = HOST
    env["PYTHONUNBUFFERED"] = "1"
    with log.open("wb") as fh:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hub",
                "serve",
                "--data",
                str(data),
                "--port",
                str(port),
                "--broker-url",
                f"mqtt://{HOST}:{mqtt_port}",
                "--no-mdns",
                "--log-level",
                "WARNING",
            ],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the hub in order
        )


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def log_tail(path: Path, limit: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


# --- the parent: clients -------------------------------------------------------------


@dataclass(slots=True)
class _Waiter:
    volume: int
    after_revision: int
    future: asyncio.Future[int]


class Listener:
    """A Connect WebSocket client, as a listener's app: sends commands, times state pushes."""

    def __init__(self, url: str, *, compression: bool) -> None:
        self.url = url
        self.compression = compression
        self.ws: ClientConnection | None = None
        self.online = 0
        self.expect_online = 0
        self.all_online_at: float | None = None
        self.all_online = asyncio.Event()
        self.devices_messages = 0
        self.revisions: dict[str, int] = {}
        self.volumes: dict[str, int] = {}
        self._state_waiters: dict[str, _Waiter] = {}
        self._results: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self._seq = 0
        self._reader: asyncio.Task[None] | None = None
        self.failure: str | None = None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.ws = await connect(
            self.url,
            compression="deflate" if self.compression else None,
            max_size=256 * MiB,
            max_queue=None,  # never push back on the hub: we read as fast as we can
            ping_interval=None,
            open_timeout=15,
            proxy=None,
        )
        self._reader = asyncio.create_task(self._read(), name="listener-read")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for raw in self.ws:
                now_ns = time.perf_counter_ns()
                text = raw if isinstance(raw, str) else raw.decode()
                if text.startswith('{"type":"devices"'):
                    # Counted, not parsed: at 1,000 speakers each of these is ~250 kB and
                    # the hub sends one per status change; parsing them would make this
                    # client, not the hub, the slow part of the onboarding figure.
                    self.devices_messages += 1
                    self.online = text.count('"is_online":true')
                    if self.expect_online and self.online >= self.expect_online:
                        if self.all_online_at is None:
                            self.all_online_at = now_ns / 1e9
                        self.all_online.set()
                    continue
                self._dispatch(json.loads(text), now_ns)
        except Exception as exc:
            self._fail(f"the Connect WebSocket failed: {type(exc).__name__}: {exc}")
            raise
        self._fail("the hub closed the Connect WebSocket")

    def _dispatch(self, msg: dict[str, Any], now_ns: int) -> None:
        kind = msg.get("type")
        if kind == "state":
            device_id = str(msg["device_id"])
            revision = int(msg["state"]["revision"])
            volume = int(msg["state"]["volume_percent"])
            if revision >= self.revisions.get(device_id, -1):
                self.revisions[device_id] = revision
                self.volumes[device_id] = volume
            waiter = self._state_waiters.get(device_id)
            if (
                waiter is not None
                and volume == waiter.volume
                and revision > waiter.after_revision
                and not waiter.future.done()
            ):
                waiter.future.set_result(now_ns)
        elif kind == "result":
            future = self._results.get(str(msg.get("request_id")))
            if future is not None and not future.done():
                future.set_result((now_ns, msg))
        elif kind == "error":
            self._fail(f"the hub sent an error: {msg.get('error')}")

    def _fail(self, why: str) -> None:
        self.failure = self.failure or why
        exc = BenchError(why)
        for waiter in self._state_waiters.values():
            if not waiter.future.done():
                waiter.future.set_exception(exc)
        for future in self._results.values():
            if not future.done():
                future.set_exception(exc)

    def next_volume(self, device_id: str) -> int:
        return (self.volumes.get(device_id, 50) + 7) % 101

    async def command(self, device_id: str, timeout_s: float) -> tuple[int, int]:
        """One volume command; returns (ns to the new state push, ns to the result)."""
        assert self.ws is not None
        if self.failure:
            raise BenchError(self.failure)
        loop = asyncio.get_running_loop()
        self._seq += 1
        request_id = f"r{self._seq}"
        volume = self.next_volume(device_id)
        waiter = _Waiter(volume, self.revisions.get(device_id, -1), loop.create_future())
        result: asyncio.Future[tuple[int, dict[str, Any]]] = loop.create_future()
        self._state_waiters[device_id] = waiter
        self._results[request_id] = result
        text = json.dumps(
            {
                "type": "command",
                "request_id": request_id,
                "action": "volume",
                "device_id": device_id,
                "volume_percent": volume,
            },
            separators=(",", ":"),
        )
        try:
            sent_ns = time.perf_counter_ns()
            await self.ws.send(text)
            result_ns, body = await asyncio.wait_for(result, timeout_s)
            if not body.get("ok"):
                raise BenchError(f"command to {device_id} failed: {body.get('error')}")
            remaining = max(0.1, timeout_s - (time.perf_counter_ns() - sent_ns) / 1e9)
            state_ns = await asyncio.wait_for(waiter.future, remaining)
        except TimeoutError:
            raise BenchError(
                f"command {request_id} to {device_id} not answered within {timeout_s:g} s"
            ) from None
        finally:
            del self._results[request_id]
            if self._state_waiters.get(device_id) is waiter:
                del self._state_waiters[device_id]
        return state_ns - sent_ns, result_ns - sent_ns


class RawProbe:
    """The baseline: publish a command straight to a speaker's cmd topic, wait for its state.

    Logs in with the hub's broker credentials (only the hub role may publish commands) under
    its own client id; the path is broker -> speaker -> broker, no hub in between.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int, secret: str) -> None:
        self.loop = loop
        self.port = port
        self.errors: list[str] = []
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id="legato-bench-raw-probe",
            protocol=paho.MQTTv311,
            clean_session=True,
        )
        client.username_pw_set(HUB_USERNAME, secret)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client
        self.pump = LoopPump(client, loop, self.errors)
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.revisions: dict[str, int] = {}
        self.volumes: dict[str, int] = {}
        self._state_waiter: tuple[str, int, int, asyncio.Future[int]] | None = None
        self._ack_waiter: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._seq = 0
        self._misc: asyncio.Task[None] | None = None

    def _on_connect(
        self, client: paho.Client, _ud: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.errors.append(f"raw probe refused by the broker: {reason}")
            return
        client.subscribe(
            [(all_devices_filter(Channel.STATE), 1), (all_devices_filter(Channel.ACK), 1)]
        )

    def _on_subscribe(self, *_args: Any) -> None:
        if not self.subscribed.done():
            self.subscribed.set_result(None)

    def _on_message(self, _client: paho.Client, _ud: Any, msg: paho.MQTTMessage) -> None:
        now_ns = time.perf_counter_ns()
        parsed = parse_device_topic(msg.topic)
        if parsed is None:
            return
        body = json.loads(msg.payload)
        if parsed.channel is Channel.STATE:
            revision, volume = int(body["revision"]), int(body["volume_percent"])
            if revision >= self.revisions.get(parsed.device_id, -1):
                self.revisions[parsed.device_id] = revision
                self.volumes[parsed.device_id] = volume
            w = self._state_waiter
            matches = w and w[0] == parsed.device_id and volume == w[1] and revision > w[2]
            if w and matches and not w[3].done():
                w[3].set_result(now_ns)
        elif parsed.channel is Channel.ACK:
            a = self._ack_waiter
            if a and body.get("id") == a[0] and not a[1].done():
                a[1].set_result(body)

    async def start(self, expect_states: int, timeout_s: float = 30) -> None:
        self.pump.connect(HOST, self.port)

        async def misc() -> None:
            while True:
                await asyncio.sleep(1.0)
                self.pump.misc()

        self._misc = asyncio.create_task(misc())
        try:
            await asyncio.wait_for(self.subscribed, timeout_s)
        except TimeoutError:
            raise BenchError(
                f"raw probe not subscribed within {timeout_s} s {self.errors}"
            ) from None
        deadline = time.monotonic() + timeout_s
        while len(self.revisions) < expect_states:  # the retained states, one per speaker
            if time.monotonic() > deadline:
                raise BenchError(
                    f"raw probe saw {len(self.revisions)}/{expect_states} retained states"
                )
            await asyncio.sleep(0.05)

    async def command(self, device_id: str, timeout_s: float) -> int:
        """One volume command straight over MQTT; returns ns to the new state message."""
        self._seq += 1
        command_id = f"raw-{self._seq}"
        volume = (self.volumes.get(device_id, 50) + 7) % 101
        state: asyncio.Future[int] = self.loop.create_future()
        ack: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._state_waiter = (device_id, volume, self.revisions.get(device_id, -1), state)
        self._ack_waiter = (command_id, ack)
        payload = encode(SetVolume(id=command_id, volume_percent=volume))
        try:
            sent_ns = time.perf_counter_ns()
            info = self.client.publish(device_topic(device_id, Channel.CMD), payload, qos=1)
            self.pump.flush()
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise BenchError(f"raw publish failed: {paho.error_string(info.rc)}")
            state_ns = await asyncio.wait_for(state, timeout_s)
            body = await asyncio.wait_for(ack, timeout_s)  # as the hub path: wait for the ack
        except TimeoutError:
            raise BenchError(
                f"raw command to {device_id} not answered in {timeout_s:g} s"
            ) from None
        finally:
            self._state_waiter = self._ack_waiter = None
        if not body.get("ok"):
            raise BenchError(f"raw command to {device_id} refused: {body}")
        return state_ns - sent_ns

    async def stop(self) -> None:
        if self._misc is not None:
            self._misc.cancel()
            await asyncio.gather(self._misc, return_exceptions=True)
        if self.pump.attached:
            self.client.disconnect()
            self.pump.flush()


# --- the run ------------------------------------------------------------------------------


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


class Progress:
    """One progress line, rewritten in place on a terminal and throttled in a log."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last = 0.0

    def show(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.25 if self.tty else 2.0):
            return
        self.last = now
        if self.tty:
            print(f"\r{text:<100}", end="", flush=True)
        else:
            print(text, flush=True)

    def done(self) -> None:
        if self.tty:
            print(flush=True)


def device_order(ids: list[str], count: int, order: str, seed: int) -> Iterator[str]:
    rng = random.Random(seed)
    for k in range(count):
        yield ids[k % len(ids)] if order == "round-robin" else rng.choice(ids)


class CpuMeter:
    """CPU seconds used by each process between two readings."""

    def __init__(self, pids: dict[str, list[int]]) -> None:
        self.pids = pids
        self._start = self._read()
        self._t0 = time.perf_counter()

    def _read(self) -> dict[str, float]:
        out = {name: sum(proc_cpu_s(p) for p in pids) for name, pids in self.pids.items()}
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["client (this process)"] = usage.ru_utime + usage.ru_stime
        return out

    def stop(self) -> dict[str, float]:
        end = self._read()
        out = {name: round(end[name] - self._start[name], 3) for name in end}
        out["wall"] = round(time.perf_counter() - self._t0, 3)
        return out


async def run(opts: Options, root: Path) -> dict[str, Any]:
    """Set everything up, measure, and return the figures; cleanup is the caller's stack."""
    from hub import accounts, provisioning
    from hub.broker import MosquittoProcess, write_mosquitto_config
    from hub.server import open_database

    loop = asyncio.get_running_loop()
    result: dict[str, Any] = {}
    progress = Progress()
    async with contextlib.AsyncExitStack() as stack:
        # 1. accounts and one broker login per speaker, before the broker config is written
        t = time.perf_counter()
        data = root / "hub-data"
        db = open_database(data)
        accounts.add_user(db, LISTENER, PASSWORD)
        hub_secret = provisioning.hub_secret(db, data)
        ids = [f"bench-{i:04d}" for i in range(opts.speakers)]
        specs = [(i, provisioning.add_broker_user(db, i, "speaker")) for i in ids]
        mqtt_port, hub_port = free_port(), free_port()
        conf = write_mosquitto_config(
            root / "mosquitto", port=mqtt_port, users=provisioning.all_broker_users(db)
        )
        print(f"provisioned {opts.speakers} speaker logins in {time.perf_counter() - t:.1f} s")

        # 2. broker and hub
        broker = MosquittoProcess(conf, port=mqtt_port)
        broker.start()
        stack.callback(broker.stop)
        broker_pid = broker.pid or 0
        hub_log = root / "hub.log"
        hub = start_hub(data, hub_port, mqtt_port, hub_log)
        stack.callback(stop_process, hub)
        base = f"http://{HOST}:{hub_port}"
        token = await hub_token(base, hub, hub_log)
        print(f"hub pid {hub.pid} on :{hub_port}, mosquitto pid {broker_pid} on :{mqtt_port}")
        rss: dict[str, float] = {"hub_before_speakers_mib": proc_rss_mib(hub.pid)}

        # 3. speaker workers (spawned: they import no hub code, start small)
        ctx = multiprocessing.get_context("spawn")
        shares = [specs[w :: opts.workers] for w in range(opts.workers)]
        workers = [
            WorkerHandle(ctx, w, share, mqtt_port, opts.connect_batch)
            for w, share in enumerate(shares)
            if share
        ]
        for w in workers:
            stack.callback(w.stop)
            w.attach(loop)
        deadline = time.monotonic() + 60
        while not all(w.ready for w in workers):
            for w in workers:
                w.check()
            if time.monotonic() > deadline:
                raise BenchError("speaker workers did not start within 60 s")
            await asyncio.sleep(0.02)
        worker_pids = [w.pid for w in workers]

        # 4. onboarding, watched by a listener connected from the start (as an open app)
        ws_url = f"ws://{HOST}:{hub_port}/v1/connect/ws?access_token={token}"
        listener = Listener(ws_url, compression=opts.compression)
        await listener.open()
        stack.push_async_callback(listener.close)
        listener.expect_online = opts.speakers
        cpu = CpuMeter({"hub": [hub.pid], "mosquitto": [broker_pid], "speakers": worker_pids})
        t0 = time.perf_counter()
        for w in workers:
            w.send("connect")
        deadline = time.monotonic() + opts.online_timeout_s
        while not listener.all_online.is_set():
            for w in workers:
                w.check()
            check_alive(hub, hub_log)
            if listener.failure:
                raise BenchError(listener.failure)
            if time.monotonic() > deadline:
                raise BenchError(
                    f"only {listener.online}/{opts.speakers} speakers online at the hub after "
                    f"{opts.online_timeout_s:g} s ({sum(w.connected for w in workers)} connected "
                    "to the broker)"
                )
            progress.show(
                f"connecting speakers: {sum(w.connected for w in workers)}/{opts.speakers} "
                f"connected to the broker, {listener.online} online at the hub "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(listener.all_online.wait(), 0.05)
        assert listener.all_online_at is not None
        while not all(w.connected_at for w in workers):  # a worker reports just after its last
            for w in workers:
                w.check()
            if time.monotonic() > deadline:
                raise BenchError("speaker workers did not report their connections")
            await asyncio.sleep(0.01)
        broker_done = max(w.connected_at or 0 for w in workers)
        progress.show(
            f"connecting speakers: {opts.speakers}/{opts.speakers} connected, all online",
            force=True,
        )
        progress.done()
        result["onboarding"] = {
            "all_connected_to_broker_s": round(broker_done - t0, 3),
            "all_online_at_hub_s": round(listener.all_online_at - t0, 3),
            "devices_messages_pushed": listener.devices_messages,
            "cpu_s": cpu.stop(),
        }
        rss["hub_all_online_mib"] = proc_rss_mib(hub.pid)
        await listener.close()

        # 5. idle cost with every speaker connected (what the speaker workers cost at rest)
        cpu = CpuMeter({"hub": [hub.pid], "mosquitto": [broker_pid], "speakers": worker_pids})
        await asyncio.sleep(2.0)
        result["idle_cpu_s_over_2s"] = cpu.stop()

        # 6. baseline: raw MQTT round trip, no hub in the path
        probe = RawProbe(loop, mqtt_port, hub_secret)
        stack.push_async_callback(probe.stop)
        await probe.start(opts.speakers)
        raw_ns: list[int] = []
        cpu = CpuMeter({"hub": [hub.pid], "mosquitto": [broker_pid], "speakers": worker_pids})
        for k, device_id in enumerate(
            device_order(ids, opts.baseline_commands, opts.order, opts.seed)
        ):
            raw_ns.append(await probe.command(device_id, opts.timeout_s))
            if probe.errors:
                raise BenchError(f"raw probe: {probe.errors[0]}")
            progress.show(f"baseline (raw MQTT): {k + 1}/{opts.baseline_commands}")
        progress.show(f"baseline (raw MQTT): {len(raw_ns)} commands", force=True)
        progress.done()
        result["raw_cpu_s"] = cpu.stop()
        await probe.stop()
        result["raw"] = LatencyStats.of(raw_ns)

        # 7. through the hub, one command at a time
        listener = Listener(ws_url, compression=opts.compression)
        await listener.open()
        stack.push_async_callback(listener.close)
        deadline = time.monotonic() + 60
        while len(listener.revisions) < opts.speakers:  # the snapshot a new session gets
            if listener.failure or time.monotonic() > deadline:
                raise BenchError(
                    listener.failure
                    or f"the hub sent {len(listener.revisions)}/{opts.speakers} states"
                )
            await asyncio.sleep(0.05)
        hub_state_ns: list[int] = []
        hub_result_ns: list[int] = []
        cpu = CpuMeter({"hub": [hub.pid], "mosquitto": [broker_pid], "speakers": worker_pids})
        for k, device_id in enumerate(device_order(ids, opts.commands, opts.order, opts.seed)):
            state_ns, result_ns = await listener.command(device_id, opts.timeout_s)
            hub_state_ns.append(state_ns)
            hub_result_ns.append(result_ns)
            progress.show(f"through the hub: {k + 1}/{opts.commands}")
        progress.show(f"through the hub: {len(hub_state_ns)} commands", force=True)
        progress.done()
        result["hub_cpu_s"] = cpu.stop()
        result["hub"] = LatencyStats.of(hub_state_ns)
        result["hub_result"] = LatencyStats.of(hub_result_ns)

        # 8. through the hub, K commands in flight (never two on one speaker)
        if opts.concurrency > 1:
            cpu = CpuMeter({"hub": [hub.pid], "mosquitto": [broker_pid], "speakers": worker_pids})
            conc_state_ns, conc_result_ns, wall = await concurrent_phase(listener, ids, opts)
            result["hub_concurrent_cpu_s"] = cpu.stop()
            result["hub_concurrent"] = LatencyStats.of(conc_state_ns)
            result["hub_concurrent_result"] = LatencyStats.of(conc_result_ns)
            result["hub_concurrent_throughput_per_s"] = round(len(conc_state_ns) / wall, 1)

        # 9. the speakers' own count: every command reached a speaker once, none dropped
        stats = [await w.stats() for w in workers]
        handled = sum(s["commands"] for s in stats)
        drops = sum(s["unexpected_disconnects"] for s in stats)
        errors = [e for s in stats for e in s["errors"]]
        expected = opts.baseline_commands + opts.commands * (2 if opts.concurrency > 1 else 1)
        result["speaker_commands_handled"] = handled
        if errors or drops or handled != expected:
            raise BenchError(
                f"speakers handled {handled}/{expected} commands, {drops} dropped "
                f"connection(s), errors: {errors}"
            )
        check_alive(hub, hub_log)
        rss["hub_end_mib"] = proc_rss_mib(hub.pid)
        rss["mosquitto_end_mib"] = proc_rss_mib(broker_pid)
        rss["speaker_workers_end_mib"] = sum(proc_rss_mib(p) for p in worker_pids)
        result["rss"] = {k: round(v, 1) for k, v in rss.items()}
        warnings = [
            line
            for line in log_tail(hub_log, 200_000).splitlines()
            if " WARNING " in line or " ERROR " in line
        ]
        result["hub_log_warnings"] = len(warnings)
        result["hub_log_sample"] = warnings[:5]
    return result


async def concurrent_phase(
    listener: Listener, ids: list[str], opts: Options
) -> tuple[list[int], list[int], float]:
    """K clients' worth of commands in flight at once, each on a speaker no one else is using."""
    targets = device_order(ids, opts.commands, opts.order, opts.seed + 1)
    busy: set[str] = set()
    state_ns: list[int] = []
    result_ns: list[int] = []
    progress = Progress()

    def next_free() -> str | None:
        for device_id in targets:
            if device_id not in busy:
                return device_id
        return None  # skips count: a busy pick is dropped, keeping the loop bounded

    async def one_stream() -> None:
        while (device_id := next_free()) is not None:
            busy.add(device_id)
            try:
                s, r = await listener.command(device_id, opts.timeout_s)
            finally:
                busy.discard(device_id)
            state_ns.append(s)
            result_ns.append(r)
            progress.show(f"through the hub, {opts.concurrency} in flight: {len(state_ns)}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one_stream() for _ in range(opts.concurrency)))
    wall = time.perf_counter() - t0
    progress.show(f"through the hub, {opts.concurrency} in flight: {len(state_ns)}", force=True)
    progress.done()
    return state_ns, result_ns, wall


async def hub_token(base: str, hub: subprocess.Popen[bytes], log: Path) -> str:
    """Wait for /healthz, then get a listener token with the password grant."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=10, trust_env=False) as http:
        deadline = time.monotonic() + 30
        while True:
            check_alive(hub, log)
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/healthz")).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError(f"the hub was not healthy within 30 s:\n{log_tail(log)}")
            await asyncio.sleep(0.1)
        r = await http.post(
            "/api/token",
            data={"grant_type": "password", "username": LISTENER, "password": PASSWORD},
        )
        if r.status_code != 200:
            raise BenchError(f"POST /api/token: {r.status_code} {r.text}")
        return str(r.json()["access_token"])


def check_alive(hub: subprocess.Popen[bytes], log: Path) -> None:
    if hub.poll() is not None:
        raise BenchError(f"the hub exited with status {hub.returncode}:\n{log_tail(log)}")


# --- report ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    try:
        mosquitto = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        mosquitto = "mosquitto (version unknown)"
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "broker": mosquitto,
    }


def _row(label: str, s: LatencyStats) -> str:
    return f"  {label:<40} {s.n:>6} {s.p50:>8.2f} {s.p90:>8.2f} {s.p99:>8.2f} {s.max:>8.2f}"


def _cpu_line(label: str, cpu: dict[str, float], commands: int) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != "wall")
    per = ""
    if commands:
        per_cmd = {k: v / commands * 1e3 for k, v in cpu.items() if k != "wall"}
        per = "; per command (ms): " + ", ".join(
            f"{k.split()[0]} {v:.2f}" for k, v in per_cmd.items()
        )
    return f"  {label}: {parts} CPU-s in {cpu['wall']:.1f} s wall{per}"


def report(opts: Options, res: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Print the table and return the same figures as plain data for --json."""
    raw: LatencyStats = res["raw"]
    hub: LatencyStats = res["hub"]
    ratio_p50 = hub.p50 / raw.p50 if raw.p50 else math.nan
    ratio_p99 = hub.p99 / raw.p99 if raw.p99 else math.nan
    passed = hub.p99 <= TARGET_P99_MS
    onboarding = res["onboarding"]
    rss = res["rss"]
    print()
    print(
        f"Legato control-path latency — {opts.speakers} speakers, {opts.commands} commands "
        f"({opts.order}), {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    )
    print(
        f"machine: {info['cpus']} CPUs ({info['cpu_model'] or 'unknown model'}), Linux "
        f"{info['kernel']}, Python {info['python']}, {info['broker']}"
    )
    print(
        f"  note: the hub, Mosquitto, {opts.workers} speaker worker process(es) and this client "
        f"all share these {info['cpus']} CPUs on loopback"
    )
    print(
        f"  speakers: {opts.workers} spawned worker(s), each driving its paho clients from one "
        "asyncio loop (paho external-loop API, no thread per client); WebSocket compression "
        f"{'on (permessage-deflate, as browsers)' if opts.compression else 'off'}"
    )
    print()
    print(f"  {'latency, ms':<40} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    print(_row("raw MQTT: cmd -> state (no hub)", raw))
    print(_row("hub: WS command -> state push", hub))
    print(_row("hub: WS command -> result", res["hub_result"]))
    if "hub_concurrent" in res:
        print(_row(f"hub, {opts.concurrency} in flight: -> state push", res["hub_concurrent"]))
        print(_row(f"hub, {opts.concurrency} in flight: -> result", res["hub_concurrent_result"]))
    print()
    print(f"  hub overhead vs raw MQTT: p50 x{ratio_p50:.1f}, p99 x{ratio_p99:.1f}")
    if "hub_concurrent_throughput_per_s" in res:
        print(
            f"  throughput with {opts.concurrency} in flight: "
            f"{res['hub_concurrent_throughput_per_s']:.0f} commands/s"
        )
    scale_note = (
        ""
        if opts.speakers >= TARGET_SPEAKERS
        else f" (the target is stated for {TARGET_SPEAKERS} speakers; this run has {opts.speakers})"
    )
    print(
        f"  target p99 <= {TARGET_P99_MS:g} ms (command -> state push, one at a time): "
        f"{'PASS' if passed else 'FAIL'} at p99 {hub.p99:.2f} ms{scale_note}"
    )
    print()
    print(
        f"  onboarding: all {opts.speakers} connected to the broker in "
        f"{onboarding['all_connected_to_broker_s']:.2f} s; all online at the hub (as the "
        f"WebSocket shows) in {onboarding['all_online_at_hub_s']:.2f} s; the hub pushed "
        f"{onboarding['devices_messages_pushed']} full device lists"
    )
    print(
        f"  hub RSS: {rss['hub_before_speakers_mib']:.1f} MiB before speakers, "
        f"{rss['hub_all_online_mib']:.1f} MiB with all online, {rss['hub_end_mib']:.1f} MiB at "
        f"the end; mosquitto {rss['mosquitto_end_mib']:.1f} MiB; speaker workers "
        f"{rss['speaker_workers_end_mib']:.1f} MiB together"
    )
    print("  CPU seconds by phase:")
    print(_cpu_line("onboarding", onboarding["cpu_s"], 0))
    print(_cpu_line("idle, all connected", res["idle_cpu_s_over_2s"], 0))
    print(_cpu_line("raw MQTT baseline", res["raw_cpu_s"], opts.baseline_commands))
    print(_cpu_line("through the hub", res["hub_cpu_s"], opts.commands))
    if "hub_concurrent_cpu_s" in res:
        print(_cpu_line("hub, concurrent", res["hub_concurrent_cpu_s"], opts.commands))
    print(
        f"  speakers handled {res['speaker_commands_handled']} commands; hub log warnings: "
        f"{res['hub_log_warnings']}"
    )
    for line in res["hub_log_sample"]:
        print(f"    {line[:160]}")

    def plain(value: Any) -> Any:
        if isinstance(value, LatencyStats):
            return {k: round(v, 3) for k, v in dataclasses.asdict(value).items()}
        return value

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": info,
        "options": {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()
        },
        **{k: plain(v) for k, v in res.items()},
        "ratio_hub_over_raw": {"p50": round(ratio_p50, 2), "p99": round(ratio_p99, 2)},
        "target": {
            "p99_ms": TARGET_P99_MS,
            "at_speakers": TARGET_SPEAKERS,
            "measured_p99_ms": round(hub.p99, 3),
            "pass": passed,
        },
    }


# --- entry point ---------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        description="Control-path latency through the hub vs raw MQTT, with N virtual speakers."
    )
    p.add_argument("--speakers", type=int, default=200, help="virtual speakers (default 200)")
    p.add_argument("--commands", type=int, default=2000, help="commands via the hub (2000)")
    p.add_argument(
        "--baseline-commands", type=int, default=None, help="raw MQTT commands (= --commands)"
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="also run a phase with K commands in flight (default 1: one at a time only)",
    )
    p.add_argument("--workers", type=int, default=2, help="speaker worker processes (default 2)")
    p.add_argument(
        "--connect-batch", type=int, default=50, help="CONNECTs in flight per worker (50)"
    )
    p.add_argument("--order", choices=["round-robin", "random"], default="round-robin")
    p.add_argument("--seed", type=int, default=1, help="for --order random")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per command (10)")
    p.add_argument(
        "--online-timeout", type=float, default=180.0, help="seconds for all to be online"
    )
    p.add_argument(
        "--no-ws-compression",
        action="store_true",
        help="do not offer permessage-deflate on the WebSocket (browsers do)",
    )
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    a = p.parse_args(argv)
    for name in ("speakers", "commands", "concurrency", "workers", "connect_batch"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if a.speakers > 9999:
        p.error("--speakers is at most 9999")
    if a.concurrency > 64:
        p.error("--concurrency is at most 64 (the hub's in-flight limit per session)")
    if a.concurrency > a.speakers:
        p.error("--concurrency cannot exceed --speakers (one command per speaker at a time)")
    return Options(
        speakers=a.speakers,
        commands=a.commands,
        baseline_commands=a.baseline_commands if a.baseline_commands else a.commands,
        concurrency=a.concurrency,
        workers=min(a.workers, a.speakers),
        connect_batch=a.connect_batch,
        order=a.order,
        seed=a.seed,
        timeout_s=a.timeout,
        online_timeout_s=a.online_timeout,
        compression=not a.no_ws_compression,
        json_path=a.json,
        keep=a.keep,
    )


def raise_fd_limit(needed: int) -> None:
    """Mosquitto (a child: it inherits this) holds a socket per speaker."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if shutil.which("mosquitto") is None:
        print("control_latency: mosquitto is not installed (make system-deps)", file=sys.stderr)
        return 2
    raise_fd_limit(opts.speakers + 1024)
    info = machine()
    tmp = tempfile.mkdtemp(prefix="legato-bench-")
    root = Path(tmp)
    code = 1

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await run(opts, root)

    try:
        res = asyncio.run(guarded())
        figures = report(opts, res, info)
        if opts.json_path is not None:
            opts.json_path.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"\nwrote {opts.json_path}")
        code = 0
    except BenchError as exc:
        print(f"\ncontrol_latency: FAILED: {exc}", file=sys.stderr)
        print(f"  logs: {root} (kept)", file=sys.stderr)
        opts.keep = True
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ncontrol_latency: interrupted; everything it started is stopped", file=sys.stderr)
        code = 130
    finally:
        if opts.keep:
            print(f"  temporary files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
