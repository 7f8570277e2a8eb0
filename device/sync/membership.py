"""The group this speaker is in, kept across restarts, and what joining or leaving does.

The hub sends ``JoinGroup``/``LeaveGroup`` over MQTT; the speaker keeps the
membership (group, leader, the leader's sync address, the group key) in its
state dir, so a member that restarts rejoins by itself, without the hub (which
may be down: the group plays on).  The file holds the key: mode 0600, written
atomically.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from connect_protocol.messages import JoinGroup, LeaveGroup
from device.sync.wire import KEY_BYTES

logger = logging.getLogger(__name__)

FILE_NAME = "group.json"


class MembershipError(ValueError):
    """A JoinGroup (or a saved membership) that cannot be acted on; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Membership:
    group_id: str
    leader_id: str
    leader_addr: str  # "host:port" of the leader's sync socket; "" when this speaker leads
    key: str  # base64url of the group's 32-byte key

    @property
    def key_bytes(self) -> bytes:
        return decode_key(self.key)

    def leads(self, speaker_id: str) -> bool:
        return self.leader_id == speaker_id

    def validated(self, speaker_id: str) -> Membership:
        if not self.group_id or len(self.group_id) > 128:
            raise MembershipError("group_id must be 1-128 characters")
        if not self.leader_id or len(self.leader_id) > 128:
            raise MembershipError("leader_id must be 1-128 characters")
        decode_key(self.key)
        if not self.leads(speaker_id):
            split_addr(self.leader_addr)
        return self

    @classmethod
    def from_command(cls, cmd: JoinGroup, speaker_id: str) -> Membership:
        return cls(
            group_id=cmd.group_id,
            leader_id=cmd.leader_id,
            leader_addr=cmd.leader_addr,
            key=cmd.key,
        ).validated(speaker_id)


def decode_key(text: str) -> bytes:
    """The group key from base64url (padding optional); exactly 32 bytes."""
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MembershipError("key must be base64url") from None
    if len(key) != KEY_BYTES:
        raise MembershipError(f"key must be {KEY_BYTES} bytes (base64url), not {len(key)}")
    return key


def split_addr(addr: str, what: str = "leader_addr") -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) into its parts; ``MembershipError`` otherwise."""
    host, sep, port = addr.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise MembershipError(f"{what} {addr!r} must be host:port (port 1-65535)")
    return host, int(port)


class MembershipFile:
    """``group.json`` in the speaker's state dir: load, save (0600, atomic), remove."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self, speaker_id: str) -> Membership | None:
        """The saved membership, or None (none saved; a broken file is said and ignored)."""
        try:
            obj = json.loads(self.path.read_text())
            return Membership(**obj).validated(speaker_id)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            logger.warning("ignoring the saved group membership in %s: %s", self.path, exc)
            return None

    def save(self, membership: Membership) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".group-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:  # mkstemp made it 0600 already
                json.dump(asdict(membership), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class GroupMember:
    """Acts on JoinGroup/LeaveGroup for one speaker: keeps the file, drives the player."""

    def __init__(
        self, speaker_id: str, player: GroupRole | None, file: MembershipFile, *, cannot: str = ""
    ) -> None:
        self.speaker_id = speaker_id
        self.player = player
        self.file = file
        self.cannot = cannot  # why this speaker cannot play in a group ("" when it can)
        self.membership: Membership | None = None

    def restore(self) -> None:
        """At start: rejoin the group saved last time, if any."""
        saved = self.file.load(self.speaker_id)
        if saved is None:
            return
        if self.player is None:
            logger.warning("saved group %s not rejoined: %s", saved.group_id, self.cannot)
            return
        logger.info("rejoining group %s (leader %s)", saved.group_id, saved.leader_id)
        self._apply(saved)

    def on_group(self, cmd: JoinGroup | LeaveGroup) -> str | None:
        """The controller's hook: None when done, else why not."""
        if isinstance(cmd, LeaveGroup):
            self.leave()
            return None
        if self.player is None:
            return self.cannot
        try:
            membership = Membership.from_command(cmd, self.speaker_id)
        except MembershipError as exc:
            return str(exc)
        try:
            self.file.save(membership)
        except OSError as exc:
            return f"cannot keep the group membership in {self.file.path}: {exc.strerror}"
        self._apply(membership)
        return None

    def leave(self) -> None:
        self.membership = None
        self.file.remove()
        if self.player is not None:
            self.player.leave()

    def _apply(self, membership: Membership) -> None:
        assert self.player is not None
        old = self.membership
        self.membership = membership
        if old == membership:
            return  # the hub said it again (a reconnect): nothing changes
        key = membership.key_bytes
        if membership.leads(self.speaker_id):
            self.player.lead(key)
        else:
            self.player.follow(key, membership.leader_addr, membership.leader_id)


class GroupRole(Protocol):
    """What ``GroupMember`` needs of the player (``device.sync.engine.GroupPlayer``)."""

    def lead(self, key: bytes) -> None: ...
    def follow(self, key: bytes, leader_addr: str, leader_id: str) -> None: ...
    def leave(self) -> None: ...


class PortMemory:
    """The sync port this speaker bound last (``[sync] port = 0``), kept beside its group:
    a restarted leader binds it again, so followers that saved its address (and cannot
    ask a hub that is down) find it where it was."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int:
        try:
            port = int(self.path.read_text().strip())
        except (OSError, ValueError):
            return 0
        return port if 1024 <= port <= 65535 else 0

    def save(self, port: int) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(f"{port}\n")
        except OSError as exc:
            logger.warning("cannot keep the sync port in %s: %s", self.path, exc)
