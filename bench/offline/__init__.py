"""The parts of ``bench/offline_cache.py``, one job per module.

``common`` (options, targets, percentiles), ``pages`` (evicting a file's pages from the
page cache and checking that they went), ``cache`` (an ``OfflineStore`` holding the audio
bench's library as offline downloads, under a licence the bench signs itself),
``throughput`` (decrypt-and-read against plain ``.ogg`` reads), ``ttfa`` (time to first
audio from the cache with the hub stopped, against the hub and plain files), ``run`` and
``report``.

Imported as the top-level package ``offline``, the way ``audio`` and ``latency`` are:
``python bench/offline_cache.py`` puts ``bench/`` first on ``sys.path``.  The material
(the hub's demo library, ingested by the hub's pipeline and cached under
``bench/out/cache/audio``) and the hub rig are the audio bench's own (``audio.material``,
``audio.rig``); importing ``audio`` also puts the repository's root on ``sys.path``.
"""

import importlib
import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parents[1]


def _import_product_package() -> None:
    """Import the product's ``offline_cache`` package, not ``bench/offline_cache.py``.

    The entry point has the package's name, and Python puts the script's directory
    first on ``sys.path``, so ``import offline_cache`` would find the script.  The package
    is imported once here with ``bench/`` out of the path (its submodules then come from
    the package's own ``__path__``).
    """
    held = sys.modules.get("offline_cache")
    if held is not None and hasattr(held, "__path__"):
        return
    sys.modules.pop("offline_cache", None)
    saved = sys.path[:]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
    try:
        importlib.import_module("offline_cache")
    finally:
        sys.path[:] = saved


_import_product_package()
