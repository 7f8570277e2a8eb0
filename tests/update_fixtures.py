"""Test helpers for the speaker's updates: a real wheel of this checkout at another version,
its signed bundle, and a small hub-like HTTP server (``http.server`` on loopback) that
offers it and serves it with Range support, optionally cutting the connection short.

Plain functions and classes, no pytest: ``from tests.update_fixtures import ...``.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from releases import bundle
from releases.signing import ReleaseKey
from tests.release_fixtures import Variant, WheelShop


def make_bundle(out_dir: Path, wheel: Path, key: ReleaseKey) -> Path:
    out = out_dir / bundle.bundle_name(wheel.name.split("-")[1])
    bundle.make(out, wheel, "paho-mqtt==2.1.0\n", key, notes="test release")
    return out


@dataclass(frozen=True)
class Release:
    """A signed bundle of a real wheel of this checkout."""

    wheel: Path
    bundle: Path
    key: ReleaseKey
    body: bytes

    @classmethod
    def build(cls, work: Path, version: str) -> Release:
        wheel = WheelShop(work).wheel(Variant(version))
        key = ReleaseKey.generate()
        path = make_bundle(work, wheel, key)
        return cls(wheel, path, key, path.read_bytes())


@dataclass
class Served:
    """What the hub serves and what it saw."""

    device_id: str
    secret: str
    offer: dict[str, object] | None = None
    bundles: dict[str, bytes] = field(default_factory=dict)  # version -> body
    #: cut the connection after this many body bytes, for the next N bundle requests
    cut_after: int | None = None
    cuts_left: int = 0
    ranges: list[str | None] = field(default_factory=list)  # Range of each bundle request
    bytes_sent: int = 0
    update_checks: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # kept alive, as the hub's
    timeout = 10  # an idle kept-alive connection ends its thread by then at the latest
    served: Served

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorised(self) -> bool:
        s = self.served
        token = base64.b64encode(f"{s.device_id}:{s.secret}".encode()).decode()
        return self.headers.get("Authorization") == f"Basic {token}"

    def _answer(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        s = self.served
        if not self._authorised():
            self._answer(401, b'{"error": "who are you"}')
            return
        if self.path == f"/v1/devices/{s.device_id}/update":
            with s.lock:
                s.update_checks += 1
                offer = s.offer
            if offer is None:
                self._answer(204)
            else:
                self._answer(200, json.dumps(offer).encode(), {"Content-Type": "application/json"})
            return
        found = re.fullmatch(r"/v1/releases/([^/]+)/bundle", self.path)
        body = s.bundles.get(found[1]) if found else None
        if body is None:
            self._answer(404, b'{"error": "no such release"}')
            return
        self._bundle(body)

    def _bundle(self, body: bytes) -> None:
        s = self.served
        asked = self.headers.get("Range")
        start = 0
        with s.lock:
            s.ranges.append(asked)
            cut = s.cut_after if s.cuts_left > 0 else None
            if cut is not None:
                s.cuts_left -= 1
        if asked:
            start = int(re.fullmatch(r"bytes=(\d+)-", asked)[1])  # type: ignore[index]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        part = body[start:]
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if cut is not None and cut < len(part):
            self.wfile.write(part[:cut])
            self.wfile.flush()
            with s.lock:
                s.bytes_sent += cut
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(part)
        with s.lock:
            s.bytes_sent += len(part)


class HubStandIn:
    """``http.server`` on 127.0.0.1 in a thread, answering as the hub would."""

    def __init__(self, served: Served) -> None:
        handler = type("Handler", (_Handler,), {"served": served})
        self.served = served
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-hub-http")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()  # joins the connections' threads
        self.thread.join(10)


def offer_for(path: Path, version: str, body: bytes | None = None) -> dict[str, object]:
    import hashlib

    data = path.read_bytes() if body is None else body
    return {
        "version": version,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "url": f"/v1/releases/{version}/bundle",
    }
