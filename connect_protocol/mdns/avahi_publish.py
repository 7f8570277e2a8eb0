"""Publishing records through avahi-daemon: one entry group per record.

What an avahi client does, over D-Bus: ``EntryGroupNew``, ``AddService`` (TXT as
a list of byte strings), ``Commit``, then follow the group's ``StateChanged``.
A name taken on the network (state ``COLLISION``, or a ``CollisionError`` from
``AddService`` when another local client holds it) is replaced by the daemon's
``GetAlternativeServiceName`` ("Kitchen (abc) #2"), as avahi's own tools do.
A TXT change is ``UpdateServiceTxt`` on the live group.  When the daemon stops
or re-registers its host name the groups are dropped and published again once
it runs; ``close()`` frees them, which sends the goodbyes.

The service points at avahi's own host name and addresses (``AddService`` with
an empty host), as every avahi client does: the daemon publishes the right
address on each interface and settles host-name conflicts itself, so
``ServiceRecord.host`` is not used here.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Final

from connect_protocol.errors import MdnsError
from connect_protocol.mdns.avahi_bus import (
    COLLISION_ERROR,
    ENTRY_GROUP,
    IF_UNSPEC,
    PROTO_UNSPEC,
    SERVER,
    SERVER_PATH,
    AvahiBus,
    BusTasks,
    GroupState,
)
from connect_protocol.mdns.records import SERVICE_TYPES, ServiceRecord, instance_label, txt_items

logger = logging.getLogger(__name__)

#: How long ``add`` waits for avahi to probe and announce (it takes about 1 s).
ESTABLISH_TIMEOUT_S: Final = 5.0
#: Renames tried in a row before giving up on a record.
MAX_RENAMES: Final = 16

Key = tuple[str, str]


def key_of(record: ServiceRecord) -> Key:
    return (record.kind, record.id)


def avahi_type(record: ServiceRecord) -> str:
    """``"_legato._tcp"``: avahi takes the type without the domain."""
    return SERVICE_TYPES[record.kind].removesuffix(".local.")


@dataclass(slots=True, eq=False)
class _Entry:
    record: ServiceRecord
    label: str  # the instance label wanted, or the alternative avahi gave
    group: str | None = None  # the entry group's object path while published
    established: asyncio.Event = field(default_factory=asyncio.Event)
    renames: int = 0


class AvahiPublisher:
    """Several records through one D-Bus connection (the :class:`Advertiser`'s avahi backend)."""

    def __init__(self) -> None:
        self._bus = AvahiBus(on_up=self._daemon_up, on_down=self._daemon_down)
        self._entries: dict[Key, _Entry] = {}
        self._lock = asyncio.Lock()  # one change to the groups at a time
        self._tasks = BusTasks(self._bus)

    async def start(self) -> None:
        await self._bus.start()
        if not self._bus.running:
            logger.warning("avahi-daemon is not running; records wait for it")

    def name_of(self, record: ServiceRecord) -> str | None:
        entry = self._entries.get(key_of(record))
        if entry is None:
            return None
        return f"{entry.label}.{SERVICE_TYPES[record.kind]}"

    async def add(self, record: ServiceRecord) -> None:
        entry = _Entry(record, instance_label(record))
        async with self._lock:
            self._entries[key_of(record)] = entry
            if self._bus.running:
                try:
                    await self._publish(entry)
                except BaseException:
                    del self._entries[key_of(record)]
                    await self._free(entry)
                    raise
        await self._settle(entry)

    async def update(self, old: ServiceRecord, new: ServiceRecord) -> None:
        """Advertise ``new`` in place of ``old`` (same kind and id)."""
        entry = self._entries[key_of(old)]
        async with self._lock:
            same_name = instance_label(old) == instance_label(new)
            entry.record = new
            if not same_name:
                entry.label = instance_label(new)
            if entry.group is None:
                return  # published as it is now when avahi runs again
            if same_name:
                await self._update_txt(entry)
                return
            entry.established.clear()
            await self._bus.call(entry.group, ENTRY_GROUP, "Reset")
            await self._fill(entry)
        await self._settle(entry)

    async def remove(self, record: ServiceRecord) -> None:
        async with self._lock:
            entry = self._entries.pop(key_of(record), None)
            if entry is not None:
                await self._free(entry)

    async def close(self) -> None:
        await self._tasks.cancel()
        async with self._lock:
            for entry in self._entries.values():
                await self._free(entry)
            self._entries.clear()
        await self._bus.close()

    # --- groups ------------------------------------------------------------------------

    async def _publish(self, entry: _Entry) -> None:
        """A new group for ``entry``, filled and committed (call with the lock held)."""
        (path,) = await self._bus.call(SERVER_PATH, SERVER, "EntryGroupNew")
        entry.group = str(path)
        entry.established.clear()
        self._bus.watch(entry.group, lambda member, body: self._group_signal(entry, member, body))
        await self._fill(entry)

    async def _fill(self, entry: _Entry) -> None:
        """``AddService`` (renaming on a local collision) then ``Commit``."""
        assert entry.group is not None
        while True:
            try:
                await self._bus.call(entry.group, ENTRY_GROUP, "AddService", *self._service(entry))
                break
            except MdnsError as exc:
                if exc.dbus_error != COLLISION_ERROR:
                    raise
                await self._rename(entry)
        await self._bus.call(entry.group, ENTRY_GROUP, "Commit")

    def _service(self, entry: _Entry) -> tuple[str, list[Any]]:
        record = entry.record
        body = [IF_UNSPEC, PROTO_UNSPEC, 0, entry.label, avahi_type(record), "", ""]
        return "iiussssqaay", [*body, record.port, txt_items(record)]

    async def _update_txt(self, entry: _Entry) -> None:
        assert entry.group is not None
        record = entry.record
        body = [IF_UNSPEC, PROTO_UNSPEC, 0, entry.label, avahi_type(record), ""]
        await self._bus.call(
            entry.group, ENTRY_GROUP, "UpdateServiceTxt", "iiusssaay", [*body, txt_items(record)]
        )
        logger.debug("updated %s", entry.label)

    async def _rename(self, entry: _Entry) -> None:
        entry.renames += 1
        if entry.renames > MAX_RENAMES:
            raise MdnsError(f"no free mDNS name for {instance_label(entry.record)!r}")
        (alternative,) = await self._bus.call(
            SERVER_PATH, SERVER, "GetAlternativeServiceName", "s", [entry.label]
        )
        logger.warning("mDNS name %r taken, advertising as %r", entry.label, alternative)
        entry.label = str(alternative)

    async def _free(self, entry: _Entry) -> None:
        path, entry.group = entry.group, None
        if path is None:
            return
        self._bus.unwatch(path)
        try:
            await self._bus.call(path, ENTRY_GROUP, "Free")
            logger.info("stopped advertising %s", entry.label)
        except MdnsError as exc:  # the daemon went away with it
            logger.debug("freeing %s: %s", entry.label, exc)

    async def _settle(self, entry: _Entry) -> None:
        """Wait (bounded) until avahi has announced ``entry``, as zeroconf's register does."""
        if entry.group is None:
            return
        try:
            async with asyncio.timeout(ESTABLISH_TIMEOUT_S):
                await entry.established.wait()
        except TimeoutError:
            logger.warning("avahi has not announced %s in %s s", entry.label, ESTABLISH_TIMEOUT_S)

    def _group_signal(self, entry: _Entry, member: str, body: list[Any]) -> None:
        if member != "StateChanged":
            return
        state, error = int(body[0]), str(body[1])
        if state == GroupState.ESTABLISHED:
            entry.renames = 0
            if not entry.established.is_set():
                logger.info("advertising %s through avahi", entry.label)
            entry.established.set()
        elif state == GroupState.COLLISION:
            self._tasks.spawn(self._after_collision(entry), f"avahi-rename-{entry.label}")
        elif state == GroupState.FAILURE:
            logger.error("avahi failed to publish %s: %s", entry.label, error)

    async def _after_collision(self, entry: _Entry) -> None:
        async with self._lock:
            if entry.group is None or self._entries.get(key_of(entry.record)) is not entry:
                return
            await self._rename(entry)
            await self._bus.call(entry.group, ENTRY_GROUP, "Reset")
            await self._fill(entry)

    # --- the daemon --------------------------------------------------------------------

    def _daemon_up(self) -> None:
        self._tasks.spawn(self._republish(), "avahi-republish")

    async def _republish(self) -> None:
        async with self._lock:
            for entry in list(self._entries.values()):
                if entry.group is not None or not self._bus.running:
                    continue
                try:
                    await self._publish(entry)
                except MdnsError as exc:
                    logger.warning("cannot publish %s through avahi: %s", entry.label, exc)

    def _daemon_down(self, gone: bool) -> None:
        for entry in self._entries.values():
            if entry.group is not None and not gone:
                self._tasks.spawn(self._withdraw(entry.group), "avahi-withdraw")
            entry.group = None
            entry.established.clear()

    async def _withdraw(self, path: str) -> None:
        self._bus.unwatch(path)
        try:
            await self._bus.call(path, ENTRY_GROUP, "Free")
        except MdnsError as exc:
            logger.debug("withdrawing %s: %s", path, exc)
