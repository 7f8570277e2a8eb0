"""Browsing with python-zeroconf: instances of one type, resolved as they come and change.

zeroconf reports a name added, updated or removed; each is resolved (SRV, TXT, A)
with ``AsyncServiceInfo``, one task per event, the events of one name handled in
order.  What resolved goes to ``on_resolved(name, txt, addresses, port)``, what
left to ``on_gone(name)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Final

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

logger = logging.getLogger(__name__)

#: How long the browser waits for SRV/TXT/A answers of one instance.
RESOLVE_TIMEOUT_MS: Final = 3000

OnResolved = Callable[[str, Mapping[bytes, bytes | None], list[str], int], None]
OnGone = Callable[[str], None]


class ZeroconfWatcher:
    def __init__(
        self,
        zc: AsyncZeroconf,
        service_type: str,
        *,
        owns_zc: bool,
        on_resolved: OnResolved,
        on_gone: OnGone,
    ) -> None:
        self._zc = zc
        self._owns_zc = owns_zc
        self._type = service_type
        self._on_resolved = on_resolved
        self._on_gone = on_gone
        self._browser: AsyncServiceBrowser | None = None
        # Last task per instance name: events for one name are handled in order.
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    async def start(self) -> None:
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, self._type, handlers=[self._on_state_change]
        )

    async def close(self) -> None:
        self._closed = True
        browser, self._browser = self._browser, None
        if browser is not None:
            await browser.async_cancel()
        tasks = list(self._tails.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tails.clear()
        if self._owns_zc:
            await self._zc.async_close()

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
            self._on_gone(name)
            return
        info = AsyncServiceInfo(self._type, name)
        if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
            logger.debug("could not resolve %s", name)
            return
        addresses = info.parsed_addresses(IPVersion.V4Only)
        self._on_resolved(name, info.properties, addresses, info.port or 0)
