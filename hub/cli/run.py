"""``legato-hub up`` and ``serve``: run a hub; ``up`` adds the demo account and
catalog and a local speaker, and prints where to go next."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import string
import subprocess
import sys
from pathlib import Path

from hub.accounts import users
from hub.catalog import resolve as catalog
from hub.cli.options import default_speaker_sink
from hub.db import Database
from hub.errors import AccountError, CliError
from hub.files import write_private
from hub.fleet import provisioning
from hub.fleet.local_control import local_token
from hub.ingest.limits import IngestLimits
from hub.server import Hub, ServeOptions, open_database, run_until_signalled, spawn_speaker

logger = logging.getLogger("legato.hub")
DEMO_USER = "demo"
LOCAL_SPEAKER_ID = "local-speaker"
MDNS_HANDOFF = "mdns-record.json"  # beside the local speaker's config


def _demo_account(data: Path) -> tuple[str, str]:
    """The demo login, created once; its password kept in a 0600 file."""
    db = open_database(data)
    path = data / "demo-credentials.txt"
    if path.exists():
        password = path.read_text().split(":", 1)[1].strip()
        return DEMO_USER, password
    alphabet = string.ascii_letters + string.digits  # nothing a shell or a flag parser minds
    password = "".join(secrets.choice(alphabet) for _ in range(14))
    try:
        users.add_user(db, DEMO_USER, password, admin=True)
    except AccountError:
        users.set_password(db, DEMO_USER, password)
    write_private(path, f"{DEMO_USER}: {password}\n")
    return DEMO_USER, password


async def serve(args: argparse.Namespace, data: Path, *, up: bool) -> int:
    if (args.tls_cert is None) != (args.tls_key is None):
        raise CliError("--tls-cert and --tls-key go together")
    opts = ServeOptions(
        data_dir=data,
        host=args.host,
        port=args.port,
        mqtt_port=args.mqtt_port,
        mqtt_plain_port=args.mqtt_plain_port,
        tls_port=args.tls_port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        broker_url=args.broker_url,
        advertise=not args.no_mdns,
        ack_timeout_s=args.command_timeout,
        rate_limits=args.rate_limits,
        history_days=args.history_days,
        retrain_hours=args.retrain_hours,
    )
    hub = await asyncio.to_thread(Hub, opts)  # opening the database and keys: start-up work
    limits = IngestLimits(max_duration_s=args.max_duration, worker_memory_bytes=args.worker_memory)
    hub.ctx.ingest.limits = limits  # the dashboard's ingest jobs
    children = []
    demo = _demo_account(data) if up else None
    try:
        if up:  # a port in use is said before the demo catalog takes its while
            hub.check_ports()
            await asyncio.to_thread(_demo_catalog, hub.db, data, args.demo_seconds, limits)
        await hub.start()
    except BaseException:  # Ctrl-C or a failure half-way: stop what did start
        await hub.stop()
        raise
    try:
        if up and not args.no_speaker:
            children.append(_start_local_speaker(hub, args.speaker_sink, args.host))
        print_banner(hub, args.port, demo=demo)
        print("Press Ctrl-C to stop.\n", flush=True)
    except BaseException:
        await hub.stop()
        raise
    await run_until_signalled(hub, children)
    print("stopped.")
    return 0


def _start_local_speaker(hub: Hub, sink: str | None, http_host: str) -> subprocess.Popen[bytes]:
    """Pair the local speaker (a fresh broker login each start) and run it."""
    sink = sink or default_speaker_sink()
    config = hub.opts.data_dir / "speaker" / "speaker.toml"
    secret = provisioning.add_broker_user(hub.db, LOCAL_SPEAKER_ID, "speaker")
    provisioning.write_speaker_config(
        config,
        device_id=LOCAL_SPEAKER_ID,
        name="Local speaker",
        secret=secret,
        hub_url=hub.speaker_url,
        broker_url=hub.address.url,
        hub_ca=hub.tls.ca_pem,
        local_token=local_token(hub.opts.data_dir, LOCAL_SPEAKER_ID),
        http_host=http_host,
        sink=sink,
        release_key=hub.ctx.releases.key.public_text,
    )
    hub.broker_users.forget(LOCAL_SPEAKER_ID)
    if hub.advertiser is None:  # --no-mdns, or the hub's mDNS failed
        flags = ["--no-mdns"] if not hub.opts.advertise else []
        return spawn_speaker(config, sink, mdns_flags=flags)
    # One mDNS responder per host: the speaker hands its record to the hub's advertiser.
    handoff = config.parent / MDNS_HANDOFF
    handoff.unlink(missing_ok=True)  # a record left by a previous run is not this speaker's
    proc = spawn_speaker(config, sink, mdns_flags=["--mdns-handoff", str(handoff)])
    hub.advertise_for(handoff, alive=lambda: proc.poll() is None)
    return proc


def _demo_catalog(db: Database, data: Path, seconds: float | None, limits: IngestLimits) -> None:
    """Generate the demo albums (once) and put them through the real ingest.

    The files are rendered deterministically, so a second ``up`` finds every
    track already present by content hash and starts in a moment.
    """
    from hub.demo_music import catalog_extras, render_demo_library
    from hub.ingest import ingest_paths
    from hub.ingest.progress import Reporter, summary

    folder = data / "demo-music" if seconds is None else data / f"demo-music-{seconds:g}s"
    paths = render_demo_library(folder, seconds_per_track=seconds)
    reporter = Reporter(
        stdout=sys.stdout, stderr=sys.stderr, json_lines=False, interactive=sys.stderr.isatty()
    )
    with reporter:
        results = ingest_paths(
            db,
            data,
            paths,
            on_progress=reporter.progress,
            on_result=reporter.result,
            limits=limits,
        )
    with db.transaction() as conn:
        catalog_extras.apply(conn)  # features and popularity: the demo composed them
    added = [r for r in results if r.status == "added"]
    if added:
        logger.info("demo catalog: %s", summary(results))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        logger.error("demo catalog: %d tracks failed to ingest", len(failed))


def print_banner(hub: Hub, port: int, *, demo: tuple[str, str] | None) -> None:
    """Where to go next: the URLs, and with ``demo`` its login and a first play."""
    print(f"\nLegato hub is up: {hub.url}")
    print(f"  remote:    http://{hub.public_host}:{port}/remote   (open on your phone)")
    print(f"  dashboard: {hub.url}/dashboard   (admin accounts)")
    print(f"  health:    {hub.url}/healthz")
    print(f"  Web API:   {hub.url}/v1/me/player  (described at {hub.url}/openapi.json)")
    print(f"  Connect:   ws://{hub.public_host}:{port}/v1/connect/ws?access_token=TOKEN")
    print(f"  MQTT:      {hub.address.url}   (speakers: {hub.speaker_url}, the hub's own CA)")
    if demo is not None:
        user, password = demo
        saved = hub.opts.data_dir / "demo-credentials.txt"
        print(f"  account:   {user} / {password}   (also in {saved})")
        print(
            f"  token:     curl -s -d grant_type=password -d username={user} "
            f"-d password={password} {hub.url}/api/token"
        )
        album = catalog.first_album_uri(hub.db)
        if album:
            print(
                f'  play:      curl -X PUT -H "Authorization: Bearer $TOKEN" '
                f'-d \'{{"context_uri": "{album}"}}\' {hub.url}/v1/me/player/play'
            )
