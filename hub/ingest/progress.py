"""How ``legato-hub ingest`` reports: a bar on a terminal, plain lines otherwise.

Human output goes to stderr (a rich progress bar with an ETA when stderr is a
terminal, one line per event when it is a log); ``--json`` puts one object per
file on stdout, so the two never mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskID, TextColumn, TimeRemainingColumn
from rich.progress import Progress as Bar

from hub.ingest.model import IngestResult, Progress


def describe(result: IngestResult) -> str:
    """One line about one file: what happened, and why when it failed."""
    if result.status == "failed":
        return f"failed: {result.path}: {result.error}"
    what = f"{result.status}: {result.path} -> {result.uri}"
    if result.name is not None and result.duration_ms is not None:
        minutes, seconds = divmod(round(result.duration_ms / 1000), 60)
        what += f" {result.name!r} by {result.artist} ({minutes}:{seconds:02d}"
        if result.loudness is not None:
            what += f", {result.loudness.track_lufs:.1f} LUFS"
        what += ")"
    return what


def summary(results: Sequence[IngestResult]) -> str:
    counts = Counter(r.status for r in results)
    return (
        f"{counts['added']} added, {counts['present']} already present, {counts['failed']} failed"
    )


class Reporter:
    """``on_progress`` and ``on_result`` for the CLI; use as a context manager."""

    def __init__(
        self, *, stdout: TextIO, stderr: TextIO, json_lines: bool, interactive: bool
    ) -> None:
        self.stdout, self.stderr, self.json_lines = stdout, stderr, json_lines
        self.bar: Bar | None = None
        self.task: TaskID | None = None
        self.stage = ""
        self.stage_started = self.last_event = time.monotonic()
        if interactive:
            self.bar = Bar(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[files]}"),
                TimeRemainingColumn(),
                console=Console(file=stderr),
                transient=True,
            )

    def __enter__(self) -> Reporter:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.bar is not None:
            self.bar.stop()

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=self.stderr, flush=True)

    def progress(self, update: Progress) -> None:
        """Advance the bar; encoding is measured in audio seconds so the ETA holds."""
        new_stage = update.stage != self.stage
        if new_stage:
            self.stage, self.stage_started = update.stage, self.last_event
        self.last_event = time.monotonic()
        if self.bar is None:
            if update.stage == "scan" and update.done == update.total:
                self.say(f"read {update.total} files: hashes, tags and lengths")
            elif update.stage == "encode" and update.done:
                self.say(
                    f"[{update.done}/{update.total}] processed {update.path}{self._eta(update)}"
                )
            return
        encoding = update.stage == "encode"
        files = f"{update.done}/{update.total} files"
        total = update.total_seconds if encoding else update.total
        done = update.done_seconds if encoding else update.done
        if new_stage or self.task is None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            label = "encoding" if encoding else "scanning"
            self.task = self.bar.add_task(label, total=total, files=files)
        self.bar.update(self.task, completed=done, total=total, files=files)

    def _eta(self, update: Progress) -> str:
        if update.stage != "encode" or not update.done_seconds or update.done >= update.total:
            return ""
        elapsed = time.monotonic() - self.stage_started
        left = elapsed * (update.total_seconds - update.done_seconds) / update.done_seconds
        minutes, seconds = divmod(round(left), 60)
        return f" (about {minutes}:{seconds:02d} left)"

    def result(self, result: IngestResult) -> None:
        if self.json_lines:
            print(json.dumps(result.to_json(), ensure_ascii=False), file=self.stdout, flush=True)
        self.say(describe(result))
