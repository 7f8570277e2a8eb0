"""Encrypted offline segment store, licences, the key hierarchy, eviction and download policy.

- ``policy``: download order and eviction, pure functions over values.
- ``licence``: the hub-signed licence (Ed25519) that carries an account's KEK sealed to
  one device's X25519 key; issuing (hub) and checking (speaker), pure over the time.
- ``sealing``: AES-256-GCM for segments (per-track content keys) and for wrapped keys.
- ``device_keys``: the speaker's X25519 and Ed25519 keys (files of mode 0600).
- ``store``: sealed blobs and their SQLite index, two tiers, atomic writes, repair
  (a package: index, blobs, keyring, repair, and ``OfflineStore`` in front).
- ``private_files``: secrets written atomically with mode 0600 (speaker and hub).
- ``errors``: the root ``OfflineCacheError`` and the exception tree, drawn there.

The cryptography (AES-256-GCM, X25519, Ed25519, HKDF-SHA256) is the ``cryptography``
package's, on the speaker as on the hub; ``sealing`` and ``licence`` turn what it
raises into this package's errors.

The package's place in the dependency graph (``device -> offline_cache``,
``hub -> offline_cache``) is enforced by tests/test_architecture.py.
"""
