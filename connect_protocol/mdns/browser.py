"""Browsing and resolving speakers or hubs through this host's mDNS responder.

:class:`Browser` keeps the current records by id as instances come and go, and
:func:`find_one` waits for the first one that matches.  The instances come from
avahi-daemon (:mod:`~connect_protocol.mdns.avahi_watch`) or python-zeroconf
(:mod:`~connect_protocol.mdns.zc_watch`); what they resolve to is parsed by
:func:`~connect_protocol.mdns.records.record_from_service` in the pure
:class:`~connect_protocol.mdns.tracking.Tracker`.  A malformed service is logged
once and ignored, never raised into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Protocol, Self

from zeroconf.asyncio import AsyncZeroconf

from connect_protocol.mdns.backend import which_backend
from connect_protocol.mdns.network import make_zeroconf
from connect_protocol.mdns.records import (
    SERVICE_TYPES,
    Change,
    Kind,
    OnChange,
    ServiceRecord,
)
from connect_protocol.mdns.tracking import Tracker
from connect_protocol.mdns.zc_watch import RESOLVE_TIMEOUT_MS, ZeroconfWatcher

__all__ = ["RESOLVE_TIMEOUT_MS", "Browser", "find_one"]

logger = logging.getLogger(__name__)


class Watcher(Protocol):
    """A backend's source of instances (see the module doc)."""

    async def start(self) -> None: ...
    async def close(self) -> None: ...


class Browser:
    """Track the speakers (or hubs) on the network.

    ``records`` maps id to the current record.  ``on_change(change, record)`` is
    called on the event loop as services are added, updated and removed;
    exceptions it raises are logged, not propagated.  If two instances claim the
    same id the most recently resolved one wins, and the id is only removed when
    no instance claims it any more.  A ``zc`` passed in pins the zeroconf backend
    and stays open.
    """

    def __init__(
        self,
        kind: Kind,
        on_change: OnChange | None = None,
        *,
        zc: AsyncZeroconf | None = None,
    ) -> None:
        if kind not in SERVICE_TYPES:
            raise ValueError(f"unknown service kind {kind!r}")
        self._kind: Kind = kind
        self._type = SERVICE_TYPES[kind]
        self._on_change = on_change
        self._zc = zc
        self._tracker = Tracker(kind)
        self._watcher: Watcher | None = None
        self._closed = False

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def records(self) -> dict[str, ServiceRecord]:
        """Current records by id (a copy)."""
        return self._tracker.records

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("Browser is closed")
        if self._watcher is not None:
            return
        watcher = await self._make_watcher()
        self._watcher = watcher
        try:
            await watcher.start()
        except BaseException:
            self._watcher = None
            await watcher.close()
            raise

    async def _make_watcher(self) -> Watcher:
        resolved, gone = self._resolved, self._gone
        if self._zc is not None:
            return ZeroconfWatcher(
                self._zc, self._type, owns_zc=False, on_resolved=resolved, on_gone=gone
            )
        if await which_backend() == "avahi":
            # imported only here: D-Bus costs a process ~4 MiB it needs only with avahi
            from connect_protocol.mdns.avahi_watch import AvahiWatcher

            return AvahiWatcher(self._type, on_resolved=resolved, on_gone=gone)
        return ZeroconfWatcher(
            make_zeroconf(), self._type, owns_zc=True, on_resolved=resolved, on_gone=gone
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _resolved(
        self, name: str, txt: Mapping[bytes, bytes | None], addresses: list[str], port: int
    ) -> None:
        if self._closed:
            return
        outcome = self._tracker.resolved(name, txt, addresses, port)
        if outcome.warn_malformed:
            logger.warning(
                "ignoring malformed mDNS service %s (txt=%r, addresses=%s, port=%s)",
                name,
                dict(txt),
                addresses,
                port,
            )
        for change, record in outcome.changes:
            self._notify(change, record)

    def _gone(self, name: str) -> None:
        if self._closed:
            return
        for change, record in self._tracker.gone(name):
            self._notify(change, record)

    def _notify(self, change: Change, record: ServiceRecord) -> None:
        logger.debug("%s %s %s", change, record.kind, record.id)
        if self._on_change is None or self._closed:
            return
        try:
            self._on_change(change, record)
        except Exception:
            logger.exception("mDNS on_change callback failed for %s %s", change, record.id)


async def find_one(
    kind: Kind,
    *,
    timeout_s: float = 5.0,
    where: Callable[[ServiceRecord], bool] | None = None,
    zc: AsyncZeroconf | None = None,
) -> ServiceRecord | None:
    """The first valid speaker or hub (matching ``where``) seen within ``timeout_s``, else None."""
    found: asyncio.Future[ServiceRecord] = asyncio.get_running_loop().create_future()

    def on_change(change: Change, record: ServiceRecord) -> None:
        wanted = where is None or where(record)
        if change != "removed" and wanted and not found.done():
            found.set_result(record)

    browser = Browser(kind, on_change, zc=zc)
    try:
        await browser.start()
        async with asyncio.timeout(timeout_s):
            return await found
    except TimeoutError:
        return None
    finally:
        await browser.close()
