"""Two hosts on one machine: network namespaces joined by a veth pair, avahi-daemon on one.

avahi ignores loopback, so the avahi backend is tested the way it runs: host
``a`` (a namespace) runs avahi-daemon on its veth end, with a private
dbus-daemon as its system bus; host ``b`` is another machine on the link, where
python-zeroconf (the other backend) publishes and browses.  The test process
itself stays in the root namespace and talks to avahi over the private bus's
socket (a path, so reachable from any network namespace), exactly as a Legato
process on host ``a`` would.

avahi-daemon runs as root without dropping privileges or chrooting, in its own
mount namespace with a fresh ``/run`` (its pid file and socket would clash with
another instance), restricted to the veth by ``allow-interfaces``.  Every
process is stopped and both namespaces deleted by :meth:`AvahiLink.close`; every
wait is bounded.  Plain functions and classes, no pytest: the fixtures live in
the test modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import selectors
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
TOOLS = ("ip", "unshare", "mount", "dbus-daemon", "avahi-daemon")

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path={socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <allow own="org.freedesktop.Avahi"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"""

AVAHI_CONFIG = """[server]
host-name={host_name}
use-ipv4=yes
use-ipv6=no
allow-interfaces={interface}
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
"""


def why_avahi_cannot_run() -> str | None:
    """Why these tests cannot build their namespaces here, or None if they can."""
    if os.geteuid() != 0:
        return "network namespaces and avahi-daemon need root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (scripts/install-system-deps.sh installs them)"
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "true"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        return f"cannot create namespaces here: {probe.stderr.strip()}"
    return None


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=STOP_TIMEOUT_S)


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_S)


@dataclass
class Host:
    """One namespace: its name, interface and address on the link."""

    netns: str
    interface: str
    address: str

    def command(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *args]


async def _avahi_state(bus_address: str) -> int | None:
    """avahi's server state on ``bus_address`` (2 is running); None if it is not there."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2):
            bus = await MessageBus(bus_address=bus_address, bus_type=BusType.SYSTEM).connect()
            try:
                reply = await bus.call(
                    Message(
                        destination="org.freedesktop.Avahi",
                        path="/",
                        interface="org.freedesktop.Avahi.Server",
                        member="GetState",
                    )
                )
            finally:
                bus.disconnect()
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
            if reply.message_type is MessageType.METHOD_RETURN:
                return int(reply.body[0])
    return None


@dataclass
class AvahiLink:
    """Hosts ``a`` (with avahi-daemon) and ``b`` on a veth link; see the module doc."""

    root: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    a: Host = field(init=False)
    b: Host = field(init=False)
    dbus: subprocess.Popen[bytes] | None = None
    avahi: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.a = Host(f"legato-{self.tag}-a", "veth-a", "10.77.0.1")
        self.b = Host(f"legato-{self.tag}-b", "veth-b", "10.77.0.2")
        self.bus_socket = self.root / "system_bus_socket"
        self.bus_address = f"unix:path={self.bus_socket}"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._link()
        self._start_dbus()
        self.start_avahi()

    def _link(self) -> None:
        a, b = self.a, self.b
        _run("ip", "netns", "add", a.netns)
        _run("ip", "netns", "add", b.netns)
        _run("ip", "-n", a.netns, "link", "add", a.interface, "type", "veth", "peer", "name",
             b.interface, "netns", b.netns)  # fmt: skip
        for host in (a, b):
            _run("ip", "-n", host.netns, "addr", "add", f"{host.address}/24", "dev", host.interface)
            _run("ip", "-n", host.netns, "link", "set", host.interface, "up")
            _run("ip", "-n", host.netns, "link", "set", "lo", "up")

    def _start_dbus(self) -> None:
        config = self.root / "bus.conf"
        config.write_text(BUS_CONFIG.format(socket=self.bus_socket))
        with (self.root / "dbus.log").open("wb") as log:
            self.dbus = subprocess.Popen(
                self.a.command("dbus-daemon", f"--config-file={config}", "--nofork"),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(lambda: self.bus_socket.exists(), "the private dbus-daemon's socket")

    def start_avahi(self) -> None:
        config = self.root / "avahi-daemon.conf"
        config.write_text(
            AVAHI_CONFIG.format(host_name=f"legato-{self.tag}", interface=self.a.interface)
        )
        daemon = (
            'mount -t tmpfs tmpfs /run && exec avahi-daemon -f "$1" --no-drop-root --no-chroot '
            "--no-rlimits --no-proc-title"
        )
        unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", daemon, "sh"]
        unshare.append(str(config))
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}
        with (self.root / "avahi.log").open("ab") as log:
            self.avahi = subprocess.Popen(
                self.a.command(*unshare), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait(lambda: asyncio.run(_avahi_state(self.bus_address)) == 2, "avahi-daemon")

    def stop_avahi(self) -> None:
        _stop(self.avahi)
        self.avahi = None

    def _wait(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            for proc in (self.dbus, self.avahi):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{what}: a daemon exited\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not ready in {START_TIMEOUT_S} s\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.root.glob("*.log"))
        )

    def close(self) -> None:
        self.stop_avahi()
        _stop(self.dbus)
        for host in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True, check=False)

    # --- host b: python-zeroconf, and avahi's own tools on host a ------------------------

    def peer(self, *args: str) -> Peer:
        """``python -m tests.mdns_peer ARGS`` on host ``b`` with the zeroconf backend."""
        env = {
            **os.environ,
            "LEGATO_MDNS_BACKEND": "zeroconf",
            "LEGATO_MDNS_INTERFACES": self.b.address,
            "PYTHONUNBUFFERED": "1",
        }
        with (self.root / "peer.log").open("ab") as log:
            proc = subprocess.Popen(
                self.b.command(sys.executable, "-m", "tests.mdns_peer", *args),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=ROOT,
            )
        return Peer(proc)

    def avahi_browse(self, service_type: str) -> str:
        """``avahi-browse -rpt`` of avahi on host ``a``: what it knows of ``service_type``."""
        env = {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.bus_address}
        out = subprocess.run(
            ["avahi-browse", "-rpt", service_type],
            capture_output=True,
            text=True,
            env=env,
            timeout=START_TIMEOUT_S,
            check=True,
        )
        return out.stdout


@dataclass
class Peer:
    """A helper process on host ``b``; it reports one line per event on stdout."""

    proc: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)

    def expect(self, prefix: str, timeout_s: float = START_TIMEOUT_S) -> str:
        """The next line starting with ``prefix`` (bounded; fails if the peer exits)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    break
                line = self.proc.stdout.readline().decode()
                if not line:
                    raise AssertionError(f"peer exited ({self.proc.wait()}), saw {self.lines}")
                self.lines.append(line.rstrip("\n"))
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
        raise AssertionError(f"no {prefix!r} from the peer in {timeout_s} s, saw {self.lines}")

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _stop(self.proc)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
