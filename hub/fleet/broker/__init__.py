"""The hub's MQTT broker: per-speaker credentials and the Legato ACL.

Every speaker logs in as its own device id and may only publish its own
status/state/ack/events and read its own cmd; only the hub may send commands;
anonymous clients are refused.  The rules live once, in
:mod:`hub.fleet.broker.credentials`, and are enforced by either broker:

* :class:`EmbeddedBroker` (amqtt in a thread) applies them in-process;
* :class:`MosquittoProcess` runs Mosquitto 2 on config written by
  :func:`write_mosquitto_config`, which says the same thing in Mosquitto's ACL file.

Both share one password hash format (Mosquitto's ``$7$`` PBKDF2-SHA512).
"""

from __future__ import annotations

from hub.errors import BrokerError
from hub.fleet.broker.credentials import (
    BrokerUser,
    Role,
    hash_secret,
    may_publish,
    may_subscribe,
    new_secret,
    verify_secret,
)
from hub.fleet.broker.embedded import EmbeddedBroker, LegatoAclPlugin, UserLookup
from hub.fleet.broker.mosquitto import MosquittoProcess, render_acl, write_mosquitto_config

__all__ = [
    "BrokerError",
    "BrokerUser",
    "EmbeddedBroker",
    "LegatoAclPlugin",
    "MosquittoProcess",
    "Role",
    "UserLookup",
    "hash_secret",
    "may_publish",
    "may_subscribe",
    "new_secret",
    "render_acl",
    "verify_secret",
    "write_mosquitto_config",
]
