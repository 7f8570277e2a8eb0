"""What played last, kept on disk so the play button works after a power cut.

A shelf speaker is often unplugged; its listener still expects a press of play to
go on with what it played before.  The context is kept as the ``Play`` command that
would start it again, in the Connect codec's JSON, so reading it back goes through
the same validation (sizes, types) as a command from the network.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from connect_protocol.codec import decode_command, encode
from connect_protocol.messages import Play
from hardware.controls.commands import LastContext

logger = logging.getLogger(__name__)

FILE_NAME = "last-played.json"


def load_last(path: Path) -> LastContext | None:
    """The context saved at ``path``; ``None`` when there is none or it is unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning(
            "cannot read %s (%s); the play button starts nothing until music plays",
            path,
            exc.strerror,
        )
        return None
    cmd = decode_command(data)
    if not isinstance(cmd, Play) or cmd.offset is None:
        logger.warning("%s is not a saved context; ignoring it", path)
        return None
    return LastContext(cmd.context_uri, cmd.tracks, cmd.offset, cmd.position_ms)


def save_last(path: Path, last: LastContext) -> None:
    """Write atomically (a power cut leaves the old file or the new, never half of one)."""
    play = Play(
        id="last-played",
        tracks=last.tracks,
        context_uri=last.context_uri,
        offset=last.offset,
        position_ms=last.position_ms,
    )
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as f:
            f.write(encode(play))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("cannot keep what played last in %s: %s", path, exc.strerror)


class LastPlayedKeeper:
    """Saves what played last off the event loop, at most once per ``delay_s``.

    A playing speaker's state changes often (positions, volume); the file is
    written once things have been still for a moment, and at stop.
    """

    def __init__(self, path: Path, delay_s: float = 2.0) -> None:
        self.path = path
        self._delay_s = delay_s
        self._pending: LastContext | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None

    def remember(self, last: LastContext) -> None:
        """On the loop: ``last`` is what to save; written after ``delay_s``."""
        self._pending = last
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._write_soon)

    def _write_soon(self) -> None:
        self._timer = None
        if self._writing is not None and not self._writing.done():
            self._timer = asyncio.get_running_loop().call_later(self._delay_s, self._write_soon)
            return  # one write at a time, so an older one never lands after a newer
        last, self._pending = self._pending, None
        if last is not None:
            self._writing = asyncio.create_task(asyncio.to_thread(save_last, self.path, last))

    async def flush(self) -> None:
        """At stop: write what is pending now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._writing is not None:
            await self._writing
        last, self._pending = self._pending, None
        if last is not None:
            await asyncio.to_thread(save_last, self.path, last)
