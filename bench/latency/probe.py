"""The baseline: the raw MQTT round trip on the same broker, without the hub in the path."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode

from connect_protocol.codec import encode
from connect_protocol.messages import SetVolume
from connect_protocol.tls import pinned_context
from connect_protocol.topics import Channel, all_devices_filter, device_topic, parse_device_topic

from .common import HOST, BenchError, poll_until
from .pump import LoopPump, keep_alive, new_client
from .states import StateTracker


class RawProbe:
    """Publishes a command straight to a speaker's cmd topic and waits for its state.

    Logs in as its own bench-only user (see ``system.add_probe_login``); the path is
    broker -> speaker -> broker, with the hub still connected but not in between.  Over
    TLS (``ca_pem``: the hub's CA, pinned) as the speakers and the hub are.
    """

    def __init__(self, port: int, username: str, secret: str, ca_pem: str = "") -> None:
        loop = asyncio.get_running_loop()
        self.port = port
        self.errors: list[str] = []
        client = new_client(username, secret, pinned_context(ca_pem) if ca_pem else None)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client
        self.pump = LoopPump(client, loop, self.errors)
        self.subscribed: asyncio.Future[None] = loop.create_future()
        self.states = StateTracker()
        self._ack_waiter: tuple[str, asyncio.Future[dict[str, Any]]] | None = None
        self._seq = 0
        self._keep_alive: asyncio.Task[None] | None = None

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
            self.states.saw(parsed.device_id, revision, volume, now_ns)
        elif parsed.channel is Channel.ACK:
            a = self._ack_waiter
            if a and body.get("id") == a[0] and not a[1].done():
                a[1].set_result(body)

    async def start(self, expect_states: int, timeout_s: float = 30) -> None:
        """Connect, subscribe, and wait for the retained state of every speaker."""
        self.pump.connect(HOST, self.port)
        self._keep_alive = asyncio.create_task(keep_alive([self.pump]))
        try:
            await asyncio.wait_for(self.subscribed, timeout_s)
        except TimeoutError:
            raise BenchError(
                f"raw probe not subscribed within {timeout_s} s {self.errors}"
            ) from None
        revisions = self.states.revisions
        if not await poll_until(lambda: len(revisions) >= expect_states, timeout_s):
            raise BenchError(f"raw probe saw {len(revisions)}/{expect_states} retained states")

    async def command(self, device_id: str, timeout_s: float) -> int:
        """One volume command straight over MQTT; returns ns to the new state message."""
        self._seq += 1
        command_id = f"raw-{self._seq}"
        volume, state = self.states.expect_change(device_id)
        ack: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
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
            self.states.done(device_id, state)
            self._ack_waiter = None
        if not body.get("ok"):
            raise BenchError(f"raw command to {device_id} refused: {body}")
        return state_ns - sent_ns

    async def stop(self) -> None:
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            await asyncio.gather(self._keep_alive, return_exceptions=True)
        self.pump.disconnect()
