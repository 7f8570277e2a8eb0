"""Publishing records with python-zeroconf as this host's responder.

Each record is a ``ServiceInfo`` on one ``AsyncZeroconf`` (made here or passed
in).  The one piece of zeroconf's internals touched, withdrawing answers zeroconf
has queued but not sent yet, is :func:`_drop_queued_answers`, kept best-effort
and explained there.
"""

from __future__ import annotations

import logging

from zeroconf import ServiceInfo, Zeroconf
from zeroconf._dns import DNSRecord  # not re-exported; only for _drop_queued_answers
from zeroconf.asyncio import AsyncZeroconf

from connect_protocol.mdns.records import (
    SERVICE_TYPES,
    ServiceRecord,
    host_name,
    instance_name,
    txt_properties,
)

logger = logging.getLogger(__name__)

Key = tuple[str, str]


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


class ZeroconfPublisher:
    """Several records on one zeroconf instance (the :class:`Advertiser`'s zeroconf backend).

    ``add`` probes and announces (about 1.6 s, mostly probing), ``update``
    re-announces, ``remove`` says goodbye; ``close`` closes the instance only if
    this object was not given it.
    """

    def __init__(self, zc: AsyncZeroconf, *, owns_zc: bool) -> None:
        self._zc = zc
        self._owns_zc = owns_zc
        self._infos: dict[Key, ServiceInfo] = {}

    async def start(self) -> None:
        return None

    def name_of(self, record: ServiceRecord) -> str | None:
        """The registered instance name (zeroconf may rename it on a conflict)."""
        info = self._infos.get((record.kind, record.id))
        return None if info is None else info.name

    async def add(self, record: ServiceRecord) -> None:
        info = _service_info(record)
        wanted = info.name
        await (await self._zc.async_register_service(info, allow_name_change=True))
        self._infos[(record.kind, record.id)] = info
        if info.name != wanted:
            logger.warning("mDNS name %r taken, advertising as %r", wanted, info.name)
        logger.info("advertising %s on %s:%d", info.name, record.host, record.port)

    async def update(self, old: ServiceRecord, new: ServiceRecord) -> None:
        """Advertise ``new`` in place of ``old`` (same kind and id)."""
        current = self._infos[(old.kind, old.id)]
        if instance_name(old) != instance_name(new):
            await self.remove(old)
            await self.add(new)
            return
        info = _service_info(new)
        info.name = current.name  # keep a name zeroconf may have changed
        announced = await self._zc.async_update_service(info)
        _drop_queued_answers(self._zc.zeroconf, _records_of(current) - _records_of(info))
        self._infos[(new.kind, new.id)] = info
        await announced
        logger.debug("updated %s", info.name)

    async def remove(self, record: ServiceRecord) -> None:
        await self._remove((record.kind, record.id))

    async def _remove(self, key: Key) -> None:
        info = self._infos.pop(key, None)
        if info is None:
            return
        goodbyes = await self._zc.async_unregister_service(info)
        _drop_queued_answers(self._zc.zeroconf, _records_of(info))
        await goodbyes
        logger.info("stopped advertising %s", info.name)

    async def close(self) -> None:
        try:
            for key in list(self._infos):
                await self._remove(key)
        finally:
            self._infos.clear()
            if self._owns_zc:
                await self._zc.async_close()
