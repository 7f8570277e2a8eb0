"""How a speaker finds its hub and decides whether to trust it with its secret.

mDNS only says *where* a hub is; anyone on the network can advertise one.  So:

* a hub found over mDNS is used only by a speaker that pins its hub's CA
  (``hub.ca_file``), and only through its TLS ports (HTTPS, MQTT over TLS), whose
  handshake proves the peer holds a certificate that CA signed before the broker
  password or the HTTP credentials are sent;
* a hub URL or broker URL written in the config (or given on the command line) is
  used as written: ``https://`` and ``mqtts://`` verified against the pinned CA (the
  system's CAs when none is pinned), ``http://`` and ``mqtt://`` in clear with a
  warning, because the operator asked for exactly that.

:func:`plan_from_record` is the pure rule over an mDNS record; the rest is I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from connect_protocol import mdns
from connect_protocol.mqtt import BrokerAddress
from connect_protocol.tls import pinned_context
from device import config as config_mod
from device.config import ConfigError, SpeakerConfig

logger = logging.getLogger(__name__)

UNPINNED = (
    "this speaker pins no hub certificate authority (hub.ca_file), so it sends its secret "
    "to no hub it merely finds on the network; pair it with `legato-hub device add` (which "
    "writes the CA next to the config), or name the hub in the config (hub.url)"
)


@dataclass(frozen=True, slots=True)
class HubPlan:
    """Where to reach a hub found over mDNS: its HTTPS URL, and its TLS broker if named."""

    hub_url: str
    broker_url: str | None


def plan_from_record(host: str, extra: dict[str, str], *, pinned: bool) -> HubPlan:
    """The TLS endpoints an mDNS hub record names; ``ConfigError`` when the speaker
    pins no CA or the record offers no TLS port (a plain port is never taken from the
    network)."""
    if not pinned:
        raise ConfigError(UNPINNED)
    https = extra.get("https", "")
    if not https.isdigit():
        raise ConfigError(f"the hub at {host} offers no HTTPS port; not sending it any secret")
    mqtts = extra.get("mqtts", "")
    broker = f"mqtts://{host}:{mqtts}" if mqtts.isdigit() else None
    return HubPlan(hub_url=f"https://{host}:{https}", broker_url=broker)


def https_context(cfg: SpeakerConfig) -> ssl.SSLContext:
    return pinned_context(cfg.hub_ca) if cfg.hub_ca else ssl.create_default_context()


def warn_if_clear(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme in ("http", "mqtt", "tcp"):
        logger.warning(
            "%s is in clear, as configured: the speaker's credentials cross the network "
            "unencrypted (use https:// and mqtts:// with the hub's CA)",
            url,
        )


def _connect_doc(hub_url: str, context: ssl.SSLContext | None, timeout_s: float) -> Any:
    """The hub's ``/api/connect`` answer (raises URLError, OSError or ValueError)."""
    with urllib.request.urlopen(
        hub_url.rstrip("/") + "/api/connect", timeout=timeout_s, context=context
    ) as resp:
        return json.load(resp)


def _broker_of(doc: Any, hub_url: str) -> str | None:
    """The broker URL an ``/api/connect`` answer names, or None."""
    mqtt = doc.get("mqtt", {}) if isinstance(doc, dict) else {}
    host = mqtt.get("host") or urlsplit(hub_url).hostname
    port = mqtt.get("port")
    if not isinstance(port, int):
        return None
    return f"{'mqtts' if mqtt.get('tls') else 'mqtt'}://{host}:{port}"


def broker_from_hub(cfg: SpeakerConfig, timeout_s: float = 5.0) -> str:
    """Ask the hub (over its verified HTTPS when the URL says so) where its broker is."""
    context = https_context(cfg) if cfg.hub_url.startswith("https:") else None
    try:
        doc = _connect_doc(cfg.hub_url, context, timeout_s)
    except (URLError, OSError, ValueError) as exc:
        raise ConfigError(f"cannot ask the hub at {cfg.hub_url} for its broker: {exc}") from exc
    broker = _broker_of(doc, cfg.hub_url)
    if broker is None:
        raise ConfigError(f"the hub at {cfg.hub_url} did not say where its broker is")
    return broker


def proves_pinned(cfg: SpeakerConfig, hub_url: str, timeout_s: float = 3.0) -> str | None:
    """The broker the hub at ``hub_url`` names ("" for none) once it has completed a TLS
    handshake against the pinned CA and answered; None when it cannot. A hub on the
    network that is not this speaker's is skipped, so a second hub, or an impostor
    answering first, cannot keep the speaker from its own."""
    try:
        doc = _connect_doc(hub_url, pinned_context(cfg.hub_ca), timeout_s)
    except (URLError, OSError, ValueError):
        return None
    return _broker_of(doc, hub_url) or ""


#: hubs probed at once, and at most, per search: junk records cannot crowd out the real one
PROBES_AT_ONCE = 8
MAX_CANDIDATES = 64


async def find_pinned_hub(cfg: SpeakerConfig, timeout_s: float) -> HubPlan:
    """The first hub seen over mDNS within ``timeout_s`` that proves it is the pinned one.

    Every candidate is probed as soon as it appears, several at once, each at most a
    few seconds: a host advertising many hubs that stall cannot hold up the real one."""
    loop = asyncio.get_running_loop()
    found: asyncio.Future[HubPlan] = loop.create_future()
    seen: set[str] = set()
    probes: set[asyncio.Task[None]] = set()
    limit = asyncio.Semaphore(PROBES_AT_ONCE)

    async def probe(plan: HubPlan, name: str) -> None:
        async with limit:
            if found.done():
                return
            broker = await asyncio.to_thread(proves_pinned, cfg, plan.hub_url)
        if broker is not None and not found.done():
            # the answer that proved the hub also names its broker: not asked again
            found.set_result(HubPlan(plan.hub_url, plan.broker_url or broker or None))
        elif broker is None:
            logger.warning(
                "the hub %r at %s is not the one this speaker is paired with; skipping it",
                name,
                plan.hub_url,
            )

    def on_change(change: str, record: mdns.ServiceRecord) -> None:
        if change == "removed" or found.done() or len(seen) >= MAX_CANDIDATES:
            return
        try:
            plan = plan_from_record(record.host, dict(record.extra), pinned=True)
        except ConfigError as exc:
            logger.warning("skipping the hub %s: %s", record.id, exc)
            return
        if plan.hub_url in seen:
            return
        seen.add(plan.hub_url)
        task = loop.create_task(probe(plan, record.name))
        probes.add(task)
        task.add_done_callback(probes.discard)

    browser = mdns.Browser("hub", on_change)
    try:
        await browser.start()
        async with asyncio.timeout(timeout_s):
            return await found
    except TimeoutError:
        pass
    finally:
        await browser.close()
        for task in list(probes):
            task.cancel()
        await asyncio.gather(*probes, return_exceptions=True)
    if seen:
        raise ConfigError(
            f"found {len(seen)} hub(s) over mDNS, none of them the one this speaker is "
            "paired with (its CA did not sign them)"
        )
    raise ConfigError("no hub found over mDNS; start one with `legato-hub up` or pass --hub URL")


async def resolve(cfg: SpeakerConfig, timeout_s: float) -> tuple[SpeakerConfig, BrokerAddress]:
    """The config with its hub URL filled in, and the broker to log in to."""
    broker_url = cfg.broker_url
    if not cfg.hub_url:
        logger.info("no hub configured; looking for one over mDNS (%.0f s)", timeout_s)
        if not cfg.hub_ca:
            raise ConfigError(UNPINNED)
        plan = await find_pinned_hub(cfg, timeout_s)
        cfg = config_mod.with_overrides(cfg, hub_url=plan.hub_url)
        broker_url = broker_url or plan.broker_url or ""
    warn_if_clear(cfg.hub_url)
    if not broker_url:
        broker_url = await asyncio.to_thread(broker_from_hub, cfg)
    warn_if_clear(broker_url)
    address = BrokerAddress.parse(
        broker_url, username=cfg.username, password=cfg.password, ca_pem=cfg.hub_ca
    )
    return cfg, address


def sync_address(cfg: SpeakerConfig, broker: BrokerAddress | None, port: int) -> str:
    """``host:port`` at which a group's other members reach this speaker's sync socket.

    ``sync.advertise`` when set (NAT, relays); else the address this speaker reaches
    its broker from (the address on the hub's network, where the other members are:
    a route is picked, nothing is sent), else the bound or default-route address.
    Blocking (a name look-up): call it off the event loop."""
    if cfg.sync_advertise:
        return cfg.sync_advertise
    host = cfg.sync_bind
    # the socket's own family: a wildcard bind is IPv4 (0.0.0.0)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host in ("", "0.0.0.0", "::") and broker is not None:
        try:
            infos = socket.getaddrinfo(broker.host, broker.port, family, socket.SOCK_DGRAM)
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect(infos[0][4])
                host = str(probe.getsockname()[0])
        except OSError as exc:
            logger.warning("cannot tell the sync address from the broker's route: %s", exc)
            host = ""
    if host.startswith("127.") or host == "::1":
        host = ""  # a broker on this machine (a hub that is also a speaker): no help to others
    if host in ("", "0.0.0.0", "::"):
        host = mdns.reachable_address(cfg.sync_bind)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
