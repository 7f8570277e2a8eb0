"""Remember recent command ids so a redelivered command is applied once.

MQTT QoS 1 is at-least-once: after a reconnect the broker may deliver a command
again.  The speaker keeps the ack it sent for each recent id and sends that ack
again instead of applying the command twice.
"""

from __future__ import annotations

from collections import OrderedDict

from connect_protocol.messages import Ack


class RecentCommands:
    """A bounded id -> ack memory, oldest forgotten first."""

    def __init__(self, capacity: int = 1024) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self._capacity = capacity
        self._acks: OrderedDict[str, Ack] = OrderedDict()

    def get(self, command_id: str) -> Ack | None:
        return self._acks.get(command_id)

    def remember(self, ack: Ack) -> None:
        self._acks[ack.id] = ack
        self._acks.move_to_end(ack.id)
        while len(self._acks) > self._capacity:
            self._acks.popitem(last=False)

    def __len__(self) -> int:
        return len(self._acks)
