"""MQTT topic layout for Legato, in one place.

Every topic lives under ``legato/v1``.  A speaker owns ``device/{id}/status``
(retained, last will), ``state`` (retained), ``ack`` and ``events``; only the hub
publishes ``cmd``.  The broker ACLs in ``hub.broker`` are generated from the
patterns below, so the layout and the access rules cannot drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

ROOT = "legato/v1"


class Channel(StrEnum):
    """The per-device channels and who may publish on each."""

    STATUS = "status"
    STATE = "state"
    CMD = "cmd"
    ACK = "ack"
    EVENTS = "events"


#: Channels a speaker publishes on (its own id only).
SPEAKER_PUBLISHES = (Channel.STATUS, Channel.STATE, Channel.ACK, Channel.EVENTS)
#: Channels a speaker subscribes to (its own id only).
SPEAKER_SUBSCRIBES = (Channel.CMD,)
#: Retained channels: a new subscriber sees the last value at once.
RETAINED = frozenset({Channel.STATUS, Channel.STATE})


def device_topic(device_id: str, channel: Channel) -> str:
    """``legato/v1/device/{id}/{channel}`` for a valid device id."""
    if not is_valid_device_id(device_id):
        raise ValueError(f"invalid device id {device_id!r}")
    return f"{ROOT}/device/{device_id}/{channel.value}"


def all_devices_filter(channel: Channel) -> str:
    """Subscription filter matching one channel of every device."""
    return f"{ROOT}/device/+/{channel.value}"


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    device_id: str
    channel: Channel


def parse_device_topic(topic: str) -> ParsedTopic | None:
    """Split a device topic into id and channel; ``None`` for anything else."""
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] != "device":
        return None
    device_id, channel = parts[3], parts[4]
    if not is_valid_device_id(device_id):
        return None
    try:
        return ParsedTopic(device_id, Channel(channel))
    except ValueError:
        return None


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_DEVICE_ID_LEN = 64


def is_valid_device_id(device_id: str) -> bool:
    """Device ids double as broker user names and topic levels: keep them plain."""
    return 0 < len(device_id) <= MAX_DEVICE_ID_LEN and set(device_id) <= _ID_CHARS


def name_slug(name: str, max_len: int) -> str:
    """A speaker's name as lower-case ASCII letters, digits and ``-`` (``Küche 2`` →
    ``kuche-2``): the readable part of its device id and of its host name; "" when
    nothing of the name survives."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:max_len].strip("-")


def acl_patterns_for_speaker(placeholder: str = "%u") -> tuple[list[str], list[str]]:
    """(publish, subscribe) topic patterns for a speaker whose user name is its id.

    ``placeholder`` stands for the user name: ``%u`` in Mosquitto's ACL file.
    """
    base = f"{ROOT}/device/{placeholder}"
    publish = [f"{base}/{c.value}" for c in SPEAKER_PUBLISHES]
    subscribe = [f"{base}/{c.value}" for c in SPEAKER_SUBSCRIBES]
    return publish, subscribe


HUB_USERNAME = "legato-hub"
