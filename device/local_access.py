"""Who may use the speaker's own port: its pairing token, and its own names.

A paired speaker's token comes from the hub (a 0600 file named by
``speaker.local_token_file``); an unpaired speaker makes one for itself, once, in
``$LEGATO_SPEAKER_STATE/<id>/local-token`` (0600), and says where it is (never what
it is: tokens stay out of logs).  A request must name the speaker by one of its own
names or addresses (its host name, ``<host>.local``, its addresses, loopback).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket

from connect_protocol import mdns
from device.config import ConfigError, SpeakerConfig, default_state_dir, read_secret
from offline_cache.private_files import write_private_bytes

logger = logging.getLogger(__name__)


def pairing_token(config: SpeakerConfig) -> str:
    if config.local_token:
        return config.local_token
    path = default_state_dir() / config.id / "local-token"
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_private_bytes(path, (secrets.token_urlsafe(16) + "\n").encode())
        except OSError as exc:
            raise ConfigError(f"cannot keep a local control token in {path}: {exc}") from exc
    logger.info("local control (/control, /offline) needs the token in %s", path)
    return read_secret(path)


def own_hosts(http_host: str) -> set[str]:
    """The names and addresses a request may use to reach this speaker."""
    name = socket.gethostname().lower()
    hosts = {"localhost", "127.0.0.1", "::1", name, f"{name.split('.')[0]}.local"}
    hosts.add(mdns.reachable_address(http_host))
    if http_host not in ("", "0.0.0.0", "::"):
        hosts.add(http_host.lower())
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(name, None):
            hosts.add(str(info[4][0]).lower())
    return hosts
