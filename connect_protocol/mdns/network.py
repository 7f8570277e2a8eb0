"""Where mDNS runs: the zeroconf instance and the address a server announces.

``LEGATO_MDNS_INTERFACES`` (comma-separated addresses, parsed by
:func:`~connect_protocol.mdns.records.interfaces_from_env`) restricts the
interfaces zeroconf binds, e.g. ``127.0.0.1`` in tests so nothing leaks onto a
real LAN; the same setting picks the address a wildcard-bound server announces.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket

from zeroconf import IPVersion
from zeroconf.asyncio import AsyncZeroconf

from connect_protocol.mdns.records import interfaces_from_env

logger = logging.getLogger(__name__)


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
