"""``legato-hub``'s command line: one function per group of subcommands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from hub.cli.options import (
    port_number,
    positive_count,
    positive_seconds,
    rate_limits,
)
from hub.cli.recommend import add_parser as add_recommend
from hub.cli.release import add_parser as add_release
from hub.ingest.limits import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_WORKER_MEMORY_BYTES,
    DURATION_FLAG,
    MEMORY_FLAG,
    parse_duration,
    parse_size,
)
from hub.listening.retention import DEFAULT_HISTORY_DAYS
from hub.media import signing

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

T = TypeVar("T")


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
    _add_running(sub, common)
    _add_accounts_and_speakers(sub, common)
    _add_ingest(sub, common)
    _add_history(sub, common)
    _add_keys_and_licences(sub, common)
    add_recommend(sub, common)
    add_release(sub, common)
    return parser


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1; 0.0.0.0 for the LAN)",
    )
    p.add_argument("--port", type=port_number, default=8000, help="web API port (default 8000)")
    p.add_argument(
        "--mqtt-port",
        type=port_number,
        default=8883,
        help="the embedded broker's MQTT over TLS port (default 8883)",
    )
    p.add_argument(
        "--mqtt-plain-port",
        type=port_number,
        default=None,
        help="also listen for plain MQTT on this port (off by default: speakers' passwords "
        "would cross the network in clear there)",
    )
    p.add_argument(
        "--tls-port",
        type=port_number,
        default=8443,
        help="HTTPS port for speakers, with the hub's own certificate (default 8443)",
    )
    p.add_argument(
        "--tls-cert",
        type=Path,
        default=None,
        help="serve the Web API (--port) over HTTPS with this certificate (PEM; with --tls-key)",
    )
    p.add_argument("--tls-key", type=Path, default=None, help="the key of --tls-cert (PEM)")
    p.add_argument(
        "--broker-url",
        help="use an external broker (mqtts://host:port; see broker-config) instead of the "
        "embedded one; mqtt:// works too, in clear, with a warning",
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
        "--retrain-hours",
        type=float,
        default=24.0,
        metavar="HOURS",
        help="retrain the recommender (a worker process) and rewrite the Weekly Mixes "
        "this often (default 24; 0 = only `legato-hub recommend train`, and the Weekly "
        "Mixes once they are a week old)",
    )
    p.add_argument(
        "--command-timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for a speaker to acknowledge a command (default 5)",
    )


def _checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An option type from a parser that raises ``ValueError``: a usage error instead."""

    def check(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    check.__name__ = parse.__name__
    return check


def _ingest_limit_flags(p: argparse.ArgumentParser, *, whose: str) -> None:
    p.add_argument(
        DURATION_FLAG,
        dest="max_duration",
        type=_checked(parse_duration),
        default=DEFAULT_MAX_DURATION_S,
        metavar="DURATION",
        help=f"longest track {whose} accepts: hours (2.5) or hours and minutes (3h, 90m, "
        "2h30m); a longer file fails as soon as its decoded audio passes it (default 3h)",
    )
    p.add_argument(
        MEMORY_FLAG,
        dest="worker_memory",
        type=_checked(parse_size),
        default=DEFAULT_WORKER_MEMORY_BYTES,
        metavar="SIZE",
        help="address space of each ingest worker process, e.g. 1.5G or 800M; a file "
        "that needs more fails alone (default 1.5G)",
    )


def _add_running(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    up = sub.add_parser(
        "up", parents=[common], help="hub + broker + demo catalog + a local speaker"
    )
    _server_flags(up)
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
    _ingest_limit_flags(up, whose="the dashboard's ingest")
    _history_days_flag(up)
    serve = sub.add_parser("serve", parents=[common], help="run the hub")
    _server_flags(serve)
    _ingest_limit_flags(serve, whose="the dashboard's ingest")
    _history_days_flag(serve)


def _history_days_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history-days",
        type=positive_count,
        default=DEFAULT_HISTORY_DAYS,
        metavar="N",
        help="keep listening history for N days; older plays are deleted at start and "
        f"once a day (default {DEFAULT_HISTORY_DAYS}, three years)",
    )


def _add_accounts_and_speakers(sub: Subparsers, common: argparse.ArgumentParser) -> None:
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

    dev_enrol = device_sub.add_parser(
        "enrol",
        parents=[common],
        help="make a one-time enrolment code for legato-flash --enrol (1 hour, single use)",
    )
    dev_enrol.add_argument("--json", action="store_true", help="print {code, expires_ms}")

    broker = sub.add_parser(
        "broker-config",
        parents=[common],
        help="write Mosquitto config (passwd, acl) for an external broker",
    )
    broker.add_argument(
        "--out", type=Path, required=True, help="directory for mosquitto.conf, passwd, acl"
    )
    broker.add_argument(
        "--port", type=port_number, default=8883, help="MQTT over TLS (the hub's certificate)"
    )
    broker.add_argument("--host", default="127.0.0.1")
    broker.add_argument(
        "--plain-port",
        type=port_number,
        default=None,
        help="also a plain MQTT listener (passwords in clear: only on a trusted network)",
    )


def _add_ingest(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    ingest = sub.add_parser(
        "ingest",
        parents=[common],
        help="add audio files to the catalog",
        description="Add FLAC, WAV, MP3 and Ogg files to the catalog: read their tags and "
        "cover art, measure loudness (EBU R128), and encode each into the Ogg Vorbis "
        "ladder (low ~24, normal ~96, high ~160, very_high ~320 kbps) the speakers stream. "
        "Content already in the catalog (same bytes) is skipped, so running it again is "
        "safe. A file that cannot be read is reported and skipped; nothing of it reaches "
        "the catalog. Each file is decoded a block at a time in a worker process of its "
        "own, so a long track costs no more memory than a short one, a track over "
        "--max-duration fails early, and a file that crashes its decoder fails alone.",
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
    _ingest_limit_flags(ingest, whose="ingest")


def _add_history(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    history = sub.add_parser("history", help="import or clear a listener's history")
    history_sub = history.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    imp = history_sub.add_parser(
        "import",
        parents=[common],
        help="import listening history exported from Spotify or ListenBrainz",
        description="Import a listener's plays from Spotify's extended streaming history "
        "(the JSON files of the export) or a ListenBrainz export (JSON lines). Plays are "
        "matched to the catalog by ISRC, else by artist and title (case, accents and "
        "feat. credits ignored); plays of songs not in the catalog are kept and matched "
        "after a later ingest. Importing a file again adds nothing. A malformed file is "
        "refused with the file and row named, and nothing is imported.",
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="an export file")
    imp.add_argument("--user", required=True, metavar="NAME", help="whose history it is")
    imp.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per file (file, rows, music_rows, matched, unmatched, "
        "duplicates, not_music, top_unmatched_artists)",
    )
    clear = history_sub.add_parser(
        "clear", parents=[common], help="delete all of a listener's listening history"
    )
    clear.add_argument("--user", required=True, metavar="NAME", help="whose history it is")


def _add_keys_and_licences(sub: Subparsers, common: argparse.ArgumentParser) -> None:
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
