"""The backend this process uses for mDNS, decided at each start and logged once.

The decision itself is :func:`~connect_protocol.mdns.choice.choose_backend`;
this module only gathers its inputs (the environment, and whether avahi-daemon
is on the system bus, asked only when ``auto`` needs to know).
"""

from __future__ import annotations

import logging
import os

from connect_protocol.mdns.choice import Backend, backend_setting, choose_backend
from connect_protocol.mdns.records import interfaces_from_env

logger = logging.getLogger(__name__)

_logged: set[tuple[Backend, str]] = set()


async def _avahi_running() -> bool:
    # D-Bus is imported only when the answer matters (~4 MiB a process without avahi
    # would otherwise carry)
    from connect_protocol.mdns.avahi_bus import avahi_running

    return await avahi_running()


async def which_backend() -> Backend:
    """``avahi`` or ``zeroconf`` for an advertiser or browser starting now."""
    setting = backend_setting(os.environ)
    interfaces = interfaces_from_env(os.environ)
    running = setting == "auto" and interfaces is None and await _avahi_running()
    backend, reason = choose_backend(setting, interfaces=interfaces, avahi_running=running)
    if (backend, reason) not in _logged:
        _logged.add((backend, reason))
        what = "avahi-daemon over D-Bus" if backend == "avahi" else "python-zeroconf"
        logger.info("mDNS through %s (%s)", what, reason)
        if backend == "avahi" and interfaces is not None:
            logger.warning(
                "avahi publishes on the interfaces avahi-daemon.conf allows; "
                "LEGATO_MDNS_INTERFACES is not used with it"
            )
    return backend
