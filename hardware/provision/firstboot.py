#!/usr/bin/env python3
"""Legato's first boot on a flashed Raspberry Pi: from the card's boot partition to a
running, paired speaker.  Standard library only: it runs before Legato is installed.

Steps, each skipped when already done, so running it again is harmless:
  1. a ``legato`` system user in the ``audio`` group;
  2. the Debian packages the speaker needs (apt-get);
  3. a virtual environment at /opt/legato/releases/VERSION with ``legato[speaker]``
     from the wheel on the card (its dependencies from the package index, or only
     from ``legato/wheels/`` when the card carries them), ``/opt/legato/current``
     switched to it atomically; then the release guard copied out of it to
     /opt/legato/guard.py, slots.json and the update state directory (also done, once,
     for an install made before signed updates existed);
  4. ``speaker.toml`` and the files it names moved to /etc/legato, root's and readable
     by the ``legato`` group only (directory 0750, files 0640): the config pins the
     release key the root installer trusts, so the speaker must not write it;
  5. every secret deleted from the boot partition (broker secret, local token, the
     Wi-Fi key in the network seed and the firstrun script);
  6. the hardened ``legato-speaker.service`` installed, enabled and started, and
     ``legato-update.path`` (which installs the releases the speaker downloads);
  7. "first boot done" reported to the hub (bounded retries; not fatal).

``--root`` installs under another directory and ``--commands DIR`` makes any
program found in DIR stand in for the system one (apt-get, useradd, chown,
systemctl): that is how the tests run it on a machine that is not a Pi.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: python3-dev, gcc and libasound2-dev: pyalsaaudio has no wheel for the Pi and is built,
#: and so is the engine's small C library (device/audio/pcm_native.c)
#: no "libasound2": Debian 13 renamed it (time64), and libasound2-dev brings the right one
APT_PACKAGES = (
    "python3-venv",
    "python3-pip",
    "python3-dev",
    "gcc",
    "libasound2-dev",
    "libvorbisfile3",
    "libmpv2",
    "avahi-daemon",  # Raspberry Pi OS has it; mDNS goes through it (one responder)
)
CONFIG_FILES = ("speaker.toml", "speaker.secret", "speaker.local-token", "speaker-hub-ca.pem")
SECRET_FILES = ("speaker.secret", "speaker.local-token", "firstrun.sh")
UNIT = "legato-speaker.service"
UPDATE_UNITS = ("legato-update.path", "legato-update.service")
ROOT_DIR = "/opt/legato"
UPDATE_STATE = "/var/lib/legato/update"
#: what the guard (releases/guard.py) reads as "no trial, nothing refused"
EMPTY_SLOTS = '{"last": null, "previous": null, "refused": [], "trial": null}\n'
RETRY_UNIT = "legato-firstboot.service"
#: what changes the running system: only ever run on it, or as a stand-in (tests)
SYSTEM_COMMANDS = frozenset(
    {"apt-get", "dpkg", "groupadd", "useradd", "chown", "systemctl", "timedatectl"}
)


def retry_unit(boot: str) -> str:
    """The one-shot unit that runs this script at every boot, and again a minute after a
    failure, until it succeeds (its last step disables it): apt, pip or the hub may
    be unreachable the first time, and power may be cut half way."""
    return f"""[Unit]
Description=Legato first boot: install the speaker and pair it
Wants=network-online.target
After=network-online.target time-sync.target
ConditionPathExists={boot}/legato/firstboot.py
StartLimitIntervalSec=0

[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {boot}/legato/firstboot.py --boot {boot}
Restart=on-failure
RestartSec=60
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
"""


def shred(path: Path) -> None:
    """Overwrite, then delete: on FAT an unlinked file's clusters keep their bytes."""
    if not path.exists():
        return
    with open(path, "r+b") as f:
        f.write(b"\0" * path.stat().st_size)
        f.flush()
        os.fsync(f.fileno())
    path.unlink()


def log(message: str) -> None:
    print(f"legato first boot: {message}", flush=True)


class FirstBoot:
    def __init__(self, boot: Path, root: Path, commands: Path | None) -> None:
        self.boot = boot
        self.card = boot / "legato"
        self.root = root
        self.commands = commands
        self.installed = False  # a slot installed by this run

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def run(
        self, *args: str, attempts: int = 1, env: dict[str, str] | None = None, fatal: bool = True
    ) -> bool:
        """A system command (or its stand-in from --commands), retried when asked.
        Under another --root, a system command without a stand-in is skipped: it would
        change this machine, not the root being set up."""
        program = self.program(args[0])
        if program == args[0] and program in SYSTEM_COMMANDS and self.root != Path("/"):
            log(f"skipping {program}: not the running system's root")
            return True
        for attempt in range(1, attempts + 1):
            done = subprocess.run(
                [program, *args[1:]], env={**os.environ, **(env or {})}, check=False
            )
            if done.returncode == 0:
                return True
            if attempt < attempts:
                log(f"{args[0]} failed (status {done.returncode}); trying again in 10 s")
                time.sleep(10)
        if fatal:
            raise SystemExit(f"legato first boot: {' '.join(args)} failed")
        return False

    def program(self, name: str) -> str:
        """The stand-in for ``name`` when there is one, else ``name`` itself."""
        if self.commands is not None and (self.commands / name).exists():
            return str(self.commands / name)
        return name

    def have(self, program: str) -> bool:
        if self.program(program) != program:  # a stand-in
            return True
        return self.root == Path("/") and shutil.which(program) is not None

    # 0 ------------------------------------------------------------------------------
    def clock(self, timeout_s: float = 180.0) -> None:
        """Wait (bounded) for NTP: a Pi has no clock battery and boots at its image's
        date, at which TLS certificates and apt's Release files are not valid yet."""
        if not self.have("timedatectl"):
            return
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = subprocess.run(
                [self.program("timedatectl"), "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.stdout.strip() == "yes":
                return
            time.sleep(2)
        log("the clock is not synchronised yet; going on (apt ignores Release dates)")

    # 1 ------------------------------------------------------------------------------
    def user(self) -> None:
        # audio: the DAC; gpio: buttons, knob and LED (/dev/gpiochip*, which Raspberry Pi
        # OS's udev rules give that group); dialout: a front panel's serial port.  The
        # unit names all three, and systemd refuses to start it if a group is missing, so
        # an image without a gpio group gets an empty one (made even for an existing user).
        self.run("groupadd", "--force", "--system", "gpio")
        passwd = self.path("/etc/passwd")
        if passwd.exists() and any(
            line.startswith("legato:") for line in passwd.read_text().splitlines()
        ):
            return
        log("creating the legato system user")
        self.run(
            "useradd",
            "--system",
            "--user-group",
            "--groups",
            "audio,gpio,dialout",
            "--home-dir",
            "/var/lib/legato",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "legato",
        )

    # 2 ------------------------------------------------------------------------------
    def packages(self) -> None:
        marker = self.path("/var/lib/legato/.apt-done")
        if marker.exists():
            return
        log("installing system packages: " + " ".join(APT_PACKAGES))
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        if self.have("dpkg"):  # a power cut during an earlier try leaves dpkg half done
            self.run("dpkg", "--configure", "-a", env=env, fatal=False)
        wait = "-o", "DPkg::Lock::Timeout=300"
        self.run("apt-get", *wait, "-o", "Acquire::Check-Date=false", "update", attempts=3, env=env)
        self.run(
            "apt-get",
            *wait,
            "install",
            "-y",
            "--no-install-recommends",
            *APT_PACKAGES,
            attempts=3,
            env=env,
        )
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("done\n")

    # 3 ------------------------------------------------------------------------------
    def wheel(self) -> Path | None:
        found = sorted(self.card.glob("legato-*.whl")) if self.card.is_dir() else []
        return found[-1] if found else None

    def environment(self) -> None:
        wheel = self.wheel()
        current = self.path("/opt/legato/current")
        if wheel is None:
            if (current / "bin" / "legato-speaker").exists():
                return
            raise SystemExit("legato first boot: no Legato wheel on the card and none installed")
        version = wheel.name.split("-")[1]
        slot = self.path(f"/opt/legato/releases/{version}")
        if not (slot / ".legato-complete").exists():
            log(f"installing Legato {version} into {slot}")
            shutil.rmtree(slot, ignore_errors=True)
            slot.parent.mkdir(parents=True, exist_ok=True)
            self.run(sys.executable, "-m", "venv", str(slot))
            pip = [str(slot / "bin" / "python"), "-m", "pip", "install", "--no-input"]
            pip += ["--disable-pip-version-check", f"{wheel}[speaker]"]
            if (self.card / "wheels").is_dir():
                pip += ["--no-index", "--find-links", str(self.card / "wheels")]
            constraints = self.card / "constraints.txt"
            pinned = [*pip, "-c", str(constraints)] if constraints.exists() else pip
            if not self.run(*pinned, attempts=2, fatal=False):
                log("the pinned versions do not install here; letting pip choose")
                self.run(*pip, attempts=2)
            if constraints.exists():  # an update with the same pins reuses these packages
                shutil.copyfile(constraints, slot / "constraints.txt")
            self.native(slot)
            os.sync()
            (slot / ".legato-complete").write_text(version + "\n")
            self.installed = True
        link = current.with_name(".current.new")
        link.unlink(missing_ok=True)
        link.symlink_to(f"releases/{version}")
        os.replace(link, current)  # atomic: a crash leaves the old link or the new one

    def native(self, slot: Path) -> None:
        """The engine's per-sample loops built for this CPU, by the installed release's
        own ``releases.native`` (what its updates use too); without them the speaker
        uses numpy (slower, same sound), so a failure here is only logged."""
        built = subprocess.run(
            [str(slot / "bin" / "python"), "-m", "releases.native", str(slot)],
            cwd="/",  # ``-m`` imports from the working directory first
            check=False,
        )
        if built.returncode != 0:
            log("the engine's C library was not built: the speaker uses numpy instead")

    def slots(self) -> None:
        """What the release guard needs beside the slots: its own copy outside them
        (a broken release cannot break its rollback), slots.json, and the state
        directory the speaker writes its verdict and downloads to.  An install made
        before signed updates has a ``current`` link but none of these."""
        root = self.path(ROOT_DIR)
        guard = root / "guard.py"
        if self.installed or not guard.exists():
            found = sorted((root / "current").glob("lib/python3*/site-packages/releases/guard.py"))
            if not found:
                raise SystemExit(
                    "legato first boot: the installed Legato has no release guard "
                    "(releases/guard.py): it predates signed updates; flash a newer one"
                )
            log(f"installing the release guard at {guard}")
            staged = guard.with_name(".guard.py.new")
            staged.write_bytes(found[0].read_bytes())
            staged.chmod(0o755)
            os.replace(staged, guard)
        if not (root / "slots.json").exists():
            (root / "slots.json").write_text(EMPTY_SLOTS)
        state = self.path(UPDATE_STATE)
        if not state.is_dir():
            state.mkdir(parents=True)
            self.run("chown", "-R", "legato:legato", str(state))

    # 4 ------------------------------------------------------------------------------
    def config(self) -> None:
        target = self.path("/etc/legato")
        if not (self.card / "speaker.toml").exists():
            if (target / "speaker.toml").exists():
                self.secure_config(target)  # an earlier install's, made root's too
                return
            raise SystemExit("legato first boot: no speaker.toml on the card nor in /etc/legato")
        log(f"moving the speaker's config to {target}")
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o750)
        for name in CONFIG_FILES:
            source = self.card / name
            if not source.exists():
                continue
            staged = target / f".{name}.new"
            with open(os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
                f.write(source.read_bytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(staged, target / name)
        self.secure_config(target)
        os.sync()  # on disk before the card's copies are deleted

    def secure_config(self, target: Path) -> None:
        """``/etc/legato`` is root's: the speaker (group ``legato``) reads it, never
        writes it.  The config pins the release key the root installer trusts, so the
        speaker's user must not be able to change it (directory 0750, files 0640)."""
        os.chmod(target, 0o750)
        for path in target.iterdir():
            if path.is_file() and not path.is_symlink():
                os.chmod(path, 0o640)
        self.run("chown", "-R", "root:legato", str(target))

    # 5 ------------------------------------------------------------------------------
    def scrub(self) -> None:
        """Delete every secret from the boot partition, now that /etc/legato has them."""
        for name in (*CONFIG_FILES, *SECRET_FILES):
            shred(self.card / name)
        shutil.rmtree(self.card / "wheels", ignore_errors=True)
        for wheel in self.card.glob("*.whl") if self.card.is_dir() else ():
            wheel.unlink()
        seed = self.boot / "network-config"
        if seed.exists() and "password" in seed.read_text(errors="replace"):
            seed.write_text("network:\n  config: disabled\n")  # applied already; no key kept
        os.sync()

    # 6 ------------------------------------------------------------------------------
    def service(self) -> None:
        for name in (UNIT, *UPDATE_UNITS):
            source = self.card / name
            unit = self.path(f"/etc/systemd/system/{name}")
            if source.exists():
                unit.parent.mkdir(parents=True, exist_ok=True)
                unit.write_text(source.read_text())
        self.run("systemctl", "daemon-reload")
        self.run("systemctl", "enable", "--now", UNIT)
        self.run("systemctl", "enable", "--now", UPDATE_UNITS[0])
        self.run("systemctl", "disable", RETRY_UNIT)

    # 7 ------------------------------------------------------------------------------
    def report(self) -> None:
        marker = self.path("/var/lib/legato/.first-boot-reported")
        if marker.exists():
            return
        python = self.path("/opt/legato/current/bin/python")
        config = self.path("/etc/legato/speaker.toml")
        done = subprocess.run(
            [str(python), "-m", "device.first_boot", "--config", str(config)], check=False
        )
        if done.returncode == 0:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"at": int(time.time())}) + "\n")
        else:
            log("could not tell the hub; the speaker still pairs when it comes online")

    def install_retry_unit(self) -> None:
        """Run from cloud-init's once-only ``runcmd``: hand the work to a unit that
        retries, and return at once."""
        unit = self.path(f"/etc/systemd/system/{RETRY_UNIT}")
        unit.parent.mkdir(parents=True, exist_ok=True)
        unit.write_text(retry_unit(str(self.boot)))
        self.run("systemctl", "daemon-reload")
        self.run("systemctl", "enable", RETRY_UNIT)
        self.run("systemctl", "start", "--no-block", RETRY_UNIT)

    def all(self) -> None:
        for step in (
            self.clock,
            self.user,
            self.packages,
            self.environment,
            self.slots,
            self.config,
            self.scrub,
        ):
            step()
        self.service()
        self.report()
        log("done")


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Legato's first boot on a flashed Pi.")
    parser.add_argument("--boot", type=Path, default=here.parent, help="the boot partition")
    parser.add_argument("--root", type=Path, default=Path("/"), help="install under this root")
    parser.add_argument("--commands", type=Path, help="stand-ins for system commands (tests)")
    parser.add_argument(
        "--install-unit", action="store_true", help="install the retrying unit and start it"
    )
    args = parser.parse_args(argv)
    first = FirstBoot(args.boot, args.root, args.commands)
    if args.install_unit:
        first.install_retry_unit()
    else:
        first.all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
