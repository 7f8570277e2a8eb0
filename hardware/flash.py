"""``legato-flash``: a Raspberry Pi OS image made into a paired Legato speaker.

It edits the image's FAT boot partition in place, without root and without
mounting: the speaker's config (registered at the hub, which pins the hub's CA),
the board's ``config.txt`` lines, Wi-Fi, host name and SSH key, the first-boot hook
in the form the image expects (cloud-init seed files, or a firstrun script started
from ``cmdline.txt``), the first-boot script, the systemd unit and a wheel of
Legato.  All edits happen on a copy of the boot partition, put back only when every
one succeeded: on any error the image is as it was.  ``--write`` then copies the
image to a card and reads it back.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from connect_protocol.topics import name_slug
from hardware import card_writer, hub_client, release_wheel
from hardware.errors import FlashError, HardwareError
from hardware.image import boot_region, xz
from hardware.image.fat import FatVolume, require_mtools
from hardware.provision import boot_config, cloud_init, firstrun, unit
from hardware.provision.wifi import Wifi, wifi_settings
from releases import pins

FIRSTBOOT_SOURCE = Path(__file__).resolve().parent / "provision" / "firstboot.py"
CARD_DIR = "legato"
#: room kept for the config files before the hub is asked (so a full partition is
#: found before a speaker is registered and an enrolment code spent)
PLACEHOLDER_BYTES = 8192


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # on the boot partition
    data: bytes
    action: str  # "create", "change" or "same"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legato-flash",
        description="Make a Raspberry Pi OS image (or card) into a Legato speaker that boots, "
        "joins the Wi-Fi, finds its hub, is already paired and plays. The image's boot "
        "partition is edited without root and without mounting; the root partition is "
        "never touched.",
        epilog="Example: legato-flash 2025-05-13-raspios-bookworm-arm64-lite.img.xz "
        "--hub https://hub.local:8443 --hub-fingerprint sha256:… --enrol K7QF-93XM-PL2D "
        "--name Kitchen --board pi-zero-2w-hifiberry-dacplus-zero --wifi-ssid Home "
        "--wifi-password-file wifi.txt --write /dev/sdb",
    )
    parser.add_argument(
        "image",
        nargs="?",
        type=Path,
        metavar="IMAGE",
        help="Raspberry Pi OS image: .img, or .img.xz (decompressed beside it)",
    )
    parser.add_argument(
        "--list-boards", action="store_true", help="list the board profiles and exit"
    )
    parser.add_argument(
        "--hub",
        metavar="URL",
        help="the hub's HTTPS address for speakers, e.g. https://hub.local:8443",
    )
    parser.add_argument(
        "--hub-fingerprint",
        metavar="SHA256",
        help="the hub's certificate fingerprint, from its dashboard (Speakers) "
        "or `legato-hub device enrol`",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", help="an admin bearer token (default: $LEGATO_TOKEN)")
    auth.add_argument(
        "--enrol",
        metavar="CODE",
        help="a one-time enrolment code from the dashboard or `legato-hub device enrol`",
    )
    parser.add_argument("--name", help="the speaker's name, as listeners see it")
    parser.add_argument("--board", default="", help="board profile (see --list-boards)")
    _add_card_options(parser)
    return parser


def _add_card_options(parser: argparse.ArgumentParser) -> None:
    """Wi-Fi, host, SSH, what to install and where to write."""
    parser.add_argument(
        "--wifi-ssid",
        metavar="SSID",
        help="Wi-Fi network to join (WPA2 personal; not hidden, not WPA3-only)",
    )
    parser.add_argument(
        "--wifi-password-file",
        type=Path,
        metavar="FILE",
        help="file holding the Wi-Fi passphrase (only its WPA key is written)",
    )
    parser.add_argument(
        "--wifi-country", default="GB", metavar="CC", help="Wi-Fi regulatory country (default GB)"
    )
    parser.add_argument("--hostname", help="host name (default: from --name)")
    parser.add_argument(
        "--ssh-key", type=Path, metavar="FILE", help="SSH public key for the legato-admin login"
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        metavar="FILE",
        help="the Legato wheel to install (default: built from this Legato)",
    )
    parser.add_argument(
        "--offline-wheels",
        type=Path,
        metavar="DIR",
        help="wheels of every dependency, so the Pi installs without the index",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="DEVICE",
        help="then write the image to this card (e.g. /dev/sdb) and verify it",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be written; change nothing, register nothing",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask before erasing DEVICE")


def hostname_for(name: str) -> str:
    """An RFC 1123 host name from a speaker's name (``Küche 2`` → ``kuche-2``)."""
    return name_slug(name, 63) or "legato-speaker"


def _checked_hostname(host: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", host):
        raise FlashError(f"--hostname {host!r}: 1-63 lower-case letters, digits and '-'")
    return host


def _ssh_key(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlashError(f"cannot read the SSH key {path}: {exc}") from exc
    if "PRIVATE KEY" in text:
        raise FlashError(f"{path} is a private key: pass the public one ({path}.pub)")
    if "\n" in text or not re.match(r"(ssh-|ecdsa-|sk-)", text):
        raise FlashError(f"{path} is not one OpenSSH public key line (ssh-ed25519 AAAA…)")
    return text


def _wifi(args: argparse.Namespace) -> Wifi | None:
    if args.wifi_ssid is None:
        if args.wifi_password_file is not None:
            raise FlashError("--wifi-password-file needs --wifi-ssid")
        return None
    if args.wifi_password_file is None:
        raise FlashError("--wifi-ssid needs --wifi-password-file (a file with the passphrase)")
    try:
        passphrase = args.wifi_password_file.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlashError(f"cannot read {args.wifi_password_file}: {exc}") from exc
    return wifi_settings(args.wifi_ssid, passphrase, args.wifi_country)


def _board_lines(board: str) -> tuple[str, ...]:
    """The board's config.txt lines (and a check that the board exists)."""
    if not board:
        return ()
    from hardware.board_profiles import load_board

    return load_board(board).config_txt


def _planned(
    volume: FatVolume, wanted: dict[str, bytes], before: dict[str, bytes | None] | None = None
) -> list[Change]:
    """What writing ``wanted`` changes, against ``before`` (else the volume as it is)."""
    changes = []
    for path, data in wanted.items():
        old = before[path] if before is not None and path in before else volume.read(path)
        action = "create" if old is None else ("same" if old == data else "change")
        changes.append(Change(path, data, action))
    return changes


def _apply(volume: FatVolume, changes: Sequence[Change]) -> None:
    folders = sorted({c.path.rsplit("/", 1)[0] for c in changes if "/" in c.path})
    for folder in folders:
        volume.mkdir(folder)
    for change in changes:
        if change.action != "same":
            volume.write(change.path, change.data)


def system_files(
    volume: FatVolume,
    *,
    args: argparse.Namespace,
    device_id: str,
    wifi: Wifi | None,
    ssh_key: str | None,
    hostname: str,
) -> dict[str, bytes]:
    """Every file but the speaker's config: boot settings, the hook, the installer."""
    names = volume.names()
    config_txt = (volume.read("config.txt") or b"").decode("utf-8", "replace")
    cmdline = volume.read("cmdline.txt")
    if cmdline is None or "config.txt" not in names:
        raise FlashError(
            "the boot partition has no cmdline.txt or config.txt: not a Raspberry Pi OS image"
        )
    wanted: dict[str, bytes] = {}
    lines = _board_lines(args.board)
    wanted["config.txt"] = boot_config.with_board_lines(config_txt, args.board, lines).encode()
    if cloud_init.is_cloud_init(names):
        script = f"{cloud_init.BOOT_MOUNT}/{CARD_DIR}/firstboot.py"
        wanted["user-data"] = cloud_init.user_data(
            hostname=hostname, ssh_key=ssh_key, firstboot=script
        ).encode()
        wanted["network-config"] = cloud_init.network_config(wifi).encode()
        wanted["meta-data"] = cloud_init.meta_data(device_id).encode()
    else:
        mount = firstrun.boot_mount(names)
        if mount == "/boot":
            raise FlashError(
                "this image is older than Raspberry Pi OS Bookworm (2023-10): its Python "
                "is too old for Legato (3.11 or newer); download a current image"
            )
        wanted[firstrun.SCRIPT_NAME] = firstrun.firstrun_script(
            boot=mount, hostname=hostname, wifi=wifi, ssh_key=ssh_key
        ).encode()
        line = cmdline.decode("utf-8", "replace").splitlines()[0] if cmdline.strip() else ""
        wanted["cmdline.txt"] = boot_config.with_firstrun(
            line, f"{mount}/{firstrun.SCRIPT_NAME}"
        ).encode()
    if ssh_key:
        wanted["ssh"] = b""  # Raspberry Pi OS enables sshd when this file exists
    wanted[f"{CARD_DIR}/firstboot.py"] = FIRSTBOOT_SOURCE.read_bytes()
    for name, text in unit.units().items():
        wanted[f"{CARD_DIR}/{name}"] = text.encode()
    wanted[f"{CARD_DIR}/constraints.txt"] = pins.constraints().encode()
    wheel = release_wheel.legato_wheel(args.wheel)
    wanted[f"{CARD_DIR}/{wheel.name}"] = wheel.read_bytes()
    if args.offline_wheels is not None:
        for found in sorted(args.offline_wheels.glob("*.whl")):
            wanted[f"{CARD_DIR}/wheels/{found.name}"] = found.read_bytes()
    return wanted


def _print_plan(changes: Sequence[Change], secrets: set[str], dry_run: bool) -> None:
    from_hub = {f"{CARD_DIR}/{name}" for name in CONFIG_NAMES} if dry_run else set()
    for change in changes:
        if change.action == "same":
            continue
        note = " (secret: deleted from the card at first boot)" if change.path in secrets else ""
        size = "from the hub's answer" if change.path in from_hub else f"{len(change.data):,} bytes"
        if change.action == "delete":
            size = "(left by an earlier flash)"
        print(f"  {change.action:<6} /{change.path}  {size}{note}")


CONFIG_NAMES = ("speaker.toml", "speaker.secret", "speaker.local-token", "speaker-hub-ca.pem")


def _stale_wheels(volume: FatVolume, files: dict[str, bytes]) -> list[Change]:
    """Wheels on the card from an earlier flash that this one does not write."""
    return [
        Change(name, b"", "delete")
        for name in volume.names(CARD_DIR)
        if name.endswith(".whl") and name not in files
    ]


def customise(args: argparse.Namespace, image: Path) -> list[Change]:
    """Edit ``image`` (or only plan, with --dry-run); the changes made."""
    wifi = _wifi(args)
    ssh_key = _ssh_key(args.ssh_key)
    hostname = _checked_hostname(args.hostname or hostname_for(args.name))
    _board_lines(args.board)  # an unknown board is refused before the hub is asked
    boot_region.find_boot(image)  # so is a broken image
    if not args.dry_run and not os.access(image, os.W_OK):
        raise FlashError(f"{image} is read-only: copy it somewhere you can write, or chmod u+w")
    token = args.token or (None if args.enrol else os.environ.get("LEGATO_TOKEN"))
    if not token and not args.enrol:
        raise FlashError(
            "say who registers the speaker: --token TOKEN ($LEGATO_TOKEN) or --enrol CODE"
        )
    hub = hub_client.connect(args.hub, args.hub_fingerprint)
    with boot_region.editing(image, commit=not args.dry_run) as volume:
        placeholder_id = "speaker-xxxx"
        files = system_files(
            volume,
            args=args,
            device_id=placeholder_id,
            wifi=wifi,
            ssh_key=ssh_key,
            hostname=hostname,
        )
        padded = {f"{CARD_DIR}/{name}": b"#" * PLACEHOLDER_BYTES for name in CONFIG_NAMES}
        before = {path: volume.read(path) for path in (*files, *padded)}
        stale = _stale_wheels(volume, files)
        if args.dry_run:
            return [*stale, *_planned(volume, {**files, **{path: b"" for path in padded}})]
        for leftover in stale:  # an earlier flash's wheels: first boot must not pick them
            volume.delete(leftover.path)
        _apply(volume, _planned(volume, {**files, **padded}))  # room for the real ones
        made = hub_client.register(
            hub,
            name=args.name,
            board=args.board,
            token=token,
            code=args.enrol,
            speaker_hub_url=hub_client.speaker_url(hub),
        )
        print(f"registered speaker {made.name!r} as {made.device_id} at {hub.url}")
        if "meta-data" in files:
            files["meta-data"] = cloud_init.meta_data(made.device_id).encode()
        # only the files a config is made of: a name from the hub never lands elsewhere
        config = {
            f"{CARD_DIR}/{f.name}": f.text.encode() for f in made.files if f.name in CONFIG_NAMES
        }
        for unused in set(padded) - set(config):
            volume.delete(unused)
        _apply(volume, _planned(volume, {**files, **config}))
        changes = [*stale, *_planned(volume, {**files, **config}, before)]
    return changes


def _confirm(target: card_writer.Target, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise FlashError(f"not erasing {target.path} without a terminal to ask: pass --yes")
    answer = input(f"Erase everything on {target.path} ({target.size / 2**30:.1f} GiB)? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise FlashError("not written: you said no")


def run(args: argparse.Namespace) -> int:
    if args.list_boards:
        from hardware.board_profiles import board_summary_lines

        print("\n".join(board_summary_lines()))
        return 0
    missing = [
        flag
        for flag, value in (("IMAGE", args.image), ("--hub", args.hub), ("--name", args.name))
        if not value
    ]
    if missing:
        raise FlashError(f"missing {', '.join(missing)} (see legato-flash --help)")
    require_mtools()
    image: Path = args.image
    if not image.is_file():
        raise FlashError(f"{image}: no such image file")
    if image.name.endswith(".xz"):
        image = xz.decompress(image)
    if args.write is not None and not args.dry_run:
        target = card_writer.inspect(args.write)  # refuse a bad card before any change
        if (why := card_writer.refusal(image.stat().st_size, target)) is not None:
            raise FlashError(why)
    changes = customise(args, image)
    secrets = {f"{CARD_DIR}/{n}" for n in ("speaker.secret", "speaker.local-token")}
    if args.wifi_ssid is not None:
        secrets |= {"network-config", firstrun.SCRIPT_NAME}
    verb = "would write" if args.dry_run else "wrote"
    print(f"{verb} on the boot partition of {image}:")
    _print_plan(changes, secrets, args.dry_run)
    if args.dry_run:
        print("dry run: nothing was changed and no speaker was registered")
        return 0
    if args.write is not None:
        target = card_writer.inspect(args.write)
        if (why := card_writer.refusal(image.stat().st_size, target)) is not None:
            raise FlashError(why)
        _confirm(target, args.yes)
        digest = card_writer.write(image, args.write)
        print(f"{args.write}: written and verified (sha256 {digest[:16]}…)")
    if args.wifi_ssid is None:
        print("note: no Wi-Fi given: the speaker needs Ethernet (a Pi Zero has none)")
    if args.write is not None:
        print(
            f"note: {image} now holds this speaker's secrets until its first boot: "
            "delete it, or keep it private (writing it to a second card clones the speaker)"
        )
    print(
        "next: put the card in the Pi and power it on; the hub's dashboard shows the "
        "speaker under Speakers (waiting for first boot, then online)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except HardwareError as exc:
        print(f"legato-flash: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("legato-flash: interrupted; the image is unchanged", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
