"""The first-boot hook for images without cloud-init: a shell script that
``cmdline.txt`` starts once (``systemd.run=``), as Raspberry Pi Imager does.

It runs before the network is up, so it only sets the host name, Wi-Fi and SSH, and
installs a one-shot unit that runs ``firstboot.py`` on the next boot, once the
network is online; then it takes its own arguments out of ``cmdline.txt`` and the
Pi reboots.  Every value is shell-quoted (``shlex.quote``).
"""

from __future__ import annotations

from shlex import quote

from hardware.provision.cloud_init import ADMIN_USER
from hardware.provision.firstboot import retry_unit
from hardware.provision.wifi import Wifi

SCRIPT_NAME = "legato/firstrun.sh"


def boot_mount(names: list[str]) -> str:
    """Where the running system mounts the boot partition: ``/boot/firmware`` from
    Bookworm on (its images carry the Pi 5's device tree), ``/boot`` before."""
    return "/boot/firmware" if any(n.startswith("bcm2712") for n in names) else "/boot"


_HEADER = """#!/bin/bash
# Written by legato-flash: host name, Wi-Fi, SSH, then Legato's first boot on the
# next start. Holds the Wi-Fi key: the first boot deletes this file.
set +e
BOOT={boot}
"""

_HOSTNAME = """NEW_HOST={host}
CURRENT_HOST=$(tr -d " \\t\\n\\r" < /etc/hostname)
echo "$NEW_HOST" > /etc/hostname
sed -i "s/127.0.1.1.*$CURRENT_HOST/127.0.1.1\\t$NEW_HOST/g" /etc/hosts
"""

_WIFI = """if command -v raspi-config > /dev/null; then
  raspi-config nonint do_wifi_country {country}
fi
rfkill unblock wifi 2> /dev/null
for f in /var/lib/systemd/rfkill/*:wlan; do echo 0 > "$f"; done
if [ -d /etc/NetworkManager/system-connections ]; then
  install -m 600 /dev/null /etc/NetworkManager/system-connections/legato-wifi.nmconnection
  cat > /etc/NetworkManager/system-connections/legato-wifi.nmconnection << 'LEGATO_EOF'
[connection]
id=legato-wifi
type=wifi
autoconnect=true

[wifi]
mode=infrastructure
ssid={ssid_nm}

[wifi-security]
key-mgmt=wpa-psk
psk={psk}

[ipv4]
method=auto

[ipv6]
method=auto
LEGATO_EOF
else
  install -m 600 /dev/null /etc/wpa_supplicant/wpa_supplicant.conf
  cat > /etc/wpa_supplicant/wpa_supplicant.conf << 'LEGATO_EOF'
ctrl_interface=DIR=/var/run/wpa_supplicant GROUP=netdev
country={country}
update_config=1

network={{
  ssid={ssid_wpa}
  psk={psk}
}}
LEGATO_EOF
fi
"""

_SSH = """if ! id {user} > /dev/null 2>&1; then
  useradd --create-home --shell /bin/bash --groups sudo,adm,audio {user}
  passwd --lock {user}
fi
install -d -m 700 -o {user} -g {user} /home/{user}/.ssh
echo {key} > /home/{user}/.ssh/authorized_keys
chown {user}:{user} /home/{user}/.ssh/authorized_keys
chmod 600 /home/{user}/.ssh/authorized_keys
echo "{user} ALL=(ALL) NOPASSWD:ALL" > /etc/sudoers.d/010_legato-admin
chmod 440 /etc/sudoers.d/010_legato-admin
systemctl enable ssh
"""

_FIRSTBOOT = """cat > /etc/systemd/system/legato-firstboot.service << 'LEGATO_EOF'
{unit}
LEGATO_EOF
ln -sf /etc/systemd/system/legato-firstboot.service \\
  /etc/systemd/system/multi-user.target.wants/legato-firstboot.service
sed -i -e 's| systemd.run=[^ ]*||g' -e 's| systemd.run_success_action=[^ ]*||g' \\
  -e 's| systemd.unit=kernel-command-line.target||g' "$BOOT/cmdline.txt"
rm -f "$BOOT/legato/firstrun.sh"
exit 0
"""


def _nm_ssid(ssid: str) -> str:
    """An SSID as a NetworkManager keyfile byte list (``72;111;109;101;``), which it
    reads exactly: no escaping, no trimmed spaces."""
    return "".join(f"{b};" for b in ssid.encode())


def firstrun_script(*, boot: str, hostname: str, wifi: Wifi | None, ssh_key: str | None) -> str:
    """The script, for a boot partition mounted at ``boot``."""
    parts = [_HEADER.format(boot=quote(boot)), _HOSTNAME.format(host=quote(hostname))]
    if wifi is not None:
        parts.append(
            _WIFI.format(
                country=quote(wifi.country),
                ssid_nm=_nm_ssid(wifi.ssid),
                ssid_wpa=wifi.ssid.encode().hex(),  # unquoted hex: any bytes
                psk=wifi.psk,
            )
        )
    if ssh_key:
        parts.append(_SSH.format(user=ADMIN_USER, key=quote(ssh_key)))
    parts.append(_FIRSTBOOT.format(unit=retry_unit(boot).rstrip("\n")))
    return "".join(parts)
