"""Catalog ids: stable 22-character base62 strings, like Spotify's.

Kept apart so the database layer can offer the same function to SQL (migrations
backfill rows with it) without importing the catalog.
"""

from __future__ import annotations

import hashlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62_id(seed: str) -> str:
    """A stable 22-character base62 id derived from ``seed``."""
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:17], "big")
    out = []
    for _ in range(22):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(out)


def artist_id(name: str) -> str:
    """Artists are named by their name alone (the demo catalog and ingest agree)."""
    return base62_id(f"artist:{name}")


def is_base62_id(value: str) -> bool:
    return len(value) == 22 and all(c in ALPHABET for c in value)
