"""The speaker's systemd units: the speaker (always restarted, its own user, a
read-only system), with the release guard run as root before each start and after
each stop; and the pair that installs a release the speaker has downloaded
(``legato-update.path`` sees its request, ``legato-update.service`` installs it).

The speaker's process can write only ``/var/lib/legato``: it never touches
``/opt/legato``, where root keeps the release slots.  ``ExecStart=`` runs the script
through the ``current`` link; its ``#!`` line names the slot itself, so a switch
while it runs does not mix two releases.

``prefix`` exists for tests, which install into a directory instead of ``/``;
on a Pi it is empty.
"""

from __future__ import annotations

UNIT_NAME = "legato-speaker.service"
UPDATE_PATH_NAME = "legato-update.path"
UPDATE_SERVICE_NAME = "legato-update.service"

_UNIT = """[Unit]
Description=Legato speaker
Wants=network-online.target
After=network-online.target sound.target
# a release in trial may stop several times before the guard rolls it back: never give up
StartLimitIntervalSec=0

[Service]
Type=simple
User=legato
Group=legato
SupplementaryGroups=audio gpio dialout
Environment=LEGATO_SPEAKER_STATE=/var/lib/legato
ExecStartPre=+/usr/bin/python3 {guard} prepare
ExecStart={prefix}/opt/legato/current/bin/legato-speaker --config {prefix}/etc/legato/speaker.toml
ExecStopPost=+/usr/bin/python3 {guard} exited
Restart=always
RestartSec=2
StateDirectory=legato
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
CapabilityBoundingSet=
AmbientCapabilities=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"""


_UPDATE_PATH = """[Unit]
Description=Legato: watch for a release the speaker asks to install

[Path]
PathExists={prefix}/var/lib/legato/update/install-request.json
Unit=legato-update.service

[Install]
WantedBy=multi-user.target
"""

_UPDATE_SERVICE = """[Unit]
Description=Legato: install a downloaded release into a new slot, in trial
After=network-online.target

[Service]
Type=oneshot
ExecStart={prefix}/opt/legato/current/bin/python -m releases.install --root {prefix}/opt/legato \
  --state {prefix}/var/lib/legato/update --config {prefix}/etc/legato/speaker.toml --request
TimeoutStartSec=45min
Nice=10
IOSchedulingClass=idle
UMask=0022
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths={prefix}/opt/legato {prefix}/var/lib/legato/update
ProtectHome=yes
PrivateTmp=yes
"""


def _guard(prefix: str) -> str:
    root = f"{prefix}/opt/legato"
    return f"{root}/guard.py --root {root} --state {prefix}/var/lib/legato/update"


def unit_text(prefix: str = "") -> str:
    prefix = prefix.rstrip("/")
    return _UNIT.format(prefix=prefix, guard=_guard(prefix))


def units(prefix: str = "") -> dict[str, str]:
    """Every unit a speaker installs, by file name."""
    prefix = prefix.rstrip("/")
    return {
        UNIT_NAME: unit_text(prefix),
        UPDATE_PATH_NAME: _UPDATE_PATH.format(prefix=prefix),
        UPDATE_SERVICE_NAME: _UPDATE_SERVICE.format(prefix=prefix),
    }
