"""Advertising one speaker or hub over python-zeroconf (a thin adapter over ``records``).

:class:`Advertiser` registers a :class:`~connect_protocol.mdns.records.ServiceRecord`,
re-announces it when it changes and says goodbye when closed.  The one piece of
zeroconf's internals it touches, withdrawing answers zeroconf has queued but not
sent yet, is :func:`_drop_queued_answers`, kept best-effort and explained there.
"""

from __future__ import annotations

import ipaddress
import logging
from types import TracebackType
from typing import Self

from zeroconf import ServiceInfo, Zeroconf
from zeroconf._dns import DNSRecord  # not re-exported; only for _drop_queued_answers
from zeroconf.asyncio import AsyncZeroconf

from connect_protocol.mdns.network import make_zeroconf
from connect_protocol.mdns.records import (
    SERVICE_TYPES,
    ServiceRecord,
    host_name,
    instance_name,
    txt_properties,
)

logger = logging.getLogger(__name__)


def _service_info(record: ServiceRecord) -> ServiceInfo:
    return ServiceInfo(
        SERVICE_TYPES[record.kind],
        instance_name(record),
        port=record.port,
        properties=txt_properties(record),
        server=host_name(record),
        parsed_addresses=[record.host],
    )


def _records_of(info: ServiceInfo) -> set[DNSRecord]:
    return {info.dns_pointer(), info.dns_service(), info.dns_text(), *info.dns_addresses()}


def _drop_queued_answers(zc: Zeroconf, stale: set[DNSRecord]) -> None:
    """Withdraw ``stale`` records from multicast answers zeroconf has queued but not sent.

    zeroconf builds a multicast answer when a query arrives and sends it up to
    ~1.6 s later (aggregation, plus a 1 s delay for records multicast in the last
    second).  Without this, an answer queued before ``async_update_service`` goes
    out *after* the update announcements with the old TXT; receivers then cache
    both TXT records (the cache-flush rule spares records younger than 1 s) and
    resolve the stale one, possibly for the whole TTL.  After a goodbye, a queued
    answer would likewise resurrect the service.  This reaches into zeroconf's
    outgoing queues (``out_queue``/``out_delay_queue``, public attributes but not
    documented API), so it is best-effort.
    """
    if not stale:
        return
    try:
        for queue in (zc.out_queue, zc.out_delay_queue):
            for group in queue.queue:
                answers = group.answers
                for record in list(answers):
                    if record in stale:
                        del answers[record]
                    else:
                        answers[record] = answers[record] - stale
    except AttributeError:  # zeroconf internals changed: nothing to clean up then
        logger.debug("cannot purge queued mDNS answers in this zeroconf version", exc_info=True)


class Advertiser:
    """Advertise one :class:`ServiceRecord` until closed.

    ``start()`` probes and announces (about 1.6 s, mostly mDNS probing);
    ``update()`` re-announces a changed record; ``close()`` sends goodbyes and
    closes the zeroconf instance if this object created it.  A ``zc`` passed in
    must run on the current event loop (create it with :func:`make_zeroconf`).
    """

    def __init__(self, record: ServiceRecord, *, zc: AsyncZeroconf | None = None) -> None:
        txt_properties(record)  # fail early on a record that cannot be advertised
        ipaddress.IPv4Address(record.host)
        self._record = record
        self._zc = zc
        self._owns_zc = zc is None
        self._info: ServiceInfo | None = None
        self._closed = False

    @property
    def record(self) -> ServiceRecord:
        return self._record

    @property
    def service_name(self) -> str | None:
        """The registered instance name (zeroconf may rename it on a conflict)."""
        return None if self._info is None else self._info.name

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("Advertiser is closed")
        if self._info is not None:
            return
        if self._zc is None:
            self._zc = make_zeroconf()
        await self._register(self._record)

    async def _register(self, record: ServiceRecord) -> None:
        assert self._zc is not None
        info = _service_info(record)
        wanted = info.name
        await (await self._zc.async_register_service(info, allow_name_change=True))
        self._info = info
        if info.name != wanted:
            logger.warning("mDNS name %r taken, advertising as %r", wanted, info.name)
        logger.info("advertising %s on %s:%d", info.name, record.host, record.port)

    async def update(self, record: ServiceRecord) -> None:
        """Advertise ``record`` instead; re-registers if kind, name or id changed."""
        txt_properties(record)
        ipaddress.IPv4Address(record.host)
        old, self._record = self._record, record
        if self._info is None or self._zc is None:
            return  # not started: start() will use the new record
        if instance_name(old) == instance_name(record) and old.kind == record.kind:
            info = _service_info(record)
            info.name = self._info.name  # keep a name zeroconf may have changed
            announced = await self._zc.async_update_service(info)
            _drop_queued_answers(self._zc.zeroconf, _records_of(self._info) - _records_of(info))
            self._info = info
            await announced
            logger.debug("updated %s", info.name)
        else:
            await self._unregister(self._zc, self._info)
            self._info = None
            await self._register(record)

    @staticmethod
    async def _unregister(zc: AsyncZeroconf, info: ServiceInfo) -> None:
        goodbyes = await zc.async_unregister_service(info)
        _drop_queued_answers(zc.zeroconf, _records_of(info))
        await goodbyes

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        zc, info = self._zc, self._info
        self._info = None
        if zc is None:
            return
        try:
            if info is not None:
                await self._unregister(zc, info)
                logger.info("stopped advertising %s", info.name)
        finally:
            if self._owns_zc:
                await zc.async_close()

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
