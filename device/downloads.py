"""The speaker's download manager: what the hub says to hold offline, fetched and sealed.

One thread.  It registers the speaker's keys with the hub once, then *syncs*:
a signed ``POST /v1/devices/{id}/offline/sync`` carries the progress so far and
brings back the hub's licence key, the licences (renewed by the hub when they
near expiry), revoked accounts (shredded at once) and the tracks wanted.  It
then downloads in the order ``offline_cache.policy.download_order`` gives
(partial downloads first), segment by segment, each checked (Ogg pages) and
sealed into the store; segments already held are skipped, so a download cut by
a crash or a power loss resumes where it stopped.  While playback needs the
network (the engine is under its high watermark) downloads wait.

It syncs again when a ``sync_downloads`` command arrives, every few seconds while
downloading (progress for the hub), and every ``interval_s`` otherwise; with the
hub unreachable it retries every ``retry_s`` (that is also how an expired licence
is renewed once the hub is back).  Progress goes to the player state
(``downloads``) and to ``download`` events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from connect_protocol import codec
from connect_protocol.media import Manifest, Quality
from connect_protocol.messages import Downloads, EventKind
from connect_protocol.ogg import BadSegmentError, check_segment
from device.audio.source import HubAnswer, HubMedia, SourceError
from device.errors import DeviceError
from offline_cache.device_keys import DeviceKeys
from offline_cache.hub_messages import SIGNATURE_HEADER, ForgedAnswerError, read_answer
from offline_cache.licence import Licence, LicenceError, SignedLicence, unb64
from offline_cache.policy import Wanted, download_order
from offline_cache.store import OFFLINE, STREAM, OfflineStore, StoreError

logger = logging.getLogger(__name__)

EventSink = Callable[[EventKind, str | None, str], None]


class HubRefusedError(DeviceError):
    """The hub answered, and said no: the message is the hub's."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WantedTrack:
    """One track the hub wants held offline, as the sync lists it."""

    track_id: str
    uri: str
    account: str
    name: str = ""
    artists: tuple[str, ...] = ()
    album: str = ""
    duration_ms: int = 0
    explicit_ms: int | None = None
    playlist_position: int | None = None
    item_uri: str | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WantedTrack:
        return cls(
            track_id=str(doc["track_id"]),
            uri=str(doc["uri"]),
            account=str(doc["account"]),
            name=str(doc.get("name", "")),
            artists=tuple(str(a) for a in doc.get("artists", ())),
            album=str(doc.get("album", "")),
            duration_ms=int(doc.get("duration_ms", 0)),
            explicit_ms=doc.get("explicit_ms"),
            playlist_position=doc.get("playlist_position"),
            item_uri=doc.get("item_uri"),
        )

    def track_json(self) -> str:
        return json.dumps(
            {
                "uri": self.uri,
                "duration_ms": self.duration_ms,
                "name": self.name,
                "artists": list(self.artists),
                "album": self.album,
            }
        )


def without_urls(manifest: Manifest) -> Manifest:
    """A manifest to keep: the signed URLs are capabilities that expire; drop them."""
    return dataclasses.replace(
        manifest,
        expires_ms=0,
        renditions=tuple(
            dataclasses.replace(
                r, segments=tuple(dataclasses.replace(s, url="") for s in r.segments)
            )
            for r in manifest.renditions
        ),
    )


def quality_for(manifest: Manifest, wanted: Quality) -> Quality:
    """The wanted quality, or the best one below it the track has."""
    have = {r.quality for r in manifest.renditions}
    for q in sorted(Quality, reverse=True):
        if q <= wanted and q.label in have:
            return q
    return Quality.parse(manifest.renditions[0].quality)


@dataclass(slots=True)
class _Progress:
    state: str = "queued"  # queued | downloading | ready | failed
    bytes_done: int = 0
    bytes_total: int = 0
    error: str = ""


class DownloadManager:
    def __init__(
        self,
        *,
        store: OfflineStore,
        hub: HubMedia,
        device_id: str,
        keys: DeviceKeys,
        quality: Quality = Quality.HIGH,
        busy: Callable[[], bool] = lambda: False,
        on_report: Callable[[Downloads], None] = lambda _d: None,
        on_event: EventSink = lambda _k, _u, _m: None,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        interval_s: float = 300.0,
        retry_s: float = 10.0,
        progress_every_s: float = 5.0,
    ) -> None:
        self._store = store
        self._hub = hub
        self._device_id = device_id
        self._keys = keys
        self._quality = quality
        self._busy = busy
        self._on_report = on_report
        self._on_event = on_event
        self._now_ms = now_ms
        self._interval_s = interval_s
        self._retry_s = retry_s
        self._progress_every_s = progress_every_s
        self._wake = threading.Condition()
        self._sync_asked = True
        self._stopped = False
        self._registered = False
        self._wanted: list[WantedTrack] = []
        self._progress: dict[str, _Progress] = {}
        self._message = ""
        self._last_sync = 0.0
        self._last_report: Downloads | None = None
        #: the licences held, read (and their signatures checked) once per sync, not
        #: once per track or per progress report
        self._licences = self._held_licences()
        self._thread: threading.Thread | None = None

    # --- control --------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="downloads", daemon=True)
        self._thread.start()

    def request_sync(self) -> bool:
        with self._wake:
            self._sync_asked = True
            self._wake.notify_all()
        return True

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(10)
        self._hub.close()

    def status(self) -> dict[str, Any]:
        """What the local ``/offline`` page shows: every offline track and its state."""
        held = {r.track_id: r for r in self._store.tracks(OFFLINE)}
        tracks = []
        for w in self._wanted:
            p = self._progress.get(w.track_id, _Progress())
            record = held.get(w.track_id)
            tracks.append(
                {
                    "uri": w.uri,
                    "name": w.name,
                    "artists": list(w.artists),
                    "album": w.album,
                    "duration_ms": w.duration_ms,
                    "state": "ready" if record is not None and record.complete else p.state,
                    "bytes_done": p.bytes_done,
                    "bytes_total": p.bytes_total,
                    "error": p.error,
                }
            )
        known = {w.track_id for w in self._wanted}
        for record in held.values():  # held from an earlier run, hub not reached yet
            if record.track_id not in known and record.complete:
                doc = json.loads(record.track_json)
                tracks.append(
                    {
                        **doc,
                        "state": "ready",
                        "bytes_done": record.bytes_done,
                        "bytes_total": record.bytes_total,
                        "error": "",
                    }
                )
        licences = [
            {"account": x.account, "expires_ms": x.expires_ms} for x in self._licences.values()
        ]
        return {"tracks": tracks, "licences": licences, "message": self._message}

    def _held_licences(self) -> dict[str, Licence]:
        return {x.account: x for x in self._store.licences()}

    # --- the thread -----------------------------------------------------------------

    def _run(self) -> None:
        self._report()
        while not self._stopped:
            delay = self._interval_s
            try:
                self._sync()
                if self._download_next_batch():
                    continue  # more to do, or progress to send: sync again at once
            except (SourceError, HubRefusedError) as exc:
                self._say(f"offline downloads waiting for the hub: {exc}", event=False)
                delay = self._retry_s
            except Exception:  # a bug must not stop the speaker
                logger.exception("download manager failed; retrying")
                delay = self._retry_s
            with self._wake:
                self._wake.wait_for(lambda: self._stopped or self._sync_asked, timeout=delay)

    def _say(
        self, message: str, *, event: bool = True, kind: EventKind = EventKind.DOWNLOAD
    ) -> None:
        if message != self._message:
            logger.info("%s", message)
        self._message = message
        if event:
            self._on_event(kind, None, message)
        self._report()

    # --- sync -----------------------------------------------------------------------

    def _register(self) -> None:
        body = json.dumps(self._keys.registration()).encode()
        answer = self._hub.call(
            "PUT", f"/v1/devices/{self._device_id}/keys", body, {"Content-Type": "application/json"}
        )
        if answer.status != 204:
            raise HubRefusedError(
                f"key registration refused ({answer.status}): {_detail(answer.body)}"
            )
        self._registered = True

    def _sync(self) -> None:
        with self._wake:
            self._sync_asked = False
        if not self._registered:
            self._register()
        body = json.dumps({"ts": self._now_ms(), "progress": self._progress_list()}).encode()
        headers = {"Content-Type": "application/json", "Legato-Signature": self._keys.sign(body)}
        answer = self._hub.call(
            "POST", f"/v1/devices/{self._device_id}/offline/sync", body, headers
        )
        if answer.status != 200:
            raise HubRefusedError(f"offline sync refused ({answer.status}): {_detail(answer.body)}")
        self._last_sync = time.monotonic()
        self._apply(self._verified(answer, body))

    def _verified(self, answer: HubAnswer, request_body: bytes) -> dict[str, Any]:
        """The sync's answer, if the hub's licence key signed it for this request: the
        key pinned at the first sync (made over the pinned TLS link), else the one this
        first answer names, which must then have signed it."""
        signature = answer.headers.get(SIGNATURE_HEADER.lower())
        pinned = self._store.hub_key()
        if pinned is None:
            try:
                named = json.loads(answer.body).get("hub_key", "")
                pinned = unb64(str(named))
            except (ValueError, AttributeError) as exc:
                raise HubRefusedError("the hub's sync answer names no licence key") from exc
        try:
            return read_answer(answer.body, signature, pinned, request_body)
        except ForgedAnswerError as exc:
            raise HubRefusedError(f"ignored an offline sync answer: {exc}") from exc

    def _progress_list(self) -> list[dict[str, Any]]:
        return [
            {
                "track_id": t,
                "state": p.state,
                "bytes_done": p.bytes_done,
                "bytes_total": p.bytes_total,
                "error": p.error,
            }
            for t, p in sorted(self._progress.items())
            if p.state != "queued"
        ]

    def _apply(self, doc: dict[str, Any]) -> None:
        self._store.pin_hub_key(str(doc["hub_key"]))
        for account in doc.get("revoked", ()):
            gone = self._store.shred(str(account))
            if gone or str(account) in self._licences:  # news once, not at every sync
                self._say(
                    f"offline licence revoked: {gone} downloaded tracks removed",
                    kind=EventKind.LICENCE,
                )
        for signed in doc.get("licences", ()):
            try:
                self._store.accept_licence(SignedLicence.from_json(signed))
            except LicenceError as exc:
                self._say(f"licence refused: {exc}", kind=EventKind.LICENCE)
        self._licences = self._held_licences()
        wanted = [WantedTrack.from_json(t) for t in doc.get("tracks", ())]
        keep = {w.track_id for w in wanted}
        for record in self._store.tracks(OFFLINE):
            if record.track_id not in keep:
                self._store.remove(record.track_id)
                self._progress.pop(record.track_id, None)
        self._wanted = self._within_limits(wanted)
        for w in self._wanted:
            self._progress.setdefault(w.track_id, _Progress())
        for stale in set(self._progress) - keep:
            del self._progress[stale]
        self._report()

    def _within_limits(self, wanted: list[WantedTrack]) -> list[WantedTrack]:
        """The licence's track limit, checked here too: the excess is marked failed."""
        per_account: dict[str, int] = {}
        kept = []
        for w in wanted:
            licence = self._licences.get(w.account)
            limit = licence.max_tracks if licence is not None else 0
            count = per_account.get(w.account, 0)
            if count >= limit:
                reason = (
                    f"over the licence's limit of {limit} tracks on this speaker"
                    if licence is not None
                    else "no licence for this account on this speaker"
                )
                self._progress[w.track_id] = _Progress(state="failed", error=reason)
                continue
            per_account[w.account] = count + 1
            kept.append(w)
        return kept

    # --- downloading ----------------------------------------------------------------

    def _download_next_batch(self) -> bool:
        """Download in policy order until done, interrupted, or time to report progress.

        Returns True when the caller should sync again at once."""
        every = {r.track_id: r for r in self._store.tracks()}
        held = {t: r for t, r in every.items() if r.tier == OFFLINE}
        #: played here (in the streaming tier): wanted sooner than by playlist position
        played = {t: r.last_used_ms for t, r in every.items() if r.tier == STREAM}
        candidates = []
        by_id = {w.track_id: w for w in self._wanted}
        for w in self._wanted:
            record = held.get(w.track_id)
            if record is not None and record.complete:
                self._progress[w.track_id] = _Progress(
                    "ready", record.bytes_done, record.bytes_total
                )
                continue
            if self._progress[w.track_id].state == "failed":
                continue
            candidates.append(
                Wanted(
                    track_id=w.track_id,
                    explicit_at_ms=w.explicit_ms,
                    played_at_ms=played.get(w.track_id),
                    playlist_position=w.playlist_position,
                    bytes_done=record.bytes_done if record else 0,
                    bytes_total=record.bytes_total if record else 0,
                )
            )
        self._report()
        if not candidates:
            return False
        for wanted in download_order(candidates):
            if not self._download(by_id[wanted.track_id]):
                return True
        return True

    def _interrupted(self) -> bool:
        return (
            self._stopped
            or self._sync_asked
            or time.monotonic() - self._last_sync > self._progress_every_s
        )

    def _download(self, w: WantedTrack) -> bool:
        """One track; False when interrupted (a sync is due), True when finished or failed."""
        progress = self._progress[w.track_id]
        try:
            manifest = self._hub.manifest(w.track_id)
            quality = quality_for(manifest, self._quality)
            rendition = manifest.rendition(quality)
            total = sum(s.bytes for s in rendition.segments)
            self._store.pin(
                w.track_id,
                account=w.account,
                manifest_json=codec.encode(without_urls(manifest)).decode(),
                track_json=w.track_json(),
                quality=quality.label,
                segments_total=len(rendition.segments),
                bytes_total=total,
                explicit_ms=w.explicit_ms,
                playlist_position=w.playlist_position,
                item_uri=w.item_uri,
            )
            held = self._store.held(w.track_id, quality.label)
            progress.bytes_total = total
            progress.bytes_done = sum(
                s.bytes for n, s in enumerate(rendition.segments) if n in held
            )
            progress.state = "downloading"
            for n, segment in enumerate(rendition.segments):
                if n in held:
                    continue
                while self._busy() and not self._interrupted():
                    time.sleep(0.1)  # playback first
                if self._interrupted():
                    return False
                data = self._fetch_checked(manifest, quality, n)
                self._store.put_segment(w.track_id, quality.label, n, data)
                progress.bytes_done += segment.bytes
                self._report()
        except (LicenceError, StoreError, BadSegmentError) as exc:
            progress.state, progress.error = "failed", str(exc)
            self._say(f"download of {w.name or w.uri} failed: {exc}")
            return True
        except SourceError as exc:
            if exc.retryable:
                raise
            progress.state, progress.error = "failed", str(exc)
            self._say(f"download of {w.name or w.uri} failed: {exc}")
            return True
        progress.state = "ready"
        self._on_event(EventKind.DOWNLOAD, w.uri, f"downloaded {w.name or w.uri}")
        self._report()
        return True

    def _fetch_checked(self, manifest: Manifest, quality: Quality, n: int) -> bytes:
        rendition = manifest.rendition(quality)
        for attempt in (0, 1):
            data = self._hub.segment(manifest, quality, n)
            try:
                check_segment(data, rendition.segments[n].frames, rendition)
                return data
            except BadSegmentError:
                if attempt:
                    raise
                logger.warning("segment %d of %s damaged in transit; again", n, manifest.track_id)
        raise AssertionError("unreachable")

    # --- reporting ------------------------------------------------------------------

    def summary(self) -> Downloads:
        states = [self._progress.get(w.track_id, _Progress()) for w in self._wanted]
        expiries = [x.expires_ms for x in self._licences.values()]
        return Downloads(
            tracks=len(self._wanted),
            ready=sum(p.state == "ready" for p in states),
            failed=sum(p.state == "failed" for p in states),
            bytes_done=sum(p.bytes_done for p in states),
            bytes_total=sum(p.bytes_total for p in states),
            licence_expires_ms=min(expiries, default=0),
            message=self._message,
        )

    def _report(self) -> None:
        """Into the player state, at most one change per ~half a megabyte of progress."""
        summary = self.summary()
        last = self._last_report
        if (
            last is not None
            and dataclasses.replace(last, bytes_done=summary.bytes_done) == summary
            and summary.bytes_done - last.bytes_done < 512 * 1024
        ):
            return
        self._last_report = summary
        self._on_report(summary)


def _detail(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(doc, dict):
        err = doc.get("error")
        if isinstance(err, dict) and "message" in err:
            return str(err["message"])
        if "detail" in doc:
            return str(doc["detail"])
    return str(doc)[:200]
