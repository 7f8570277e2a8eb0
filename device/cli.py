"""``legato-speaker``: run a speaker (``legato-speaker update``: install a release from
a file, see :mod:`device.update_command`).

Finds its broker from the config, else from the hub's ``/api/connect`` (the hub
URL from ``--hub`` or the config), else from the hub's mDNS record, trusting a hub
only as :mod:`device.hub_link` says.  A speaker
without broker credentials still serves ``/info`` and local control, and says
how to pair it.

Exit status: 0 when stopped, or when another release became current (systemd or the
supervisor then starts that one); 2 for a bad config; 3 when the release in trial
failed (its self-check, or no hub within the deadline), so the guard rolls it back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import signal
import sys
from pathlib import Path

from connect_protocol import logs
from connect_protocol.mqtt import BrokerAddress
from device import config as config_mod
from device import hub_link, update_command
from device.config import ConfigError, SpeakerConfig
from device.service import MdnsPlan, SpeakerService
from device.updates.agent import EXIT_TRIAL_FAILED, TrialFailedError

logger = logging.getLogger("legato.speaker")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="legato-speaker",
        description="Run a Legato speaker: joins the hub's broker, obeys the Connect "
        "protocol, advertises itself over mDNS and serves GET /info and a local "
        "control WebSocket on its own port.",
        epilog="legato-speaker update --bundle FILE [--check]: install a release from a file "
        "(see legato-speaker update --help).",
    )
    p.add_argument("--config", type=Path, help="speaker TOML config (see device/config.py)")
    p.add_argument("--name", help="name shown to listeners (overrides the config)")
    p.add_argument("--hub", help="hub URL, e.g. http://hub.local:8000 (default: find by mDNS)")
    p.add_argument("--broker", help="broker URL mqtt://host:port (default: ask the hub)")
    p.add_argument(
        "--sink",
        help="alsa[:PCM] | file:PATH | fifo:PATH (a named pipe another process reads: a "
        "virtual DAC) | null (default: the config's, else its board's)",
    )
    p.add_argument(
        "--engine",
        choices=config_mod.ENGINES,
        help="playback engine: native (libvorbisfile + ALSA), mpv (libmpv) or clock (silence)",
    )
    p.add_argument(
        "--quality",
        choices=config_mod.QUALITIES,
        help="auto adapts to the network; a level pins it (default: auto)",
    )
    p.add_argument(
        "--sample-rate", type=int, help="the sink's sample rate (default 44100; others resampled)"
    )
    p.add_argument(
        "--normalisation",
        choices=config_mod.NORMALISATIONS,
        help="loudness normalisation to -14 LUFS per track or per album, or off",
    )
    p.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="file and null sinks do not keep real time (benchmarks only)",
    )
    p.add_argument(
        "--panel",
        metavar="PORT",
        help="serial port of a front panel (hardware/mcu/), e.g. /dev/ttyACM0 (config: panel.port)",
    )
    p.add_argument("--cache", type=Path, help="offline cache directory")
    p.add_argument("--port", type=int, help="port for /info and /control (0 = any)")
    p.add_argument(
        "--listen", metavar="HOST", help="address for /info and /control (config: http_host)"
    )
    p.add_argument(
        "--sync-port",
        type=int,
        help="UDP port of the multiroom sync socket (0 = any; config: sync.port)",
    )
    p.add_argument(
        "--sync-bind",
        metavar="HOST",
        help="address of the multiroom sync socket (config: sync.bind)",
    )
    p.add_argument("--discover-timeout", type=float, default=10.0, help="seconds to look for a hub")
    mdns_group = p.add_mutually_exclusive_group()
    mdns_group.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
    mdns_group.add_argument(
        "--mdns-handoff",
        type=Path,
        metavar="FILE",
        help="start no mDNS responder: write the speaker's record to FILE for the process "
        "that advertises for this host (legato-hub up does)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


async def run(
    cfg: SpeakerConfig,
    discover_timeout_s: float,
    *,
    fast_sink: bool = False,
    mdns_plan: MdnsPlan | None = None,
) -> int:
    broker: BrokerAddress | None = None
    if cfg.password:
        cfg, broker = await hub_link.resolve(cfg, discover_timeout_s)
    else:
        logger.warning(
            "speaker %s has no broker credentials: it serves local control only. "
            "Pair it with `legato-hub device add %s --out speaker.toml` and pass --config.",
            cfg.id,
            cfg.id,
        )
    service = SpeakerService(cfg, broker, fast_sink=fast_sink, mdns_plan=mdns_plan or MdnsPlan())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, service.request_exit, 0)
    try:  # a start that fails half way still closes what it opened (threads, ports)
        await service.start()
        assert service.local_api is not None
        logger.info(
            "speaker %r (%s) ready: http://%s:%d/info",
            cfg.name,
            cfg.id,
            cfg.http_host,
            service.local_api.port,
        )
        # until a signal, or the speaker stops by itself: a new release is current
        # (status 0: systemd or the supervisor starts it) or its trial failed
        await service.finished.wait()
    except TrialFailedError as exc:
        logger.error("%s; stopping, so that the previous release starts", exc)
        return EXIT_TRIAL_FAILED
    finally:
        logger.info("stopping speaker %s", cfg.id)
        await service.stop()
    return service.exit_status


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas: the audio threads would each grow one.

    A speaker has a handful of threads and a small RAM; the default (8 per
    core) lets freed decode buffers sit in separate arenas.  A no-op off glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX


def config_from_args(args: argparse.Namespace) -> SpeakerConfig:
    """The config file (and its board profile) with the flags on top: flags win."""
    return config_mod.with_overrides(
        config_mod.load(args.config),
        name=args.name,
        hub_url=args.hub,
        broker_url=args.broker,
        sink=args.sink,
        engine=args.engine,
        quality=args.quality,
        sample_rate=args.sample_rate,
        normalisation=args.normalisation,
        cache_dir=args.cache,
        http_port=args.port,
        http_host=args.listen,
        panel_port=args.panel,
        sync_port=args.sync_port,
        sync_bind=args.sync_bind,
    )


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["update"]:  # legato-speaker update --bundle FILE: not a speaker run
        return update_command.main(given[1:])
    limit_malloc_arenas()
    args = build_parser().parse_args(given)
    logs.configure(args.log_level)
    try:
        cfg = config_from_args(args)
        with contextlib.suppress(KeyboardInterrupt):
            plan = MdnsPlan(advertise=not args.no_mdns, handoff=args.mdns_handoff)
            return asyncio.run(
                run(cfg, args.discover_timeout, fast_sink=args.as_fast_as_possible, mdns_plan=plan)
            )
        return 0
    except ConfigError as exc:
        print(f"legato-speaker: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
