"""The parts of ``bench/offline_playback.py``, one job per module.

``common`` (options, targets, percentiles), ``pages`` (evicting a file's pages from the
page cache and checking that they went), ``cache`` (an ``OfflineStore`` holding the audio
bench's library as offline downloads, under a licence the bench signs itself),
``throughput`` (decrypt-and-read against plain ``.ogg`` reads), ``ttfa`` (time to first
audio from the cache with the hub stopped, against the hub and plain files), ``run`` and
``report``.

Imported as the top-level package ``offline``, the way ``audio`` and ``latency`` are:
``python bench/offline_playback.py`` puts ``bench/`` first on ``sys.path``.  The material
(the hub's demo library, ingested by the hub's pipeline and cached under
``bench/out/cache/audio``) and the hub rig are the audio bench's own (``audio.material``,
``audio.rig``); importing ``audio`` also puts the repository's root on ``sys.path``.
"""
