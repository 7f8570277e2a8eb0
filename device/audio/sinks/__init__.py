"""Where the speaker's PCM goes: an ALSA device, a raw file, or nowhere, all in real time.

One sink per module (``alsa``, ``file``, ``fifo``, ``null``), the interface and the
shared paced body in ``base``, the real-time pacer in ``pacer``; ``open_sink``
builds the one a spec string names.

Every sink takes interleaved S16LE stereo ``(frames, 2)``; ``write`` blocks
until the frames are accepted, as a sound card does once its buffer is full
(see ``base``).  Sinks with no clock of their own are held to real time by
``Pacer``; ``fast=True`` turns that off for benchmarks and byte-exactness tests.

Spec strings (``[audio] sink`` and ``--sink``): ``alsa`` (the ``default``
PCM), ``alsa:PCM`` (any ALSA PCM name, colons and commas included, e.g.
``alsa:hw:1,0`` or ``alsa:file:FILE=/tmp/x.raw,FORMAT=raw``), ``file:PATH``,
``fifo:PATH`` (a named pipe another process reads at its own clock: a virtual
DAC) or ``null``.
"""

from __future__ import annotations

from pathlib import Path

from device.audio.sinks.alsa import AlsaSink, Mixer, MixerFactory
from device.audio.sinks.base import CHANNELS, PacedSink, Sink, SinkError
from device.audio.sinks.fifo import FifoSink
from device.audio.sinks.file import FileSink
from device.audio.sinks.null import NullSink
from device.audio.sinks.pacer import Pacer

__all__ = [
    "CHANNELS",
    "SPEC_FORMS",
    "AlsaSink",
    "FifoSink",
    "FileSink",
    "Mixer",
    "MixerFactory",
    "NullSink",
    "PacedSink",
    "Pacer",
    "Sink",
    "SinkError",
    "open_sink",
]

SPEC_FORMS = "alsa, alsa:PCM (e.g. alsa:hw:1,0), file:PATH, fifo:PATH, null"


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
    elif spec.startswith("fifo:") and len(spec) > len("fifo:"):
        sink = FifoSink(Path(spec[len("fifo:") :]), rate, buffer_frames=buffer_frames)
    else:
        raise SinkError(f"unknown audio sink {spec!r}; expected one of: {SPEC_FORMS}")
    if open_now:
        sink.open()
    return sink
