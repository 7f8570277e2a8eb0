"""`legato-hub up` as a new user runs it: one command, URLs printed, Ctrl-C stops all.

Uses the embedded broker (amqtt) and mDNS on loopback: a second speaker given
only its credentials finds the hub by itself.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from connect_protocol import mdns
from hub.fleet import pki, provisioning
from hub.server import open_database
from tests.brokers import free_port
from tests.system import child_env, spawn, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def test_up_runs_a_whole_system_and_stops_cleanly(tmp_path: Path) -> None:
    data, port, mqtt_port, tls_port = tmp_path / "data", free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hub",
            "up",
            "--data",
            str(data),
            "--port",
            str(port),
            "--mqtt-port",
            str(mqtt_port),
            "--tls-port",
            str(tls_port),
            "--log-level",
            "WARNING",
            "--demo-seconds",  # the real demo albums, generated and ingested, but short
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        text=True,
    )
    speaker = None
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        banner = "".join(lines)
        assert f"Legato hub is up: http://127.0.0.1:{port}" in banner, banner
        assert "/healthz" in banner
        match = re.search(r"account:\s+(\S+) / (\S+)", banner)
        assert match, banner
        user, password = match.groups()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").json()["broker"] is True
        # the printed web apps answer: signed out, both lead to the login page
        for app in ("remote", "dashboard"):
            printed = re.search(rf"{app}:\s+(http\S+)", banner)
            assert printed, banner
            path = urlsplit(printed.group(1)).path  # the remote's host is the LAN address
            page = httpx.get(f"{base}{path}")
            assert page.status_code == 303
            assert page.headers["location"].startswith(f"/login?next=/{app}")
        token = httpx.post(
            f"{base}/api/token",
            data={"grant_type": "password", "username": user, "password": password},
        ).json()["access_token"]
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})

        def online(device_id: str) -> bool:
            devices = client.get("/v1/me/player/devices").json()["devices"]
            return any(d["id"] == device_id and d["is_online"] for d in devices)

        wait_for(lambda: online("local-speaker"), 30, "the local speaker")
        # The banner's play line, as printed:
        play = re.search(r"play:\s+curl .* -d '(.*)' (http\S+)", banner)
        assert play, banner
        body, url = play.groups()
        r = client.put(url, content=body)
        assert r.status_code == 204, r.text
        player = client.get("/v1/me/player").json()
        assert player["is_playing"] is True
        assert player["device"]["name"] == "Local speaker"

        # The hub is on mDNS with its TLS ports; a speaker with no hub URL but its CA
        # pinned (as `device add` writes it) finds it and pairs over TLS.
        hub = asyncio.run(mdns.find_one("hub", timeout_s=10, where=lambda r: r.port == port))
        assert hub is not None, "our hub is not on mDNS"
        assert hub.extra["mqtts"] == str(mqtt_port)
        assert hub.extra["https"] == str(tls_port)
        assert "mqtt" not in hub.extra  # no plain broker port unless the operator asks
        secret = provisioning.add_broker_user(open_database(data), "porch", "speaker")
        config = tmp_path / "porch.toml"
        provisioning.write_speaker_config(
            config,
            device_id="porch",
            name="Porch",
            secret=secret,
            http_host="127.0.0.1",
            hub_ca=(data / "keys" / pki.CA_CERT).read_text(),
        )
        speaker = spawn(
            "porch",
            [sys.executable, "-m", "device", "--config", str(config)],
            tmp_path / "porch.log",
        )
        wait_for(lambda: online("porch"), 30, "a speaker found the hub by mDNS", [speaker.log])
        r = client.put("/v1/me/player/volume", params={"device_id": "porch", "volume_percent": 7})
        assert r.status_code == 204
        client.close()
    finally:
        if speaker is not None:
            assert speaker.stop() == 0
        proc.send_signal(signal.SIGINT)
        try:
            rest = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, rest
    assert "stopped." in rest
    assert "Traceback" not in rest, rest
    assert processes_mentioning(str(data / "speaker")) == []


def test_up_explains_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "hub",
                "up",
                "--data",
                str(tmp_path),
                "--port",
                str(free_port()),
                "--mqtt-port",
                str(busy),
                "--no-mdns",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=child_env(),
            check=False,
        )
    assert out.returncode == 2
    assert f"cannot use 127.0.0.1:{busy} for the MQTT broker" in out.stderr
    assert "--mqtt-port" in out.stderr
    assert "Traceback" not in out.stderr


def private_network() -> list[str]:
    """A command prefix that runs a program in a network namespace of its own with only
    loopback up, so the mDNS responders there are the program's alone; [] where this
    process may not make one (not root), and the host's network is shared then."""
    if os.geteuid() != 0 or not (shutil.which("unshare") and shutil.which("nsenter")):
        return []
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return []
    return ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def udp_5353_sockets(netns_of: int) -> list[str]:
    """``ss`` lines of the UDP sockets on port 5353 in the network namespace of
    ``netns_of`` (with their processes' pids where we may see them)."""
    inside = [] if netns_of == os.getpid() else ["nsenter", f"--net=/proc/{netns_of}/ns/net"]
    out = subprocess.run(
        [*inside, "ss", "-uanpH", "sport = :5353"],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return out.splitlines()


def udp_5353_owners(netns_of: int) -> set[str]:
    return set(re.findall(r"pid=(\d+)", "\n".join(udp_5353_sockets(netns_of))))


def test_up_is_one_mdns_responder_for_the_hub_and_its_speaker(tmp_path: Path) -> None:
    """The local speaker hands its record to the hub's advertiser: every unicast query
    (which reaches only one socket bound to 5353) is answered for both services."""
    dig = shutil.which("dig")
    if dig is None:
        pytest.fail("dig (dnsutils) is not on PATH: make test installs it")
    netns = private_network()
    if not netns and udp_5353_sockets(os.getpid()):
        pytest.skip("another mDNS responder on this host would take some of the queries")
    data, port = tmp_path / "data", free_port()
    up = ["up", "--data", str(data), "--port", str(port), "--mqtt-port", str(free_port())]
    up += ["--tls-port", str(free_port()), "--log-level", "WARNING", "--demo-seconds", "3"]
    proc = subprocess.Popen(
        [*netns, sys.executable, "-m", "hub", *up],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=child_env(),
        text=True,
    )
    inside = ["nsenter", f"--net=/proc/{proc.pid}/ns/net"] if netns else []

    def ask(service: str) -> str:
        query = [dig, "-p", "5353", "@127.0.0.1", service, "PTR", "+time=2", "+tries=1"]
        out = subprocess.run([*inside, *query], capture_output=True, text=True, timeout=10)
        return out.stdout

    speaker_ptr = "PTR\tLocal\\032speaker\\032\\(local-speaker\\)._legato._tcp.local."
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line or "Press Ctrl-C" in line:
                break
        wait_for(lambda: speaker_ptr in ask("_legato._tcp.local"), 30, "the speaker on mDNS")
        speakers = [ask("_legato._tcp.local") for _ in range(10)]
        hubs = [ask("_legato-hub._tcp.local") for _ in range(10)]
        if netns:
            assert udp_5353_owners(proc.pid) == {str(proc.pid)}, "more than one responder"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rest = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    answered = sum(speaker_ptr in out and '"id=local-speaker"' in out for out in speakers)
    assert answered == 10, speakers
    hub_ptr = "._legato-hub._tcp.local."
    answered = sum(hub_ptr in out and f'"api={port}"' in out for out in hubs)
    assert answered == 10, hubs
    assert proc.returncode == 0, rest
    assert "Traceback" not in rest, rest
