"""The speaker's audio: two engines over one segment fetcher, and what they play through.

- ``source`` (``SegmentSource``: the hub over HTTP) and ``cached_source`` (the
  encrypted offline cache in front of it): where segments come from;
- ``fetcher``: ``SegmentFetcher``, shared by both engines: quality (ABR),
  retries with the shared back-off, page check with one re-fetch, fallback to
  a rendition the manifest has;
- ``native``: the native engine, one stage per module (fetch, decode + DSP,
  output), over ``vorbis``/``decoder`` (libvorbisfile), ``dsp`` and
  ``pcm_native`` (per-sample loops in C), ``pcm_queue`` and ``timeline``;
- ``mpv_engine``: the same interface on libmpv;
- ``sinks``: where the native engine's PCM goes (ALSA, a raw file, nowhere).
"""
