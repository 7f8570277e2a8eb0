"""The ALSA sink (``alsa[:PCM]``) through pyalsaaudio, with an optional hardware mixer.

pyalsaaudio is imported when a device is opened, so the file and null sinks
need no ALSA at all.
"""

from __future__ import annotations

import errno
import os
import re
import time
from collections.abc import Callable
from typing import Any, Protocol, Self

import numpy as np
from numpy.typing import NDArray

from device.audio.sinks.base import CHANNELS, SinkError, check_pcm
from device.audio.sinks.pacer import Pacer


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
        data = check_pcm(pcm)
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
