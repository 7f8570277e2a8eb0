"""The hub's app served by uvicorn on loopback, in a thread: for tests of its HTTP routes
that need no broker (the relay points at a closed port and is never started)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from connect_protocol.mqtt import BrokerAddress
from hub.context import HubContext
from hub.db import Database
from hub.fleet.relay import Relay
from tests.brokers import free_port
from tests.system import wait_for


def offline_context(db: Database, data_dir: Path) -> HubContext:
    """A context whose relay has no broker: routes that relay commands answer 502/503."""
    return HubContext(
        data_dir=data_dir,
        db=db,
        relay=Relay(db, BrokerAddress(host="127.0.0.1", port=1, username="hub", password="-")),
        public_mqtt_host="127.0.0.1",
        public_mqtt_port=1,
    )


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a loopback port, in a thread, for the caller's duration."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), 15, "uvicorn to start")
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
