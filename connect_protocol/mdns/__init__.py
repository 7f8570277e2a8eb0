"""Finding speakers and hubs on the local network with mDNS / DNS-SD.

Why mDNS: a speaker has to find its hub (and the hub its speakers) with no
configuration at all, on whatever home network it is plugged into.  DNS-SD over
multicast DNS is what every OS already speaks, so ``avahi-browse``, ``dns-sd``
or ``dig`` can see our services too.

Services:

* ``_legato._tcp.local.``: a speaker; TXT ``id``, ``name``, ``model``, ``proto``, ``fw``.
* ``_legato-hub._tcp.local.``: a hub; the same keys plus extras such as ``mqtt``
  (broker port) and ``api`` (HTTP API path).

The package is split on purpose:

* ``records``: the sans-I/O part (:class:`ServiceRecord`, :func:`txt_properties`,
  :func:`record_from_service`, :func:`interfaces_from_env`, the names) that only
  converts values and is tested without a network.
* ``network``: the zeroconf instance bound as ``LEGATO_MDNS_INTERFACES`` says
  (:func:`make_zeroconf`) and the address a server announces
  (:func:`reachable_address`).
* ``advertiser`` (:class:`Advertiser`) and ``browser`` (:class:`Browser`,
  :func:`find_one`): thin asyncio adapters over python-zeroconf.

``LEGATO_MDNS_INTERFACES`` (comma-separated addresses) restricts the interfaces
zeroconf binds, e.g. ``127.0.0.1`` in tests so nothing leaks onto a real LAN.
Callers import from here (``from connect_protocol import mdns``).
"""

from __future__ import annotations

from connect_protocol.mdns.advertiser import Advertiser
from connect_protocol.mdns.browser import RESOLVE_TIMEOUT_MS, Browser, find_one
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
    record_from_service,
    txt_properties,
)

__all__ = [
    "CORE_KEYS",
    "ENV_INTERFACES",
    "HUB_SERVICE",
    "MAX_LABEL_BYTES",
    "MAX_TXT_ITEM_BYTES",
    "PROTO_VERSION",
    "RESOLVE_TIMEOUT_MS",
    "SERVICE_TYPES",
    "SPEAKER_SERVICE",
    "Advertiser",
    "Browser",
    "Change",
    "Kind",
    "OnChange",
    "ServiceRecord",
    "find_one",
    "host_name",
    "instance_label",
    "instance_name",
    "interfaces_from_env",
    "make_zeroconf",
    "reachable_address",
    "record_from_service",
    "txt_properties",
]
