"""The encrypted segment store: sealed blobs on disk, an SQLite index, and the keys.

Layout under the cache directory::

    index.db                      tracks, segments, licences, meta (WAL)
    cache.key                     the device's key for the streaming tier (0600)
    blobs/<track>/<quality>/<n>.seg   AES-256-GCM sealed segments
    tmp/                          blobs being written
    clean                         present only between a clean close and the next open

Two tiers share the blobs: the **streaming** tier (whatever played, content keys
wrapped by the device's ``cache.key``, least recently used out first under a
cap) and the **offline** tier (explicit downloads, content keys wrapped by the
account's KEK, which opens only through a valid licence addressed to this
device).  A track moves between tiers by re-wrapping its content key; its blobs
stay where they are.

Crash safety: a blob is written to ``tmp/``, fsynced, renamed into place and its
directory fsynced *before* its index row is inserted (one transaction), so an
index row always names a whole blob.  After an unclean stop (no ``clean``
marker) the store drops leftovers in ``tmp/`` and blobs with no index row, and
index rows whose blob is gone.  A blob that fails its tag when read is deleted
with its row and reported, never handed out: the caller fetches it again.

The parts: ``offline_store`` (:class:`OfflineStore`, the front), ``index`` (every
SQL statement), ``blobs`` (the files), ``keyring`` (KEKs and licences) and
``repair``.  Callers import from here.
"""

from __future__ import annotations

from offline_cache.errors import StoreError
from offline_cache.store.index import OFFLINE, STREAM, TrackRecord
from offline_cache.store.offline_store import OfflineStore
from offline_cache.store.repair import Consistency

__all__ = ["OFFLINE", "STREAM", "Consistency", "OfflineStore", "StoreError", "TrackRecord"]
