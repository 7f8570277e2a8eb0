"""Finding speakers and hubs on the local network with mDNS / DNS-SD.

Why mDNS: a speaker has to find its hub (and the hub its speakers) with no
configuration at all, on whatever home network it is plugged into.  DNS-SD over
multicast DNS is what every OS already speaks, so ``avahi-browse``, ``dns-sd``
or ``dig`` can see our services too.

Services:

* ``_legato._tcp.local.``: a speaker; TXT ``id``, ``name``, ``model``, ``proto``, ``fw``.
* ``_legato-hub._tcp.local.``: a hub; the same keys plus extras such as ``mqtt``
  (broker port) and ``api`` (HTTP API path).

The module is split in two on purpose:

* a sans-I/O part (:class:`ServiceRecord`, :func:`txt_properties`,
  :func:`record_from_service`, :func:`interfaces_from_env`) that only converts
  values and is tested without a network.  Anything arriving from the network is
  untrusted: :func:`record_from_service` turns it into a record or ``None`` and
  never raises.
* thin asyncio adapters over python-zeroconf (:class:`Advertiser`,
  :class:`Browser`, :func:`find_one`, :func:`make_zeroconf`).

``LEGATO_MDNS_INTERFACES`` (comma-separated addresses) restricts the interfaces
zeroconf binds, e.g. ``127.0.0.1`` in tests so nothing leaks onto a real LAN.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Final, Literal, Self, TypeAlias

from zeroconf import IPVersion, ServiceInfo, ServiceStateChange, Zeroconf
from zeroconf._dns import DNSRecord  # not re-exported; only for _drop_queued_answers
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from connect_protocol.topics import is_valid_device_id

logger = logging.getLogger(__name__)

SPEAKER_SERVICE: Final = "_legato._tcp.local."
HUB_SERVICE: Final = "_legato-hub._tcp.local."
PROTO_VERSION: Final = "1"
ENV_INTERFACES: Final = "LEGATO_MDNS_INTERFACES"

Kind: TypeAlias = Literal["speaker", "hub"]
Change: TypeAlias = Literal["added", "updated", "removed"]

SERVICE_TYPES: Final[Mapping[Kind, str]] = MappingProxyType(
    {"speaker": SPEAKER_SERVICE, "hub": HUB_SERVICE}
)

#: TXT keys every record carries; anything else goes to ``ServiceRecord.extra``.
CORE_KEYS: Final = ("id", "name", "model", "proto", "fw")
#: A TXT string (``key=value``) is one length-prefixed DNS character-string.
MAX_TXT_ITEM_BYTES: Final = 255
#: A DNS label (the instance name, the host name) is at most 63 bytes.
MAX_LABEL_BYTES: Final = 63
#: How long the browser waits for SRV/TXT/A answers of one instance.
RESOLVE_TIMEOUT_MS: Final = 3000

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_UNSAFE_LABEL_CHARS = re.compile(r"[\x00-\x1f\x7f.]+")


# --------------------------------------------------------------------------- sans-I/O


def interfaces_from_env(environ: Mapping[str, str]) -> list[str] | None:
    """Addresses listed in ``LEGATO_MDNS_INTERFACES``, or ``None`` for all interfaces.

    The value is comma-separated; whitespace around items and empty items are
    ignored.  Raises ``ValueError`` naming the variable for an item that is not an
    IP address.
    """
    raw = environ.get(ENV_INTERFACES, "")
    items = [item.strip() for item in raw.split(",")]
    items = [item for item in items if item]
    if not items:
        return None
    for item in items:
        try:
            ipaddress.ip_address(item)
        except ValueError:
            raise ValueError(
                f"{ENV_INTERFACES}={raw!r}: {item!r} is not an IP address "
                "(expected a comma-separated list such as '127.0.0.1' or '192.168.1.5,::1')"
            ) from None
    return items


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord:
    """One advertised speaker or hub, as seen in (or sent to) DNS-SD."""

    kind: Kind
    id: str
    name: str
    model: str
    proto: str
    fw: str
    #: IPv4 address, as a string.
    host: str
    port: int
    #: Extra TXT keys, e.g. a hub's ``mqtt`` port and ``api`` path.  Left out of
    #: the hash (mappings are unhashable) but compared by ``==``.
    extra: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)


OnChange: TypeAlias = Callable[[Change, ServiceRecord], None]


def txt_properties(record: ServiceRecord) -> dict[str, str]:
    """TXT key/values for ``record``: the core keys, then ``extra``.

    Raises ``ValueError`` if an extra key shadows a core key, a key is empty or
    contains ``=``, or a ``key=value`` string exceeds 255 bytes (DNS TXT limit).
    """
    props = {
        "id": record.id,
        "name": record.name,
        "model": record.model,
        "proto": record.proto,
        "fw": record.fw,
    }
    for key, value in record.extra.items():
        if key.lower() in CORE_KEYS:
            raise ValueError(f"extra TXT key {key!r} clashes with a core key")
        props[key] = value
    for key, value in props.items():
        if not key or "=" in key:
            raise ValueError(f"invalid TXT key {key!r}")
        size = len(key.encode()) + 1 + len(value.encode())
        if size > MAX_TXT_ITEM_BYTES:
            raise ValueError(f"TXT entry {key!r} is {size} bytes, over {MAX_TXT_ITEM_BYTES}")
    return props


def _decode_txt(txt: Mapping[bytes, bytes | None]) -> dict[str, str] | None:
    """Keys lower-cased (DNS-SD keys are case-insensitive; the first one wins).

    ``None`` if any key or value is not UTF-8 or an entry is too long.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in txt.items():
        if not isinstance(raw_key, bytes) or not (
            raw_value is None or isinstance(raw_value, bytes)
        ):
            return None
        size = len(raw_key) + (0 if raw_value is None else 1 + len(raw_value))
        if size > MAX_TXT_ITEM_BYTES:
            return None
        try:
            key = raw_key.decode("utf-8").lower()
            value = "" if raw_value is None else raw_value.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if key and key not in out:
            out[key] = value
    return out


def _first_ipv4(addresses: list[str]) -> str | None:
    for address in addresses:
        if not isinstance(address, str):
            continue
        try:
            return str(ipaddress.IPv4Address(address))
        except ValueError:
            continue
    return None


def record_from_service(
    kind: Kind,
    txt: Mapping[bytes, bytes | None],
    addresses: list[str],
    port: int,
) -> ServiceRecord | None:
    """Build a record from what DNS-SD resolved; ``None`` if malformed (never raises).

    Malformed: no valid ``id`` (see ``topics.is_valid_device_id``), a key or value
    that is not UTF-8, a TXT entry over 255 bytes, a port outside 1..65535, or no
    IPv4 address.  A missing ``name`` falls back to the id; missing ``model``,
    ``proto`` and ``fw`` become ``""`` (callers check ``proto`` themselves).
    """
    if kind not in SERVICE_TYPES:
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    props = _decode_txt(txt)
    if props is None:
        return None
    device_id = props.get("id", "")
    if not is_valid_device_id(device_id):
        return None
    host = _first_ipv4(addresses)
    if host is None:
        return None
    extra = {k: v for k, v in props.items() if k not in CORE_KEYS}
    return ServiceRecord(
        kind=kind,
        id=device_id,
        name=props.get("name") or device_id,
        model=props.get("model", ""),
        proto=props.get("proto", ""),
        fw=props.get("fw", ""),
        host=host,
        port=port,
        extra=MappingProxyType(extra) if extra else _EMPTY,
    )


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def instance_label(record: ServiceRecord) -> str:
    """``"Kitchen (abc123)"``: the DNS-SD instance label, at most 63 bytes.

    Dots and control characters are replaced (a dot would split the label); the
    user-facing name is truncated first so the id suffix survives.
    """
    name = " ".join(_UNSAFE_LABEL_CHARS.sub(" ", record.name).split())
    suffix = f" ({record.id})"
    room = MAX_LABEL_BYTES - len(suffix.encode())
    if room <= 0:
        return _truncate_utf8(record.id, MAX_LABEL_BYTES)
    name = _truncate_utf8(name, room).rstrip()
    return f"{name}{suffix}" if name else record.id


def instance_name(record: ServiceRecord) -> str:
    """The full service instance name, e.g. ``"Kitchen (abc123)._legato._tcp.local."``."""
    return f"{instance_label(record)}.{SERVICE_TYPES[record.kind]}"


def host_name(record: ServiceRecord) -> str:
    """The SRV target, e.g. ``"legato-abc123.local."`` (one label, at most 63 bytes)."""
    label = f"legato-{record.id.lower().replace('_', '-')}"[:MAX_LABEL_BYTES].rstrip("-")
    return f"{label}.local."


# --------------------------------------------------------------------------- zeroconf


def make_zeroconf() -> AsyncZeroconf:
    """An ``AsyncZeroconf`` bound as ``LEGATO_MDNS_INTERFACES`` says (default: all).

    Call it from inside the running event loop that will use it.  With explicit
    IPv4 addresses only, zeroconf runs IPv4-only; if the list names an IPv6
    address too, both versions are enabled (IPv4-only would drop it).
    """
    interfaces = interfaces_from_env(os.environ)
    if interfaces is None:
        return AsyncZeroconf()
    all_v4 = all(ipaddress.ip_address(a).version == 4 for a in interfaces)
    version = IPVersion.V4Only if all_v4 else IPVersion.All
    logger.debug("mDNS on interfaces %s (%s)", interfaces, version.name)
    return AsyncZeroconf(interfaces=list(interfaces), ip_version=version)


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


def reachable_address(bind_host: str) -> str:
    """The address to tell others (mDNS, ``/api/connect``) for a server bound to ``bind_host``.

    A wildcard bind has no address of its own: use the first mDNS interface if
    ``LEGATO_MDNS_INTERFACES`` confines us, else the address of the default route.
    """
    if bind_host not in ("0.0.0.0", "", "::"):
        return bind_host
    confined = interfaces_from_env(os.environ)
    if confined:
        return confined[0]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # picks a route; sends nothing
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"
