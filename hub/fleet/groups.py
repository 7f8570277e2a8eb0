"""Multiroom groups at work: members told they joined, a group's commands to its leader.

The rules (who leads, the group volume, who may be a member) are :mod:`hub.groups`;
this service applies them to the live fleet:

- on every change of a group, and whenever a member comes online (a restart, a
  network drop, the hub's own start), each online member is sent ``JoinGroup``
  naming the leader, the leader's sync address (from its status) and the group's
  key; a speaker taken out gets ``LeaveGroup``.  How each member answered is kept,
  so a listener can see why a speaker is not in sync.
- when the leader goes offline the next online member leads: it is told so first,
  then handed the old leader's session (``Adopt``, position extrapolated) so the
  queue goes on, then the others are told whom to follow.  The old leader comes
  back as a follower.  A follower that drops out changes nothing for the others.
- a player request naming a group goes to its leader; a volume on the group scales
  every online member's own volume.  A request naming a member (other than its
  volume) is refused: playing one speaker of a group on its own would break the
  group without saying so.

A broker reconnect marks every speaker offline until its retained status arrives:
that is no reason to move a leader, so leaders move only on a status that says
offline.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from connect_protocol.messages import Adopt, JoinGroup, LeaveGroup, SetVolume
from hub.clock import now_ms
from hub.db import Database
from hub.errors import DeviceNotFound, GroupConflict, GroupForbidden, GroupNotFound, RelayError
from hub.fleet.player import PlayerService, adopt_of
from hub.fleet.relay import Change, Device, Listener, Relay
from hub.fleet.requests import PlayerAction, TransferRequest, VolumeRequest
from hub.groups import rules, store
from hub.groups.store import Group

logger = logging.getLogger(__name__)

#: How a member answered its last ``JoinGroup``: "joined", "pending" or the reason it gave.
JOINED = "joined"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class Owner:
    """Who asks for a change: the group's owner and administrators may change it."""

    id: int
    name: str
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as listeners see it: its members live, its leader, whether it is active."""

    group: Group
    leader_id: str | None
    members: tuple[Device | None, ...]  # None: a speaker the hub no longer knows
    membership: tuple[str, ...]  # per member: JOINED, PENDING or its reason
    active: bool
    volume_percent: int

    @property
    def online(self) -> bool:
        return self.leader_id is not None


class GroupService:
    def __init__(self, db: Database, relay: Relay, player: PlayerService) -> None:
        self.db = db
        self.relay = relay
        self.player = player
        self._groups: dict[str, Group] = {}
        self._leaders: dict[str, str | None] = {}
        self._membership: dict[tuple[str, str], str] = {}
        self._online: dict[str, bool] = {}
        #: speakers whose status arrived since the broker (re)connected
        self._heard: set[str] = set()
        self._addrs: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self._unsubscribe: Callable[[], None] | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Load the groups and follow the fleet (before the relay connects, so every
        member's coming online is seen)."""
        for group in await asyncio.to_thread(self._load):
            self._groups[group.id] = group
            self._leaders[group.id] = group.leader_id
        self._unsubscribe = self.relay.add_listener(self._on_relay_change)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _load(self) -> list[Group]:
        with self.db.reading() as conn:
            return store.load_all(conn)

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        """Be told when groups change ("devices") or a group's leader's state does
        ("state", with the group's id); returns the unsubscriber."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # --- reading ---------------------------------------------------------------------

    def group(self, group_id: str) -> Group | None:
        return self._groups.get(group_id)

    def group_of(self, device_id: str) -> Group | None:
        """The group ``device_id`` is a member of, if any."""
        return next((g for g in self._groups.values() if device_id in g.device_ids), None)

    def leader_of(self, group_id: str) -> str | None:
        return self._leaders.get(group_id)

    def active_group(self) -> Group | None:
        """The group the active speaker is a member of (its leader or a follower): the
        one playback requests that name no device are for, through its leader."""
        active = self.relay.active_device_id
        return self.group_of(active) if active else None

    def views(self) -> list[GroupView]:
        return [self.view(g) for g in self._groups.values()]

    def view(self, group: Group) -> GroupView:
        leader = self._leaders.get(group.id)
        members = tuple(self.relay.devices.get(d) for d in group.device_ids)
        heard = [d.state.volume_percent for d in members if d is not None and d.online]
        return GroupView(
            group=group,
            leader_id=leader,
            members=members,
            membership=tuple(
                self._membership.get((group.id, d), PENDING) for d in group.device_ids
            ),
            active=leader is not None and self.relay.active_device_id in group.device_ids,
            volume_percent=rules.group_volume(heard),
        )

    # --- changes -----------------------------------------------------------------------

    async def create(self, owner: Owner, name: str, device_ids: Sequence[str]) -> GroupView:
        async with self._lock:
            _raise(rules.name_refusal(name))
            self._check_members(list(device_ids), None)
            group = Group(
                id=store.new_group_id(),
                name=name,
                owner_id=owner.id,
                owner_name=owner.name,
                key=store.new_key(),
                device_ids=tuple(device_ids),
                created_ms=now_ms(),
            )
            await asyncio.to_thread(self._write, store.insert, group)
            self._groups[group.id] = group
            await self._set_leader(group, rules.choose_leader(group.device_ids, self._is_online))
            self._notify("devices", "")
            source = self._active_member(group)
            leader = self._leaders.get(group.id)
            if source is not None and leader is not None and source != leader:
                await self._hand_over(group, source, leader)
            else:
                await self._tell_members(group)
            return self.view(group)

    async def update(
        self, owner: Owner, group_id: str, device_ids: Sequence[str], name: str | None = None
    ) -> GroupView:
        async with self._lock:
            old = self._owned(owner, group_id)
            new_name = old.name if name is None else name
            _raise(rules.name_refusal(new_name))
            self._check_members(list(device_ids), old)
            group = dataclasses.replace(old, name=new_name, device_ids=tuple(device_ids))
            await asyncio.to_thread(self._write, store.update, group.id, new_name, device_ids)
            self._groups[group.id] = group
            current = self._leaders.get(group.id)
            await self._set_leader(
                group, rules.choose_leader(group.device_ids, self._is_online, current)
            )
            leader = self._leaders.get(group.id)
            removed = [d for d in old.device_ids if d not in group.device_ids]
            for device_id in removed:
                self._membership.pop((group.id, device_id), None)
            self._notify("devices", "")
            # the group's session goes on at the new leader: the old leader's (taken out,
            # or offline), else an active member's that does not lead
            source = current if current is not None and current != leader else None
            if source is None:
                source = self._active_member(group)
            if source is not None and leader is not None and source != leader:
                adopt = self._adopt_from(source)  # before the old leader is told to leave
                await asyncio.gather(*(self._leave(d) for d in removed if self._is_online(d)))
                await self._hand_over(group, source, leader, adopt)
            else:
                await self._tell_members(group, removed)
            return self.view(group)

    async def delete(self, owner: Owner, group_id: str) -> None:
        async with self._lock:
            group = self._owned(owner, group_id)
            await asyncio.to_thread(self._write, store.delete, group.id)
            del self._groups[group.id]
            self._leaders.pop(group.id, None)
            for device_id in group.device_ids:
                self._membership.pop((group.id, device_id), None)
            self._notify("devices", "")
            await asyncio.gather(*(self._leave(d) for d in group.device_ids if self._is_online(d)))

    def _owned(self, owner: Owner, group_id: str) -> Group:
        group = self._groups.get(group_id)
        if group is None:
            raise GroupNotFound(f"Group not found: {group_id[:64]}")
        if group.owner_id != owner.id and not owner.is_admin:
            raise GroupForbidden(f"{group.name} is {group.owner_name}'s group")
        return group

    def _check_members(self, device_ids: list[str], group: Group | None) -> None:
        group_of = {d: g.id for g in self._groups.values() for d in g.device_ids}
        _raise(
            rules.membership_refusal(
                device_ids,
                known={d: dev.online for d, dev in self.relay.devices.items()},
                group_of=group_of,
                group_id=None if group is None else group.id,
                current=() if group is None else group.device_ids,
            )
        )
        if any(d in self._groups for d in device_ids):
            raise GroupConflict("A group cannot be a member of a group")

    async def _set_leader(self, group: Group, leader: str | None) -> None:
        """The one place a group's leader changes; kept in hub.db across restarts."""
        if self._leaders.get(group.id) == leader:
            return
        self._leaders[group.id] = leader
        if leader is not None:
            await asyncio.to_thread(self._write, store.save_leader, group.id, leader)
        self._notify("devices", "")

    def _active_member(self, group: Group) -> str | None:
        active = self.relay.active_device_id
        return active if active is not None and active in group.device_ids else None

    def _write(self, fn: Callable[..., Any], *args: Any) -> None:
        with self.db.transaction() as conn:
            fn(conn, *args)

    # --- telling the speakers ------------------------------------------------------------

    async def _tell_members(self, group: Group, removed: Sequence[str] = ()) -> None:
        """Every online member told whom to follow; the removed told to leave."""
        leader = self._leaders.get(group.id)
        sends = [self._leave(d) for d in removed if self._is_online(d)]
        if leader is not None:
            sends += [self._join(group, d, leader) for d in group.device_ids if self._is_online(d)]
        await asyncio.gather(*sends)

    async def _join(self, group: Group, device_id: str, leader: str) -> None:
        leader_device = self.relay.devices.get(leader)
        addr = "" if device_id == leader or leader_device is None else leader_device.info.sync_addr
        command = JoinGroup(
            id=self.relay.new_command_id(),
            group_id=group.id,
            leader_id=leader,
            leader_addr=addr,
            key=base64.urlsafe_b64encode(group.key).decode(),
        )
        self._membership[(group.id, device_id)] = PENDING
        try:
            await self.relay.send(device_id, command)
            outcome = JOINED
        except RelayError as exc:
            logger.warning("%s could not join group %s: %s", device_id, group.name, exc)
            outcome = str(exc) or type(exc).__name__
        if device_id in self._groups.get(group.id, group).device_ids:
            self._membership[(group.id, device_id)] = outcome
        self._notify("devices", "")

    async def _leave(self, device_id: str) -> None:
        try:
            await self.relay.send(device_id, LeaveGroup(id=self.relay.new_command_id()))
        except RelayError as exc:  # e.g. a speaker that cannot play in a group at all
            logger.info("%s did not leave a group: %s", device_id, exc)

    # --- following the fleet -------------------------------------------------------------

    def _is_online(self, device_id: str) -> bool:
        device = self.relay.devices.get(device_id)
        return device is not None and device.online

    def _on_relay_change(self, change: Change, device_id: str) -> None:
        if change == "state":
            for group_id, leader in self._leaders.items():
                if leader == device_id:
                    self._notify("state", group_id)
            return
        if device_id == "":  # the broker came back: statuses will follow
            self._online = {d: dev.online for d, dev in self.relay.devices.items()}
            self._heard.clear()
            return
        self._heard.add(device_id)
        device = self.relay.devices.get(device_id)
        was, now = self._online.get(device_id, False), device is not None and device.online
        addr_was, addr = self._addrs.get(device_id, ""), device.info.sync_addr if device else ""
        self._online[device_id], self._addrs[device_id] = now, addr
        group = self.group_of(device_id)
        if group is None:
            if now and not was:
                self._spawn(self._ungrouped_back(device_id))
            return
        leader = self._leaders.get(group.id)
        if now and (not was or (device_id == leader and addr != addr_was)):
            self._spawn(self._member_back(group.id, device_id))
        elif not now and device_id == leader:
            self._spawn(self._leader_lost(group.id, device_id))

    async def _member_back(self, group_id: str, device_id: str) -> None:
        """A member online again: it follows the leader (it leads if nobody else is
        online; when the leader itself is back or moved, everybody is told again)."""
        async with self._lock:
            group = self._groups.get(group_id)
            if group is None or device_id not in group.device_ids:
                return
            before = self._leaders.get(group_id)
            if before is not None and before in self.relay.devices and before not in self._heard:
                # the leader's own status is still on its way (the hub or its broker
                # just started): it decides, arriving online or offline
                return
            leader = rules.choose_leader(group.device_ids, self._is_online, before)
            await self._set_leader(group, leader)
            if leader is None:
                return
            if leader != before or leader == device_id:
                await self._tell_members(group)
            else:
                await self._join(group, device_id, leader)

    async def _ungrouped_back(self, device_id: str) -> None:
        """A speaker in no group online again: told to leave whatever group it kept
        (one deleted, or it was taken out of, while it was offline); idempotent."""
        async with self._lock:
            if self.group_of(device_id) is None and self._is_online(device_id):
                await self._leave(device_id)

    async def _leader_lost(self, group_id: str, old: str) -> None:
        """The leader went offline: the next online member takes the group's session."""
        async with self._lock:
            group = self._groups.get(group_id)
            if group is None or self._leaders.get(group_id) != old or self._is_online(old):
                return
            leader = rules.choose_leader(group.device_ids, self._is_online)
            await self._set_leader(group, leader)
            if leader is None:
                logger.info("group %s: no member online", group.name)
                return
            logger.info("group %s: %s leads now (%s went offline)", group.name, leader, old)
            await self._hand_over(group, old, leader)

    def _adopt_from(self, source: str) -> Adopt | None:
        """``source``'s session as it is now (position extrapolated), if it has one."""
        device = self.relay.devices.get(source)
        if device is None or device.state.current is None:
            return None
        return adopt_of(self.relay.new_command_id(), device.state, None)

    async def _hand_over(
        self, group: Group, source: str, leader: str, adopt: Adopt | None = None
    ) -> None:
        """``leader`` takes the group over from ``source`` (its old leader, or the active
        member): told it leads first, then handed ``source``'s session so the queue goes
        on, then the other online members are told whom to follow."""
        if adopt is None:
            adopt = self._adopt_from(source)
        await self._join(group, leader, leader)
        if adopt is not None:
            try:
                await self.relay.send(leader, adopt)
            except RelayError as exc:
                logger.warning("group %s: %s did not take over: %s", group.name, leader, exc)
        elif self.relay.active_device_id == source and self._is_online(leader):
            self.relay.activate(leader)  # nothing to move: requests go to the leader
        followers = [d for d in group.device_ids if d != leader and self._is_online(d)]
        await asyncio.gather(*(self._join(group, d, leader) for d in followers))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("group membership failed", exc_info=task.exception())

    def _notify(self, change: Change, device_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(change, device_id)
            except Exception:
                logger.exception("group listener failed")

    # --- player requests -------------------------------------------------------------------

    async def execute(self, request: PlayerAction, *, user_id: int | None = None) -> None:
        """The player's request, routed: a group's to its leader (its volume to every
        member), a member's own refused unless it is its volume."""
        if isinstance(request, TransferRequest):
            target = self._route(request.device_ids[0])
            request = request.model_copy(update={"device_ids": [target]})
            await self.player.execute(request, user_id=user_id)
            return
        named = request.device_id
        group = self._groups.get(named) if named else self.active_group()
        if group is not None:
            if isinstance(request, VolumeRequest):
                await self._set_volume(group, request.volume_percent)
                return
            request = request.model_copy(update={"device_id": self._route(group.id)})
        elif named is not None and not isinstance(request, VolumeRequest):
            self._route(named)  # refuses a member's own
        await self.player.execute(request, user_id=user_id)

    def _route(self, device_id: str) -> str:
        """The speaker a command for ``device_id`` goes to."""
        group = self._groups.get(device_id)
        if group is not None:
            leader = self._leaders.get(group.id)
            if leader is None:
                raise DeviceNotFound(f"No speaker of {group.name} is online")
            return leader
        member_of = self.group_of(device_id)
        if member_of is not None:
            device = self.relay.devices.get(device_id)
            name = device.info.name if device else device_id[:64]
            raise GroupConflict(f"{name} is in the group {member_of.name}: play to the group")
        return device_id

    async def _set_volume(self, group: Group, percent: int) -> None:
        """Scale every online member's volume so the group's mean becomes ``percent``."""
        members = [d for d in group.device_ids if self._is_online(d)]
        if not members:
            raise DeviceNotFound(f"No speaker of {group.name} is online")
        volumes = [self.relay.devices[d].state.volume_percent for d in members]
        wanted = rules.scaled_volumes(volumes, percent)
        sends = [
            self.relay.send(d, SetVolume(id=self.relay.new_command_id(), volume_percent=v))
            for d, v in zip(members, wanted, strict=True)
        ]
        results = await asyncio.gather(*sends, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            logger.warning("group %s: a member's volume was not set: %s", group.name, failure)
        if len(failures) == len(members):
            raise failures[0]


def _raise(error: Exception | None) -> None:
    if error is not None:
        raise error
