"""A hub with a fleet of speakers, each installed in its own release slots and run by
``releases.supervisor`` as systemd runs it on a Pi: for the update tests and the bench.

Each speaker has its own slot root and state dir under the fleet's directory, a config
with a short update check interval, trial deadline and grace, and a supervisor
process.  The supervisor runs outside the slots (this environment's Python, this
checkout's ``releases`` put on its path by hand, no ``PYTHONPATH`` for its children to
inherit, in the speaker's own directory), and the speaker runs from its slot's own
interpreter, so only the installed release's code is ever imported: the version the
hub sees is the proof.

The hub's side is driven as its operator would (``legato-hub release ...``); its
records are polled straight from its database (cheap), and tests confirm what the
operator sees through the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from releases.bundle import bundle_name
from releases.guard import Layout
from releases.signing import ReleaseKey
from tests import release_fixtures as rf
from tests.system import Process, System, wait_for

CHECK_INTERVAL_S = 1
TRIAL_DEADLINE_S = 8
GRACE_S = 1
RESTART_S = 0.5
FAILED_STATES = ("rolled_back", "failed")
#: ``python -m releases.supervisor`` from this checkout, with nothing in the environment
#: (no ``PYTHONPATH``) that the speakers it starts would inherit
SUPERVISOR = (
    "import runpy, sys; sys.path.insert(0, sys.argv.pop(1)); "
    "runpy.run_module('releases.supervisor', run_name='__main__', alter_sys=True)"
)


def chosen(version: str, device_id: str, percent: int) -> bool:
    """The hub's rule for a percent rollout (so the 50 % set is inside the 100 % set)."""
    return (
        int(hashlib.sha256(f"{version}:{device_id}".encode()).hexdigest()[:8], 16) % 100 < percent
    )


def updates_section(root: Path, state: Path, release_key: str) -> str:
    return (
        "\n[updates]\n"
        f'release_key = "{release_key}"\n'
        f"check_interval_s = {CHECK_INTERVAL_S}\n"
        f"trial_deadline_s = {TRIAL_DEADLINE_S}\n"
        f"grace_s = {GRACE_S}\n"
        f'root = "{root}"\n'
        f'state_dir = "{state}"\n'
    )


def with_updates(config: Path, section: str) -> None:
    """The config with our ``[updates]`` section in place of any the hub wrote."""
    text = config.read_text()
    text = re.sub(r"(?ms)^\[updates\]\n.*?(?=^\[|\Z)", "", text)
    config.write_text(text.rstrip("\n") + "\n" + section)


def speaker_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEGATO_", "PYTHON"))}
    env.update(
        LEGATO_MDNS_INTERFACES="127.0.0.1",
        LEGATO_SPEAKER_STATE=str(home / "speaker-state"),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Speaker:
    id: str
    home: Path
    config: Path
    process: Process | None = None

    @property
    def layout(self) -> Layout:
        return Layout(self.home / "opt", self.home / "state")

    @property
    def log(self) -> Path:
        return self.home / "supervisor.log"

    def current(self) -> str | None:
        return self.layout.current()

    def slots(self) -> tuple[str, ...]:
        return self.layout.complete()

    def start(self) -> None:
        layout = self.layout
        args = [
            *(sys.executable, "-c", SUPERVISOR, str(rf.SOURCE_ROOT)),
            *("--root", str(layout.root)),
            *("--state", str(layout.state), "--restart-s", str(RESTART_S)),
            *("--config", str(self.config), "--"),
            *("--config", str(self.config), "--log-level", "INFO", "--no-mdns"),
        ]
        fh = self.log.open("ab")
        proc = subprocess.Popen(
            args, stdout=fh, stderr=subprocess.STDOUT, env=speaker_env(self.home), cwd=self.home
        )
        fh.close()
        self.process = Process(self.id, proc, self.log)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout_s=15)


@dataclass
class Transit:
    """When a speaker switched to ``version``, and when it was back on ``old``: polled."""

    speaker: Speaker
    version: str
    old: str
    switched_s: float | None = None
    back_s: float | None = None

    def poll(self) -> None:
        current, now = self.speaker.current(), time.monotonic()
        if current == self.version and self.switched_s is None:
            self.switched_s = now
        elif self.switched_s is not None and self.back_s is None and current == self.old:
            self.back_s = now


@dataclass
class Fleet:
    """One hub (on Mosquitto), ``ids`` speakers seeded with ``old``'s wheel."""

    root: Path
    shop: rf.WheelShop
    system: System = field(init=False)
    speakers: dict[str, Speaker] = field(default_factory=dict)
    constraints_file: Path = field(init=False)
    #: where the speakers' configs send them for the hub's HTTPS (a proxy's port); None:
    #: the hub's own port
    speaker_hub_port: int | None = None

    def __post_init__(self) -> None:
        self.system = System(self.root / "hub")
        self.system.root.mkdir(parents=True, exist_ok=True)
        self.constraints = rf.speaker_constraints()
        self.constraints_file = self.root / "constraints.txt"
        self.constraints_file.write_text(self.constraints)
        # the key the hub makes at its first use, made here first: each config pins it
        self.release_key = ReleaseKey.load_or_create(self.system.data / "keys" / "release.key")
        self.templates = rf.SlotTemplate(self.root / "slot-templates")

    @property
    def logs(self) -> list[Path]:
        return [*self.system.logs, *(s.log for s in self.speakers.values())]

    def add(self, ids: Iterable[str], old: rf.Variant) -> None:
        wheel = self.shop.wheel(old)
        site = rf.speaker_site_packages(self.root / "speaker-site", self.constraints)
        for device_id in ids:
            home = self.root / "speakers" / device_id
            home.mkdir(parents=True)
            speaker = Speaker(device_id, home, self.system.provision(device_id))
            if self.speaker_hub_port is not None:
                text = speaker.config.read_text()
                hub_url = self.system.speaker_url
                assert hub_url in text, text
                speaker.config.write_text(
                    text.replace(hub_url, f"https://127.0.0.1:{self.speaker_hub_port}")
                )
            with_updates(
                speaker.config,
                updates_section(
                    speaker.layout.root, speaker.layout.state, self.release_key.public_text
                ),
            )
            self.templates.copy(
                speaker.layout.root, speaker.layout.state, wheel, site, self.constraints
            )
            self.speakers[device_id] = speaker

    def start(self) -> None:
        self.system.start_broker()
        self.system.start_hub()
        for speaker in self.speakers.values():
            speaker.start()

    def stop(self) -> None:
        for speaker in self.speakers.values():
            if speaker.process is not None and speaker.process.proc.poll() is None:
                speaker.process.proc.send_signal(signal.SIGTERM)
        for speaker in self.speakers.values():
            speaker.stop()
        self.system.stop()

    # --- the operator's side -----------------------------------------------------

    def hub_cli(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "hub", *args, "--data", str(self.system.data)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        assert out.returncode == 0, f"legato-hub {' '.join(args)}: {out.stdout}{out.stderr}"
        return out

    def release_add(self, variant: rf.Variant) -> str:
        wheel = self.shop.wheel(variant)
        self.hub_cli("release", "add", str(wheel), "--constraints", str(self.constraints_file))
        return variant.version

    def rollout(
        self,
        version: str,
        *,
        percent: int | None = None,
        devices: Iterable[str] = (),
        wave: int | None = None,
    ) -> float:
        args = ["release", "rollout", version]
        args += ["--percent", str(percent)] if percent is not None else []
        args += ["--devices", ",".join(devices)] if devices else []
        args += ["--wave", str(wave)] if wave is not None else []
        self.hub_cli(*args)
        return time.monotonic()

    def status(self, version: str) -> dict[str, dict[str, Any]]:
        """What ``legato-hub release status VERSION --json`` shows, per speaker."""
        out = self.hub_cli("release", "status", version, "--json")
        return {str(r["id"]): dict(r) for r in json.loads(out.stdout)["speakers"]}

    # --- what the hub recorded, polled -------------------------------------------

    def updates(self, version: str) -> dict[str, tuple[str, str]]:
        with self.system.db.reading() as conn:
            rows = conn.execute(
                "SELECT device_id, state, reason FROM device_updates WHERE version = ?",
                (version,),
            ).fetchall()
        return {str(r[0]): (str(r[1]), str(r[2] or "")) for r in rows}

    def rollout_state(self, version: str) -> tuple[str, str]:
        with self.system.db.reading() as conn:
            row = conn.execute(
                "SELECT state, reason FROM rollouts WHERE version = ?", (version,)
            ).fetchone()
        return (str(row[0]), str(row[1] or "")) if row else ("", "")

    def seen(self) -> dict[str, tuple[str, bool]]:
        """Each speaker's version and whether it is online, as the hub's registry says."""
        with self.system.db.reading() as conn:
            rows = conn.execute("SELECT id, fw, online FROM devices").fetchall()
        return {str(r[0]): (str(r[1]), bool(r[2])) for r in rows}

    def wait_running(self, versions: dict[str, str], timeout_s: float = 60) -> None:
        """Until each speaker is online at the hub on the version given for it."""

        def ready() -> bool:
            seen = self.seen()
            return all(seen.get(i) == (v, True) for i, v in versions.items())

        try:
            wait_for(ready, timeout_s, "speakers online on their versions", self.logs)
        except AssertionError as exc:
            seen = self.seen()
            wrong = {i: (v, seen.get(i)) for i, v in versions.items() if seen.get(i) != (v, True)}
            raise AssertionError(f"(wanted, hub shows (fw, online)): {wrong}\n{exc}") from None

    def wait_states(
        self,
        version: str,
        wanted: dict[str, str],
        timeout_s: float,
        on_poll: Callable[[], None] | None = None,
    ) -> dict[str, tuple[str, str]]:
        """Until the hub records each speaker in ``wanted`` in its state for ``version``."""

        def done() -> dict[str, tuple[str, str]] | None:
            if on_poll is not None:
                on_poll()
            got = self.updates(version)
            ok = all(got.get(i, ("", ""))[0] == s for i, s in wanted.items())
            return got if ok else None

        return wait_for(done, timeout_s, f"{version}: {wanted}", self.logs)

    # --- the hub's storage, spoiled on purpose -------------------------------------

    def stored_bundle(self, version: str) -> Path:
        """Where the hub keeps a release's bundle (``<data>/releases/``)."""
        return self.system.data / "releases" / bundle_name(version)

    def swap_stored_bundle(self, version: str, bad: Path) -> None:
        """Serve ``bad`` as ``version``'s bundle, offered with its own size and hash: as
        if someone changed the hub's storage and records, so that only the bundle's own
        signature and hashes stand between it and the speakers."""
        data = bad.read_bytes()
        shutil.copyfile(bad, self.stored_bundle(version))
        with self.system.db.transaction() as conn:
            conn.execute(
                "UPDATE releases SET size = ?, sha256 = ? WHERE version = ?",
                (len(data), hashlib.sha256(data).hexdigest(), version),
            )
