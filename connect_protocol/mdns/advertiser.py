"""Advertising speakers and hubs: one :class:`Advertiser` per process, one or more records.

The records go to this host's one mDNS responder: avahi-daemon over D-Bus where
it runs, else a python-zeroconf instance of our own (see
:mod:`~connect_protocol.mdns.choice`).  A process that advertises for others on
its host (``legato-hub up`` for its local speaker) adds their records to its own
advertiser instead of letting each start a responder.
"""

from __future__ import annotations

import ipaddress
from types import TracebackType
from typing import Protocol, Self

from zeroconf.asyncio import AsyncZeroconf

from connect_protocol.mdns.backend import which_backend
from connect_protocol.mdns.network import make_zeroconf
from connect_protocol.mdns.records import ServiceRecord, txt_properties
from connect_protocol.mdns.zc_publish import ZeroconfPublisher

Key = tuple[str, str]


class Publisher(Protocol):
    """What a backend does for the advertiser; records are told apart by kind and id."""

    async def start(self) -> None: ...
    async def add(self, record: ServiceRecord) -> None: ...
    async def update(self, old: ServiceRecord, new: ServiceRecord) -> None: ...
    async def remove(self, record: ServiceRecord) -> None: ...
    def name_of(self, record: ServiceRecord) -> str | None: ...
    async def close(self) -> None: ...


def _checked(record: ServiceRecord) -> ServiceRecord:
    txt_properties(record)  # fail early on a record that cannot be advertised
    ipaddress.IPv4Address(record.host)
    return record


def _key(record: ServiceRecord) -> Key:
    return (record.kind, record.id)


class Advertiser:
    """Advertise a :class:`ServiceRecord` (and any added with :meth:`add`) until closed.

    ``start()`` publishes and returns once the records are announced (about
    1-2 s, mostly mDNS probing); ``update()`` re-announces the main record;
    ``close()`` withdraws everything (goodbyes) and closes what this object
    opened.  A ``zc`` passed in pins the zeroconf backend and must run on the
    current event loop (create it with :func:`make_zeroconf`); it stays open.
    """

    def __init__(self, record: ServiceRecord, *, zc: AsyncZeroconf | None = None) -> None:
        self._main = _key(_checked(record))
        self._records: dict[Key, ServiceRecord] = {self._main: record}
        self._zc = zc
        self._publisher: Publisher | None = None
        self._closed = False

    @property
    def record(self) -> ServiceRecord:
        return self._records[self._main]

    @property
    def records(self) -> list[ServiceRecord]:
        """Every record advertised, the main one first."""
        return [self.record, *(r for k, r in self._records.items() if k != self._main)]

    @property
    def service_name(self) -> str | None:
        """The main record's instance name (the responder may rename it on a conflict)."""
        return None if self._publisher is None else self._publisher.name_of(self.record)

    def name_of(self, record: ServiceRecord) -> str | None:
        """The instance name advertised for ``record``'s kind and id, if any."""
        return None if self._publisher is None else self._publisher.name_of(record)

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("Advertiser is closed")
        if self._publisher is not None:
            return
        self._publisher = await self._make_publisher()
        try:
            await self._publisher.start()
            for record in self.records:
                await self._publisher.add(record)
        except BaseException:
            publisher, self._publisher = self._publisher, None
            await publisher.close()
            raise

    async def _make_publisher(self) -> Publisher:
        if self._zc is not None:
            return ZeroconfPublisher(self._zc, owns_zc=False)
        if await which_backend() == "avahi":
            # imported only here: D-Bus costs a process ~4 MiB it needs only with avahi
            from connect_protocol.mdns.avahi_publish import AvahiPublisher

            return AvahiPublisher()
        return ZeroconfPublisher(make_zeroconf(), owns_zc=True)

    async def update(self, record: ServiceRecord) -> None:
        """Advertise ``record`` as the main record instead (its id or kind may change)."""
        if _key(_checked(record)) != self._main and _key(record) in self._records:
            raise ValueError(f"{record.kind} {record.id!r} is already an added record")
        old = self.record
        del self._records[self._main]
        self._main = _key(record)
        self._records[self._main] = record
        await self._replace(old, record)

    async def add(self, record: ServiceRecord) -> None:
        """Advertise ``record`` too; one of the same kind and id already added is replaced."""
        _checked(record)
        old = self._records.get(_key(record))
        if old is not None and _key(record) == self._main:
            raise ValueError(f"{record.kind} {record.id!r} is this advertiser's main record")
        self._records[_key(record)] = record
        if old is not None:
            await self._replace(old, record)
        elif self._publisher is not None:
            await self._publisher.add(record)

    async def remove(self, record: ServiceRecord) -> None:
        """Stop advertising the added record of ``record``'s kind and id (if any)."""
        if _key(record) == self._main:
            raise ValueError("the main record goes only with close()")
        old = self._records.pop(_key(record), None)
        if old is not None and self._publisher is not None:
            await self._publisher.remove(old)

    async def _replace(self, old: ServiceRecord, new: ServiceRecord) -> None:
        if self._publisher is None or old == new:
            return
        if _key(old) == _key(new):
            await self._publisher.update(old, new)
        else:
            await self._publisher.remove(old)
            await self._publisher.add(new)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await publisher.close()

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
