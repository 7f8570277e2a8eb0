"""Browsing through avahi-daemon: a ``ServiceBrowser`` and one ``ServiceResolver`` per name.

avahi reports each instance once per interface and protocol it is seen on
(``ItemNew``/``ItemRemove``); a name is gone when its last sighting is.  A name
is resolved by a long-lived ``ServiceResolver`` (IPv4 addresses), which signals
``Found`` again whenever the TXT or address changes, so updates need no polling.
avahi keeps the TXT strings in reverse order; they are put back in wire order.
When the daemon stops, every name is reported gone; browsing starts again when
it runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from connect_protocol.errors import MdnsError
from connect_protocol.mdns.avahi_bus import (
    IF_UNSPEC,
    PROTO_INET,
    PROTO_UNSPEC,
    SERVER,
    SERVER_PATH,
    SERVICE_BROWSER,
    SERVICE_RESOLVER,
    AvahiBus,
    BusTasks,
)
from connect_protocol.mdns.records import txt_from_items
from connect_protocol.mdns.zc_watch import OnGone, OnResolved

logger = logging.getLogger(__name__)

Where = tuple[int, int]  # (interface index, protocol) a name was seen on


class AvahiWatcher:
    def __init__(self, service_type: str, *, on_resolved: OnResolved, on_gone: OnGone) -> None:
        self._bus = AvahiBus(on_up=self._daemon_up, on_down=self._daemon_down)
        self._type = service_type  # "_legato._tcp.local."
        self._avahi_type = service_type.removesuffix(".local.")
        self._on_resolved = on_resolved
        self._on_gone = on_gone
        self._browser: str | None = None
        self._seen: dict[str, set[Where]] = {}
        self._resolvers: dict[str, tuple[str, Where]] = {}  # label: (object path, where)
        self._lock = asyncio.Lock()
        self._tasks = BusTasks(self._bus)

    async def start(self) -> None:
        await self._bus.start()
        if not self._bus.running:
            logger.warning("avahi-daemon is not running; browsing starts when it does")

    async def close(self) -> None:
        await self._tasks.cancel()
        async with self._lock:
            for path, interface in self._objects():
                await self._free(path, interface)
        await self._bus.close()

    def _objects(self) -> list[tuple[str, str]]:
        """Forget the browser and resolvers; their paths and interfaces, to free them."""
        objects = [(path, SERVICE_RESOLVER) for path, _ in self._resolvers.values()]
        if self._browser is not None:
            objects.append((self._browser, SERVICE_BROWSER))
        self._browser = None
        self._resolvers.clear()
        return objects

    def _full(self, label: str) -> str:
        return f"{label}.{self._type}"

    # --- avahi's signals ---------------------------------------------------------------

    def _browser_signal(self, member: str, body: list[Any]) -> None:
        if member == "Failure":
            logger.warning("avahi cannot browse %s: %s", self._avahi_type, body[0] if body else "")
            return
        if member not in ("ItemNew", "ItemRemove"):
            return  # AllForNow, CacheExhausted
        where, label = (int(body[0]), int(body[1])), str(body[2])
        if member == "ItemNew":
            self._seen.setdefault(label, set()).add(where)
            if label not in self._resolvers:
                self._tasks.spawn(self._resolve(label), f"avahi-resolve-{label}")
            return
        sightings = self._seen.get(label)
        if sightings is None:
            return
        sightings.discard(where)
        resolver = self._resolvers.get(label)
        if not sightings:
            del self._seen[label]
            self._on_gone(self._full(label))
        if resolver is not None and (not sightings or resolver[1] == where):
            del self._resolvers[label]
            self._tasks.spawn(self._free(resolver[0], SERVICE_RESOLVER), f"avahi-free-{label}")
            if sightings:
                self._tasks.spawn(self._resolve(label), f"avahi-resolve-{label}")

    def _resolver_signal(self, label: str, member: str, body: list[Any]) -> None:
        if label not in self._seen:
            return
        if member == "Found":
            address, port, txt = str(body[7]), int(body[8]), body[9]
            items = [bytes(item) for item in reversed(txt)]
            self._on_resolved(self._full(label), txt_from_items(items), [address], port)
        elif member == "Failure":
            logger.debug("avahi could not resolve %s: %s", label, body[0] if body else "")

    # --- avahi's objects ---------------------------------------------------------------

    async def _open_browser(self) -> None:
        async with self._lock:
            if self._browser is not None or not self._bus.running:
                return
            (path,) = await self._bus.call(
                SERVER_PATH,
                SERVER,
                "ServiceBrowserNew",
                "iissu",
                [IF_UNSPEC, PROTO_UNSPEC, self._avahi_type, "", 0],
            )
            self._browser = str(path)
            self._bus.watch(self._browser, self._browser_signal)

    async def _resolve(self, label: str) -> None:
        async with self._lock:
            sightings = self._seen.get(label)
            if not sightings or label in self._resolvers or not self._bus.running:
                return
            where = min(sightings)
            (path,) = await self._bus.call(
                SERVER_PATH,
                SERVER,
                "ServiceResolverNew",
                "iisssiu",
                [*where, label, self._avahi_type, "local", PROTO_INET, 0],
            )
            self._resolvers[label] = (str(path), where)
            self._bus.watch(str(path), functools.partial(self._resolver_signal, label))

    async def _free(self, path: str, interface: str) -> None:
        self._bus.unwatch(path)
        try:
            await self._bus.call(path, interface, "Free")
        except MdnsError as exc:  # gone with the daemon
            logger.debug("freeing %s: %s", path, exc)

    # --- the daemon --------------------------------------------------------------------

    def _daemon_up(self) -> None:
        self._tasks.spawn(self._open_browser(), "avahi-browse")

    def _daemon_down(self, gone: bool) -> None:
        stale = self._objects()
        if not gone:  # the daemon is still there: free what it still holds for us
            for path, interface in stale:
                self._tasks.spawn(self._free(path, interface), "avahi-free")
        for label in list(self._seen):
            del self._seen[label]
            self._on_gone(self._full(label))
