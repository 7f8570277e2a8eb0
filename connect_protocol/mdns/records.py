"""DNS-SD records of speakers and hubs, sans I/O: values in, values out.

What a speaker or hub puts in (and reads from) mDNS: the service types, the TXT
keys, the instance and host names, and the parsing of what the network sent.
Nothing here touches a socket or zeroconf, so all of it is tested without a
network.  Anything arriving from the network is untrusted:
:func:`record_from_service` turns it into a record or ``None`` and never raises.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, TypeAlias

from connect_protocol.topics import is_valid_device_id

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

_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})
_UNSAFE_LABEL_CHARS = re.compile(r"[\x00-\x1f\x7f.]+")


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


def txt_items(record: ServiceRecord) -> list[bytes]:
    """The TXT strings (``b"key=value"``) for ``record``, as avahi's ``AddService`` takes them."""
    return [f"{key}={value}".encode() for key, value in txt_properties(record).items()]


def txt_from_items(items: Sequence[bytes]) -> dict[bytes, bytes | None]:
    """TXT strings as received (``b"key=value"``, or ``b"key"`` for a bare flag) as a mapping.

    The first string for a key wins, as in RFC 6763; ``record_from_service`` parses
    the result, so nothing here is checked beyond the split.
    """
    out: dict[bytes, bytes | None] = {}
    for item in items:
        key, eq, value = bytes(item).partition(b"=")
        if key not in out:
            out[key] = value if eq else None
    return out


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


def record_to_json(record: ServiceRecord) -> str:
    """``record`` as one JSON object: how a process hands its record to the host's advertiser."""
    txt_properties(record)  # only a record that can be advertised is handed over
    fields = {name: getattr(record, name) for name in (*CORE_KEYS, "kind", "host", "port")}
    return json.dumps({**fields, "extra": dict(record.extra)}, sort_keys=True)


def record_from_json(text: str | bytes) -> ServiceRecord | None:
    """The record :func:`record_to_json` wrote; ``None`` for anything else (never raises)."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    strings = [doc.get(name) for name in (*CORE_KEYS, "kind", "host")]
    extra = doc.get("extra", {})
    port = doc.get("port")
    if not all(isinstance(v, str) for v in strings) or not isinstance(extra, dict):
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        return None
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        return None
    kind = doc["kind"]
    if kind not in SERVICE_TYPES or not is_valid_device_id(doc["id"]):
        return None
    try:
        record = ServiceRecord(
            kind=kind,
            id=doc["id"],
            name=doc["name"],
            model=doc["model"],
            proto=doc["proto"],
            fw=doc["fw"],
            host=str(ipaddress.IPv4Address(doc["host"])),
            port=port,
            extra=MappingProxyType(dict(extra)) if extra else _EMPTY,
        )
        txt_properties(record)
    except ValueError:
        return None
    return record
