"""``legato-hub``: run and administer a hub.

Subcommands: ``up`` (everything on one machine, for a first try), ``serve``,
``user add``, ``device add``, ``broker-config``, ``ingest``, ``keys rotate`` and
``licences list|revoke``.
Every one takes ``--data DIR`` (default ``$LEGATO_DATA``, else the per-user data
directory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import logging
import os
import secrets
import string
import sys
from pathlib import Path

from connect_protocol import logs
from hub.accounts import users
from hub.catalog import resolve as catalog
from hub.clock import now_ms
from hub.db import Database
from hub.errors import AccountError, CliError, DatabaseError, OfflineError, ProvisioningError
from hub.files import write_private
from hub.fleet import provisioning
from hub.fleet.broker import BrokerError, write_mosquitto_config
from hub.http.ratelimit import parse_limits
from hub.media import signing
from hub.offline.service import OfflineService
from hub.server import Hub, ServeOptions, open_database, run_until_signalled, spawn_speaker

logger = logging.getLogger("legato.hub")
DEMO_USER = "demo"
LOCAL_SPEAKER_ID = "local-speaker"


def default_data_dir() -> Path:
    if os.environ.get("LEGATO_DATA"):
        return Path(os.environ["LEGATO_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "legato"


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def rate_limits(text: str) -> str:
    """Checked here so a typo is a usage error, not a hub that fails to start."""
    try:
        parse_limits(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 600 seconds")
    return value


def positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def default_speaker_sink() -> str:
    """ALSA's default device when this machine has a sound card, else the null sink."""
    cards = Path("/proc/asound/cards")
    try:
        has_card = cards.exists() and "no soundcards" not in cards.read_text()
    except OSError:
        has_card = False
    if has_card:
        return "alsa"
    logger.warning("no sound card found: the local speaker plays to the null sink")
    return "null"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data",
        type=Path,
        default=None,
        help="data directory (default: $LEGATO_DATA, else ~/.local/share/legato)",
    )
    common.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    parser = argparse.ArgumentParser(
        prog="legato-hub",
        description="The Legato hub: web API, MQTT broker and device registry.",
        epilog="First time? `legato-hub up` starts a hub, a broker, a demo catalog and a "
        "local speaker, and prints where to go next.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def server_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--host",
            default="127.0.0.1",
            help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN)",
        )
        p.add_argument("--port", type=port_number, default=8000, help="web API port (default 8000)")
        p.add_argument(
            "--mqtt-port",
            type=port_number,
            default=1883,
            help="embedded broker port (default 1883)",
        )
        p.add_argument(
            "--broker-url",
            help="use an external broker (mqtt://host:port) instead of the embedded one",
        )
        p.add_argument("--no-mdns", action="store_true", help="do not advertise over mDNS")
        p.add_argument(
            "--rate-limits",
            default="default",
            type=rate_limits,
            help="Web API requests per user per 30 s: default (standard 100, search 30, "
            "player 50, playlist-changes 25), off, or overrides like search=60,player=200",
        )
        p.add_argument(
            "--command-timeout",
            type=positive_seconds,
            default=5.0,
            help="seconds to wait for a speaker to acknowledge a command (default 5)",
        )

    up = sub.add_parser(
        "up", parents=[common], help="hub + broker + demo catalog + a local speaker"
    )
    server_flags(up)
    up.add_argument(
        "--speaker-sink",
        default=None,
        help="sink of the local speaker: alsa[:PCM] | file:PATH | null "
        "(default: ALSA when there is a sound card, else null)",
    )
    up.add_argument("--no-speaker", action="store_true", help="do not start the local speaker")
    up.add_argument(
        "--demo-seconds",
        type=float,
        default=None,
        help="length of each generated demo track (default: 38-56 s, 10 minutes in all)",
    )
    serve = sub.add_parser("serve", parents=[common], help="run the hub")
    server_flags(serve)

    user = sub.add_parser("user", help="manage accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_sub.add_parser("add", parents=[common], help="create an account")
    add.add_argument("name")
    add.add_argument(
        "--password-file", type=Path, help="read the password from this file (else prompt)"
    )
    add.add_argument("--admin", action="store_true", help="may use the operator dashboard")

    device = sub.add_parser("device", help="manage speakers")
    device_sub = device.add_subparsers(dest="device_command", required=True, metavar="ACTION")
    dev_add = device_sub.add_parser(
        "add", parents=[common], help="give a speaker broker credentials and write its config"
    )
    dev_add.add_argument("id", help="device id: letters, digits, - and _")
    dev_add.add_argument("--name", help="name listeners see (default: the id)")
    dev_add.add_argument("--out", type=Path, required=True, help="speaker config to write (TOML)")
    dev_add.add_argument("--hub-url", default="", help="hub URL for the speaker (default: mDNS)")
    dev_add.add_argument(
        "--broker-url", default="", help="broker URL for the speaker (default: ask the hub)"
    )

    broker = sub.add_parser(
        "broker-config",
        parents=[common],
        help="write Mosquitto config (passwd, acl) for an external broker",
    )
    broker.add_argument(
        "--out", type=Path, required=True, help="directory for mosquitto.conf, passwd, acl"
    )
    broker.add_argument("--port", type=port_number, default=1883)
    broker.add_argument("--host", default="127.0.0.1")

    ingest = sub.add_parser(
        "ingest",
        parents=[common],
        help="add audio files to the catalog",
        description="Add FLAC, WAV, MP3 and Ogg files to the catalog: read their tags and "
        "cover art, measure loudness (EBU R128), and encode each into the Ogg Vorbis "
        "ladder (low ~24, normal ~96, high ~160, very_high ~320 kbps) the speakers stream. "
        "Content already in the catalog (same bytes) is skipped, so running it again is "
        "safe. A file that cannot be read is reported and skipped; nothing of it reaches "
        "the catalog.",
        epilog="Exit status: 0 when every file was added or already present, 1 when any "
        "file failed, 2 for a usage error (such as a path that does not exist).",
    )
    ingest.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="an audio file, or a folder searched recursively for .flac .wav .mp3 .ogg",
    )
    ingest.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file on stdout (status added|present|failed, id, "
        "uri, name, frames, sample_rate, duration_ms, loudness, error)",
    )
    ingest.add_argument(
        "--jobs",
        type=positive_count,
        default=None,
        metavar="N",
        help="files encoded at once, one process each (default: the number of CPUs)",
    )

    keys = sub.add_parser("keys", help="manage the keys that sign audio URLs")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    keys_sub.add_parser(
        "rotate",
        parents=[common],
        help="start signing with a new key; delete keys retired for longer than "
        f"{(signing.URL_TTL_S + signing.MARGIN_S) // 3600} hours (a running hub notices)",
    )
    licences = sub.add_parser(
        "licences",
        help="list or revoke offline licences",
        description="Offline licences let a speaker play an account's downloads without "
        "the hub for 30 days (5 speakers per account, 10,000 tracks per speaker).",
    )
    lic_sub = licences.add_subparsers(dest="licences_command", required=True, metavar="ACTION")
    lic_sub.add_parser(
        "list",
        parents=[common],
        help="every licence: speaker, account, expiry, revoked or not",
    )
    revoke = lic_sub.add_parser(
        "revoke",
        parents=[common],
        help="revoke an account's licence on a speaker and remove its downloads there",
        description="Revoke ACCOUNT's offline licence on speaker DEVICE: the speaker shreds "
        "that account's offline content at its next sync (at once if it is online to a "
        "running hub; otherwise when it next reaches the hub, and at the latest when the "
        "licence expires). Downloading again later issues a licence with a new key.",
    )
    revoke.add_argument("device", metavar="DEVICE", help="speaker id (see `licences list`)")
    revoke.add_argument("user", metavar="ACCOUNT", help="account name")
    return parser


def _read_password(path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from exc
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password: pass --password-file")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise CliError("the passwords do not match")
    return first


def cmd_user_add(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    user = users.add_user(db, args.name, _read_password(args.password_file), admin=args.admin)
    print(f"created {'admin ' if user.is_admin else ''}user {user.name!r}")
    return 0


def cmd_device_add(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    provisioning.hub_secret(db, data)
    secret = provisioning.add_broker_user(db, args.id, "speaker")
    provisioning.write_speaker_config(
        args.out,
        device_id=args.id,
        name=args.name or args.id,
        secret=secret,
        hub_url=args.hub_url,
        broker_url=args.broker_url,
    )
    print(f"speaker {args.id!r} provisioned; run: legato-speaker --config {args.out}")
    return 0


def cmd_broker_config(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    provisioning.hub_secret(db, data)
    conf = write_mosquitto_config(
        args.out, port=args.port, host=args.host, users=provisioning.all_broker_users(db)
    )
    print(f"wrote {conf}; run: mosquitto -c {conf}  (send SIGHUP after adding devices)")
    return 0


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


async def _serve(args: argparse.Namespace, data: Path, *, up: bool) -> int:
    opts = ServeOptions(
        data_dir=data,
        host=args.host,
        port=args.port,
        mqtt_port=args.mqtt_port,
        broker_url=args.broker_url,
        advertise=not args.no_mdns,
        ack_timeout_s=args.command_timeout,
        rate_limits=args.rate_limits,
    )
    hub = Hub(opts)
    children = []
    if up:
        user, password = _demo_account(data)
        await asyncio.to_thread(_demo_catalog, hub.db, data, args.demo_seconds)
    try:
        await hub.start()
    except BaseException:  # Ctrl-C or a failure half-way: stop what did start
        await hub.stop()
        raise
    try:
        if up and not args.no_speaker:
            sink = args.speaker_sink or default_speaker_sink()
            config = data / "speaker" / "speaker.toml"
            secret = provisioning.add_broker_user(hub.db, LOCAL_SPEAKER_ID, "speaker")
            provisioning.write_speaker_config(
                config,
                device_id=LOCAL_SPEAKER_ID,
                name="Local speaker",
                secret=secret,
                hub_url=hub.url,
                broker_url=f"mqtt://{hub.address.host}:{hub.address.port}",
                http_host=args.host,
                sink=sink,
            )
            hub.broker_users.forget(LOCAL_SPEAKER_ID)
            children.append(spawn_speaker(config, sink))
        print(f"\nLegato hub is up: {hub.url}")
        print(f"  remote:    http://{hub.public_host}:{args.port}/remote   (open on your phone)")
        print(f"  dashboard: {hub.url}/dashboard   (admin accounts)")
        print(f"  health:    {hub.url}/healthz")
        print(f"  Web API:   {hub.url}/v1/me/player  (described at {hub.url}/openapi.json)")
        print(f"  Connect:   ws://{hub.public_host}:{args.port}/v1/connect/ws?access_token=TOKEN")
        print(f"  MQTT:      mqtt://{hub.address.host}:{hub.address.port}")
        if up:
            print(f"  account:   {user} / {password}   (also in {data / 'demo-credentials.txt'})")
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
        print("Press Ctrl-C to stop.\n", flush=True)
    except BaseException:
        await hub.stop()
        raise
    await run_until_signalled(hub, children)
    print("stopped.")
    return 0


def cmd_keys_rotate(_args: argparse.Namespace, data: Path) -> int:
    try:
        data.mkdir(mode=0o700, parents=True, exist_ok=True)
        rotation = signing.rotate(data, now_ms=now_ms())
    except OSError as exc:
        raise CliError(f"cannot rotate the keys in {data / 'keys'}: {exc.strerror}") from exc
    print(f"audio URLs are now signed with key {rotation.new}")
    if rotation.pruned:
        print(f"removed retired keys: {', '.join(rotation.pruned)}")
    return 0


def cmd_licences(args: argparse.Namespace, data: Path) -> int:
    service = OfflineService(open_database(data), data, None)
    if args.licences_command == "revoke":
        try:
            service.revoke(args.device, service.user_id(args.user))
        except OfflineError as exc:
            raise CliError(str(exc)) from exc
        print(
            f"revoked {args.user}'s offline licence on {args.device}; the speaker shreds "
            "that account's downloads at its next sync"
        )
        return 0
    rows = service.licences()
    if not rows:
        print("no offline licences yet")
        return 0
    print(f"{'SPEAKER':<24} {'ACCOUNT':<16} {'EXPIRES':<22} {'STATE':<9} LICENCE")
    for row in rows:
        state = _licence_state(row, now_ms())
        print(
            f"{row['device_id']:<24} {row['user']:<16} {row['expires']:<22} {state:<9} {row['id']}"
        )
    return 0


def _licence_state(row: dict[str, object], now: int) -> str:
    if row["revoked"]:
        return "revoked"
    if not row["current"]:
        return "renewed"
    expires = row["expires_ms"]
    return "expired" if isinstance(expires, int) and expires <= now else "live"


def _demo_catalog(db: Database, data: Path, seconds: float | None) -> None:
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
            db, data, paths, on_progress=reporter.progress, on_result=reporter.result
        )
    with db.transaction() as conn:
        catalog_extras.apply(conn)  # features and popularity: the demo composed them
    added = [r for r in results if r.status == "added"]
    if added:
        logger.info("demo catalog: %s", summary(results))
    failed = [r for r in results if r.status == "failed"]
    if failed:
        logger.error("demo catalog: %d tracks failed to ingest", len(failed))


def cmd_ingest(args: argparse.Namespace, data: Path) -> int:
    # Imported here: numpy, PyAV and scipy are heavy and only ingest needs them.
    from hub.ingest import IngestError, ingest_paths
    from hub.ingest.progress import Reporter, summary

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise CliError(f"no such file or directory: {', '.join(missing)}")
    db = open_database(data)
    reporter = Reporter(
        stdout=sys.stdout, stderr=sys.stderr, json_lines=args.json, interactive=sys.stderr.isatty()
    )
    try:
        with reporter:
            results = ingest_paths(
                db,
                data,
                args.paths,
                jobs=args.jobs,
                on_progress=reporter.progress,
                on_result=reporter.result,
            )
    except IngestError as exc:
        raise CliError(str(exc)) from exc
    except KeyboardInterrupt:
        print("interrupted: the tracks reported as added are in the catalog", file=sys.stderr)
        return 130
    if not results:
        found = " ".join(map(str, args.paths))
        raise CliError(f"no .flac, .wav, .mp3 or .ogg files found in {found}")
    print(summary(results), file=sys.stderr)
    return 1 if any(r.status == "failed" for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    data: Path = (args.data or default_data_dir()).expanduser()
    try:
        match args.command:
            case "up" | "serve":
                with contextlib.suppress(KeyboardInterrupt):
                    return asyncio.run(_serve(args, data, up=args.command == "up"))
                return 0
            case "user":
                return cmd_user_add(args, data)
            case "device":
                return cmd_device_add(args, data)
            case "broker-config":
                return cmd_broker_config(args, data)
            case "ingest":
                return cmd_ingest(args, data)
            case "keys":
                return cmd_keys_rotate(args, data)
            case "licences":
                return cmd_licences(args, data)
    except (
        CliError,
        AccountError,
        ProvisioningError,
        BrokerError,
        DatabaseError,
        ValueError,
    ) as exc:
        print(f"legato-hub: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
