"""legato-flash on images laid out as Raspberry Pi OS lays them out, against a real hub.

Every test runs the console script as a maker would, then reads the image back with
mtools (tests/pi_images.py, independent of the code under test): the files, the
overlay, ``cmdline.txt`` still one line, the Wi-Fi passphrase nowhere in the image's
bytes, the root partition untouched.  Bad input leaves the image byte for byte as it
was and registers nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import lzma
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from connect_protocol.tls import fingerprint
from device import config as device_config
from hub.accounts import users
from hub.clock import now_ms
from hub.fleet import enrolment
from hub.http.app import create_app
from hub.server import open_database
from tests.brokers import free_port
from tests.pi_images import MIB, PiImage, boot_names, make_image, read_boot_file
from tests.serving import offline_context
from tests.system import PASSWORD, System

pytestmark = [pytest.mark.integration]

FLASH = str(Path(sys.executable).with_name("legato-flash"))
ADMIN_PASSWORD = "operator-password"
PASSPHRASE = "correct horse battery"
BOARD = "pi-zero-2w-hifiberry-dacplus-zero"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    system = System(tmp_path_factory.mktemp("flash-hub"), embedded=True)
    users.add_user(system.db, "operator", ADMIN_PASSWORD, admin=True)
    try:
        system.start_hub()
        yield system
    finally:
        system.stop()


def new_code(system: System) -> str:
    return enrolment.create(system.db, created_by="test", now_ms=now_ms()).code


def setups(system: System) -> dict[str, enrolment.SetupRow]:
    with system.db.reading() as conn:
        return {row.device_id: row for row in enrolment.setups(conn)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flash_to(hub_url: str, image: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The console script as a maker runs it (no $LEGATO_TOKEN from this shell)."""
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_TOKEN"}
    return subprocess.run(
        [FLASH, str(image), "--hub", hub_url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def flash(system: System, image: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """legato-flash against ``system``'s hub, its fingerprint given."""
    return flash_to(
        system.speaker_url, image, "--hub-fingerprint", fingerprint(system.tls.ca_pem), *args
    )


@pytest.fixture
def wifi_file(tmp_path: Path) -> Path:
    path = tmp_path / "wifi.txt"
    path.write_text(PASSPHRASE + "\n")
    return path


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    path = tmp_path / "id.pub"
    path.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFlash maker@laptop\n")
    return path


def config_from_card(image: PiImage, into: Path) -> device_config.SpeakerConfig:
    """``legato/`` copied off the card as the first boot copies it (0600), then loaded
    by the speaker's own config reader."""
    into.mkdir(parents=True, exist_ok=True)
    for name in ("speaker.toml", "speaker.secret", "speaker.local-token", "speaker-hub-ca.pem"):
        data = read_boot_file(image, f"legato/{name}")
        assert data is not None, name
        (into / name).write_bytes(data)
        (into / name).chmod(0o600)
    return device_config.load(into / "speaker.toml")


def test_an_enrolment_code_makes_a_cloud_init_card_a_paired_speaker(
    hub: System, tmp_path: Path, wifi_file: Path, ssh_key: Path
) -> None:
    image = make_image(tmp_path / "new.img", cloud_init=True)
    code = new_code(hub)
    done = flash(
        hub,
        image.path,
        "--enrol",
        code,
        "--name",
        "Küche 2",
        "--board",
        BOARD,
        "--wifi-ssid",
        'Home "Net"',
        "--wifi-password-file",
        str(wifi_file),
        "--wifi-country",
        "de",
        "--ssh-key",
        str(ssh_key),
    )
    assert done.returncode == 0, done.stderr
    assert image.root_digest() == image.root_sha256  # the root partition is not touched
    cfg = config_from_card(image, tmp_path / "card")
    assert cfg.name == "Küche 2"
    assert cfg.id.startswith("kuche-2-")
    assert cfg.hub_ca == hub.tls.ca_pem  # the hub's identity is pinned
    assert cfg.board is not None
    assert cfg.board.key == BOARD
    assert cfg.sink == "alsa:plughw:CARD=sndrpihifiberry,DEV=0"  # from the board profile
    assert cfg.password  # the broker secret the hub made for it
    assert f"registered speaker 'Küche 2' as {cfg.id}" in done.stdout
    assert setups(hub)[cfg.id].first_boot_ms is None  # waiting for first boot
    # the board's lines at the end of config.txt, every stock line kept
    config_txt = (read_boot_file(image, "config.txt") or b"").decode()
    assert config_txt.rstrip().endswith(
        "[all]\ndtparam=audio=off\ndtoverlay=hifiberry-dac\n# --- end legato-flash ---"
    )
    assert "dtparam=audio=on\n" in config_txt
    assert "[cm5]\n" in config_txt
    # cloud-init: host name, SSH key, the first boot; Wi-Fi with the derived key
    user = yaml.safe_load(read_boot_file(image, "user-data") or b"")
    assert user["hostname"] == "kuche-2"
    assert user["users"][0]["ssh_authorized_keys"] == [ssh_key.read_text().strip()]
    assert user["runcmd"][-1][1] == "/boot/firmware/legato/firstboot.py"
    network = yaml.safe_load(read_boot_file(image, "network-config") or b"")
    wlan = network["network"]["wifis"]["wlan0"]
    assert list(wlan["access-points"]) == ['Home "Net"']
    assert len(wlan["access-points"]['Home "Net"']["password"]) == 64
    assert yaml.safe_load(read_boot_file(image, "meta-data") or b"") == {
        "instance-id": f"legato-{cfg.id}"
    }
    names = boot_names(image)
    assert "legato/firstboot.py" in names
    assert "legato/legato-speaker.service" in names
    assert any(n.startswith("legato/legato-") and n.endswith(".whl") for n in names)
    # the passphrase is nowhere on the card, in any encoding a tool would use
    raw = image.path.read_bytes()
    for form in (PASSPHRASE.encode(), PASSPHRASE.encode("utf-16-le")):
        assert form not in raw
    # and the code is spent
    again = flash(
        hub,
        make_image(tmp_path / "b.img", cloud_init=True).path,
        "--enrol",
        code,
        "--name",
        "Other",
    )
    assert again.returncode == 2
    assert "already used" in again.stderr


def test_an_admin_token_flashes_an_older_image_with_a_firstrun_hook(
    hub: System, tmp_path: Path, wifi_file: Path
) -> None:
    earlier = "legato/legato-0.0.9-py3-none-any.whl"  # from an earlier flash
    image = make_image(tmp_path / "old.img", cloud_init=False, extra_files={earlier: b"old"})
    admin = hub.token("operator", ADMIN_PASSWORD)
    args = (
        "--token",
        admin,
        "--name",
        "Den",
        "--board",
        "pi-max98357a",
        "--wifi-ssid",
        "Home",
        "--wifi-password-file",
        str(wifi_file),
    )
    done = flash(hub, image.path, *args)
    assert done.returncode == 0, done.stderr
    cmdline = (read_boot_file(image, "cmdline.txt") or b"").decode()
    assert cmdline.count("\n") == 1
    assert cmdline.startswith("console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 ")
    assert (
        " systemd.run=/boot/firmware/legato/firstrun.sh systemd.run_success_action=reboot"
        in cmdline
    )
    script = (read_boot_file(image, "legato/firstrun.sh") or b"").decode()
    assert "NEW_HOST=den" in script
    assert PASSPHRASE not in script
    assert "user-data" not in boot_names(image)
    assert earlier not in boot_names(image)  # first boot must not install it
    assert f"delete /{earlier}" in done.stdout
    assert image.root_digest() == image.root_sha256
    # a second run with another board: one block, the new board's; cmdline one hook
    again = flash(hub, image.path, "--token", admin, "--name", "Den", "--board", BOARD)
    assert again.returncode == 0, again.stderr
    config_txt = (read_boot_file(image, "config.txt") or b"").decode()
    assert config_txt.count("# --- legato-flash: board") == 1
    assert "dtoverlay=hifiberry-dac" in config_txt
    assert "max98357a" not in config_txt
    assert (read_boot_file(image, "cmdline.txt") or b"").decode().count("systemd.run=") == 1


def test_a_dry_run_changes_nothing_and_registers_nothing(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "dry.img", cloud_init=True)
    before, speakers = digest(image.path), set(setups(hub))
    code = new_code(hub)
    done = flash(hub, image.path, "--enrol", code, "--name", "Dry", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "create /legato/speaker.toml  from the hub's answer" in done.stdout
    assert "change /user-data" in done.stdout
    assert "nothing was changed" in done.stdout
    assert digest(image.path) == before
    assert set(setups(hub)) == speakers
    # the code is still good, and wheels for an install without the index go along
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl").write_bytes(b"w" * 5000)
    done = flash(hub, image.path, "--enrol", code, "--name", "Dry", "--offline-wheels", str(wheels))
    assert done.returncode == 0, done.stderr
    assert "create /legato/wheels/numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl" in done.stdout
    assert read_boot_file(image, "legato/wheels/numpy-2.0.0-cp311-cp311-manylinux_2_17_aarch64.whl")


def _gpt(path: Path) -> Path:
    image = make_image(path, cloud_init=True)
    with image.path.open("r+b") as f:
        f.seek(446 + 4)
        f.write(b"\xee")
    return image.path


def _truncated(path: Path) -> Path:
    image = make_image(path, cloud_init=True)
    os.truncate(image.path, image.root_start + 1000)
    return image.path


def _no_fat(path: Path) -> Path:
    image = make_image(path, cloud_init=True)
    with image.path.open("r+b") as f:
        f.seek(446 + 4)
        f.write(b"\x83")
    return image.path


def _bullseye(path: Path) -> Path:
    return make_image(path, cloud_init=False, bookworm=False).path


def _full(path: Path) -> Path:
    filler = {"filler.bin": os.urandom(33 * MIB)}
    return make_image(path, cloud_init=True, boot_mib=34, extra_files=filler).path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_gpt, "GPT disk"),
        (_truncated, "the image is truncated"),
        (_no_fat, "no FAT boot partition"),
        (_full, "the boot partition is too full"),
        (_bullseye, "older than Raspberry Pi OS Bookworm"),
    ],
)
def test_a_broken_image_is_refused_and_left_as_it_was(
    hub: System, tmp_path: Path, make: object, message: str
) -> None:
    path = make(tmp_path / "bad.img")  # type: ignore[operator]
    before, speakers = digest(path), set(setups(hub))
    done = flash(hub, path, "--enrol", new_code(hub), "--name", "Broken")
    assert done.returncode == 2
    assert message in done.stderr
    assert digest(path) == before
    assert set(setups(hub)) == speakers
    assert not list(tmp_path.glob(".*legato-boot"))  # no scratch copy left behind


def test_refusals_from_the_hub_leave_the_image_as_it_was(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "r.img", cloud_init=True)
    before = digest(image.path)
    expired = enrolment.create(hub.db, created_by="test", now_ms=now_ms() - 2 * 3600_000).code
    listener = hub.token("listener", PASSWORD)
    cases = [
        (("--enrol", expired), "has expired"),
        (("--enrol", "AAAA-BBBB-CCCC"), "unknown enrolment code"),
        (("--token", listener), "needs an administrator's token"),
        (("--token", "not-a-token"), "HTTP 401"),
    ]
    for args, message in cases:
        done = flash(hub, image.path, *args, "--name", "Refused")
        assert done.returncode == 2, args
        assert message in done.stderr, (args, done.stderr)
        assert digest(image.path) == before


def test_a_hub_that_is_down_or_not_the_one_named_is_refused(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "h.img", cloud_init=True)
    before = digest(image.path)
    down = flash_to(
        f"https://127.0.0.1:{free_port()}",
        image.path,
        "--hub-fingerprint",
        fingerprint(hub.tls.ca_pem),
        "--enrol",
        new_code(hub),
        "--name",
        "X",
    )
    assert down.returncode == 2
    assert "cannot reach the hub" in down.stderr
    impostor = flash_to(
        hub.speaker_url,
        image.path,
        "--hub-fingerprint",
        "sha256:" + "ab" * 32,
        "--enrol",
        new_code(hub),
        "--name",
        "X",
    )
    assert impostor.returncode == 2
    assert "is not the one you named" in impostor.stderr
    unpinned = flash_to(hub.speaker_url, image.path, "--enrol", new_code(hub), "--name", "X")
    assert unpinned.returncode == 2
    assert "uses its own certificate authority" in unpinned.stderr
    assert "--hub-fingerprint" in unpinned.stderr
    assert digest(image.path) == before


def test_an_xz_image_is_decompressed_and_written_to_a_card_with_read_back(
    hub: System, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "os.img", cloud_init=True)
    packed = tmp_path / "os.img.xz"
    packed.write_bytes(lzma.compress(image.path.read_bytes(), preset=0))
    image.path.unlink()
    small = tmp_path / "small-card"
    small.write_bytes(b"\0" * MIB)
    refused = flash(
        hub, packed, "--enrol", new_code(hub), "--name", "Card", "--write", str(small), "--yes"
    )
    assert refused.returncode == 2
    assert "is too small" in refused.stderr
    assert image.path.exists()  # decompressed beside the .xz, checked against the card
    assert "legato/speaker.toml" not in boot_names(image)  # and not edited
    image.path.unlink()
    card = tmp_path / "card"
    card.write_bytes(b"\xff" * (image.root_start + image.root_size + 4 * MIB))
    done = flash(
        hub, packed, "--enrol", new_code(hub), "--name", "Card", "--write", str(card), "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "written and verified" in done.stdout
    size = image.path.stat().st_size
    assert card.read_bytes()[:size] == image.path.read_bytes()
    on_card = PiImage(
        card,
        image.boot_start,
        image.boot_size,
        image.root_start,
        image.root_size,
        image.root_sha256,
    )
    assert on_card.root_digest() == image.root_sha256
    assert read_boot_file(on_card, "legato/speaker.toml") is not None


def test_writing_needs_a_yes_without_a_terminal(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "y.img", cloud_init=True)
    card = tmp_path / "card"
    card.write_bytes(b"\0" * (image.root_start + image.root_size))
    done = flash(hub, image.path, "--enrol", new_code(hub), "--name", "Y", "--write", str(card))
    assert done.returncode == 2
    assert "pass --yes" in done.stderr
    assert set(card.read_bytes()) == {0}


def test_an_unknown_board_is_refused_before_the_hub_is_asked(hub: System, tmp_path: Path) -> None:
    image = make_image(tmp_path / "b.img", cloud_init=True)
    before, speakers = digest(image.path), set(setups(hub))
    done = flash(hub, image.path, "--enrol", new_code(hub), "--name", "B", "--board", "pi-nope")
    assert done.returncode == 2
    assert "unknown board 'pi-nope'" in done.stderr
    assert digest(image.path) == before
    assert set(setups(hub)) == speakers


def test_mtools_missing_is_said_plainly(tmp_path: Path) -> None:
    image = make_image(tmp_path / "m.img", cloud_init=True)
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("python3",):
        found = shutil.which(tool)
        assert found is not None
        (bare / tool).symlink_to(found)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "hardware.flash",
            str(image.path),
            "--hub",
            "https://h:8443",
            "--enrol",
            "X",
            "--name",
            "M",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(bare)},
        timeout=60,
    )
    assert done.returncode == 2
    assert "mtools is not installed" in done.stderr


def test_enrolment_codes_are_for_admins_and_guessing_them_is_slowed(tmp_path: Path) -> None:
    system = System(tmp_path / "hub", embedded=True)
    users.add_user(system.db, "operator", ADMIN_PASSWORD, admin=True)
    try:
        system.start_hub()
        listener = {"Authorization": f"Bearer {system.token('listener', PASSWORD)}"}
        admin = {"Authorization": f"Bearer {system.token('operator', ADMIN_PASSWORD)}"}
        url = system.speaker_url
        ca = ssl.create_default_context(cafile=system.tls.ca_cert)
        r = httpx.post(f"{url}/api/admin/enrolments", headers=listener, verify=ca)
        assert r.status_code == 403
        r = httpx.post(f"{url}/api/admin/enrolments", headers=admin, verify=ca)
        assert r.status_code == 201
        assert len(r.json()["code"]) == 14  # XXXX-XXXX-XXXX
        r = httpx.post(f"{url}/api/speakers", json={"name": "No auth"}, verify=ca)
        assert r.status_code == 403
        assert "admin token or an enrolment code" in r.json()["error"]["message"]
        statuses = []
        for i in range(31):  # 30 free failures per address (the request above was one)
            bad = {"name": "Guess", "enrol_code": f"AAAA-BBBB-{i:04d}"}
            statuses.append(httpx.post(f"{url}/api/speakers", json=bad, verify=ca).status_code)
        assert statuses[:29] == [403] * 29
        assert statuses[29:] == [429, 429]
        with system.db.reading() as conn:
            assert enrolment.setups(conn) == []
    finally:
        system.stop()


@pytest.fixture
def loop_card(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A real block device for a card: a loop device over a file (root only)."""
    if os.geteuid() != 0 or shutil.which("losetup") is None:
        pytest.skip("loop devices need root and losetup")
    backing = tmp_path / "card.bin"
    backing.write_bytes(b"\xff" * (96 * MIB))
    made = subprocess.run(
        ["losetup", "--find", "--show", "--partscan", str(backing)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(f"no loop device here: {made.stderr.strip()}")
    device = Path(made.stdout.strip())
    try:
        yield device, backing
    finally:
        subprocess.run(["losetup", "--detach", str(device)], check=False)


def test_a_real_block_device_is_written_and_a_held_one_refused(
    hub: System, tmp_path: Path, loop_card: tuple[Path, Path]
) -> None:
    device, backing = loop_card
    image = make_image(tmp_path / "os.img", cloud_init=True)
    # held by someone else (as LVM, RAID or a mount holds a disk): the kernel says busy
    holder = os.open(device, os.O_RDONLY | os.O_EXCL)
    try:
        busy = flash(
            hub,
            image.path,
            "--enrol",
            new_code(hub),
            "--name",
            "L",
            "--write",
            str(device),
            "--yes",
        )
    finally:
        os.close(holder)
    assert busy.returncode == 2
    assert "is in use" in busy.stderr
    done = flash(
        hub, image.path, "--enrol", new_code(hub), "--name", "L", "--write", str(device), "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert "written and verified" in done.stdout
    size = image.path.stat().st_size
    with backing.open("rb") as f:
        assert f.read(size) == image.path.read_bytes()


def test_a_registration_over_plain_http_from_the_network_is_refused(tmp_path: Path) -> None:
    """The answer holds the speaker's secret: over plain HTTP only on loopback (the hub's
    own machine). The app is driven in process with a LAN client address."""
    db = open_database(tmp_path / "data")
    users.add_user(db, "operator", ADMIN_PASSWORD, admin=True)
    app = create_app(offline_context(db, tmp_path / "data"), manage_relay=False)
    code = enrolment.create(db, created_by="test", now_ms=now_ms()).code

    async def post(client: tuple[str, int]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            return await http.post("/api/speakers", json={"name": "LAN", "enrol_code": code})

    refused = asyncio.run(post(("192.168.1.20", 50000)))
    assert refused.status_code == 403
    assert "HTTPS port" in refused.json()["error"]["message"]
    with db.reading() as conn:
        assert enrolment.setups(conn) == []
    assert asyncio.run(post(("127.0.0.1", 50000))).status_code == 201
