"""Encrypted offline segment store, licences and eviction policy.

So far: ``policy`` (download order and eviction, pure functions over values).  The
store, the index and licences come with the rest of the offline-cache issue; the
package's place in the dependency graph (``device -> offline_cache``,
``hub -> offline_cache``) is enforced by tests/test_architecture.py.
"""
