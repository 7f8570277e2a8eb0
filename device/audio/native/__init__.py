"""The native engine: manifest + segments -> libvorbisfile -> DSP -> PCM queue -> sink.

One stage per module, each thread's loop in the stage that owns it, so the
event loop never waits on audio:

- ``state``: the plan (current and next item), the options, and what the
  stages share under one lock (compressed segments, the PCM queue, flags);
- ``fetch``: the ``audio-fetcher`` thread keeps segments compressed ahead of
  playback through the shared ``device.audio.fetcher.SegmentFetcher``;
- ``decode``: the ``audio-decoder`` thread keeps a few seconds decoded:
  libvorbisfile, resampling, loudness, limiter, crossfade;
- ``output``: the ``audio-sink`` thread writes to the sink with the volume
  applied, and turns frames written into position, underruns and track ends;
- ``engine``: ``NativeEngine``, the ``Engine`` interface over them.
"""

from device.audio.native.engine import NativeEngine
from device.audio.native.state import EngineOptions

__all__ = ["EngineOptions", "NativeEngine"]
