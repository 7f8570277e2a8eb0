"""legato-flash's pure parts: the partition table, the boot-file edits, the Wi-Fi
key, the cloud-init and firstrun texts, the rule that refuses a card."""

from __future__ import annotations

import importlib.metadata
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from connect_protocol.quoting import quoted
from connect_protocol.tls import canonical_pem, fingerprint
from device import config as device_config
from hardware.card_writer import Target, mounted_from, refusal
from hardware.errors import FlashError
from hardware.flash import hostname_for
from hardware.image.mbr import Partition, boot_partition, partitions
from hardware.provision import boot_config, cloud_init, firstrun
from hardware.provision.wifi import wifi_settings, wpa_psk
from hub.fleet import pki
from hub.fleet.provisioning import write_speaker_config
from releases.pins import constraints
from tests.pi_images import STOCK_CMDLINE, STOCK_CONFIG, mbr

# --- MBR -------------------------------------------------------------------------


def test_a_raspberry_pi_os_table_gives_its_fat_boot_partition() -> None:
    table = partitions(mbr([(0x0C, 8192, 1048576), (0x83, 1056768, 4194304)]))
    assert table == [
        Partition(1, 0x0C, 8192 * 512, 1048576 * 512),
        Partition(2, 0x83, 1056768 * 512, 4194304 * 512),
    ]
    assert boot_partition(table, 10**10).number == 1


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0x0C, 0x0B, 0x0E, 0x06, 0x83, 0x82, 0x07]),
            st.integers(1, 2**31),
            st.integers(1, 2**31),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_every_entry_is_read_back_in_bytes(entries: list[tuple[int, int, int]]) -> None:
    table = partitions(mbr(entries))
    assert [(p.kind, p.start, p.size) for p in table] == [
        (k, lba * 512, n * 512) for k, lba, n in entries
    ]


@pytest.mark.parametrize(
    ("sector", "message"),
    [
        (b"\0" * 100, "shorter than one sector"),
        (b"\0" * 512, "no MBR partition table"),
        (mbr([(0xEE, 1, 100)]), "GPT disk"),
        (mbr([]), "partition table is empty"),
    ],
)
def test_what_is_not_an_mbr_image_is_named(sector: bytes, message: str) -> None:
    with pytest.raises(FlashError, match=message):
        partitions(sector)


def test_no_fat_partition_and_a_truncated_image_are_named() -> None:
    with pytest.raises(FlashError, match=r"no FAT boot partition.*0x83"):
        boot_partition(partitions(mbr([(0x83, 2048, 100)])), 10**9)
    with pytest.raises(FlashError, match="truncated"):
        boot_partition(partitions(mbr([(0x0C, 2048, 100), (0x83, 2148, 10**6)])), 10**6)


# --- config.txt and cmdline.txt ----------------------------------------------------

LINES = ("dtparam=audio=off", "dtoverlay=hifiberry-dac")


def test_the_board_block_goes_last_under_all_and_every_line_is_kept() -> None:
    edited = boot_config.with_board_lines(STOCK_CONFIG, "zero-dac", LINES)
    assert edited.splitlines()[: len(STOCK_CONFIG.splitlines())] == STOCK_CONFIG.splitlines()
    tail = edited.splitlines()[-5:]
    assert tail == [
        "# --- legato-flash: board zero-dac ---",
        "[all]",
        *LINES,
        "# --- end legato-flash ---",
    ]


_config_lines = st.lists(
    st.text(
        st.characters(
            blacklist_categories=["Cs"],
            blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
        ),
        max_size=40,
    ),
    max_size=30,
)


@given(_config_lines, st.lists(st.sampled_from((*LINES, "dtoverlay=max98357a")), max_size=3))
def test_editing_twice_is_editing_once_and_nothing_else_changes(
    lines: list[str], board: list[str]
) -> None:
    text = "\n".join(lines) + ("\n" if lines else "")
    once = boot_config.with_board_lines(text, "b", board)
    assert boot_config.with_board_lines(once, "b", board) == once
    # every original line that carries something is there, in its order, before our block
    before_block = once.split("# --- legato-flash: board")[0].splitlines()
    assert [ln for ln in before_block if ln.strip()] == [ln for ln in lines if ln.strip()]
    # a different board replaces the block rather than adding a second one
    other = boot_config.with_board_lines(once, "c", ["dtoverlay=max98357a"])
    assert other.count("# --- legato-flash: board") == 1


def test_no_board_leaves_config_txt_as_it_was() -> None:
    assert boot_config.with_board_lines(STOCK_CONFIG, "", ()) == STOCK_CONFIG


@given(st.lists(st.text("abcdefghij=,./0123456789", min_size=1, max_size=12), max_size=12))
def test_cmdline_stays_one_line_with_its_arguments_in_order(args: list[str]) -> None:
    cmdline = " ".join(args) + "\n"
    hooked = boot_config.with_firstrun(cmdline, "/boot/firmware/legato/firstrun.sh")
    assert hooked.count("\n") == 1
    assert hooked.endswith("\n")
    assert hooked.split()[: len(args)] == args
    assert boot_config.with_firstrun(hooked, "/boot/firmware/legato/firstrun.sh") == hooked
    assert boot_config.without_firstrun(hooked).split() == args


def test_the_firstrun_hook_matches_what_imager_writes() -> None:
    hooked = boot_config.with_firstrun(STOCK_CMDLINE, "/boot/firmware/legato/firstrun.sh")
    assert hooked.endswith(
        " systemd.run=/boot/firmware/legato/firstrun.sh systemd.run_success_action=reboot"
        " systemd.unit=kernel-command-line.target\n"
    )
    assert hooked.startswith(STOCK_CMDLINE.strip() + " ")


# --- Wi-Fi --------------------------------------------------------------------------


def test_the_wpa_key_is_the_ieee_802_11i_one() -> None:
    # IEEE 802.11i-2004, annex H.4.3 test vectors
    assert wpa_psk("IEEE", "password") == (
        "f42c6fc52df0ebef9ebb4b90b38a5f902e83fe1b135a70e23aed762e9710a12e"
    )
    assert wpa_psk("ThisIsASSID", "ThisIsAPassword") == (
        "0dc0d6eb90555ed6419756b9a15ec3e3209b63df707dd508d14581f8982721af"
    )


@pytest.mark.parametrize(
    ("ssid", "passphrase", "country", "message"),
    [
        ("", "password1", "GB", "1-32 bytes"),
        ("x" * 33, "password1", "GB", "1-32 bytes"),
        ("home", "short", "GB", "8-63"),
        ("home", "p" * 64, "GB", "8-63"),
        ("home", "pässword1", "GB", "printable ASCII"),
        ("home", "password1", "GBR", "two-letter"),
        ("ho\nme", "password1", "GB", "control"),
    ],
)
def test_bad_wifi_settings_are_named(
    ssid: str, passphrase: str, country: str, message: str
) -> None:
    with pytest.raises(FlashError, match=message):
        wifi_settings(ssid, passphrase, country)


def test_the_settings_never_show_the_key() -> None:
    wifi = wifi_settings("home", "correct horse", "gb")
    assert wifi.country == "GB"
    assert len(wifi.psk) == 64
    assert wifi.psk not in repr(wifi)
    assert "correct horse" not in repr(wifi)


# --- cloud-init and firstrun -------------------------------------------------------

_ssids = st.text(
    st.characters(min_codepoint=32, blacklist_categories=["Cs"]),
    min_size=1,
    max_size=16,
).filter(lambda s: len(s.encode()) <= 32)


@given(_ssids, st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20))
def test_cloud_init_seeds_parse_back_to_what_was_asked(ssid: str, host: str) -> None:
    wifi = wifi_settings(ssid, "a passphrase", "de")
    network = yaml.safe_load(cloud_init.network_config(wifi))
    access = network["network"]["wifis"]["wlan0"]["access-points"]
    assert access == {ssid: {"password": wifi.psk}}
    assert network["network"]["wifis"]["wlan0"]["regulatory-domain"] == "DE"
    user = yaml.safe_load(
        cloud_init.user_data(hostname=host, ssh_key="ssh-ed25519 AAAA me@x", firstboot="/b/f.py")
    )
    assert user["hostname"] == host
    assert user["users"][0]["ssh_authorized_keys"] == ["ssh-ed25519 AAAA me@x"]
    assert user["runcmd"][-1] == [
        "python3",
        "/b/f.py",
        "--boot",
        "/boot/firmware",
        "--install-unit",
    ]
    assert yaml.safe_load(cloud_init.meta_data("kitchen-1a2b")) == {
        "instance-id": "legato-kitchen-1a2b"
    }


def test_the_first_boot_leaves_a_network_seed_without_the_key() -> None:
    assert "password" not in cloud_init.network_config_without_secrets()
    assert yaml.safe_load(cloud_init.network_config_without_secrets()) == {
        "network": {"config": "disabled"}
    }


@given(_ssids)
def test_the_firstrun_script_is_valid_shell_for_any_ssid(ssid: str) -> None:
    wifi = wifi_settings(ssid, "a passphrase", "gb")
    script = firstrun.firstrun_script(
        boot="/boot/firmware", hostname="kitchen", wifi=wifi, ssh_key="ssh-ed25519 AAAA it's me"
    )
    done = subprocess.run(["bash", "-n"], input=script.encode(), capture_output=True)
    assert done.returncode == 0, done.stderr
    assert "a passphrase" not in script
    assert wifi.psk in script


def test_the_boot_mount_follows_the_image_generation() -> None:
    assert firstrun.boot_mount(["bcm2712-rpi-5-b.dtb", "config.txt"]) == "/boot/firmware"
    assert firstrun.boot_mount(["bcm2711-rpi-4-b.dtb", "config.txt"]) == "/boot"


# --- the card ------------------------------------------------------------------------


def _target(**kw: object) -> Target:
    base: dict[str, object] = {
        "path": "/dev/sdz",
        "size": 32 * 2**30,
        "block": True,
        "mounted": (),
        "holds_root": False,
    }
    return Target(**{**base, **kw})  # type: ignore[arg-type]


def test_a_card_is_refused_when_mounted_too_small_or_the_system_disk() -> None:
    image = 4 * 2**30
    assert refusal(image, _target()) is None
    assert "mounted (/media/me/bootfs)" in (
        refusal(image, _target(mounted=("/media/me/bootfs",))) or ""
    )
    assert "too small" in (refusal(image, _target(size=2 * 2**30)) or "")
    assert "running from" in (refusal(image, _target(holds_root=True)) or "")


def test_partitions_of_the_card_count_as_the_card() -> None:
    mounts = [
        ("/dev/sdb1", "/media/bootfs"),
        ("/dev/sda2", "/"),
        ("/dev/mmcblk0p1", "/boot"),
        ("tmpfs", "/tmp"),
        ("/dev/sdbb1", "/other"),
    ]
    assert mounted_from("sdb", mounts) == ("/media/bootfs",)
    assert mounted_from("mmcblk0", mounts) == ("/boot",)
    assert mounted_from("sdc", mounts) == ()


def test_host_names_come_from_speaker_names() -> None:
    assert hostname_for("Küche 2") == "kuche-2"
    assert hostname_for("  Living Room!! ") == "living-room"
    assert hostname_for("♫♫") == "legato-speaker"
    assert len(hostname_for("x" * 100)) == 63


# --- the hub's CA as the flasher reads it ------------------------------------------


def test_a_second_certificate_behind_the_real_ca_is_refused(tmp_path: Path) -> None:
    """A middleman answering with the real CA followed by its own must not pass the
    fingerprint check with the real CA's fingerprint while both end up trusted."""
    real = pki.ca_pem(tmp_path / "real")
    rogue = pki.ca_pem(tmp_path / "rogue")
    with pytest.raises(ValueError, match="exactly one PEM certificate"):
        canonical_pem(real + rogue)
    with pytest.raises(ValueError, match="not valid base64"):
        canonical_pem(real.replace("-----END", "A=B=\n-----END"))
    assert fingerprint(canonical_pem("\n\n" + real + "\n")) == fingerprint(real)
    assert canonical_pem(real).count("BEGIN CERTIFICATE") == 1


@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
def test_quoted_strings_read_back_exactly_as_toml_and_yaml(text: str) -> None:
    assert tomllib.loads(f"v = {quoted(text)}")["v"] == text
    assert yaml.safe_load(f"v: {quoted(text)}")["v"] == text


def test_a_speaker_named_with_an_emoji_loads(tmp_path: Path) -> None:
    write_speaker_config(
        tmp_path / "speaker.toml", device_id="k-1", name='Küche 🎶 "Bar"', secret="s"
    )
    assert device_config.load(tmp_path / "speaker.toml").name == 'Küche 🎶 "Bar"'


def test_the_pins_a_card_carries_are_the_speakers_only() -> None:
    """The Pi installs legato[speaker]: its dependencies are pinned to the versions
    installed here; nothing of the hub's or the developer's set is."""
    lines = [line for line in constraints().splitlines() if not line.startswith("#")]
    pins = dict(line.split("==") for line in lines if "==" in line)
    names = {name.lower() for name in pins}
    # a Pi-only requirement the machine that made the card lacks is named bare
    bare = [line for line in lines if "==" not in line]
    assert bare == ([] if "lgpio" in names else ["lgpio"])
    assert {"numpy", "cryptography", "paho-mqtt", "zeroconf", "soxr"} <= names
    assert not names & {"fastapi", "uvicorn", "pytest", "amqtt", "av", "legato"}
    assert pins["numpy"] == importlib.metadata.version("numpy")
