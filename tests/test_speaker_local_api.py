"""A speaker's own port: /info for adoption, and local control with no hub at all for
whoever holds its pairing token (an unpaired speaker makes its own, in a 0600 file)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from connect_protocol import mdns
from tests.brokers import free_port
from tests.system import spawn, wait_for

pytestmark = pytest.mark.integration


def test_unpaired_speaker_serves_info_and_local_control(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "s.toml"
    cfg.write_text('[speaker]\nid = "patio"\nname = "Patio"\nhttp_host = "127.0.0.1"\n')
    proc = spawn(
        "patio",
        [sys.executable, "-m", "device", "--config", str(cfg), "--port", str(port)],
        tmp_path / "patio.log",
    )
    try:

        def info() -> dict[str, object] | None:
            try:
                return dict(httpx.get(f"http://127.0.0.1:{port}/info", timeout=1).json())
            except httpx.HTTPError:
                return None

        doc = wait_for(info, 20, "GET /info", [proc.log])
        assert doc == {  # what its mDNS record says, nothing more
            "id": "patio",
            "name": "Patio",
            "model": "legato-pi",
            "fw": "0.1.0",
            "proto": "1",
        }
        assert httpx.get(f"http://127.0.0.1:{port}/nope").status_code == 404
        assert "legato-hub device add patio" in proc.log.read_text()
        token_file = tmp_path / "speaker-state" / "patio" / "local-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        assert token not in proc.log.read_text()  # the log says where, never what

        # Without the token: neither control nor the list of downloads.
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/control")
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus):
            connect(f"ws://127.0.0.1:{port}/control?token=not-{token}")
        assert httpx.get(f"http://127.0.0.1:{port}/offline").status_code == 401
        # With the token, /info adds the controls' counters (no buttons on this one).
        paired_info = httpx.get(
            f"http://127.0.0.1:{port}/info", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert paired_info["diagnostics"]["controls"] == {
            "events": 0,
            "detents": 0,
            "refused": 0,
            "devices": {},
        }
        assert set(paired_info) - {"diagnostics"} == set(doc)
        # A name that is not the speaker's own (DNS rebinding from a web page): refused.
        rebound = httpx.get(f"http://127.0.0.1:{port}/info", headers={"Host": "evil.example"})
        assert rebound.status_code == 403
        with pytest.raises(InvalidStatus) as refused:
            connect(
                f"ws://127.0.0.1:{port}/control?token={token}",
                additional_headers={"Host": f"evil.example:{port}"},
            )
        assert refused.value.response.status_code == 403

        with connect(f"ws://127.0.0.1:{port}/control?token={token}") as ws:
            first = json.loads(ws.recv(timeout=5))
            assert first["type"] == "state"
            ws.send(json.dumps({"type": "volume", "id": "l1", "volume_percent": 12}))
            replies = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
            state = next(r for r in replies if r["type"] == "state")
            ack = next(r for r in replies if r["type"] == "ack")
            assert state["volume_percent"] == 12
            assert ack == {
                "type": "ack",
                "id": "l1",
                "ok": True,
                "revision": 1,
                "error": None,
                "message": "",
            }
            ws.send("not json")
            ws.send(json.dumps({"type": "pause", "id": "l2"}))
            ack = json.loads(ws.recv(timeout=5))
            assert ack["id"] == "l2"
            assert ack["error"] == "no_track"
            # A flood is refused past the budget, and the connection stays up.
            for n in range(100):
                ws.send(json.dumps({"type": "pause", "id": f"f{n}"}))
            acks = [json.loads(ws.recv(timeout=5)) for _ in range(100)]
            assert sum(a["error"] == "rate_limited" for a in acks) >= 50

        # A web page (any site a listener visits) may not steer the speaker.
        with pytest.raises(InvalidStatus) as refused:
            connect(
                f"ws://127.0.0.1:{port}/control?token={token}",
                origin=Origin("http://evil.example"),
            )
        assert refused.value.response.status_code == 403

        # And it is on mDNS with its port, for the hub to adopt.
        record = asyncio.run(
            mdns.find_one("speaker", timeout_s=10, where=lambda r: r.id == "patio")
        )
        assert record is not None
        assert record.port == port
        assert record.name == "Patio"
    finally:
        assert proc.stop() == 0
    assert not re.search(r"Traceback", proc.log.read_text())
