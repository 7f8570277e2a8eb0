"""Broker users, their secrets, and the pure access-control rules.

Every speaker logs in to the broker as its own device id, so a stolen speaker
secret only ever speaks for that one speaker.  The hub (``HUB_USERNAME``) is the
only user allowed to send commands; observers (benchmarks, test probes) may only
read.  :func:`may_publish` and :func:`may_subscribe` are the single statement of
these rules: the embedded amqtt broker calls them directly and the Mosquitto ACL
file is written to say the same thing.

Secrets are hashed in Mosquitto's own ``$7$`` format (PBKDF2-HMAC-SHA512) so one
stored hash serves both brokers: ``$7$<iterations>$<b64 salt>$<b64 hash>`` with
standard base64, a 12-byte salt and a 64-byte digest, as ``mosquitto_passwd``
2.0 writes it.  Mosquitto 2.0.11 drops a user whose salt has any other length,
so such hashes count as malformed here too.  The default of 101 iterations is
``mosquitto_passwd``'s own: the secrets are 256-bit random tokens, so key
stretching adds nothing against guessing, while every CONNECT pays for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from connect_protocol.topics import (
    HUB_USERNAME,
    ROOT,
    SPEAKER_PUBLISHES,
    SPEAKER_SUBSCRIBES,
    is_valid_device_id,
    parse_device_topic,
)

logger = logging.getLogger(__name__)

Role = Literal["hub", "speaker", "observer"]
ROLES: Final[frozenset[str]] = frozenset({"hub", "speaker", "observer"})

#: Mosquitto 2.0's identifier for PBKDF2-HMAC-SHA512 hashes.
HASH_PREFIX: Final = "$7$"
DEFAULT_ITERATIONS: Final = 101
SALT_BYTES: Final = 12
DIGEST_BYTES: Final = 64
#: Refuse absurd iteration counts so a corrupt hash cannot stall a CONNECT.
MAX_ITERATIONS: Final = 10_000_000
#: MQTT strings are at most 65,535 bytes of UTF-8.
_MAX_TOPIC_BYTES: Final = 65_535


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerUser:
    """One broker login: a user name, what it may do, and its secret's hash.

    Invariants (checked on construction, so the ACL never sees a confused user):
    every user name is a plain id (it ends up in topics, ``passwd`` and the ACL
    file); role ``hub`` if and only if the name is ``HUB_USERNAME``; and
    ``secret_hash`` is a well-formed ``$7$`` hash.
    """

    username: str
    role: Role
    secret_hash: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown broker role {self.role!r}")
        if not is_valid_device_id(self.username):
            raise ValueError(f"invalid broker user name {self.username!r}")
        if (self.role == "hub") != (self.username == HUB_USERNAME):
            raise ValueError(f"only {HUB_USERNAME!r} has the hub role (got {self.username!r})")
        if _parse_hash(self.secret_hash) is None:
            raise ValueError(f"malformed secret hash for {self.username!r}")

    def __repr__(self) -> str:
        # Keep hashes out of logs and assertion messages.
        return f"BrokerUser(username={self.username!r}, role={self.role!r})"


def new_secret() -> str:
    """A fresh 256-bit random secret, URL-safe so it survives any config file."""
    return secrets.token_urlsafe(32)


def hash_secret(
    secret: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """Hash ``secret`` in Mosquitto's ``$7$`` PBKDF2-SHA512 format."""
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be in 1..{MAX_ITERATIONS}")
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    elif len(salt) != SALT_BYTES:
        # Mosquitto 2.0 drops a passwd entry whose salt is not exactly 12 bytes.
        raise ValueError(f"salt must be {SALT_BYTES} bytes")
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode("utf-8"), salt, iterations, DIGEST_BYTES)
    return f"{HASH_PREFIX}{iterations}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, secret_hash: str) -> bool:
    """True if ``secret`` matches ``secret_hash``; False for anything malformed, never raises."""
    try:
        parsed = _parse_hash(secret_hash)
        if parsed is None:
            return False
        iterations, salt, expected = parsed
        actual = hashlib.pbkdf2_hmac(
            "sha512", secret.encode("utf-8"), salt, iterations, len(expected)
        )
        return hmac.compare_digest(actual, expected)
    except Exception:  # a verifier that raises would turn bad input into a broker crash
        logger.debug("secret verification failed on bad input", exc_info=True)
        return False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _parse_hash(secret_hash: object) -> tuple[int, bytes, bytes] | None:
    """(iterations, salt, digest) of a ``$7$`` hash, or None if it is not one."""
    if not isinstance(secret_hash, str) or not secret_hash.startswith(HASH_PREFIX):
        return None
    parts = secret_hash[len(HASH_PREFIX) :].split("$")
    if len(parts) != 3:
        return None
    iterations_text, salt_text, digest_text = parts
    if not (iterations_text.isascii() and iterations_text.isdigit()):
        return None
    iterations = int(iterations_text)
    if not 1 <= iterations <= MAX_ITERATIONS:
        return None
    try:
        salt = base64.b64decode(salt_text, validate=True)
        digest = base64.b64decode(digest_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(salt) != SALT_BYTES or len(digest) != DIGEST_BYTES:
        return None
    return iterations, salt, digest


# --- access control -----------------------------------------------------------------


def may_publish(user: BrokerUser | None, topic: str) -> bool:
    """May ``user`` publish on the concrete topic ``topic``?

    Speakers: only their own status/state/ack/events.  Hub: anything under
    ``legato/v1``, and so the only one who can publish a ``cmd``.  Observers and
    unknown users: nothing.
    """
    if user is None or not _is_topic_name(topic):
        return False
    if user.role == "hub":
        return _under_root(topic)
    if user.role == "speaker":
        parsed = parse_device_topic(topic)
        return (
            parsed is not None
            and parsed.device_id == user.username
            and parsed.channel in SPEAKER_PUBLISHES
        )
    return False


def may_subscribe(user: BrokerUser | None, topic_filter: str) -> bool:
    """May ``user`` subscribe to ``topic_filter`` (wildcards allowed)?

    Speakers: exactly their own ``cmd`` topic, no wildcards, so no filter can
    ever match another device's topics.  Hub and observers: any filter whose
    literal prefix keeps it under ``legato/v1``.  Also used for a concrete topic
    to decide whether a message may be delivered to ``user``.
    """
    if user is None or not _is_topic_filter(topic_filter):
        return False
    if user.role in ("hub", "observer"):
        return _under_root(topic_filter)
    if user.role == "speaker":
        parsed = parse_device_topic(topic_filter)
        return (
            parsed is not None
            and parsed.device_id == user.username
            and parsed.channel in SPEAKER_SUBSCRIBES
        )
    return False


def _under_root(topic: str) -> bool:
    # ``legato/v1/#`` matches ``legato/v1`` itself too, as Mosquitto's ACL does.
    return topic == ROOT or topic.startswith(ROOT + "/")


def _is_mqtt_string(text: str) -> bool:
    return (
        isinstance(text, str)
        and bool(text)
        and "\0" not in text
        and len(text.encode("utf-8", "surrogatepass")) <= _MAX_TOPIC_BYTES
    )


def _is_topic_name(topic: str) -> bool:
    """A topic a client may publish to: no wildcards (MQTT-3.3.2-2)."""
    return _is_mqtt_string(topic) and "+" not in topic and "#" not in topic


def _is_topic_filter(topic_filter: str) -> bool:
    """A syntactically valid subscription filter (MQTT-4.7.1-2, 4.7.1-3)."""
    if not _is_mqtt_string(topic_filter):
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True
