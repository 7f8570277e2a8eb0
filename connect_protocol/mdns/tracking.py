"""What a browser knows, sans I/O: instance names come and go, records by id change.

Either backend reports an instance as *resolved* (its TXT, addresses and port) or
*gone*; :class:`Tracker` turns that into ``added``/``updated``/``removed``
changes of records keyed by id.  Two instances may claim one id: the one
resolved last wins, and the id goes only when no instance claims it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connect_protocol.mdns.records import Change, Kind, ServiceRecord, record_from_service

Changes = list[tuple[Change, ServiceRecord]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """The outcome of one resolution: the changes, and whether to warn of a malformed one."""

    changes: Changes = field(default_factory=list)
    warn_malformed: bool = False


class Tracker:
    def __init__(self, kind: Kind) -> None:
        self.kind: Kind = kind
        self._by_name: dict[str, ServiceRecord] = {}
        self._records: dict[str, ServiceRecord] = {}
        self._warned: set[str] = set()

    @property
    def records(self) -> dict[str, ServiceRecord]:
        """Current records by id (a copy)."""
        return dict(self._records)

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def resolved(
        self, name: str, txt: Mapping[bytes, bytes | None], addresses: list[str], port: int
    ) -> Resolved:
        record = record_from_service(self.kind, txt, addresses, port)
        if record is None:
            warn = name not in self._warned
            self._warned.add(name)
            # a valid record that turned malformed is gone
            return Resolved(changes=self.gone(name), warn_malformed=warn)
        self._warned.discard(name)
        changes: Changes = []
        old_name_record = self._by_name.get(name)
        if old_name_record is not None and old_name_record.id != record.id:
            changes += self.gone(name)  # the instance changed its id
        self._by_name[name] = record
        current = self._records.get(record.id)
        if current != record:
            self._records[record.id] = record
            changes.append(("added" if current is None else "updated", record))
        return Resolved(changes=changes)

    def gone(self, name: str) -> Changes:
        record = self._by_name.pop(name, None)
        if record is None:
            return []
        if self._records.get(record.id) != record:
            return []  # another instance with this id was resolved later and is current
        others = [r for r in self._by_name.values() if r.id == record.id]
        if others:
            self._records[record.id] = others[-1]
            return [("updated", others[-1])]
        del self._records[record.id]
        return [("removed", record)]
