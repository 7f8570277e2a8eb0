"""The mpv engine: the ``Engine`` interface on libmpv (python-mpv), segment by segment.

Modules: ``engine`` (``MpvEngine``, the loop's side: plan changes and mpv's
playlist), ``events`` (mpv's threads: the segment stream, events, position,
underruns, track ends), ``prefetch`` (what to fetch next, through the shared
``device.audio.fetcher.SegmentFetcher``), ``plan`` (the shared state) and
``options`` (mpv options, volume curve, filters).

How it plays.  Every segment of a track is one entry of mpv's playlist,
``legato://{gen}/{n}/{serial}``, opened through a registered stream protocol
that serves the segment's bytes from memory.  A prefetch thread fetches
segments from the ``SegmentSource`` (the hub, or the offline cache) up to
30 s ahead through the same ``SegmentFetcher`` as the native engine (quality
by the ABR, retries, and a check of every segment: Ogg page CRCs, Vorbis
header, final granule = the manifest's frame count) before mpv sees it, so
bad bytes are an error and never noise.  mpv plays the entries gaplessly
(``gapless-audio``, ``prefetch-playlist``) into a fixed output format (s16
stereo at the sink's rate); ``set_next`` appends the next track's entries, so
a track join is just one more segment join.

Why one entry per segment rather than one chained Ogg stream per track: mpv
0.35 (FFmpeg 5.1) does not reset the Vorbis decoder between the links of a
chained stream, so every segment join inserts the overlap of the previous
link (128 frames at 44.1 kHz with libvorbis' 256-frame short blocks) and
each track grows by that much per segment.  Separate entries decode to
exactly ``Segment.frames`` each (measured: two-track and seek totals exact to
the frame), and they let the quality change per segment: mpv reconfigures its
filters between entries (22.05 kHz mono ``low`` <-> 44.1 kHz stereo) without
losing a frame, as the ao stays open.

Seek restarts the playlist at the segment holding the target with the
per-file option ``start=`` and ``hr-seek=yes``: mpv seeks within that
segment and drops the decoded frames before the target (exact to the frame
over 20 random targets; the target is sent a quarter frame late so that
mpv's rounding never keeps the frame before it).  Position is mpv's
``time-pos`` (which already subtracts the audio output's delay, so it is
negative for the ~0.2-0.4 s that the previous entry is still being heard)
plus the segment's start, moved on the monotonic clock between updates.

Underruns are the engine's own finding: mpv has moved on to an entry whose
segment is not fetched yet.  mpv's ``paused-for-cache`` never fires, since
every entry is whole in memory before mpv opens it.

Guarantees of the native engine that this one does NOT meet, and why:

- File and alsa-lib ``file``/``null`` sinks are not paced to real time:
  ``ao=pcm`` is an "untimed" output that mpv writes as fast as it decodes
  (no option paces it; ``ao-pcm-append`` only appends), and alsa-lib's
  clockless PCMs accept data at once.  Only ``null`` (``ao=null``) keeps real
  time.  On those sinks position and track ends run ahead of the wall clock.
- Track ends are reported when mpv's ``time-pos`` in the next track's first
  entry reaches 0 (or when mpv goes idle after draining).  mpv publishes
  ``time-pos`` every ~50-100 ms, so ``on_track_ended`` comes up to ~0.1 s
  late (measured 57 ms), where the native sink-delay accounting is exact.
- When the sink rate differs from a rendition's rate, mpv resamples every
  segment separately (its filter chain is rebuilt per entry): the length
  stays exact but each join carries a resampler restart, a transient of about
  -60 dBFS (measured 1e-3 at 48 kHz against 2.4e-5 elsewhere).  The native
  engine resamples a track continuously.
- The limiter is FFmpeg's ``alimiter`` (5 ms look-ahead, latency-compensated,
  80 ms release, -1 dBFS), used only when the manifest's true peak plus the
  normalisation gain exceeds -1 dBFS; like every filter it restarts at each
  segment, so a join inside a limited passage can step the gain.  The native
  limiter is zero-latency and continuous across a track.
- Mono (``low``) renditions are widened with a ``pan`` filter at full level:
  FFmpeg's default upmix would play them 3 dB quieter than stereo.
- Volume uses mpv's software volume (cubic: ``volume = 100 * gain ** (1/3)``
  reproduces ``dsp.volume_gain``), applied without the native ramp; no
  hardware mixer; no crossfade (mpv has none between playlist entries).
- An audio output that fails to open is retried every second from where the
  track was, as the native engine waits on its sink; a device that fails
  while playing is left to mpv's own handling (not exercised here).
- A segment that is a single Ogg page decodes short (libavcodec does not trim
  the end of such a stream); the ingest keeps segments longer than one page.
"""

from device.audio.mpv_engine.engine import MpvEngine
from device.audio.mpv_engine.options import mpv_volume, output_options

__all__ = ["MpvEngine", "mpv_volume", "output_options"]
