"""The cloud-init seed files newer Raspberry Pi OS images read from the boot
partition (NoCloud: ``user-data``, ``network-config``, ``meta-data``).

YAML is written by hand with every string quoted by ``connect_protocol.quoting``: no
value can break out of its place, whatever the maker typed.
"""

from __future__ import annotations

from connect_protocol.quoting import quoted
from hardware.provision.wifi import Wifi

BOOT_MOUNT = "/boot/firmware"  # where images with cloud-init mount the boot partition
ADMIN_USER = "legato-admin"  # the login an --ssh-key opens (key only, no password)
SEED_FILES = ("user-data", "network-config", "meta-data")


def is_cloud_init(names: list[str]) -> bool:
    """Whether a boot partition (its file names) holds cloud-init seed files."""
    return "user-data" in names or "meta-data" in names


def user_data(*, hostname: str, ssh_key: str | None, firstboot: str) -> str:
    q = quoted
    lines = [
        "#cloud-config",
        "# Written by legato-flash: host name, SSH key, and Legato's first boot.",
        f"hostname: {q(hostname)}",
        "manage_etc_hosts: true",
    ]
    if ssh_key:
        lines += [
            "users:",
            f"  - name: {q(ADMIN_USER)}",
            "    groups: [sudo, adm, audio]",
            "    shell: /bin/bash",
            '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
            "    lock_passwd: true",
            "    ssh_authorized_keys:",
            f"      - {q(ssh_key)}",
            "ssh_pwauth: false",
        ]
    lines.append("runcmd:")
    if ssh_key:
        lines.append("  - [systemctl, enable, --now, ssh]")
    # runcmd runs once per instance, even if the script fails: it installs a unit that
    # retries at every boot until the first boot has succeeded
    lines.append(f"  - [python3, {q(firstboot)}, --boot, {q(BOOT_MOUNT)}, --install-unit]")
    return "\n".join(lines) + "\n"


def network_config(wifi: Wifi | None) -> str:
    """Netplan v2 for Wi-Fi with the derived key (64 hex digits, never the passphrase);
    without Wi-Fi, Ethernet by DHCP as the image would do anyway."""
    q = quoted
    lines = [
        "network:",
        "  version: 2",
        "  ethernets:",
        "    eth0:",
        "      dhcp4: true",
        "      optional: true",
    ]
    if wifi is not None:
        lines += [
            "  wifis:",
            "    wlan0:",
            "      dhcp4: true",
            "      optional: true",
            f"      regulatory-domain: {q(wifi.country)}",
            "      access-points:",
            f"        {q(wifi.ssid)}:",
        ]
        lines += [f"          password: {q(wifi.psk)}"] if wifi.psk else ["          {}"]
    return "\n".join(lines) + "\n"


def network_config_without_secrets() -> str:
    """What the first boot leaves: the network is configured, the seed holds no key."""
    return "network:\n  config: disabled\n"


def meta_data(device_id: str) -> str:
    """A new instance id, so cloud-init runs its once-per-instance steps on this card."""
    return f"instance-id: {quoted('legato-' + device_id)}\n"
