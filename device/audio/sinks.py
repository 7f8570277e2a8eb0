"""Where the speaker's PCM goes: an ALSA device, a raw file, or nowhere, all in real time.

Every sink takes interleaved S16LE stereo ``(frames, 2)`` and ``write`` blocks
until the frames are accepted, the way a sound card does once its buffer is
full.  The engine leans on that back-pressure for timing and on
``delay_frames`` (written but not yet heard) for the position it reports, so
sinks with no clock of their own (a file, the null sink, and alsa-lib's
``file``/``null`` PCMs, which run as fast as they are fed) are paced against
the monotonic clock by ``Pacer``; ``fast=True`` turns that off for benchmarks
and byte-exactness tests.

Spec strings (``[audio] sink`` and ``--sink``): ``alsa`` (the ``default``
PCM), ``alsa:PCM`` (any ALSA PCM name, colons and commas included, e.g.
``alsa:hw:1,0`` or ``alsa:file:FILE=/tmp/x.raw,FORMAT=raw``), ``file:PATH``
or ``null``.
"""

from __future__ import annotations

import errno
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray

from device.errors import DeviceError

CHANNELS = 2
SPEC_FORMS = "alsa, alsa:PCM (e.g. alsa:hw:1,0), file:PATH, null"


class SinkError(DeviceError):
    """The sink cannot play; the message is meant for the person setting the speaker up."""


class Sink(Protocol):
    """What the engine's sink thread drives; ``open_sink`` builds one from a spec string."""

    rate: int
    channels: int  # always 2
    name: str
    fast: bool  # runs as fast as it is fed (benchmarks), not at the device's pace
    frames_written: int  # since open()

    def open(self) -> None:
        """Acquire the output (idempotent); raises ``SinkError`` with a message for people."""
        ...

    def write(self, pcm: NDArray[np.int16]) -> None:
        """Queue int16 ``(frames, 2)``; blocks while the device buffer is full."""
        ...

    def delay_frames(self) -> int:
        """Frames written but not yet heard (0 to one buffer): position = written - delay."""
        ...

    def drop(self) -> None:
        """Discard what is queued and release a blocked ``write`` (seek, stop)."""
        ...

    def close(self) -> None:
        """Let the queue play out, then release the output."""
        ...


class Pacer:
    """Holds a writer to real time: it may run ahead of the play head by ``buffer_frames``.

    Models a sound card's ring buffer: the "play head" moves at ``rate`` from
    the moment the first frame of a run arrives, and ``admit`` sleeps while
    more than a buffer's worth is unplayed.  Deadlines are computed from the
    run's start time and its total frame count, never from the previous write,
    so rounding and sleep overshoot do not accumulate into drift.  When the
    buffer has run dry (a pause, a stall, a stream that ended) the next write
    starts a new run, as a card restarts after an underrun, instead of
    bursting to catch up on the time it was idle.
    """

    def __init__(self, rate: int, buffer_frames: int) -> None:
        if rate <= 0 or buffer_frames <= 0:
            raise ValueError("rate and buffer_frames must be positive")
        self.rate = rate
        self.buffer_frames = buffer_frames
        self.runs = 0  # how many times the play head (re)started: 1 + underruns/pauses
        self._cond = threading.Condition()
        self._start = 0.0  # monotonic time the current run's first frame began playing
        self._frames = 0  # frames admitted in the current run
        self._epoch = 0  # bumped by reset() so a blocked admit() gives up

    def _played(self, now: float) -> float:
        return (now - self._start) * self.rate

    def admit(self, frames: int) -> None:
        """Account for ``frames`` just written; return once the backlog fits the buffer."""
        if frames <= 0:
            return
        with self._cond:
            now = time.monotonic()
            if self._frames == 0 or self._played(now) >= self._frames:
                self._start, self._frames = now, 0
                self.runs += 1
            self._frames += frames
            deadline = self._start + (self._frames - self.buffer_frames) / self.rate
            epoch = self._epoch
            while self._epoch == epoch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def delay(self) -> int:
        """Frames admitted but not yet played, at most one buffer (the rest is still ours)."""
        with self._cond:
            if self._frames == 0:
                return 0
            pending = self._frames - self._played(time.monotonic())
            return max(0, min(self.buffer_frames, math.ceil(pending)))

    def drain(self) -> None:
        """Wait until everything admitted has played (or ``reset`` is called)."""
        with self._cond:
            if self._frames == 0:
                return
            end = self._start + self._frames / self.rate
            epoch = self._epoch
            while self._epoch == epoch:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)

    def reset(self) -> None:
        """Discard the backlog and wake a blocked writer (seek, stop)."""
        with self._cond:
            self._epoch += 1
            self._frames = 0
            self._cond.notify_all()


def _check_pcm(pcm: NDArray[np.int16]) -> NDArray[np.int16]:
    if pcm.dtype != np.int16 or pcm.ndim != 2 or pcm.shape[1] != CHANNELS:
        raise ValueError(f"sinks take int16 (frames, 2) PCM, got {pcm.dtype} {pcm.shape}")
    if sys.byteorder != "little":
        pcm = pcm.astype("<i2")
    return np.ascontiguousarray(pcm)


class _PacedSink:
    """Shared body of the sinks with no clock of their own: pacing, counters, state."""

    def __init__(self, name: str, rate: int, fast: bool, buffer_frames: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.name = name
        self.rate = rate
        self.channels = CHANNELS
        self.fast = fast
        self.frames_written = 0
        self._pacer = Pacer(rate, buffer_frames)
        self._open = False

    @property
    def buffer_frames(self) -> int:
        return self._pacer.buffer_frames

    def open(self) -> None:
        if not self._open:
            self._open_output()
            self._open = True
            self.frames_written = 0
            self._pacer.reset()

    def write(self, pcm: NDArray[np.int16]) -> None:
        if not self._open:
            raise SinkError(f"sink {self.name!r} is not open")
        pcm = _check_pcm(pcm)
        self._write_output(pcm)
        self.frames_written += pcm.shape[0]
        if not self.fast:
            self._pacer.admit(pcm.shape[0])

    def delay_frames(self) -> int:
        return 0 if self.fast or not self._open else self._pacer.delay()

    def drop(self) -> None:
        self._pacer.reset()

    def close(self) -> None:
        """Let what is queued finish playing (as ALSA drains), then release the output."""
        if self._open:
            if not self.fast:
                self._pacer.drain()
            self._open = False
            self._close_output()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_output(self) -> None:
        pass

    def _write_output(self, pcm: NDArray[np.int16]) -> None:
        pass

    def _close_output(self) -> None:
        pass


class NullSink(_PacedSink):
    """Discards the audio in real time: a speaker with no sound card still keeps time."""

    def __init__(self, rate: int, fast: bool = False, *, buffer_frames: int = 4096) -> None:
        super().__init__("null", rate, fast, buffer_frames)


class FileSink(_PacedSink):
    """Raw S16LE stereo interleaved, byte-exact: what a card would have been sent.

    ``drop`` cannot take back bytes already in the file, so the file holds
    everything written, which keeps it deterministic for tests.
    """

    def __init__(
        self, path: Path, rate: int, fast: bool = False, *, buffer_frames: int = 4096
    ) -> None:
        super().__init__(f"file:{path}", rate, fast, buffer_frames)
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    def _open_output(self) -> None:
        try:
            self._file = self.path.open("wb")
        except OSError as exc:
            raise SinkError(f"cannot write audio to {self.path}: {exc.strerror}") from exc

    def _write_output(self, pcm: NDArray[np.int16]) -> None:
        assert self._file is not None
        try:
            self._file.write(pcm.data)
            self._file.flush()  # what was "played" is in the file, for whoever reads it now
        except OSError as exc:
            raise SinkError(f"cannot write audio to {self.path}: {exc.strerror}") from exc

    def _close_output(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError as exc:
                raise SinkError(f"cannot finish writing {self.path}: {exc.strerror}") from exc
            finally:
                self._file = None


class Mixer(Protocol):
    """The part of ``alsaaudio.Mixer`` the sink uses (a fake stands in for it in tests)."""

    def setvolume(self, volume: int) -> None: ...
    def close(self) -> None: ...


MixerFactory = Callable[[str, str], Mixer]  # (control, device) -> mixer


def _alsa_mixer(control: str, device: str) -> Mixer:
    import alsaaudio

    mixer: Mixer = alsaaudio.Mixer(control=control, device=device)
    return mixer


def _alsa_error_message(pcm_name: str, exc: Exception) -> str:
    """Turn pyalsaaudio's "strerror [device]" into something a person can act on."""
    detail = str(exc)
    low = detail.lower()
    if "busy" in low:
        return (
            f"ALSA device {pcm_name!r} is busy (used by another program): {detail}; "
            "stop that program or play through 'alsa:default' / a dmix device"
        )
    if "no such file" in low or "no such device" in low or "unknown pcm" in low:
        return (
            f"ALSA device {pcm_name!r} not found: {detail}; "
            "list devices with 'aplay -L' (or use sink 'null' on a machine without a sound card)"
        )
    if "permission denied" in low:
        return (
            f"no permission to open ALSA device {pcm_name!r}: {detail}; "
            "add the speaker's user to the 'audio' group"
        )
    return f"cannot open ALSA device {pcm_name!r}: {detail}"


def _mixer_device(pcm_name: str) -> str:
    """The control device of the card a PCM name points at (``plughw:1,0`` -> ``hw:1``)."""
    m = re.match(r"^(?:plug)?hw:(?:CARD=)?([^,]+)", pcm_name)
    return f"hw:{m.group(1)}" if m else "default"


def _clockless(pcm_name: str) -> bool:
    """alsa-lib's ``file`` and ``null`` PCMs accept data as fast as it comes."""
    return pcm_name == "null" or pcm_name.startswith(("file:", "file "))


_XRUN_ERRNOS = (errno.EPIPE, errno.ESTRPIPE)


class AlsaSink:
    """Plays through an ALSA PCM with pyalsaaudio, always with an explicit buffer size.

    pyalsaaudio's own defaults (32-frame periods, a 128-frame buffer) underrun
    on any real load, hence ``period_frames`` and ``periods``.  An underrun
    (``-EPIPE``) is counted in ``xruns`` and recovered from by re-preparing and
    writing again.  ``mixer`` names a hardware volume control from the board
    profile (``"Digital"``, or ``"Digital@hw:1"`` to name its card too).
    """

    def __init__(
        self,
        pcm_name: str,
        rate: int,
        period_frames: int = 1024,
        periods: int = 4,
        mixer: str | None = None,
        fast: bool = False,
        *,
        mixer_factory: MixerFactory | None = None,
    ) -> None:
        if rate <= 0 or period_frames <= 0 or periods < 2:
            raise ValueError("rate and period_frames must be positive and periods >= 2")
        self.name = f"alsa:{pcm_name}"
        self.pcm_name = pcm_name
        self.rate = rate
        self.channels = CHANNELS
        self.period_frames = period_frames
        self.periods = periods
        self.buffer_frames = period_frames * periods  # the device's actual size once open
        self.fast = fast
        self.frames_written = 0
        self.xruns = 0
        self._drops = 0  # bumped by drop(): a write in progress stops and discards the rest
        self.mixer_name = mixer
        self._mixer_factory = mixer_factory or _alsa_mixer
        self._mixer: Mixer | None = None
        self._pcm: Any = None  # alsaaudio.PCM, imported lazily (file/null sinks need no ALSA)
        self._pacer: Pacer | None = None

    @property
    def hardware_volume(self) -> bool:
        """True when a hardware mixer control is in use (else volume is done in software)."""
        return self._mixer is not None

    def open(self) -> None:
        if self._pcm is not None:
            return
        import alsaaudio

        try:
            pcm = alsaaudio.PCM(
                type=alsaaudio.PCM_PLAYBACK,
                mode=alsaaudio.PCM_NORMAL,
                device=self.pcm_name,
                channels=CHANNELS,
                rate=self.rate,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=self.period_frames,
                periods=self.periods,
            )
        except alsaaudio.ALSAAudioError as exc:
            raise SinkError(_alsa_error_message(self.pcm_name, exc)) from exc
        info = pcm.info()
        if info["rate"] != self.rate or info["channels"] != CHANNELS:
            pcm.close()
            plug = f"plug{self.pcm_name}" if self.pcm_name.startswith("hw:") else "plughw:CARD"
            raise SinkError(
                f"ALSA device {self.pcm_name!r} cannot play {self.rate} Hz stereo "
                f"(it offers {info['rate']} Hz, {info['channels']} channels); "
                f"use 'alsa:{plug}' so ALSA converts"
            )
        self.buffer_frames = int(info["buffer_size"])
        if self.mixer_name:
            control, _, device = self.mixer_name.partition("@")
            try:
                self._mixer = self._mixer_factory(control, device or _mixer_device(self.pcm_name))
            except Exception as exc:  # pyalsaaudio raises its own error type
                pcm.close()
                raise SinkError(
                    f"ALSA mixer control {control!r} not found on "
                    f"{device or _mixer_device(self.pcm_name)!r}: {exc}; "
                    "check the board profile's mixer name against 'amixer scontrols'"
                ) from exc
        self._pcm = pcm
        self.frames_written = 0
        self._pacer = None
        if _clockless(self.pcm_name) and not self.fast:
            self._pacer = Pacer(self.rate, self.buffer_frames)

    def _device(self) -> Any:
        if self._pcm is None:
            raise SinkError(f"sink {self.name!r} is not open")
        return self._pcm

    def write(self, pcm: NDArray[np.int16]) -> None:
        import alsaaudio

        device = self._device()
        data = _check_pcm(pcm)
        total = data.shape[0]
        done = 0
        failures = 0
        drops = self._drops
        while done < total and self._drops == drops:
            try:
                n = int(device.write(data[done:]))
            except alsaaudio.ALSAAudioError as exc:
                if self._drops != drops:  # dropped under us (seek/stop): nothing to report
                    break
                # pyalsaaudio raises on -EPIPE/-ESTRPIPE and re-prepares on the next write.
                if not any(s in str(exc).lower() for s in ("broken pipe", "streams pipe")):
                    raise SinkError(f"ALSA device {self.pcm_name!r} failed: {exc}") from exc
                n = -errno.EPIPE
            if n > 0:
                done += n
                failures = 0
                continue
            failures += 1
            if failures > 100:
                raise SinkError(f"ALSA device {self.pcm_name!r} stopped accepting audio")
            if n < 0 and -n in _XRUN_ERRNOS:
                self.xruns += 1
            elif n < 0:
                raise SinkError(f"ALSA device {self.pcm_name!r} failed: {os.strerror(-n)}")
            else:  # 0: nothing accepted yet (non-blocking or just recovered)
                time.sleep(self.period_frames / self.rate / 4)
        self.frames_written += done
        if self._pacer is not None and self._drops == drops:
            self._pacer.admit(done)

    def delay_frames(self) -> int:
        if self._pcm is None:
            return 0
        if self._pacer is not None:
            return self._pacer.delay()
        if self.fast and _clockless(self.pcm_name):
            return 0
        import alsaaudio

        try:
            avail = int(self._pcm.avail())
        except (alsaaudio.ALSAAudioError, AttributeError):  # no avail() before 0.11
            return 0
        if avail < 0 or avail >= self.buffer_frames:  # an error code, or run dry
            return 0
        return self.buffer_frames - avail

    def drop(self) -> None:
        self._drops += 1
        if self._pcm is not None:
            import alsaaudio

            try:
                self._pcm.drop()
            except alsaaudio.ALSAAudioError as exc:
                raise SinkError(f"ALSA device {self.pcm_name!r} failed: {exc}") from exc
        if self._pacer is not None:
            self._pacer.reset()

    def set_volume(self, percent: int) -> None:
        """Set the hardware mixer (0-100, the control's own percentage scale)."""
        if self._mixer is None:
            raise SinkError(f"{self.name!r} has no hardware mixer; use software volume")
        self._mixer.setvolume(min(max(int(percent), 0), 100))

    def close(self) -> None:
        """Let what is queued play out (ALSA drains on close), then release the device."""
        pcm, self._pcm = self._pcm, None
        if pcm is not None:
            if self._pacer is not None:
                self._pacer.drain()
            pcm.close()
        if self._mixer is not None:
            mixer, self._mixer = self._mixer, None
            mixer.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sink(
    spec: str,
    *,
    rate: int = 44100,
    fast: bool = False,
    period_frames: int = 1024,
    periods: int = 4,
    mixer: str | None = None,
    open_now: bool = True,
) -> Sink:
    """Build the sink a spec string names and open it, so a bad device fails here, clearly.

    A bad spec always fails here; with ``open_now=False`` the device itself is
    opened by its first user, which retries while it is missing or busy.
    """
    buffer_frames = period_frames * periods
    sink: Sink
    if spec == "null":
        sink = NullSink(rate, fast, buffer_frames=buffer_frames)
    elif spec == "alsa" or spec.startswith("alsa:"):
        pcm_name = spec[len("alsa:") :] if spec.startswith("alsa:") else "default"
        if not pcm_name:
            raise SinkError(f"sink {spec!r} names no ALSA device; expected one of: {SPEC_FORMS}")
        sink = AlsaSink(pcm_name, rate, period_frames, periods, mixer, fast)
    elif spec.startswith("file:") and len(spec) > len("file:"):
        sink = FileSink(Path(spec[len("file:") :]), rate, fast, buffer_frames=buffer_frames)
    else:
        raise SinkError(f"unknown audio sink {spec!r}; expected one of: {SPEC_FORMS}")
    if open_now:
        sink.open()
    return sink
