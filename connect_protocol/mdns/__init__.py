"""Finding speakers and hubs on the local network with mDNS / DNS-SD.

Why mDNS: a speaker has to find its hub (and the hub its speakers) with no
configuration at all, on whatever home network it is plugged into.  DNS-SD over
multicast DNS is what every OS already speaks, so ``avahi-browse``, ``dns-sd``
or ``dig`` can see our services too.

Services:

* ``_legato._tcp.local.``: a speaker; TXT ``id``, ``name``, ``model``, ``proto``, ``fw``.
* ``_legato-hub._tcp.local.``: a hub; the same keys plus extras such as ``mqtt``
  (broker port) and ``api`` (HTTP API path).

One host, one responder.  Where avahi-daemon runs (Raspberry Pi OS) records are
published and browsed through it over D-Bus; elsewhere python-zeroconf is the
responder.  ``LEGATO_MDNS_BACKEND`` (``auto``, ``avahi``, ``zeroconf``) overrides
the choice, which is logged once (:mod:`~connect_protocol.mdns.choice`).  A
process that advertises for others on its host takes their records into its own
:class:`Advertiser` (:meth:`Advertiser.add`, :func:`follow_handoff`).

The package is split on purpose:

* ``records``, ``choice`` and ``tracking``: the sans-I/O part
  (:class:`ServiceRecord`, :func:`txt_properties`, :func:`record_from_service`,
  :func:`interfaces_from_env`, the names, the backend decision, what a browser
  knows) that only converts values and is tested without a network.
* ``network``: the zeroconf instance bound as ``LEGATO_MDNS_INTERFACES`` says
  (:func:`make_zeroconf`) and the address a server announces
  (:func:`reachable_address`).
* ``advertiser`` (:class:`Advertiser`) and ``browser`` (:class:`Browser`,
  :func:`find_one`): thin asyncio adapters over a backend, ``zc_publish`` and
  ``zc_watch`` (python-zeroconf) or ``avahi_publish`` and ``avahi_watch``
  (avahi-daemon through ``avahi_bus``, a dbus-fast connection).
* ``handoff``: a record handed to the host's advertiser through a file.

``LEGATO_MDNS_INTERFACES`` (comma-separated addresses) restricts the interfaces
zeroconf binds, e.g. ``127.0.0.1`` in tests so nothing leaks onto a real LAN;
with ``auto`` it also means zeroconf (avahi's interfaces are its own config).
Callers import from here (``from connect_protocol import mdns``).
"""

from __future__ import annotations

from connect_protocol.mdns.advertiser import Advertiser
from connect_protocol.mdns.browser import RESOLVE_TIMEOUT_MS, Browser, find_one
from connect_protocol.mdns.choice import ENV_BACKEND, Backend, backend_setting, choose_backend
from connect_protocol.mdns.handoff import Handoff, follow_handoff, read_handoff, write_handoff
from connect_protocol.mdns.network import make_zeroconf, reachable_address
from connect_protocol.mdns.records import (
    CORE_KEYS,
    ENV_INTERFACES,
    HUB_SERVICE,
    MAX_LABEL_BYTES,
    MAX_TXT_ITEM_BYTES,
    PROTO_VERSION,
    SERVICE_TYPES,
    SPEAKER_SERVICE,
    Change,
    Kind,
    OnChange,
    ServiceRecord,
    host_name,
    instance_label,
    instance_name,
    interfaces_from_env,
    record_from_json,
    record_from_service,
    record_to_json,
    txt_from_items,
    txt_items,
    txt_properties,
)

__all__ = [
    "CORE_KEYS",
    "ENV_BACKEND",
    "ENV_INTERFACES",
    "HUB_SERVICE",
    "MAX_LABEL_BYTES",
    "MAX_TXT_ITEM_BYTES",
    "PROTO_VERSION",
    "RESOLVE_TIMEOUT_MS",
    "SERVICE_TYPES",
    "SPEAKER_SERVICE",
    "Advertiser",
    "Backend",
    "Browser",
    "Change",
    "Handoff",
    "Kind",
    "OnChange",
    "ServiceRecord",
    "backend_setting",
    "choose_backend",
    "find_one",
    "follow_handoff",
    "host_name",
    "instance_label",
    "instance_name",
    "interfaces_from_env",
    "make_zeroconf",
    "reachable_address",
    "read_handoff",
    "record_from_json",
    "record_from_service",
    "record_to_json",
    "txt_from_items",
    "txt_items",
    "txt_properties",
    "write_handoff",
]
