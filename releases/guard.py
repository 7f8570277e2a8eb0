#!/usr/bin/env python3
"""Which release a speaker starts, decided before the application imports anything.

Standard library only, and self-contained: a copy of this file lives outside the
slots (``/opt/legato/guard.py``) and systemd runs it as root before every start
(``ExecStartPre=+``) and after every stop (``ExecStopPost=+``), so a release that
cannot even be imported is still rolled back.

The layout under ``root`` (``/opt/legato``)::

    releases/<version>/          a complete virtual environment, with .legato-complete
    releases/.new-<version>-*    a slot being installed (deleted at the next start)
    current -> releases/<version>   switched atomically (a new link renamed over it)
    slots.json                   the trial and the last outcome (root writes it)
    guard.py                     this file

The running speaker (user ``legato``) writes only its verdict on a trial,
``<state>/verdict.json``; the guard turns it into "good" or a rollback at the next
start.  Rules, in :func:`decide` (pure):

* ``current`` names no complete slot (power cut mid-install): back to the previous
  release, or the newest complete one;
* in trial, a verdict of good: the release is good and the previous slot is removed;
* in trial, a verdict of failed (no hub within the deadline, a failed self-check):
  roll back with its reason;
* in trial, a start beyond ``MAX_TRIAL_STARTS`` without a verdict (it keeps
  crashing): roll back, naming the last exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

COMPLETE = ".legato-complete"
STAGING_PREFIX = ".new-"
SLOTS_FILE = "slots.json"
VERDICT_FILE = "verdict.json"
MAX_TRIAL_STARTS = 3
DEFAULT_ROOT = Path("/opt/legato")
DEFAULT_STATE = Path("/var/lib/legato/update")
#: a slot's name is a version (see releases.versions); nothing else is ever switched to
SLOT_NAME = re.compile(r"[0-9][0-9A-Za-z.+]{0,63}")


@dataclass(frozen=True, slots=True)
class Trial:
    version: str
    since_s: float  # when it was switched to; a verdict must echo it
    starts: int = 0
    last_exit: str = ""  # systemd's $EXIT_CODE/$EXIT_STATUS of the last stop


@dataclass(frozen=True, slots=True)
class Outcome:
    """How the last trial ended: what the running release reports to the hub."""

    version: str
    state: str  # "good" | "rolled_back"
    reason: str = ""
    at_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Slots:
    previous: str | None = None  # kept until the trial is good: where a rollback goes
    trial: Trial | None = None
    last: Outcome | None = None
    refused: tuple[str, ...] = ()  # releases rolled back here: never installed again

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Slots:
        doc = json.loads(text)
        trial = doc.get("trial")
        last = doc.get("last")
        return cls(
            previous=doc.get("previous"),
            trial=Trial(**trial) if trial else None,
            last=Outcome(**last) if last else None,
            refused=tuple(doc.get("refused", ())),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """The running release's word on its trial."""

    version: str
    since_s: float
    good: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    slots: Slots
    switch_to: str | None = None  # a rollback: the slot ``current`` must name
    remove: tuple[str, ...] = ()  # slots no longer needed
    run: str | None = None  # the release that starts; None: nothing can run
    says: list[str] = field(default_factory=list)  # for the journal


def decide(
    slots: Slots,
    current: str | None,
    complete: tuple[str, ...],
    verdict: Verdict | None,
    now_s: float,
) -> Decision:
    """What to run, and what changes, at a start.  Pure.  ``complete``: the complete
    slots, newest install first."""
    says: list[str] = []
    if current not in complete:
        fallback = slots.previous if slots.previous in complete else next(iter(complete), None)
        trial = slots.trial
        if fallback is None:
            return Decision(slots, run=None, says=["no complete release is installed"])
        reason = f"release {current} is not completely installed"
        outcome = None
        refused = slots.refused
        if trial is not None and trial.version == current:
            outcome = Outcome(current, "rolled_back", reason, now_s)
        new = Slots(previous=None, trial=None, last=outcome or slots.last, refused=refused)
        return Decision(
            new, switch_to=fallback, run=fallback, says=[f"{reason}: starting {fallback}"]
        )
    trial = slots.trial
    if trial is None:
        return Decision(slots, run=current)
    if trial.version != current:  # switched by hand, or a power cut before the switch
        says.append(f"trial of {trial.version} abandoned: {current} is current")
        previous = slots.previous if slots.previous != current else None
        return Decision(replace(slots, trial=None, previous=previous), run=current, says=says)
    if (
        verdict is not None
        and verdict.version == trial.version
        and verdict.since_s == trial.since_s
    ):
        if verdict.good:
            outcome = Outcome(current, "good", verdict.reason, now_s)
            gone = (slots.previous,) if slots.previous and slots.previous != current else ()
            new = Slots(previous=None, trial=None, last=outcome, refused=slots.refused)
            return Decision(new, remove=gone, run=current, says=[f"release {current} is good"])
        return rollback(slots, trial, verdict.reason or "its self-check failed", complete, now_s)
    starts = trial.starts + 1
    if starts > MAX_TRIAL_STARTS:
        exit_ = f" (last exit: {trial.last_exit})" if trial.last_exit else ""
        reason = f"stopped {trial.starts} times in trial before it could say it works{exit_}"
        return rollback(slots, trial, reason, complete, now_s)
    return Decision(
        replace(slots, trial=replace(trial, starts=starts)),
        run=current,
        says=[f"release {current} in trial, start {starts} of {MAX_TRIAL_STARTS}"],
    )


def rollback(
    slots: Slots, trial: Trial, reason: str, complete: tuple[str, ...], now_s: float
) -> Decision:
    outcome = Outcome(trial.version, "rolled_back", reason, now_s)
    refused = tuple(dict.fromkeys((*slots.refused, trial.version)))[-20:]
    new = Slots(previous=None, trial=None, last=outcome, refused=refused)
    target = slots.previous if slots.previous in complete else None
    if target is None:  # nothing to go back to: keep it, and say so
        return Decision(
            new, run=trial.version, says=[f"{reason}; no previous release to go back to"]
        )
    return Decision(
        new,
        switch_to=target,
        remove=(trial.version,),
        run=target,
        says=[f"rolling back {trial.version} to {target}: {reason}"],
    )


# --- the layout, on disk -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    root: Path = DEFAULT_ROOT
    state: Path = DEFAULT_STATE

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def current_link(self) -> Path:
        return self.root / "current"

    def slot(self, version: str) -> Path:
        if not SLOT_NAME.fullmatch(version):
            raise ValueError(f"not a release version: {version[:64]!r}")
        return self.releases / version

    def current(self) -> str | None:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        name = Path(target).name
        return name if SLOT_NAME.fullmatch(name) else None

    def complete(self) -> tuple[str, ...]:
        """The complete slots, the newest install first (by its marker's time: this
        file cannot import the version order)."""
        found: list[tuple[float, str]] = []
        try:
            names = [p.name for p in self.releases.iterdir()]
        except OSError:
            return ()
        for name in names:
            if SLOT_NAME.fullmatch(name):
                try:
                    found.append(((self.releases / name / COMPLETE).stat().st_mtime, name))
                except OSError:
                    continue
        return tuple(name for _, name in sorted(found, reverse=True))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer of slots.json and ``current`` at a time: the guard at a start and
        an installer switching to a new release may otherwise run together."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self) -> Slots:
        try:
            return Slots.from_json((self.root / SLOTS_FILE).read_text())
        except FileNotFoundError:
            return Slots()
        except (OSError, ValueError, TypeError, KeyError) as exc:
            say(f"{self.root / SLOTS_FILE} is damaged ({exc}); starting from the current link")
            return Slots()

    def save(self, slots: Slots) -> None:
        write_atomic(self.root / SLOTS_FILE, slots.to_json(), 0o644)

    def verdict(self) -> Verdict | None:
        try:
            doc = json.loads((self.state / VERDICT_FILE).read_text())
            return Verdict(
                str(doc["version"]),
                float(doc["since_s"]),
                bool(doc["good"]),
                str(doc.get("reason", ""))[:500],
            )
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def write_verdict(self, verdict: Verdict) -> None:
        """The running speaker's word on its trial (it owns ``state``)."""
        self.state.mkdir(parents=True, exist_ok=True)
        write_atomic(self.state / VERDICT_FILE, json.dumps(asdict(verdict)) + "\n", 0o644)

    def switch(self, version: str) -> None:
        """Point ``current`` at ``version``'s slot: a new link renamed over the old one,
        so a power cut leaves one or the other."""
        self.slot(version)  # validated
        staged = self.root / f".current.{os.getpid()}.new"
        staged.unlink(missing_ok=True)
        staged.symlink_to(f"releases/{version}")
        os.replace(staged, self.current_link)
        fsync_dir(self.root)

    def remove(self, version: str) -> None:
        """Delete a slot: first made incomplete (so a cut leaves no half slot that
        claims to be whole), then renamed aside, then deleted."""
        slot = self.slot(version)
        if not slot.exists() or version == self.current():
            return
        (slot / COMPLETE).unlink(missing_ok=True)
        doomed = self.releases / f"{STAGING_PREFIX}gone-{version}-{os.getpid()}"
        os.replace(slot, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    @contextlib.contextmanager
    def staging(self, version: str) -> Iterator[Path]:
        """A fresh directory to install ``version`` into, held under a lock for as long
        as the caller works in it, so a guard starting the speaker meanwhile leaves it
        alone (a crashed installer's leftover is unlocked, and deleted)."""
        self.slot(version)  # validated
        self.releases.mkdir(parents=True, exist_ok=True)
        path = self.releases / f"{STAGING_PREFIX}{version}-{os.getpid()}-{time.monotonic_ns()}"
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            path.mkdir()
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)  # renamed away when it became a slot
            Path(f"{path}.lock").unlink(missing_ok=True)
            os.close(fd)

    def clean_staging(self) -> None:
        """Delete what an installer left when it was killed (its lock is free)."""
        try:
            leftovers = [p for p in self.releases.iterdir() if p.name.startswith(STAGING_PREFIX)]
        except OSError:
            return
        for path in leftovers:
            if path.name.endswith(".lock"):
                continue
            lock = Path(f"{path}.lock")
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # an installer is working in it
            try:
                shutil.rmtree(path, ignore_errors=True)
                lock.unlink(missing_ok=True)
            finally:
                os.close(fd)
        for lock in leftovers:  # a lock whose directory is gone
            if lock.name.endswith(".lock") and not Path(str(lock)[: -len(".lock")]).exists():
                lock.unlink(missing_ok=True)


def write_atomic(path: Path, text: str, mode: int) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def say(message: str) -> None:
    print(f"legato guard: {message}", file=sys.stderr, flush=True)


def prepare(layout: Layout, now_s: float | None = None) -> str | None:
    """Settle the slots before a start; the release that starts (None: none can)."""
    with layout.locked():
        return _prepare(layout, now_s)


def _prepare(layout: Layout, now_s: float | None) -> str | None:
    layout.clean_staging()
    decision = decide(
        layout.load(),
        layout.current(),
        layout.complete(),
        layout.verdict(),
        time.time() if now_s is None else now_s,
    )
    for line in decision.says:
        say(line)
    if decision.switch_to is not None:
        layout.switch(decision.switch_to)
    layout.save(decision.slots)
    for version in decision.remove:
        layout.remove(version)
    if decision.run is not None and decision.slots.last and decision.slots.last.state == "good":
        refresh_guard(layout, decision.run)
    return decision.run


def exited(layout: Layout, code: str, status: str) -> None:
    """Note how the speaker stopped, for the reason a rollback gives."""
    with layout.locked():
        slots = layout.load()
        if slots.trial is None:
            return
        text = f"{code} {status}".strip()[:100]
        layout.save(replace(slots, trial=replace(slots.trial, last_exit=text)))


def begin_trial(layout: Layout, version: str, now_s: float | None = None) -> Slots:
    """Switch to the complete slot ``version`` in trial, the running one kept as the
    way back (unless it is itself still in trial: then the release before it stays
    the way back, and the superseded one goes).  slots.json is written before the
    link: a cut between the two leaves the old release current, and :func:`decide`
    drops the trial."""
    if version not in layout.complete():
        raise ValueError(f"release {version} is not completely installed")
    current = layout.current()
    slots = layout.load()
    since = time.time() if now_s is None else now_s
    previous = current if current != version else slots.previous
    abandoned = None
    trial = slots.trial
    verdict = layout.verdict()
    if (
        trial is not None
        and trial.version == current
        and verdict is not None
        and verdict.good
        and (verdict.version, verdict.since_s) == (trial.version, trial.since_s)
    ):
        # it said it works, and no start has settled that yet: settle it here as
        # prepare would, so the way back is the release that proved itself
        outcome = Outcome(current, "good", verdict.reason, since)
        previous, abandoned = current, slots.previous
        slots = Slots(previous=None, trial=None, last=outcome, refused=slots.refused)
    elif trial is not None and trial.version == current and slots.previous in layout.complete():
        # the way back stays the release known to work, not one still on trial
        previous, abandoned = slots.previous, current
    new = replace(slots, previous=previous, trial=Trial(version, since))
    layout.save(new)
    layout.switch(version)
    if abandoned is not None and abandoned not in (version, previous):
        layout.remove(abandoned)
    return new


def refresh_guard(layout: Layout, version: str) -> None:
    """Once a release is good, its guard becomes the one that runs."""
    ours = layout.root / "guard.py"
    for theirs in sorted(layout.slot(version).glob("lib/python3*/site-packages/releases/guard.py")):
        text = theirs.read_text()
        if not ours.exists() or ours.read_text() != text:
            write_atomic(ours, text, 0o755)
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Which Legato release a speaker starts (run by systemd)."
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="where the slots are")
    parser.add_argument(
        "--state", type=Path, default=DEFAULT_STATE, help="the speaker's update state"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="before a start: settle a trial, roll back if it failed")
    stopped = sub.add_parser("exited", help="after a stop: remember how (for the reason)")
    stopped.add_argument("--code", default=os.environ.get("EXIT_CODE", ""))
    stopped.add_argument("--status", default=os.environ.get("EXIT_STATUS", ""))
    args = parser.parse_args(argv)
    layout = Layout(args.root, args.state)
    if args.command == "exited":
        exited(layout, args.code, args.status)
        return 0
    return 0 if prepare(layout) is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
