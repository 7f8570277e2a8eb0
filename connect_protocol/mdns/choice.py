"""Which mDNS backend a process uses, decided as a pure function of its settings.

A host must have one mDNS responder: two processes bound to UDP 5353 split the
unicast queries between them, and each answers only for its own services.  On a
Raspberry Pi that responder is avahi-daemon, so where it runs we publish and
browse through it (D-Bus); elsewhere python-zeroconf is the responder.

``LEGATO_MDNS_BACKEND`` is ``auto`` (the default), ``avahi`` or ``zeroconf``.
``auto`` picks avahi when its daemon is on the system bus, unless
``LEGATO_MDNS_INTERFACES`` confines mDNS to chosen addresses: that list is a
python-zeroconf setting (avahi's own is ``allow-interfaces`` in
``avahi-daemon.conf``), and avahi ignores loopback, where the tests run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias, get_args

from connect_protocol.mdns.records import ENV_INTERFACES

ENV_BACKEND: Final = "LEGATO_MDNS_BACKEND"

Backend: TypeAlias = Literal["avahi", "zeroconf"]
Setting: TypeAlias = Literal["auto", "avahi", "zeroconf"]
SETTINGS: Final[tuple[Setting, ...]] = get_args(Setting)


def backend_setting(environ: Mapping[str, str]) -> Setting:
    """``LEGATO_MDNS_BACKEND`` (case-insensitive, empty means ``auto``).

    Raises ``ValueError`` naming the variable for any other value.
    """
    raw = environ.get(ENV_BACKEND, "").strip().lower() or "auto"
    for setting in SETTINGS:
        if raw == setting:
            return setting
    raise ValueError(
        f"{ENV_BACKEND}={environ.get(ENV_BACKEND)!r}: expected one of {', '.join(SETTINGS)}"
    )


def choose_backend(
    setting: Setting, *, interfaces: list[str] | None, avahi_running: bool
) -> tuple[Backend, str]:
    """The backend to use and the reason, for the log line that says which one runs."""
    if setting == "avahi" or setting == "zeroconf":
        return setting, f"{ENV_BACKEND}={setting}"
    if interfaces is not None:
        listed = ",".join(interfaces)
        return "zeroconf", f"{ENV_INTERFACES}={listed} confines mDNS, which python-zeroconf does"
    if avahi_running:
        return "avahi", "avahi-daemon is on the system bus"
    return "zeroconf", "no avahi-daemon on the system bus"
