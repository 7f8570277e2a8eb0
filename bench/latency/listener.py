"""The hub's clients: a Connect WebSocket session, as a listener's app, and an HTTP poller.

Both watch onboarding (how many speakers the hub shows online, and when all of them);
the WebSocket session also sends commands and times the state pushes that answer them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from .common import BenchError
from .states import StateTracker

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

MiB = 1024 * 1024


class OnlineWatch:
    """How many speakers the hub shows online, from its latest device list."""

    def __init__(self) -> None:
        self.online = 0
        self.expect_online = 0
        self.all_online_at: float | None = None  # perf_counter seconds
        self.all_online = asyncio.Event()
        self.devices_messages = 0  # device lists pushed on a WebSocket (none when polling)
        self.last_devices = '{"devices":[]}'
        self.failure: str | None = None
        self._task: asyncio.Task[None] | None = None

    def online_ids(self) -> list[str]:
        """Ids marked online in the last device list (parsed once, after onboarding)."""
        devices = json.loads(self.last_devices).get("devices", [])
        return [str(d["id"]) for d in devices if d.get("is_online")]

    def _saw_devices(self, text: str, now_s: float) -> None:
        # Counted, not parsed: at 1,000 speakers each list is ~250 kB and the hub sends
        # one per status change; parsing them would make this client, not the hub, the
        # slow part of the onboarding figure.
        self.online = text.count('"is_online":true')
        self.last_devices = text
        if self.expect_online and self.online >= self.expect_online:
            if self.all_online_at is None:
                self.all_online_at = now_s
            self.all_online.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class Listener(OnlineWatch):
    """A Connect WebSocket client, as a listener's app: sends commands, times state pushes."""

    def __init__(self, url: str, *, compression: bool) -> None:
        super().__init__()
        self.url = url
        self.compression = compression
        self.ws: ClientConnection | None = None
        self.states = StateTracker()
        self._results: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = {}
        self._seq = 0

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
        self._task = asyncio.create_task(self._read(), name="listener-read")

    async def close(self) -> None:
        await super().close()
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
                    self.devices_messages += 1
                    self._saw_devices(text, now_ns / 1e9)
                else:
                    self._dispatch(json.loads(text), now_ns)
        except Exception as exc:
            self._fail(f"the Connect WebSocket failed: {type(exc).__name__}: {exc}")
            raise
        self._fail("the hub closed the Connect WebSocket")

    def _dispatch(self, msg: dict[str, Any], now_ns: int) -> None:
        kind = msg.get("type")
        if kind == "state":
            state = msg["state"]
            self.states.saw(
                str(msg["device_id"]), int(state["revision"]), int(state["volume_percent"]), now_ns
            )
        elif kind == "result":
            future = self._results.get(str(msg.get("request_id")))
            if future is not None and not future.done():
                future.set_result((now_ns, msg))
        elif kind == "error":
            self._fail(f"the hub sent an error: {msg.get('error')}")

    def _fail(self, why: str) -> None:
        self.failure = self.failure or why
        exc = BenchError(why)
        self.states.fail_all(exc)
        for future in self._results.values():
            if not future.done():
                future.set_exception(exc)

    async def command(self, device_id: str, timeout_s: float) -> tuple[int, int]:
        """One volume command; returns (ns to the new state push, ns to the result)."""
        assert self.ws is not None
        if self.failure:
            raise BenchError(self.failure)
        self._seq += 1
        request_id = f"r{self._seq}"
        volume, state = self.states.expect_change(device_id)
        result: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
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
            state_ns = await asyncio.wait_for(state, remaining)
        except TimeoutError:
            raise BenchError(
                f"command {request_id} to {device_id} not answered within {timeout_s:g} s"
            ) from None
        finally:
            del self._results[request_id]
            self.states.done(device_id, state)
        return state_ns - sent_ns, result_ns - sent_ns


class DevicePoller(OnlineWatch):
    """Watches onboarding through ``GET /v1/me/player/devices`` instead of a WebSocket."""

    def __init__(self, base: str, token: str) -> None:
        super().__init__()
        self.base = base
        self.token = token

    async def open(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="device-poller")

    async def _poll(self) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx.AsyncClient(
            base_url=self.base, headers=headers, timeout=10, trust_env=False
        ) as http:
            while True:  # until cancelled, or all online
                try:
                    r = await http.get("/v1/me/player/devices")
                    r.raise_for_status()
                except httpx.HTTPError as exc:
                    self.failure = f"GET /v1/me/player/devices: {exc}"
                    return
                self._saw_devices(r.text, time.perf_counter())
                if self.all_online.is_set():
                    return
                await asyncio.sleep(0.1)
