"""The speaker's systemd unit: always restarted, its own user, a read-only system.

``prefix`` exists for tests, which install into a directory instead of ``/``;
on a Pi it is empty.
"""

from __future__ import annotations

UNIT_NAME = "legato-speaker.service"

_UNIT = """[Unit]
Description=Legato speaker
Wants=network-online.target
After=network-online.target sound.target

[Service]
Type=simple
User=legato
Group=legato
SupplementaryGroups=audio gpio dialout
Environment=LEGATO_SPEAKER_STATE=/var/lib/legato
ExecStart={prefix}/opt/legato/current/bin/legato-speaker --config {prefix}/etc/legato/speaker.toml
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


def unit_text(prefix: str = "") -> str:
    return _UNIT.format(prefix=prefix.rstrip("/"))
