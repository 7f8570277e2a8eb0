"""Offline downloads and licences: the one service the HTTP routes, the Connect
WebSocket and the CLI share.

Speakers register their public keys once per pairing and sync with a request
signed by their Ed25519 key; the answer carries their licences (sealed to their
X25519 key, signed by the hub), the accounts whose content they must shred, and
the tracks they should hold.  Listeners add and remove download items; limits are
checked, and the licence issued, when they ask, so a refusal comes at once.

Blocking methods (database, signing) run in a worker thread; the ``async`` ones
wrap them and then tell the speaker, best effort, to sync now.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from connect_protocol.messages import SyncDownloads
from hub.accounts.users import user_id_of
from hub.clock import now_ms
from hub.db import Database
from hub.errors import (
    OfflineConflict,
    OfflineError,
    OfflineForbidden,
    OfflineNotFound,
    OfflineUnauthorized,
    RelayError,
)
from hub.fleet.registry import device_name
from hub.fleet.relay import Relay
from hub.offline import device_keys
from hub.offline import items as downloads
from hub.offline import licences as licensing
from hub.offline import rules as licence_rules
from offline_cache import licence as lic
from offline_cache.hub_messages import sign_answer

logger = logging.getLogger(__name__)


def _known(conn: sqlite3.Connection, device_id: str) -> str:
    name = device_name(conn, device_id)
    if name is None:
        raise OfflineNotFound(f"no speaker {device_id[:64]!r} on this hub")
    return name


class OfflineService:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        relay: Relay | None,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.relay = relay
        self.clock = clock
        self.keys = licensing.LazyKeys(data_dir)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- speakers -------------------------------------------------------------------

    def register_keys(self, device_id: str, x25519: str, ed25519: str) -> None:
        """Record a speaker's public keys; the same keys again are fine, others are not."""
        with self.db.transaction() as conn:
            name = device_name(conn, device_id) or device_id
            held = device_keys.keys_of(conn, device_id)
            offered = device_keys.SpeakerKeys(x25519, ed25519)
            if held is not None:
                if held == offered:
                    return
                raise OfflineConflict(
                    f"speaker {name} already registered other keys; re-pair it with "
                    f"`legato-hub device add {device_id}` to replace them"
                )
            last = licensing.latest_for_device(conn, device_id)
            if last is not None and last != x25519:
                downloads.forget_all_progress(conn, device_id)
            device_keys.register(conn, device_id, offered, self.clock())

    def sync(
        self,
        device_id: str,
        body: bytes,
        signature: str | None,
        ts_ms: int,
        reports: Sequence[dict[str, Any]],
    ) -> dict[str, Any]:
        """Check a speaker's signed sync, store its progress, answer what it should hold."""
        with self.db.transaction() as conn:
            name = device_name(conn, device_id) or device_id
            held = device_keys.keys_of(conn, device_id)
            if held is None:
                raise OfflineConflict(
                    f"speaker {name} has no offline keys registered: register them "
                    f"(PUT /v1/devices/{device_id}/keys) before syncing"
                )
            if not _signed_by(held.ed25519, body, signature):
                raise OfflineUnauthorized(
                    f"the sync is not signed by speaker {name}'s registered key "
                    "(Legato-Signature: base64url Ed25519 signature of the body)"
                )
            now = self.clock()
            refusal = licence_rules.clock_refusal(ts_ms, now)
            if refusal is not None:
                raise OfflineError(refusal)
            downloads.store_progress(conn, device_id, reports, now)
            return self._holdings(conn, device_id, held.x25519, now)

    def signed_sync(
        self,
        device_id: str,
        body: bytes,
        signature: str | None,
        ts_ms: int,
        reports: Sequence[dict[str, Any]],
    ) -> tuple[bytes, str]:
        """:meth:`sync`'s answer as the bytes sent and their signature by the licence key
        (it names the request it answers, so it cannot be replayed to another)."""
        doc = self.sync(device_id, body, signature, ts_ms, reports)
        return sign_answer(doc, body, self.keys.get().signer)

    def _holdings(
        self, conn: sqlite3.Connection, device_id: str, x25519: str, now: int
    ) -> dict[str, Any]:
        keys = self.keys.get()
        items = downloads.items(conn, device_id)
        accounts = sorted({i.user_id for i in items})
        licences = [
            licensing.ensure(
                conn, keys, device_id=device_id, user_id=u, device_x25519=x25519, now_ms=now
            ).document()
            for u in accounts
        ]
        entries = [(item, e) for item in items for e in downloads.entries(conn, item)]
        details = downloads.track_details(conn, [e.track_id for _, e in entries])
        tracks = [
            {
                "track_id": e.track_id,
                "uri": f"legato:track:{e.track_id}",
                "account": str(item.user_id),
                **details[e.track_id],
                "explicit_ms": None if item.kind == "playlist" else item.requested_ms,
                "playlist_position": e.position,
                "item_uri": item.uri,
            }
            for item, e in entries
            if e.track_id in details
        ]
        downloads.forget_progress_except(conn, device_id, {e.track_id for _, e in entries})
        return {
            "hub_key": lic.b64(keys.public_raw()),
            "now_ms": now,
            "licences": licences,
            "revoked": [str(u) for u in licensing.revoked_accounts(conn, device_id)],
            "tracks": tracks,
        }

    # --- listeners ------------------------------------------------------------------

    def add(self, user_id: int, device_id: str, uris: Sequence[str]) -> dict[str, Any]:
        """Add download items (limits checked, licence issued); the account's document."""
        now = self.clock()
        with self.db.transaction() as conn:
            name = _known(conn, device_id)
            held = device_keys.keys_of(conn, device_id)
            if held is None:
                raise OfflineConflict(
                    f"speaker {name} has not registered its offline keys yet: "
                    "start it once while the hub is reachable"
                )
            wanted = downloads.canonical_list(uris)
            new = [
                downloads.Item(
                    user_id=user_id,
                    uri=uri,
                    name=downloads.named(conn, uri, user_id),
                    requested_ms=now,
                )
                for uri in wanted
            ]
            self._check_limits(conn, user_id, device_id, name, new, now)
            downloads.add(conn, device_id, new)
            licensing.ensure(
                conn,
                self.keys.get(),
                device_id=device_id,
                user_id=user_id,
                device_x25519=held.x25519,
                now_ms=now,
            )
            return _document(conn, user_id, device_id)

    def _check_limits(
        self,
        conn: sqlite3.Connection,
        user_id: int,
        device_id: str,
        name: str,
        new: list[downloads.Item],
        now: int,
    ) -> None:
        live = licensing.live_devices(conn, user_id, now)
        if device_id not in live:
            refusal = licence_rules.device_limit_refusal([device_name(conn, d) or d for d in live])
            if refusal is not None:
                raise OfflineForbidden(refusal)
        total = len(downloads.track_ids(conn, [*downloads.items(conn, device_id), *new]))
        refusal = licence_rules.track_limit_refusal(name, total)
        if refusal is not None:
            raise OfflineForbidden(refusal)

    def document(self, user_id: int, device_id: str) -> dict[str, Any]:
        with self.db.reading() as conn:
            _known(conn, device_id)
            return _document(conn, user_id, device_id)

    def estimate(self, device_id: str, uris: Sequence[str], user_id: int) -> dict[str, Any]:
        uris = downloads.canonical_list(uris)
        with self.db.reading() as conn:
            _known(conn, device_id)
            for uri in uris:
                downloads.named(conn, uri, user_id)  # unknown: 400 naming it
            items = [downloads.Item(user_id=user_id, uri=u, name="", requested_ms=0) for u in uris]
            ids = sorted(downloads.track_ids(conn, items))
            return downloads.estimate(conn, ids)

    def remove(self, user_id: int, device_id: str, uris: Sequence[str] | None) -> None:
        """Remove the account's items (all when ``uris`` is None); with none left, its
        licence there is revoked, so the speaker shreds and the slot is free."""
        uris = None if uris is None else downloads.canonical_list(uris)
        with self.db.transaction() as conn:
            _known(conn, device_id)
            downloads.remove(conn, device_id, user_id, uris)
            if not downloads.items(conn, device_id, user_id):
                licensing.revoke(conn, device_id, user_id, self.clock())

    def revoke(self, device_id: str, user_id: int) -> None:
        """Revoke the account's licence on the device and drop its items there."""
        with self.db.transaction() as conn:
            if not licensing.revoke(conn, device_id, user_id, self.clock()):
                raise OfflineNotFound(
                    f"no live offline licence for that account on speaker {device_id[:64]!r}"
                )
            downloads.remove(conn, device_id, user_id, None)

    def user_id(self, name: str) -> int:
        with self.db.reading() as conn:
            found = user_id_of(conn, name)
        if found is None:
            raise OfflineNotFound(f"no user {name[:64]!r}")
        return found

    def licences(self) -> list[dict[str, Any]]:
        with self.db.reading() as conn:
            return licensing.all_licences(conn)

    # --- async: do it, then tell the speaker -------------------------------------------

    async def download(self, user_id: int, device_id: str, uris: Sequence[str]) -> dict[str, Any]:
        doc = await asyncio.to_thread(self.add, user_id, device_id, uris)
        self.notify(device_id)
        return doc

    async def remove_downloads(
        self, user_id: int, device_id: str, uris: Sequence[str] | None
    ) -> None:
        await asyncio.to_thread(self.remove, user_id, device_id, uris)
        self.notify(device_id)

    async def revoke_licence(self, device_id: str, user_id: int) -> None:
        await asyncio.to_thread(self.revoke, device_id, user_id)
        self.notify(device_id)

    def notify(self, device_id: str) -> None:
        """Ask the speaker to sync now, in the background; an offline one syncs when it
        is back, so nothing here can fail the listener's request."""
        device = None if self.relay is None else self.relay.devices.get(device_id)
        if device is None or not device.online:
            return
        task = asyncio.create_task(self._tell(device_id), name=f"sync-downloads-{device_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _tell(self, device_id: str) -> None:
        assert self.relay is not None
        try:
            await self.relay.send(device_id, SyncDownloads(id=self.relay.new_command_id()))
        except RelayError as exc:
            logger.info("could not ask %s to sync its downloads: %s", device_id, exc)


def _signed_by(ed25519: str, body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(lic.unb64(ed25519)).verify(
            lic.unb64(signature.strip()), body
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def _document(conn: sqlite3.Connection, user_id: int, device_id: str) -> dict[str, Any]:
    current = licensing.latest(conn, device_id, user_id)
    return {
        "items": downloads.item_documents(conn, device_id, user_id),
        "licence": None
        if current is None
        else {
            "id": current.id,
            "expires_ms": current.expires_ms,
            "expires": lic.day(current.expires_ms),
            "revoked": current.revoked_ms is not None,
        },
    }
