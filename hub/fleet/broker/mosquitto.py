"""Run Mosquitto 2 with Legato's users and ACL.

:func:`write_mosquitto_config` turns a list of :class:`BrokerUser` into
``mosquitto.conf``, ``passwd`` and ``acl``; :class:`MosquittoProcess` runs
``mosquitto -c mosquitto.conf`` as a child process.  To add or remove a device
while the broker runs, write the files again and call
:meth:`MosquittoProcess.reload` (SIGHUP: Mosquitto rereads ``passwd`` and
``acl`` without dropping connections).

The ACL names every speaker explicitly (``user A`` / ``topic write
legato/v1/device/A/status`` ...) instead of using ``pattern ... %u`` lines:
Mosquitto applies ``pattern`` lines to *every* user, so an observer called
``bench`` would have been allowed to publish ``legato/v1/device/bench/status``.
The per-speaker lines come from :func:`acl_patterns_for_speaker` with the id as
the placeholder, so they cannot drift from the topic layout.  A user missing
from the ACL may log in but can do nothing (Mosquitto denies by default).

What Mosquitto 2.0.11 does when the ACL says no (see ``tests/test_broker_acl.py``):
a denied PUBLISH is acknowledged (PUBACK/PUBREC) and dropped; a denied SUBSCRIBE
from an MQTT 3.1.1 client is *granted* in the SUBACK, but delivery is checked
against the subscriber's read rights, so nothing foreign arrives; a will on a
topic the user may not publish to is accepted at CONNECT and dropped when sent;
a user whose ``passwd`` salt is not 12 bytes is dropped with an error in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from connect_protocol.messages import MAX_MESSAGE_BYTES
from connect_protocol.topics import ROOT, acl_patterns_for_speaker
from hub.errors import BrokerError
from hub.files import write_private
from hub.fleet.broker.credentials import BrokerUser

logger = logging.getLogger(__name__)

CONFIG_NAME = "mosquitto.conf"
PASSWD_NAME = "passwd"
ACL_NAME = "acl"
LOG_NAME = "mosquitto.log"


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The hub's CA certificate, and the certificate and key the broker presents."""

    ca: Path
    cert: Path
    key: Path


#: Bounds Mosquitto applies for us: no packet over the 1 MiB message cap (with room
#: for headers), at most this many connections per listener.
MAX_PACKET_BYTES = MAX_MESSAGE_BYTES + 64 * 1024
MAX_CONNECTIONS = 2000


def write_mosquitto_config(
    directory: Path,
    *,
    port: int,
    host: str = "127.0.0.1",
    users: Iterable[BrokerUser],
    persistence: bool = False,
    tls: TlsFiles | None = None,
    plain_port: int | None = None,
) -> Path:
    """Write ``mosquitto.conf``, ``passwd`` and ``acl`` into ``directory``; return the conf path.

    ``passwd`` and ``acl`` are written mode 0600 and replaced atomically, so a
    SIGHUP reload never reads half a file.  Rewriting an existing directory is
    the way to change users at run time.  With ``tls`` the listener on ``port`` is
    MQTT over TLS (its files copied next to the config, the key 0600); ``plain_port``
    adds a plain listener (speakers' passwords in clear: only when asked for).
    """
    if not host:
        raise ValueError("an explicit listener host is required (an empty one binds everywhere)")
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port}")
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    user_list = _unique_users(users)

    passwd = "".join(f"{u.username}:{u.secret_hash}\n" for u in user_list)
    write_private(directory / PASSWD_NAME, passwd)
    write_private(directory / ACL_NAME, render_acl(user_list))

    lines = [
        "# Written by hub.broker.mosquitto: changes are overwritten.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {directory / PASSWD_NAME}",
        f"acl_file {directory / ACL_NAME}",
        *_user_line(),
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp true",
        f"persistence {'true' if persistence else 'false'}",
        # Nothing bigger than a message may cost the broker memory.
        f"max_packet_size {MAX_PACKET_BYTES}",
    ]
    if persistence:
        lines.append(f"persistence_location {directory}/")
    lines += _listener(port, host, _copy_tls(directory, tls) if tls else None)
    if plain_port is not None:
        lines += _listener(plain_port, host, None)
    lines += [
        # Small packets at once: with Nagle on, every hop waits ~40 ms for a delayed ACK.
        "set_tcp_nodelay true",
        # A hub that (re)subscribes receives two retained messages per speaker at
        # once; Mosquitto's default queue of 1000 per client would drop some.
        "max_queued_messages 100000",
        "max_inflight_messages 100",
    ]
    config_path = directory / CONFIG_NAME
    write_private(config_path, "\n".join(lines) + "\n")
    return config_path


def _listener(port: int, host: str, tls: TlsFiles | None) -> list[str]:
    # Listener options (before any `listener` line Mosquitto would open a default
    # listener on 0.0.0.0:1883 for them): a client id is its user name, so no login
    # can take over another's session, the hub's included.
    lines = [
        f"listener {port} {host}",
        "use_username_as_clientid true",
        f"max_connections {MAX_CONNECTIONS}",
    ]
    if tls is not None:
        lines += [
            f"cafile {tls.ca}",
            f"certfile {tls.cert}",
            f"keyfile {tls.key}",
            "tls_version tlsv1.2",
            "require_certificate false",
        ]
    return lines


def _copy_tls(directory: Path, tls: TlsFiles) -> TlsFiles:
    """The TLS files next to the config, so a broker on another host can have them."""
    copied = TlsFiles(
        directory / "hub-ca.pem", directory / "hub-tls.pem", directory / "hub-tls.key"
    )
    copied.ca.write_text(tls.ca.read_text())
    copied.cert.write_text(tls.cert.read_text())
    write_private(copied.key, tls.key.read_text())
    return copied


def _user_line() -> list[str]:
    """``user <us>``: started as root, Mosquitto would otherwise switch to user
    "mosquitto", which cannot read our 0600 files.  (Ignored when not root.)"""
    try:
        return [f"user {pwd.getpwuid(os.geteuid()).pw_name}"]
    except KeyError:  # a uid without a passwd entry is not root: nothing to switch
        return []


def render_acl(users: Iterable[BrokerUser]) -> str:
    """The ACL file text for ``users`` (see the module docstring for why no ``pattern``)."""
    out = ["# Written by hub.broker.mosquitto: changes are overwritten.", ""]
    for user in _unique_users(users):
        out.append(f"user {user.username}")
        if user.role == "hub":
            out.append(f"topic readwrite {ROOT}/#")
        elif user.role == "observer":
            out.append(f"topic read {ROOT}/#")
        else:
            publish, subscribe = acl_patterns_for_speaker(user.username)
            out.extend(f"topic write {topic}" for topic in publish)
            out.extend(f"topic read {topic}" for topic in subscribe)
        out.append("")
    return "\n".join(out)


def _unique_users(users: Iterable[BrokerUser]) -> list[BrokerUser]:
    user_list = list(users)
    seen: set[str] = set()
    for user in user_list:
        if user.username in seen:
            raise ValueError(f"duplicate broker user {user.username!r}")
        seen.add(user.username)
    return user_list


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class MosquittoProcess:
    """A ``mosquitto -c CONF`` child process listening on ``host:port``.

    ``host``/``port`` must be those written into the config: they are only used
    to tell when the broker is listening.  Its output goes to ``mosquitto.log``
    next to the config.  Use as a context manager, or call :meth:`stop`.
    """

    def __init__(
        self,
        config_path: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        executable: str = "mosquitto",
    ) -> None:
        self.config_path = Path(config_path).resolve()
        self.host = host
        self.port = port
        self.executable = executable
        self.log_path = self.config_path.with_name(LOG_NAME)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 10.0) -> None:
        """Start Mosquitto and block until it accepts TCP connections on the port."""
        if self._proc is not None:
            raise BrokerError("mosquitto already started")
        # Checked first: otherwise the probe below could reach whoever holds the port
        # before our mosquitto has failed to bind it.
        if _port_open(self.host, self.port):
            raise BrokerError(f"port {self.host}:{self.port} is already in use")
        self._log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self._close_log()
            raise BrokerError(f"cannot run {self.executable!r}: {exc}") from exc
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._reap()
                raise BrokerError(f"mosquitto exited with status {code}: {self._log_tail()}")
            if _port_open(self.host, self.port):
                break
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(
                    f"mosquitto not listening on {self.host}:{self.port} after {timeout}s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.02)
        logger.info("mosquitto pid %s listening on %s:%s", self._proc.pid, self.host, self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("mosquitto pid %s ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout)
        self._reap()

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same port (the config is reread)."""
        self.stop()
        self.start(timeout)

    def reload(self) -> None:
        """Ask Mosquitto to reread ``passwd`` and ``acl`` (SIGHUP).

        Mosquitto handles the signal on its next main-loop pass, a few
        milliseconds later; connected clients stay connected.
        """
        if not self.running or self._proc is None:
            raise BrokerError("mosquitto is not running")
        self._proc.send_signal(signal.SIGHUP)

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(0)
        self._proc = None
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:].strip()
        except OSError:
            return "(no log)"

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = [
    "MosquittoProcess",
    "render_acl",
    "write_mosquitto_config",
]
