"""The rules of a multiroom group, as pure decisions: values in, values out.

A group's members are speakers in the order its owner gave.  Its **leader** (the
member whose clock and timeline the others follow, and the one the group's player
commands go to) stays where it is while it is online and still a member: moving
leadership while music plays would need a hand-over for nothing.  Otherwise the
leader is the first online member in the given order.

A group's volume is its members' mean; a new group volume scales each member
relatively, so a quieter room stays quieter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from hub.errors import GroupConflict, GroupError, GroupNotFound

MIN_MEMBERS = 2
MAX_MEMBERS = 16
MAX_NAME_CHARS = 64


def choose_leader(
    members: Sequence[str], is_online: Callable[[str], bool], current: str | None = None
) -> str | None:
    """The member that leads: ``current`` while it is an online member, else the first
    online member in order; None when no member is online."""
    if current is not None and current in members and is_online(current):
        return current
    return next((m for m in members if is_online(m)), None)


def group_volume(volumes: Sequence[int]) -> int:
    """What the group's volume reads as: the members' mean, rounded (0 for none)."""
    return round(sum(volumes) / len(volumes)) if volumes else 0


def scaled_volumes(volumes: Sequence[int], new_percent: int) -> list[int]:
    """Each member's volume once the group's is set to ``new_percent``.

    Each ``v`` becomes ``round(v * new / mean)`` clamped to 0..100, which keeps the
    members' order and ratios as far as the bounds allow; when every member is at 0
    there is no ratio to keep, and all go to ``new_percent``.
    """
    new = max(0, min(100, new_percent))
    if not volumes:
        return []
    total = sum(volumes)
    if total == 0:
        return [new] * len(volumes)
    # v * new / (total / n), in integers: no float rounding at the halves
    n = len(volumes)
    return [max(0, min(100, _round_half_up(v * new * n, total))) for v in volumes]


def _round_half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def name_refusal(name: object) -> GroupError | None:
    """Why ``name`` cannot name a group (1 to 64 characters, not only spaces)."""
    if not isinstance(name, str) or not name.strip():
        return GroupError("name must be a non-empty string")
    if len(name) > MAX_NAME_CHARS:
        return GroupError(f"name must be at most {MAX_NAME_CHARS} characters")
    return None


def membership_refusal(
    device_ids: Sequence[str],
    *,
    known: Mapping[str, bool],
    group_of: Mapping[str, str],
    group_id: str | None = None,
    current: Sequence[str] = (),
) -> GroupError | None:
    """Why ``device_ids`` cannot be the members of group ``group_id`` (None: a new one).

    ``known`` maps each speaker the hub knows to whether it is online; ``group_of``
    maps each speaker already in a group to that group; ``current`` are the group's
    members now, who may stay while offline (a member that dropped out is still one).
    A speaker joining must be online: it could not be told it joined.
    """
    if not MIN_MEMBERS <= len(device_ids) <= MAX_MEMBERS:
        return GroupError(f"a group needs {MIN_MEMBERS} to {MAX_MEMBERS} speakers")
    if len(set(device_ids)) != len(device_ids):
        return GroupError("device_ids names a speaker twice")
    for device_id in device_ids:
        if device_id not in known:
            return GroupNotFound(f"Device not found: {device_id[:64]}")
    for device_id in device_ids:
        other = group_of.get(device_id)
        if other is not None and other != group_id:
            return GroupConflict(f"{device_id[:64]} is already in another group")
    for device_id in device_ids:
        if not known[device_id] and device_id not in current:
            return GroupConflict(f"Device is offline: {device_id[:64]}")
    return None
