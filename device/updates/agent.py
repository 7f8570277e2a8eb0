"""The speaker's side of updates, as the service sees it: one object with a few hooks.

At start (:meth:`UpdateAgent.begin`, before the engine is built) it finds out whether
this speaker runs from a release slot at all (if not, everything here is off, said
once in the log) and whether its release is in trial; a release in trial runs the
self-check, and a failed one stops the start (:class:`TrialFailedError`).  Then
(:meth:`start`) it runs:

* the trial's timer: the verdict of :mod:`device.updates.trial`, written for the
  guard (``<state>/verdict.json``) and reported; a failed trial stops the speaker
  with :data:`EXIT_TRIAL_FAILED` so that systemd (or the supervisor) restarts it and
  the guard rolls back;
* the watch on ``<root>/current``: once it names another release (an installer
  switched to it, from the hub's offer or a maker's ``update --bundle``), the
  speaker stops with status 0 and is restarted on it; and the installer's
  ``install-result.json``, whose failure is reported ("skipped" when it is this
  speaker's own state, nothing for "already installed" or the running release);
* the updater (:mod:`device.updates.client`) once the release is not in trial; on a
  speaker not run from release slots only to tell the hub it skips what it offers.

The service calls :meth:`hub_reached` once it has published its status after a
connection, :meth:`engine_error` for each engine error, and shows
:meth:`diagnostics` in ``/info``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connect_protocol.messages import Event, EventKind
from device.audio.source import HubMedia
from device.config import FIRMWARE_VERSION, SpeakerConfig
from device.errors import DeviceError
from device.updates import trial as trial_mod
from device.updates.client import RESULT_FILE, Updater
from device.updates.reporting import ReportedFile, said, said_failed, unreported
from device.updates.self_check import failure_reason, run_checks
from device.updates.settings import running_slot
from releases.guard import Slots, Trial, Verdict

if TYPE_CHECKING:
    from offline_cache.store import OfflineStore

logger = logging.getLogger(__name__)

EXIT_TRIAL_FAILED = 3
WATCH_S = 0.5
FIRST_CHECK_S = (1.0, 3.0)  # after the first connection: soon, but not all at once
HUB_TIMEOUT_S = 15.0
#: the installer's refusals that are this speaker's state, not the release's fault:
#: no key pinned for root, or a newer release already there
SKIP_CODES = frozenset({"key", "downgrade"})
#: the installer's answers that are no news: the release is there already
QUIET_CODES = frozenset({"installed"})


class TrialFailedError(DeviceError):
    """The release in trial failed its self-check: its verdict is written, the speaker
    must stop (non-zero) so that the guard rolls it back."""


class UpdateAgent:
    def __init__(
        self,
        config: SpeakerConfig,
        *,
        publish: Callable[[Event], None],
        request_exit: Callable[[int], None],
        now_ms: Callable[[], int],
        version: str = FIRMWARE_VERSION,
        prefix: str = sys.prefix,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = config.updates
        self.layout = self.settings.layout
        self.version = version
        self._prefix = prefix
        self._publish = publish
        self._request_exit = request_exit
        self._now_ms = now_ms
        self._clock = clock
        self.installed = False
        self.slots = Slots()
        self.trial: Trial | None = None
        self.trial_state: trial_mod.TrialState | None = None
        self._wake = asyncio.Event()
        self._reported = ReportedFile(self.settings.state_dir)
        self.updater: Updater | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected_once = False
        self._result_seen: tuple[int, int] | None = None  # (inode, mtime_ns) read last

    # --- at start -------------------------------------------------------------------

    async def begin(self, store: OfflineStore | None) -> None:
        """Where this release stands; the self-check when it is in trial."""
        found = await asyncio.to_thread(running_slot, self.layout, self.version, self._prefix)
        if found is None:
            logger.info(
                "updates from the hub are off: not installed in release slots (%s/%s)",
                self.layout.releases,
                self.version,
            )
            return
        self.installed = True
        self.slots = await asyncio.to_thread(self.layout.load)
        trial = self.slots.trial
        if trial is None or trial.version != self.version:
            return
        self.trial = trial
        results = await asyncio.to_thread(run_checks, self.config, store, self.settings.state_dir)
        reason = failure_reason(results)
        if reason is not None:
            await asyncio.to_thread(self._write_verdict, False, reason)
            raise TrialFailedError(f"release {self.version} in trial: {reason}")
        logger.info("release %s is in trial: self-check passed", self.version)
        self.trial_state = trial_mod.begin(
            self._clock(),
            deadline_s=self.settings.trial_deadline_s,
            grace_s=self.settings.grace_s,
            limit_s=self.settings.settle_limit_s,
            needs_hub=bool(self.config.password),
        )

    def start(self) -> None:
        """The trial timer, the watch and the updater, on the running loop."""
        self._loop = asyncio.get_running_loop()
        if not self.installed:  # nothing to install into: it only tells the hub it skips
            self.updater = self._make_updater()
            if self.updater is not None:
                self.updater.start()
            return
        self._tasks.append(asyncio.create_task(self._watch(), name="update-watch"))
        if self.trial_state is not None:
            self._tasks.append(asyncio.create_task(self._run_trial(), name="update-trial"))
        self.updater = self._make_updater()
        if self.updater is not None and self.trial_state is None:
            self.updater.start()

    def _make_updater(self) -> Updater | None:
        cfg = self.config
        if self.settings.check_interval_s <= 0 or not cfg.hub_url or not cfg.password:
            return None
        return Updater(
            self.settings,
            running=self.version,
            device_id=cfg.id,
            hub=HubMedia(
                cfg.hub_url, cfg.id, cfg.password, ca_pem=cfg.hub_ca, timeout_s=HUB_TIMEOUT_S
            ),
            report=self._report_from_thread,
            refused_here=lambda: self.slots.refused,
            reported=self._reported,
            in_slots=self.installed,
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.updater is not None:
            await asyncio.to_thread(self.updater.stop)
            self.updater = None

    # --- hooks the service calls (on the loop) ----------------------------------------

    def hub_reached(self) -> None:
        """Connected to the hub's broker, status (with this release's version) published."""
        if not self.installed:
            return  # it has no hurry: its updater says so at its regular interval
        if not self._connected_once:
            self._connected_once = True
            if self.trial is not None:
                self._report("trial", self.version, "")
            self._tasks.append(asyncio.create_task(self._report_last(), name="update-last"))
            if self.updater is not None and self.trial_state is None:
                self.updater.check_soon(random.uniform(*FIRST_CHECK_S))
        self._step(trial_mod.HubReached(self._clock()))

    def engine_error(self, message: str) -> None:
        self._step(trial_mod.EngineError(self._clock(), message))

    def _step(self, event: trial_mod.TrialEvent) -> None:
        if self.trial_state is not None and self.trial_state.verdict is None:
            self.trial_state = trial_mod.step(self.trial_state, event)
            self._wake.set()

    # --- the trial ------------------------------------------------------------------

    async def _run_trial(self) -> None:
        while True:
            state = self.trial_state
            assert state is not None
            if state.verdict is not None:
                break
            due = trial_mod.next_check_s(state)
            self._wake.clear()
            if due is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, due - self._clock()))
            self._step(trial_mod.Tick(self._clock()))
        verdict = state.verdict
        assert verdict is not None
        written = await asyncio.to_thread(self._write_verdict, verdict.good, verdict.reason)
        if verdict.good and not written:
            self._request_exit(EXIT_TRIAL_FAILED)  # restarted: the next start may write it
            return
        if verdict.good:
            logger.info("release %s is good: it reached the hub and could play", self.version)
            await asyncio.to_thread(self._remember, "good")
            self._report("good", self.version, "")
            if self.updater is not None:
                self.updater.start()
                self.updater.check_soon(random.uniform(*FIRST_CHECK_S))
            return
        logger.error("release %s failed its trial: %s", self.version, verdict.reason)
        self._report("failed", self.version, verdict.reason)
        await asyncio.sleep(0.5)  # the report on its way, if the broker is there
        self._request_exit(EXIT_TRIAL_FAILED)

    def _write_verdict(self, good: bool, reason: str) -> bool:
        """The verdict for the guard; False when it cannot be written (the guard then
        rolls back once the release has stopped too often without one)."""
        assert self.trial is not None
        try:
            self.layout.write_verdict(Verdict(self.version, self.trial.since_s, good, reason))
        except OSError as exc:
            logger.error("cannot write the trial's verdict in %s: %s", self.layout.state, exc)
            return False
        return True

    def _remember(self, state: str) -> None:
        self._reported.save(said(self._reported.load(), self.version, state))

    # --- reporting ------------------------------------------------------------------

    async def _report_last(self) -> None:
        """The last trial's outcome, once: how the hub learns of a rollback (from the
        release that runs after it) or of a release marked good."""
        reported = await asyncio.to_thread(self._reported.load)
        last = unreported(self.slots.last, reported)
        if last is None:
            return
        self._report(last.state, last.version, last.reason)
        await asyncio.to_thread(self._reported.save, said(reported, last.version, last.state))

    def _report(self, state: str, version: str, message: str) -> None:
        event = Event(
            kind=EventKind.UPDATE,
            timestamp_ms=self._now_ms(),
            version=version,
            state=state,
            message=message[:500],
        )
        self._publish(event)

    def _report_from_thread(self, state: str, version: str, message: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._report, state, version, message)

    # --- the watch ------------------------------------------------------------------

    async def _watch(self) -> None:
        """``current`` moved on: stop, to be restarted on it.  Also the installer's word."""
        while True:
            await asyncio.sleep(WATCH_S)
            current = self.layout.current()  # one readlink: cheap enough for the loop
            if current is not None and current != self.version:
                logger.info("release %s is now current: stopping to start it", current)
                self._request_exit(0)
                return
            await self._check_result()

    async def _check_result(self) -> None:
        """Report the installer's refusal or failure, once per result file."""
        path = self.settings.state_dir / RESULT_FILE
        try:
            st = path.stat()
        except OSError:
            return
        if (st.st_ino, st.st_mtime_ns) == self._result_seen:
            return
        self._result_seen = (st.st_ino, st.st_mtime_ns)
        try:
            doc = json.loads(await asyncio.to_thread(path.read_text))
            version, state = str(doc["version"]), str(doc.get("state", "done"))
            ok, reason, code = bool(doc.get("ok")), str(doc.get("reason", "")), doc.get("code")
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            logger.warning("cannot read %s: %s", path, exc)
            return
        if state == "installing" or ok or code in QUIET_CODES or version == self.version:
            return  # under way, done, or no news about a release that is not the running one
        reported = await asyncio.to_thread(self._reported.load)
        if version in reported.failed_at_s:
            return
        skipped = code in SKIP_CODES
        logger.warning(
            "installing release %s %s: %s", version, "skipped" if skipped else "failed", reason
        )
        await asyncio.to_thread(self._reported.save, said_failed(reported, version, time.time()))
        self._report("skipped" if skipped else "failed", version, reason or "the installer failed")

    # --- /info ----------------------------------------------------------------------

    def diagnostics(self) -> dict[str, Any]:
        state = self.trial_state
        trial: dict[str, Any] | None = None
        if self.trial is not None and state is not None:
            trial = {
                "since_s": self.trial.since_s,
                "elapsed_s": round(self._clock() - state.started_s, 1),
                "hub_reached": state.hub_at_s is not None,
                "last_error": state.last_error,
                "verdict": None
                if state.verdict is None
                else {"good": state.verdict.good, "reason": state.verdict.reason},
            }
        last = self.slots.last
        return {
            "running": self.version,
            "installed_in_slots": self.installed,
            "root": str(self.layout.root),
            "trial": trial,
            "last": dataclasses.asdict(last) if last is not None else None,
            "refused": list(self.slots.refused),
            "updater": self.updater.diagnostics() if self.updater is not None else None,
        }
