"""The maker's whole path on this machine: a real hub, ``legato-flash`` with an
enrolment code, the boot partition taken off the image, the first-boot script run
against a temporary root (``apt-get``, ``useradd``, ``chown`` and ``systemctl``
stand-ins that log their arguments; the virtual environment really built from the
wheel on the card), and the speaker started from that environment with the config
the script installed: it finds the hub over mDNS, comes online and plays a track to
its file sink, and the hub's dashboard says its first boot is done.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from connect_protocol.tls import fingerprint
from hardware.flash import FIRSTBOOT_SOURCE
from hardware.provision.unit import unit_text, units
from hub.accounts import users
from hub.clock import now_ms
from hub.fleet import enrolment
from hub.ingest.pipeline import ingest_paths
from tests.audio_files import FileTags, write_audio
from tests.media_fixtures import sweep_span
from tests.pi_images import make_image, mtools
from tests.system import Api, System, child_env, spawn, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]

FLASH = str(Path(sys.executable).with_name("legato-flash"))
ADMIN_PASSWORD = "operator-password"
STAND_INS = {
    "apt-get": 'echo "apt-get $*" >> "$CALLS"',
    "chown": 'echo "chown $*" >> "$CALLS"',
    "dpkg": 'echo "dpkg $*" >> "$CALLS"',
    "groupadd": 'echo "groupadd $*" >> "$CALLS"',
    "timedatectl": "echo yes",
    "systemctl": 'echo "systemctl $*" >> "$CALLS"',
    "useradd": 'echo "useradd $*" >> "$CALLS"\n'
    'echo "legato:x:998:998::/var/lib/legato:/usr/sbin/nologin" >> "$ROOT/etc/passwd"',
}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[System]:
    system = System(tmp_path / "hub", embedded=True, mdns=True)
    users.add_user(system.db, "operator", ADMIN_PASSWORD, admin=True)
    album = tmp_path / "album"
    album.mkdir()
    pcm = sweep_span(0.0, 44100 * 3, 44100, f0=220, f1=880, total_s=3.0)
    write_audio(album / "01.flac", pcm, 44100, FileTags(title="Sweep", artist="Test", album="A"))
    assert all(r.status == "added" for r in ingest_paths(system.db, system.data, [album], jobs=1))
    try:
        system.start_hub()
        yield system
    finally:
        system.stop()


def verifies(unit: Path) -> None:
    """``systemd-analyze verify`` passes the unit with no warning (where it runs)."""
    if shutil.which("systemd-analyze") is None:
        return
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == ""


def stand_ins(folder: Path) -> Path:
    folder.mkdir()
    for name, body in STAND_INS.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    return folder


def first_boot(
    boot: Path, root: Path, commands: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """The card's firstboot.py against ``root``, with stand-ins logging to calls.log."""
    # no PYTHONPATH, as on a Pi: through it the slot's pip would take this checkout's
    # legato.egg-info (made when legato-flash built the wheel) for Legato installed
    env = {k: v for k, v in child_env().items() if k != "PYTHONPATH"}
    env |= {"CALLS": str(root.parent / "calls.log"), "ROOT": str(root)}
    return subprocess.run(
        [
            sys.executable,
            str(boot / "legato" / "firstboot.py"),
            "--boot",
            str(boot),
            "--root",
            str(root),
            "--commands",
            str(commands),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=480,
        env=env,
    )


def test_from_a_flashed_card_to_a_speaker_that_plays(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "raspios.img", cloud_init=True)
    code = enrolment.create(hub.db, created_by="test", now_ms=now_ms()).code
    flashed = subprocess.run(
        [
            FLASH,
            str(image.path),
            "--hub",
            hub.speaker_url,
            "--hub-fingerprint",
            fingerprint(hub.tls.ca_pem),
            "--enrol",
            code,
            "--name",
            "Shelf",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert flashed.returncode == 0, flashed.stderr
    # the boot partition as the Pi mounts it
    boot, root = tmp_path / "bootfs", tmp_path / "root"
    boot.mkdir()
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    mtools("mcopy", "-s", "-n", "-i", f"{image.path}@@{image.boot_start}", "::/*", str(boot))
    assert (boot / "legato" / "speaker.secret").exists()
    commands = stand_ins(tmp_path / "bin")

    done = first_boot(boot, root, commands)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls[0] == "groupadd --force --system gpio"  # buttons and LEDs need it
    assert calls[1].startswith("useradd --system --user-group --groups audio,gpio,dialout ")
    assert "dpkg --configure -a" in calls  # an earlier, interrupted try is repaired first
    assert any(c.startswith("apt-get") and " update" in c for c in calls)
    assert any(
        c.startswith("apt-get") and " install -y --no-install-recommends " in c for c in calls
    )
    # the config is root's: the speaker reads it (group legato), never changes its key
    assert f"chown -R root:legato {root}/etc/legato" in calls
    assert f"chown -R legato:legato {root}/etc/legato" not in calls
    assert "systemctl enable --now legato-speaker.service" in calls
    assert "systemctl enable --now legato-update.path" in calls
    assert f"chown -R legato:legato {root}/var/lib/legato/update" in calls
    # the config moved to /etc/legato, 0640 in a 0750 directory; every secret gone from the card
    etc = root / "etc" / "legato"
    assert etc.stat().st_mode & 0o777 == 0o750
    for name in ("speaker.toml", "speaker.secret", "speaker.local-token", "speaker-hub-ca.pem"):
        assert (etc / name).stat().st_mode & 0o777 == 0o640, name
    left = sorted(p.name for p in (boot / "legato").iterdir())
    assert left == [
        "constraints.txt",
        "firstboot.py",
        "legato-speaker.service",
        "legato-update.path",
        "legato-update.service",
    ]
    assert "password" not in (boot / "network-config").read_text()
    secret = (etc / "speaker.secret").read_text().strip()
    assert secret not in "".join(
        p.read_text(errors="replace") for p in boot.rglob("*") if p.is_file()
    )
    current = root / "opt" / "legato" / "current"
    assert os.readlink(current) == "releases/0.1.0"
    for name, text in units().items():
        assert (root / "etc" / "systemd" / "system" / name).read_text() == text, name
    # the release guard outside the slots, its slots.json, the state the speaker writes;
    # the slot keeps the pins it was installed with (an update with the same reuses it)
    opt = root / "opt" / "legato"
    site = next((current / "lib").glob("python3*/site-packages"))
    assert (opt / "guard.py").read_bytes() == (site / "releases" / "guard.py").read_bytes()
    assert json.loads((opt / "slots.json").read_text())["trial"] is None
    assert (root / "var" / "lib" / "legato" / "update").is_dir()
    assert (current / "constraints.txt").read_text() == (
        boot / "legato" / "constraints.txt"
    ).read_text()
    assert list(site.glob("device/audio/libpcm_native.so")) or shutil.which("cc") is None
    # the hub heard "first boot done" from the speaker's own login, over mDNS + pinned TLS
    device_id = next(
        line.split('"')[1]
        for line in (etc / "speaker.toml").read_text().splitlines()
        if line.startswith("id = ")
    )
    with hub.db.reading() as conn:
        row = {r.device_id: r for r in enrolment.setups(conn)}[device_id]
    assert row.first_boot_ms is not None

    # running it again is harmless: nothing reinstalled, nothing asked of apt
    installed = (current / ".legato-complete").stat().st_mtime_ns
    (tmp_path / "calls.log").write_text("")
    again = first_boot(boot, root, commands)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (current / ".legato-complete").stat().st_mtime_ns == installed
    assert not any(
        "apt-get" in c or "useradd" in c for c in (tmp_path / "calls.log").read_text().splitlines()
    )
    # an install from before signed updates (a current link, no guard): made whole once
    for made in (opt / "guard.py", opt / "slots.json"):
        made.unlink()
    shutil.rmtree(root / "var" / "lib" / "legato" / "update")
    migrated = first_boot(boot, root, commands)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert (opt / "guard.py").read_bytes() == (site / "releases" / "guard.py").read_bytes()
    assert (opt / "slots.json").exists()
    assert (root / "var" / "lib" / "legato" / "update").is_dir()
    assert (current / ".legato-complete").stat().st_mtime_ns == installed

    # the units as systemd reads them, with this root's paths
    for name, text in units(str(root)).items():
        (tmp_path / name).write_text(text)
        verifies(tmp_path / name)
    assert unit_text(str(root)) == units(str(root))["legato-speaker.service"]

    # the speaker from that environment, with that config, plays
    out = tmp_path / "out.raw"
    speaker = spawn(
        "flashed",
        [
            str(current / "bin" / "legato-speaker"),
            "--config",
            str(etc / "speaker.toml"),
            "--sink",
            f"file:{out}",
            "--listen",
            "127.0.0.1",
            "--normalisation",
            "off",
        ],
        tmp_path / "hub" / "flashed.log",
    )
    hub.speakers[device_id] = speaker
    api = Api(hub)
    try:
        api.wait_online(device_id)
        with hub.db.reading() as conn:
            track = conn.execute("SELECT id FROM tracks LIMIT 1").fetchone()[0]
        r = api.client.put(
            "/v1/me/player/play",
            params={"device_id": device_id},
            json={"uris": [f"legato:track:{track}"]},
        )
        assert r.status_code == 204, r.text

        def heard() -> bool:
            """The whole 3 s track, and not silence (at the default volume of 50 %)."""
            if not out.exists() or out.stat().st_size < 3 * 44100 * 4:
                return False
            pcm = np.fromfile(out, dtype="<i2")
            return bool(np.abs(pcm).max() > 100)

        wait_for(heard, 60, "the flashed speaker to play the track", hub.logs)
    finally:
        api.close()
    admin = httpx.post(
        f"{hub.url}/api/token",
        data={"grant_type": "password", "username": "operator", "password": ADMIN_PASSWORD},
    ).json()["access_token"]
    page = httpx.get(f"{hub.url}/dashboard/speakers", cookies={"legato_token": admin})
    assert page.status_code == 200
    assert "Shelf" in page.text
    assert "first boot done" in page.text


def test_cloud_init_hands_the_first_boot_to_a_unit_that_retries(tmp_path: Path) -> None:
    """cloud-init's runcmd runs once, even when what it ran failed: it only installs and
    starts a unit that runs the first boot at every start, and a minute after a
    failure, until it succeeds."""
    boot, root = tmp_path / "bootfs", tmp_path / "root"
    (boot / "legato").mkdir(parents=True)
    shutil.copy(Path(FIRSTBOOT_SOURCE), boot / "legato" / "firstboot.py")
    root.mkdir()
    commands = stand_ins(tmp_path / "bin")
    done = first_boot(boot, root, commands, "--install-unit")
    assert done.returncode == 0, done.stderr
    unit = root / "etc" / "systemd" / "system" / "legato-firstboot.service"
    text = unit.read_text()
    assert f"ExecStart=/usr/bin/python3 {boot}/legato/firstboot.py --boot {boot}" in text
    assert "Restart=on-failure" in text
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == [
        "systemctl daemon-reload",
        "systemctl enable legato-firstboot.service",
        "systemctl start --no-block legato-firstboot.service",
    ]
    if Path("/usr/bin/python3").exists():  # what its ExecStart names
        verifies(unit)
