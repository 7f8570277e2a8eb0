"""What the speaker's systemd units do, for machines without systemd and for tests.

``python -m releases.supervisor --root R --state S [--restart-s 2] [--config CFG] --
<speaker args>`` loops: ``<root>/guard.py prepare`` (the copy outside the slots, as
``ExecStartPre=`` runs it), the speaker from the slot ``current`` names
(``python -m device <args>``), ``guard.py exited`` with how it stopped (as
``ExecStopPost=``), then a pause and again (``Restart=always``).  While the speaker
runs, ``<state>/install-request.json`` starts ``python -m releases.install --request``
from the current slot, as ``legato-update.path`` does.  Like systemd's, its
children run in ``/``: ``python -m`` would import from any other working directory.
SIGTERM (or SIGINT) is passed to the speaker, and the loop ends once it has stopped.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from releases import guard, slot
from releases.install import REQUEST

POLL_S = 0.1
STOP_TIMEOUT_S = 15.0
INSTALL_TIMEOUT_S = 1800.0


def say(message: str) -> None:
    print(f"legato supervisor: {message}", file=sys.stderr, flush=True)


def exit_of(returncode: int) -> tuple[str, str]:
    """``$EXIT_CODE`` and ``$EXIT_STATUS`` as systemd gives them to ``ExecStopPost=``."""
    if returncode < 0:
        try:
            return "killed", signal.Signals(-returncode).name.removeprefix("SIG")
        except ValueError:
            return "killed", str(-returncode)
    return "exited", str(returncode)


@dataclass
class Supervisor:
    layout: guard.Layout
    speaker_args: list[str]
    restart_s: float = 2.0
    config: Path | None = None
    max_starts: int = 100_000  # like systemd's start limit, but generous: a bound, not a policy
    stopping: threading.Event = field(default_factory=threading.Event)
    installer: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def guard(self, *args: str) -> int:
        script = self.layout.root / "guard.py"
        command = [slot.base_python(), str(script), "--root", str(self.layout.root)]
        command += ["--state", str(self.layout.state), *args]
        try:
            return subprocess.run(command, timeout=120, check=False).returncode
        except (OSError, subprocess.TimeoutExpired) as exc:
            say(f"the guard could not run: {exc}")
            return 1

    def run(self) -> int:
        """Until stopped (or ``max_starts`` starts); 0 when stopped by a signal."""
        while not self.stopping.is_set() and self.starts < self.max_starts:
            self.starts += 1
            if self.guard("prepare") != 0:
                say(f"no release can start; trying again in {self.restart_s} s")
                self.pause()
                continue
            version = self.layout.current()
            if version is None:
                self.pause()
                continue
            python = self.layout.slot(version) / "bin" / "python"  # the slot itself, not
            # the link: a switch while it runs must not mix two releases' modules
            child = subprocess.Popen(
                [str(python), "-m", "device", *self.speaker_args], cwd="/", env=slot.clean_env()
            )
            say(f"started release {version} (pid {child.pid}, start {self.starts})")
            code, status = exit_of(self.watch(child))
            say(f"release {version} stopped: {code} {status}")
            self.guard("exited", "--code", code, "--status", status)
            if not self.stopping.is_set():
                self.pause()
        self.finish_install()
        return 0 if self.stopping.is_set() else 1

    def watch(self, child: subprocess.Popen[bytes]) -> int:
        while child.poll() is None:
            if self.stopping.is_set():
                child.terminate()
                try:
                    return child.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    child.kill()
                    return child.wait()
            self.tick()
            self.stopping.wait(POLL_S)
        return child.returncode

    def pause(self) -> None:
        deadline = time.monotonic() + self.restart_s
        while not self.stopping.is_set() and time.monotonic() < deadline:
            self.tick()
            self.stopping.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))

    def tick(self) -> None:
        """The path unit's part: an install request starts the installer (one at a
        time); its end is logged."""
        if self.installer is not None:
            code = self.installer.poll()
            if code is None:
                return
            say(f"installer finished with status {code}")
            self.installer = None
        if not (self.layout.state / REQUEST).exists():
            return
        current = self.layout.current()
        if current is None:
            return
        command = [str(self.layout.slot(current) / "bin" / "python"), "-m", "releases.install"]
        command += ["--root", str(self.layout.root), "--state", str(self.layout.state)]
        if self.config is not None:
            command += ["--config", str(self.config)]
        self.installer = subprocess.Popen([*command, "--request"], cwd="/", env=slot.clean_env())
        say(f"install requested: installer started (pid {self.installer.pid})")

    def finish_install(self) -> None:
        """An install under way is let finish (bounded); one cut short is harmless."""
        if self.installer is None:
            return
        try:
            self.installer.wait(INSTALL_TIMEOUT_S if not self.stopping.is_set() else 30)
        except subprocess.TimeoutExpired:
            self.installer.terminate()
            self.installer.wait(STOP_TIMEOUT_S)
        self.installer = None


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    ours, speaker_args = (
        (given[: given.index("--")], given[given.index("--") + 1 :])
        if "--" in given
        else (given, [])
    )
    parser = argparse.ArgumentParser(
        prog="python -m releases.supervisor",
        description="Run a Legato speaker from its release slots as systemd would: guard, "
        "run, restart, install requested releases.  Speaker arguments follow --.",
    )
    parser.add_argument("--root", type=Path, required=True, help="the release slots")
    parser.add_argument("--state", type=Path, required=True, help="the update state")
    parser.add_argument("--restart-s", type=float, default=2.0, help="pause before a restart")
    parser.add_argument("--config", type=Path, help="the config the installer reads")
    parser.add_argument("--max-starts", type=int, default=100_000, help="then give up")
    args = parser.parse_args(ours)
    supervisor = Supervisor(
        guard.Layout(args.root, args.state),
        speaker_args,
        restart_s=args.restart_s,
        config=args.config,
        max_starts=args.max_starts,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        say(f"stopping on {signal.Signals(signum).name}")
        supervisor.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return supervisor.run()


if __name__ == "__main__":
    raise SystemExit(main())
