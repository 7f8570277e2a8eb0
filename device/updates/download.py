"""Fetch an offered bundle to disk, resuming where an earlier attempt stopped.

The bundle streams into ``<incoming>/legato-<v>.legato.<sha16>.part`` (named by the
offer's hash, so a part of another build is never continued); a later attempt asks
for the rest with ``Range: bytes=<size of the part>-``.  Only a file of exactly the
offered size and SHA-256 becomes ``legato-<v>.legato``.  Everything is bounded: the
body by the offered size, each read by the connection's timeout, the attempts by
count (with back-off between them) and the whole by :data:`MAX_DOWNLOAD_S`.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from connect_protocol.backoff import Backoff
from device.audio.source import HubMedia, SourceError
from device.errors import DeviceError
from device.updates.offer import Offer
from releases.bundle import bundle_name

logger = logging.getLogger(__name__)

CHUNK = 256 * 1024
ATTEMPTS = 6
MAX_DOWNLOAD_S = 2 * 3600.0
SPARE_BYTES = 64 * 2**20  # left free for the speaker's logs and cache after the download
BACKOFF = Backoff(initial_s=1.0, maximum_s=30.0)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class DownloadError(DeviceError):
    """The bundle could not be fetched; ``final`` when trying again cannot help (the
    hub has no such release, or sends bytes other than it offered)."""

    def __init__(self, message: str, *, final: bool) -> None:
        super().__init__(message)
        self.final = final


class NotEnoughSpaceError(DownloadError):
    """The speaker's disk cannot hold the bundle: the speaker's state, not the release's
    fault (reported "skipped", so it does not count towards the rollout's halt)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, final=True)


def part_path(incoming: Path, offer: Offer) -> Path:
    return incoming / f"{bundle_name(offer.version)}.{offer.sha256[:16]}.part"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def clear_incoming(incoming: Path, keep: tuple[Path, ...] = ()) -> None:
    """Delete earlier downloads: one bundle at a time on a speaker's small disk."""
    try:
        stale = [p for p in incoming.iterdir() if p not in keep and p.is_file()]
    except OSError:
        return
    for path in stale:
        path.unlink(missing_ok=True)


class BundleDownload:
    """One offered bundle, fetched with resume.  ``should_stop`` is checked between
    chunks (the speaker is stopping); ``on_progress`` gets the bytes held so far."""

    def __init__(
        self,
        hub: HubMedia,
        offer: Offer,
        incoming: Path,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_progress: Callable[[int], None] = lambda _done: None,
        sleep: Callable[[float], None] = time.sleep,
        attempts: int = ATTEMPTS,
        backoff: Backoff = BACKOFF,
    ) -> None:
        self.hub = hub
        self.offer = offer
        self.incoming = incoming
        self.final = incoming / bundle_name(offer.version)
        self.part = part_path(incoming, offer)
        self._should_stop = should_stop
        self._on_progress = on_progress
        self._sleep = sleep
        self._attempts = attempts
        self._backoff = backoff

    def run(self) -> Path:
        """The complete bundle's path; ``DownloadError`` otherwise (its part is kept for
        the next try unless the error is final)."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        if self._complete(self.final):
            return self.final
        clear_incoming(self.incoming, keep=(self.part,))
        self._check_space()
        started = time.monotonic()
        error = "no attempt made"
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff.delay_s(attempt - 1, random.random()))
            if self._should_stop():
                raise DownloadError("the speaker is stopping", final=False)
            if time.monotonic() - started > MAX_DOWNLOAD_S:
                break
            try:
                self._attempt()
            except SourceError as exc:
                error = str(exc)
                logger.info("download of %s interrupted: %s", self.offer.version, exc)
                continue
            return self._finish()
        raise DownloadError(
            f"could not download {self.offer.version} in {self._attempts} attempts: {error}",
            final=False,
        )

    def _check_space(self) -> None:
        """Room for the rest of the bundle, with some to spare: a full disk would stop
        the speaker's own writes (its cache, its verdict) too."""
        need = self.offer.size - self._held() + SPARE_BYTES
        free = shutil.disk_usage(self.incoming).free
        if free < need:
            raise NotEnoughSpaceError(
                f"not enough disk space for release {self.offer.version}: "
                f"{need // 2**20} MiB needed, {free // 2**20} MiB free"
            )

    def _complete(self, path: Path) -> bool:
        try:
            return path.stat().st_size == self.offer.size and sha256_of(path) == self.offer.sha256
        except OSError:
            return False

    def _held(self) -> int:
        try:
            held = self.part.stat().st_size
        except FileNotFoundError:
            return 0
        if held > self.offer.size:
            self.part.unlink()
            return 0
        return held

    def _attempt(self) -> None:
        """Fetch what the part still lacks; ``SourceError`` when cut short."""
        offset = self._held()
        if offset == self.offer.size:
            return
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        with self.hub.streaming(self.offer.url, headers) as response:
            offset = self._start_at(response, offset)
            with self.part.open("r+b" if offset else "wb") as out:
                out.seek(offset)
                out.truncate()
                self._copy(response, out, offset)
                out.flush()
                os.fsync(out.fileno())

    def _start_at(self, response: http.client.HTTPResponse, offset: int) -> int:
        """Where this answer's body goes in the part: the asked offset (206), or 0."""
        status = response.status
        if status == 206:
            found = CONTENT_RANGE.fullmatch(response.getheader("Content-Range", "").strip())
            if found and int(found[1]) == offset and int(found[3]) == self.offer.size:
                return offset
            raise SourceError("the hub answered a different range than asked", retryable=True)
        if status == 200:
            return 0  # no range support: the whole body again
        if status == 416:
            self.part.unlink(missing_ok=True)
            raise SourceError("the hub refused the resumed range", retryable=True)
        if status in (401, 403, 404, 410):
            raise DownloadError(
                f"the hub answered {status} for {self.offer.url}: the release is not offered "
                "to this speaker any more",
                final=True,
            )
        raise SourceError(f"the hub answered {status} for {self.offer.url}", retryable=True)

    def _copy(self, response: http.client.HTTPResponse, out: BinaryIO, offset: int) -> None:
        held = offset
        expected = response.length
        if expected is not None and held + expected != self.offer.size:
            raise DownloadError(
                f"the hub sends {held + expected} bytes for a bundle offered as {self.offer.size}",
                final=True,
            )
        while chunk := response.read1(CHUNK):
            held += len(chunk)
            if held > self.offer.size:
                raise DownloadError(
                    f"the hub sent more than the {self.offer.size} bytes it offered", final=True
                )
            out.write(chunk)
            self._on_progress(held)
            if self._should_stop():
                raise SourceError("the speaker is stopping", retryable=True)
        if held < self.offer.size:
            raise SourceError(
                f"the connection ended after {held} of {self.offer.size} bytes", retryable=True
            )

    def _finish(self) -> Path:
        if sha256_of(self.part) != self.offer.sha256:
            self.part.unlink(missing_ok=True)
            raise DownloadError(
                f"the downloaded {bundle_name(self.offer.version)} does not match the sha256 "
                "the hub offered",
                final=True,
            )
        os.replace(self.part, self.final)
        return self.final
