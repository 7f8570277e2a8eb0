"""The parts of ``bench/audio_engine.py``, one job per module.

``common`` (options, the bench's error, small helpers), ``material`` (the demo music,
ingested once and cached), ``rig`` (the hub process and its speakers' logins),
``sources`` (segment sources: one that records every fetch, one that reads the media
store's files), ``ttfa`` (time to first audio, against mpv), ``cpu`` (decode and DSP cost,
against oggdec), ``rss`` (the speaker process's memory, against the clock engine),
``trace`` (a bandwidth trace through a throttling proxy, against a pinned quality),
``run`` (the whole run, in order) and ``report``.

Imported as the top-level package ``audio``: ``python bench/audio_engine.py`` puts
``bench/`` first on ``sys.path``.  The test harness this bench reuses (``tests.system``,
``tests.throttle_proxy``) is not installed with the project, so the repository's root is
put on ``sys.path`` here, before any module of the package imports it.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(1, str(REPO))
