"""The speaker's updater: asks its hub for an offered release, fetches and verifies it,
and asks the root installer to install it.

One thread.  Every ``check_interval_s`` (+-10 %), and once soon after the speaker
first reaches its hub, it sends ``GET /v1/devices/{id}/update`` (HTTPS against the
pinned hub CA, HTTP Basic with the broker login: the same ``HubMedia`` the audio and
the downloads use).  An offer it should take (:func:`device.updates.offer.plan`) is
downloaded with resume (:mod:`device.updates.download`) and reported "downloading";
then verified against the pinned release key, every hash and the running version
(``releases.bundle.verify``, which writes nothing).  A refused bundle is deleted and
reported "failed" with the reason; an accepted one is named in
``<state>/install-request.json`` (written atomically) and reported "installing".
From there root's installer takes over; the agent watches for what it did.  An offer
left for the speaker's own reasons (no key pinned, a full disk, rolled back here,
not in release slots) is reported "skipped": not the release's fault.

While an install is under way (the request is there, or the installer's
``install-result.json`` says ``"state": "installing"``: it writes that before it
deletes the request) nothing is asked for again and nothing in ``incoming/`` is
deleted, since root may be reading it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device.audio.source import HubMedia, SourceError
from device.updates.download import BundleDownload, DownloadError, NotEnoughSpaceError
from device.updates.offer import (
    MAX_OFFER_BYTES,
    BadOfferError,
    Fetch,
    Offer,
    next_check_s,
    parse_offer,
    plan,
)
from device.updates.reporting import ReportedFile, said_failed
from device.updates.settings import UpdateSettings
from releases import bundle
from releases.errors import BundleRefusedError
from releases.guard import write_atomic

logger = logging.getLogger(__name__)

REQUEST_FILE = "install-request.json"
RESULT_FILE = "install-result.json"
INCOMING = "incoming"
#: an "installing" result older than this was left by an installer that died (power
#: cut; systemd stops it after TimeoutStartSec=45min): no install is under way
INSTALLING_STALE_S = 3600.0

#: (state, version, message): what the updater tells the hub, as an update event
Report = Callable[[str, str, str], None]


@dataclass(slots=True)
class UpdaterStatus:
    """What ``/info`` shows of the updater (read from other threads: replaced whole)."""

    last_check_s: float = 0.0
    last_answer: str = ""
    offer: str = ""  # the version being fetched or installed
    phase: str = ""  # downloading | verifying | installing
    bytes_done: int = 0
    bytes_total: int = 0
    last_error: str = ""


def install_under_way(state_dir: Path, now_s: float) -> str | None:
    """The release root's installer was asked for or is installing, else None."""
    try:
        doc = json.loads((state_dir / REQUEST_FILE).read_text())
        return str(doc["version"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    path = state_dir / RESULT_FILE
    try:
        if now_s - path.stat().st_mtime > INSTALLING_STALE_S:
            return None
        doc = json.loads(path.read_text())
        return str(doc["version"]) if doc.get("state") == "installing" else None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


class Updater:
    def __init__(
        self,
        settings: UpdateSettings,
        *,
        running: str,
        device_id: str,
        hub: HubMedia,
        report: Report,
        refused_here: Callable[[], tuple[str, ...]],
        reported: ReportedFile,
        in_slots: bool = True,
        clock: Callable[[], float] = time.time,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.running = running
        self.device_id = device_id
        self.hub = hub
        self._report = report
        self._refused_here = refused_here
        self._reported = reported
        self._in_slots = in_slots
        self._clock = clock
        self._uniform = uniform
        self._cond = threading.Condition()
        self._due_s: float | None = None  # monotonic time of the next check
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._said_downloading: set[str] = set()
        self.status = UpdaterStatus()

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def start(self) -> None:
        """Start the thread; the first check comes at the first interval, or sooner
        through :meth:`check_soon`."""
        if self.settings.check_interval_s > 0:
            self._schedule(next_check_s(self.settings.check_interval_s, self._uniform()))
        if self._requested() is None:  # a bundle installed (or given up on) is not kept;
            # one root is installing is left alone
            for done in (self.state_dir / INCOMING).glob("*.legato"):
                done.unlink(missing_ok=True)
        self._thread = threading.Thread(target=self._run, name="speaker-updater", daemon=True)
        self._thread.start()

    def check_soon(self, delay_s: float) -> None:
        """Look at the hub within ``delay_s`` (e.g. just after reaching it)."""
        with self._cond:
            due = time.monotonic() + delay_s
            if self._due_s is None or due < self._due_s:
                self._due_s = due
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(15)
            self._thread = None
        self.hub.close()

    def _schedule(self, delay_s: float) -> None:
        with self._cond:
            self._due_s = time.monotonic() + delay_s

    def _pause(self, seconds: float) -> None:
        """A wait between download attempts that ``stop`` cuts short."""
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)

    def _stopped(self) -> bool:
        with self._cond:
            return self._stopping

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and (
                    self._due_s is None or time.monotonic() < self._due_s
                ):
                    wait = None if self._due_s is None else self._due_s - time.monotonic()
                    self._cond.wait(timeout=None if wait is None else max(0.0, min(wait, 60.0)))
                if self._stopping:
                    return
                self._due_s = None
            try:
                self.check_once()
            except Exception:  # the updater must never take the speaker down
                logger.exception("update check failed")
            if self.settings.check_interval_s > 0:
                with self._cond:
                    if self._due_s is None:
                        self._due_s = time.monotonic() + next_check_s(
                            self.settings.check_interval_s, self._uniform()
                        )

    # --- one check ------------------------------------------------------------------

    def check_once(self) -> str:
        """Ask the hub once and act on its answer; returns what happened, in a word."""
        self._set(last_check_s=self._clock())
        try:
            with self.hub.streaming(f"/v1/devices/{self.device_id}/update") as response:
                status = response.status
                body = response.read(MAX_OFFER_BYTES + 1)  # an offer is small: no more
        except SourceError as exc:
            self._set(last_answer="unreachable", last_error=str(exc))
            return "unreachable"
        if status == 204:
            self._set(last_answer="nothing offered")
            return "none"
        if status != 200:
            self._set(last_answer=f"HTTP {status}")
            logger.info("the hub answered %d to the update check", status)
            return "refused"
        try:
            offer = parse_offer(body)
        except BadOfferError as exc:
            self._set(last_answer="bad offer", last_error=str(exc))
            logger.warning("ignoring the hub's update offer: %s", exc)
            return "bad-offer"
        self._set(last_answer=f"offers {offer.version}")
        return self.take(offer)

    def take(self, offer: Offer) -> str:
        reported = self._reported.load()
        decision = plan(
            offer,
            running=self.running,
            refused_here=self._refused_here(),
            failed_at_s=reported.failed_at_s,
            pinned_key=bool(self.settings.release_key),
            now_s=self._clock(),
            in_slots=self._in_slots,
        )
        if not isinstance(decision, Fetch):
            logger.info("not taking release %s: %s", offer.version, decision.why)
            if decision.report is not None:
                self._failed(offer.version, decision.report, state="skipped")
            return "skipped"
        under_way = self._requested()
        if under_way == offer.version:
            return "requested"  # the installer has it already
        if self.status.phase == "installing" and self.status.offer == offer.version:
            # the installer took the request (it deletes the file first) and is at work:
            # a second request would install it twice, the second time "already installed"
            return "requested"
        if under_way is not None:
            # root may be reading that bundle: a download now would delete it
            logger.info("release %s waits: %s is being installed", offer.version, under_way)
            return "busy"
        if offer.version not in self._said_downloading:
            self._said_downloading.add(offer.version)
            self._report("downloading", offer.version, "")
        self._set(offer=offer.version, phase="downloading", bytes_done=0, bytes_total=offer.size)
        try:
            path = BundleDownload(
                self.hub,
                offer,
                self.state_dir / INCOMING,
                should_stop=self._stopped,
                on_progress=lambda done: self._set(bytes_done=done),
                sleep=self._pause,
            ).run()
        except DownloadError as exc:
            self._set(phase="", last_error=str(exc))
            if isinstance(exc, NotEnoughSpaceError):
                self._failed(offer.version, str(exc), state="skipped")
            elif exc.final:
                self._failed(offer.version, str(exc))
            else:
                logger.warning("%s; trying again at the next check", exc)
            return "download-failed"
        return self._verify_and_request(offer, path)

    def _verify_and_request(self, offer: Offer, path: Path) -> str:
        self._set(phase="verifying")
        try:
            manifest = bundle.verify(
                path, self.settings.release_key, bundle.Compatibility(installed=self.running)
            )
            if manifest.version != offer.version:
                raise BundleRefusedError(
                    "format",
                    f"the bundle holds {manifest.version}, not the offered {offer.version}",
                )
        except BundleRefusedError as exc:
            path.unlink(missing_ok=True)
            self._set(offer="", phase="", last_error=str(exc))
            logger.warning("refused the bundle of %s: %s", offer.version, exc)
            self._failed(offer.version, f"refused ({exc.reason}): {exc}")
            return "refused"
        (self.state_dir / RESULT_FILE).unlink(missing_ok=True)
        request = {"bundle": str(path), "version": offer.version}
        write_atomic(self.state_dir / REQUEST_FILE, json.dumps(request) + "\n", 0o644)
        self._set(phase="installing")
        logger.info("release %s verified; asked for it to be installed", offer.version)
        self._report("installing", offer.version, "")
        return "requested"

    def _requested(self) -> str | None:
        """The version asked of the installer or being installed by it."""
        return install_under_way(self.state_dir, time.time())

    def _failed(self, version: str, reason: str, *, state: str = "failed") -> None:
        """Report ``state`` ("failed", or "skipped" for the speaker's own reasons) once
        per hold: the version is not fetched again for a while."""
        self._reported.save(said_failed(self._reported.load(), version, self._clock()))
        self._report(state, version, reason)

    def _set(self, **changes: Any) -> None:
        self.status = dataclasses.replace(self.status, **changes)

    def diagnostics(self) -> dict[str, Any]:
        s = self.status
        return {
            "last_check_s": s.last_check_s,
            "last_answer": s.last_answer,
            "offer": s.offer,
            "phase": s.phase,
            "bytes_done": s.bytes_done,
            "bytes_total": s.bytes_total,
            "last_error": s.last_error,
        }
