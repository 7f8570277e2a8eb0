"""The hub as the product runs it: ``python -m hub serve`` (embedded broker) and its
``recommend`` commands as separate processes, on loopback and free ports.

Ports, process stopping and log tails come from the control-latency bench's helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from latency.common import HOST
from latency.stats import proc_rss_mib
from latency.system import free_port, log_tail, stop_process

REPO = Path(__file__).resolve().parents[2]
PORT_ATTEMPTS = 3


class HubError(Exception):
    """The hub or one of its commands did not do what the run needs."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["LEGATO_MDNS_INTERFACES"] = HOST
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass(slots=True)
class Hub:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        stop_process(self.proc, 20)


def _spawn(data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    args = ["serve", "--data", str(data), "--host", HOST, "--port", str(port)]
    args += ["--tls-port", str(free_port()), "--mqtt-port", str(free_port())]
    args += ["--rate-limits", "off", "--no-mdns", "--log-level", "WARNING"]
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", *args],
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=REPO,
            start_new_session=True,
        )


def start_hub(data: Path, log: Path, timeout_s: float = 60) -> Hub:
    """Start the hub and wait for ``/healthz``; new ports if one was taken meanwhile."""
    for attempt in range(PORT_ATTEMPTS):
        port = free_port()
        proc = _spawn(data, port, log)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=5, trust_env=False) as c:
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if c.get("/healthz").status_code == 200:
                        return Hub(proc, port, log)
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        stop_process(proc)
        if attempt == PORT_ATTEMPTS - 1 or "Address already in use" not in log_tail(log):
            raise HubError(f"the hub was not healthy within {timeout_s:.0f} s:\n{log_tail(log)}")
    raise AssertionError("unreachable")


def token(hub: Hub, name: str, password: str) -> str:
    """A Web API access token with the password grant, as a listener's app gets one."""
    with httpx.Client(base_url=hub.base, timeout=30, trust_env=False) as c:
        r = c.post(
            "/api/token", data={"grant_type": "password", "username": name, "password": password}
        )
    if r.status_code != 200:
        raise HubError(f"POST /api/token: {r.status_code} {r.text}")
    return str(r.json()["access_token"])


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop a command that ran out of time, and whatever it started (its group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)  # its workers may outlive it by a moment
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the training command may fork a worker)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


@dataclass(slots=True)
class Command:
    """A finished ``legato-hub`` command: its JSON answer (None if none), time and memory."""

    args: list[str]
    returncode: int
    seconds: float
    answer: dict[str, Any] | None
    stderr_tail: str
    peak_tree_rss_mib: float = 0.0
    timed_out: bool = False


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            return doc
    try:
        whole = json.loads(text)
    except ValueError:
        return None
    return whole if isinstance(whole, dict) else None


def run_command(
    data: Path, args: list[str], timeout_s: float, started: threading.Event | None = None
) -> Command:
    """``python -m hub ARGS --data DATA``, its process tree's RSS sampled every 100 ms."""
    argv = [sys.executable, "-m", "hub", *args, "--data", str(data)]
    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
        cwd=REPO,
        start_new_session=True,  # its own process group: a timeout stops its workers too
    )
    if started is not None:
        started.set()
    peak = 0.0
    timed_out = False
    out: list[bytes] = []
    err: list[bytes] = []
    readers = [
        threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b"")),
        threading.Thread(target=lambda: err.append(proc.stderr.read() if proc.stderr else b"")),
    ]
    for r in readers:
        r.start()
    while proc.poll() is None:
        if time.monotonic() - t0 > timeout_s:
            _stop_group(proc)
            timed_out = True
            break
        rss = sum(proc_rss_mib(p) for p in _tree(proc.pid))
        peak = max(peak, rss) if rss == rss else peak  # NaN: gone meanwhile
        time.sleep(0.1)
    proc.wait()
    for r in readers:
        r.join(10)
    text = b"".join(out).decode(errors="replace")
    return Command(
        args=args,
        returncode=proc.returncode,
        seconds=round(time.monotonic() - t0, 2),
        answer=_last_json(text),
        stderr_tail=b"".join(err).decode(errors="replace")[-2000:],
        peak_tree_rss_mib=round(peak, 1),
        timed_out=timed_out,
    )
