"""Bodies no one should be able to send: refused before they cost the hub anything.

A real hub process on loopback; the client speaks raw HTTP over a socket so the test
controls exactly how many bytes go out, and reads the hub's memory from /proc.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.accounts import users
from tests.system import System

pytestmark = [pytest.mark.integration]

ADMIN_PASSWORD = "operator-password"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    sysm = System(tmp_path_factory.mktemp("hostile"))
    users.add_user(sysm.db, "operator", ADMIN_PASSWORD, admin=True)
    with sysm.running():
        yield sysm


def hub_rss_kib(system: System) -> int:
    assert system.hub is not None
    status = Path(f"/proc/{system.hub.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def raw_request(system: System, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", system.hub_port), timeout=10)
    sock.sendall(head.encode())
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data or not data.endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def stream_until_refused(sock: socket.socket, limit: int) -> int:
    """Send chunked zeros until the hub answers or closes; how many bytes went out."""
    sent = 0
    chunk = b"0" * 65536
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sock.settimeout(0.2)
    while sent < limit:
        try:
            sock.sendall(frame)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            break
        sent += len(chunk)
        try:
            if sock.recv(1, socket.MSG_PEEK):
                break  # the answer is there: stop sending
        except TimeoutError:
            continue
        except ConnectionResetError:
            break
    sock.settimeout(10)
    return sent


def test_an_anonymous_upload_of_100_mb_is_refused_before_it_is_read(system: System) -> None:
    before = hub_rss_kib(system)
    boundary = "legato"
    sock = raw_request(
        system,
        "POST /api/admin/ingest/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {100 * MIB}\r\n\r\n",
    )
    started = time.monotonic()
    status, body = read_response(sock)  # not a byte of the body was sent
    sock.close()
    assert status == 413
    assert body == {"error": {"status": 413, "message": "The request body is over 1 MiB"}}
    assert time.monotonic() - started < 2
    # streamed without a length: cut off after about the cap, not after 100 MB
    sock = raw_request(
        system,
        "POST /api/admin/ingest/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
    )
    sent = stream_until_refused(sock, 100 * MIB)
    sock.close()
    assert sent < 16 * MIB
    assert hub_rss_kib(system) - before < 20 * 1024  # flat: no copy of the upload held
    assert not list((system.data / "uploads").glob("*/*"))  # and nothing spooled to disk


def test_a_gigabyte_of_json_is_refused_at_its_length(system: System) -> None:
    before = hub_rss_kib(system)
    sock = raw_request(
        system,
        "POST /api/admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {1024 * MIB}\r\n\r\n",
    )
    status, body = read_response(sock)
    sock.close()
    assert status == 413
    assert body["error"]["status"] == 413
    sock = raw_request(
        system,
        "POST /api/admin/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    assert stream_until_refused(sock, 1024 * MIB) < 16 * MIB
    sock.close()
    assert hub_rss_kib(system) - before < 20 * 1024


def test_an_administrator_may_still_upload_a_file_larger_than_a_json_body(
    system: System,
) -> None:
    token = httpx.post(
        f"{system.url}/api/token",
        data={"grant_type": "password", "username": "operator", "password": ADMIN_PASSWORD},
    ).json()["access_token"]
    big = b"\0" * (3 * MIB)  # not audio: it fails ingest, but only after being received
    r = httpx.post(
        f"{system.url}/api/admin/ingest/upload",
        headers={"Authorization": f"Bearer {token}"},
        files={"files": ("noise.flac", big, "audio/flac")},
        timeout=30,
    )
    assert r.status_code == 202, r.text
