"""``legato-hub`` commands that administer a hub's data: accounts, speakers, the
Mosquitto config, the audio signing keys and offline licences."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path

from connect_protocol.tls import fingerprint as fingerprint_of
from hub.accounts import users
from hub.clock import now_ms
from hub.errors import CliError, OfflineError
from hub.fleet import enrolment, pki, provisioning
from hub.fleet.broker import write_mosquitto_config
from hub.fleet.broker.mosquitto import TlsFiles
from hub.fleet.local_control import local_token
from hub.media import signing
from hub.offline.service import OfflineService
from hub.releases.adding import release_key
from hub.server import open_database


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
        hub_ca=pki.ca_pem(data),
        local_token=local_token(data, args.id),
        release_key=release_key(data).public_text,
    )
    print(f"speaker {args.id!r} provisioned; run: legato-speaker --config {args.out}")
    return 0


def cmd_device_enrol(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    made = enrolment.create(db, created_by="legato-hub device enrol", now_ms=now_ms())
    if args.json:
        print(json.dumps({"code": made.code, "expires_ms": made.expires_ms}))
        return 0
    expires = time.strftime("%H:%M", time.localtime(made.expires_ms / 1000))
    fingerprint = fingerprint_of(pki.ca_pem(data))
    print(f"enrolment code: {made.code}   (single use, valid until {expires})")
    print(
        "flash a card with: legato-flash IMAGE --hub https://HUB:8443 "
        f"--hub-fingerprint {fingerprint} --enrol {made.code} --name NAME [--board BOARD]"
    )
    return 0


def cmd_broker_config(args: argparse.Namespace, data: Path) -> int:
    db = open_database(data)
    provisioning.hub_secret(db, data)
    hub_tls = pki.ensure_server_cert(data, [args.host])
    conf = write_mosquitto_config(
        args.out,
        port=args.port,
        host=args.host,
        users=provisioning.all_broker_users(db),
        tls=TlsFiles(hub_tls.ca_cert, hub_tls.cert, hub_tls.key),
        plain_port=args.plain_port,
    )
    print(f"wrote {conf}; run: mosquitto -c {conf}  (send SIGHUP after adding devices)")
    print(f"then: legato-hub serve --broker-url mqtts://{args.host}:{args.port}")
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
