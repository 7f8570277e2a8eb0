"""Encrypted offline segment store, licences and eviction policy.

Empty until the offline-cache issue; the package exists so the dependency graph
(``device -> offline_cache``, ``hub -> offline_cache``) is enforced from day one.
"""
