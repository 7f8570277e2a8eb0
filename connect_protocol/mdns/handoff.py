"""Handing a record to the process that advertises for this host.

One host, one mDNS responder: under ``legato-hub up`` the local speaker starts
none.  It writes its record to a file the hub names
(``legato-speaker --mdns-handoff FILE``) through :class:`Handoff`, which stands
in for its :class:`~connect_protocol.mdns.Advertiser`; the hub's
:func:`follow_handoff` adds the record to the hub's own advertiser, follows
changes, and withdraws it when the file goes or the speaker stops.  The file is
one JSON object (:func:`~connect_protocol.mdns.records.record_to_json`),
replaced atomically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol, Self

from connect_protocol.mdns.records import ServiceRecord, record_from_json, record_to_json

logger = logging.getLogger(__name__)

#: How often the advertising side looks at the file (and whether the speaker lives).
POLL_S: Final = 0.25


class RecordSink(Protocol):
    """Where handed-over records go: an :class:`~connect_protocol.mdns.Advertiser`."""

    async def add(self, record: ServiceRecord) -> None: ...
    async def remove(self, record: ServiceRecord) -> None: ...


def write_handoff(path: Path, record: ServiceRecord) -> None:
    """Write ``record`` to ``path`` atomically (a reader never sees half of it)."""
    text = record_to_json(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text + "\n")
    os.replace(partial, path)


def read_handoff(path: Path) -> ServiceRecord | None:
    """The record in ``path``; ``None`` if there is none or it is not one."""
    try:
        return record_from_json(path.read_bytes())
    except OSError:
        return None


class Handoff:
    """Stands in for an ``Advertiser``: the record goes to ``path``, not to the network."""

    def __init__(self, record: ServiceRecord, path: Path) -> None:
        record_to_json(record)  # fail early on a record that cannot be advertised
        self._record = record
        self._path = path
        self._started = False

    @property
    def record(self) -> ServiceRecord:
        return self._record

    async def start(self) -> None:
        await asyncio.to_thread(write_handoff, self._path, self._record)
        self._started = True
        logger.info("mDNS record handed over in %s", self._path)

    async def update(self, record: ServiceRecord) -> None:
        self._record = record
        if self._started:
            await asyncio.to_thread(write_handoff, self._path, record)

    async def close(self) -> None:
        if self._started:
            self._started = False
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

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


def _key(record: ServiceRecord) -> tuple[str, str]:
    return (record.kind, record.id)


def _version(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


async def follow_handoff(
    path: Path, advertiser: RecordSink, *, alive: Callable[[], bool], poll_s: float = POLL_S
) -> None:
    """Advertise the record handed over in ``path`` with ``advertiser`` while ``alive()``.

    Returns when ``alive()`` turns false (the process that wrote it stopped), or
    is cancelled; either way the record is withdrawn.
    """
    seen: tuple[int, int, int] | None = None
    current: ServiceRecord | None = None
    try:
        while alive():
            version = _version(path)
            if version != seen:
                seen = version
                record = None if version is None else read_handoff(path)
                if version is not None and record is None:
                    logger.warning("%s holds no mDNS record; ignoring it", path)
                if current is not None and (record is None or _key(record) != _key(current)):
                    await advertiser.remove(current)
                if record is not None:
                    await advertiser.add(record)  # replaces one of the same kind and id
                current = record
            await asyncio.sleep(poll_s)
    finally:
        if current is not None:
            with contextlib.suppress(Exception):
                await advertiser.remove(current)
