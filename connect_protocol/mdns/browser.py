"""Browsing and resolving speakers or hubs over python-zeroconf (a thin adapter over ``records``).

:class:`Browser` keeps the current records by id as instances come and go, and
:func:`find_one` waits for the first one that matches.  What the network sends is
parsed by :func:`~connect_protocol.mdns.records.record_from_service`; a malformed
service is logged once and ignored, never raised into the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from connect_protocol.mdns.network import make_zeroconf
from connect_protocol.mdns.records import (
    SERVICE_TYPES,
    Change,
    Kind,
    OnChange,
    ServiceRecord,
    record_from_service,
)

logger = logging.getLogger(__name__)

#: How long the browser waits for SRV/TXT/A answers of one instance.
RESOLVE_TIMEOUT_MS: Final = 3000


class Browser:
    """Track the speakers (or hubs) on the network.

    ``records`` maps id to the current record.  ``on_change(change, record)`` is
    called on the event loop as services are added, updated and removed;
    exceptions it raises are logged, not propagated.  If two instances claim the
    same id the most recently resolved one wins, and the id is only removed when
    no instance claims it any more.
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
        self._owns_zc = zc is None
        self._browser: AsyncServiceBrowser | None = None
        self._by_name: dict[str, ServiceRecord] = {}
        self._records: dict[str, ServiceRecord] = {}
        self._warned: set[str] = set()
        # Last task per instance name: events for one name are handled in order.
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def records(self) -> dict[str, ServiceRecord]:
        """Current records by id (a copy)."""
        return dict(self._records)

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("Browser is closed")
        if self._browser is not None:
            return
        if self._zc is None:
            self._zc = make_zeroconf()
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, self._type, handlers=[self._on_state_change]
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        browser, self._browser = self._browser, None
        if browser is not None:
            await browser.async_cancel()
        tasks = list(self._tails.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tails.clear()
        if self._owns_zc and self._zc is not None:
            await self._zc.async_close()

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

    # zeroconf calls this on its event loop, keyword arguments only.
    def _on_state_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        if self._closed or service_type.lower() != self._type:
            return
        previous = self._tails.get(name)
        task = asyncio.get_running_loop().create_task(
            self._handle(zeroconf, name, state_change, previous),
            name=f"mdns-{state_change.name.lower()}-{name}",
        )
        self._tails[name] = task
        task.add_done_callback(lambda t: self._task_done(name, t))

    def _task_done(self, name: str, task: asyncio.Task[None]) -> None:
        if self._tails.get(name) is task:
            del self._tails[name]
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("mDNS handler for %s failed", name, exc_info=exc)

    async def _handle(
        self,
        zeroconf: Zeroconf,
        name: str,
        state_change: ServiceStateChange,
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        if state_change is ServiceStateChange.Removed:
            self._forget(name)
            return
        info = AsyncServiceInfo(self._type, name)
        if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
            logger.debug("could not resolve %s", name)
            return
        record = record_from_service(
            self._kind, info.properties, info.parsed_addresses(IPVersion.V4Only), info.port or 0
        )
        if record is None:
            if name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "ignoring malformed mDNS service %s (txt=%r, addresses=%s, port=%s)",
                    name,
                    info.properties,
                    info.parsed_addresses(),
                    info.port,
                )
            self._forget(name)  # a valid record that turned malformed is gone
            return
        self._warned.discard(name)
        old_name_record = self._by_name.get(name)
        if old_name_record is not None and old_name_record.id != record.id:
            self._forget(name)  # the instance changed its id
        self._by_name[name] = record
        current = self._records.get(record.id)
        if current == record:
            return
        self._records[record.id] = record
        self._notify("added" if current is None else "updated", record)

    def _forget(self, name: str) -> None:
        record = self._by_name.pop(name, None)
        if record is None:
            return
        if self._records.get(record.id) != record:
            return  # another instance with this id was resolved later and is current
        others = [r for r in self._by_name.values() if r.id == record.id]
        if others:
            self._records[record.id] = others[-1]
            self._notify("updated", others[-1])
        else:
            del self._records[record.id]
            self._notify("removed", record)

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
