"""Catalog URIs as every part writes them: ``legato:KIND:ID`` (``spotify:`` accepted),
and radio contexts ``legato:radio:KIND:ID`` (tracks like a track, album or artist).

The one place that knows a URI's shape, so the hub (resolving and recording),
the speaker's engines (fetching a track's media) and the offline cache agree on
what id a URI names.  Pure: strings in, strings out.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Schemes a client may use; ``spotify:`` so clients that build Spotify URIs work unchanged.
URI_SCHEMES = ("legato", "spotify")
#: What a radio may start from: ``legato:radio:track:ID`` and so on.
RADIO_SEED_KINDS = ("track", "album", "artist")


@dataclass(frozen=True, slots=True)
class ParsedUri:
    kind: str
    id: str


def split_uri(uri: str) -> ParsedUri | None:
    """``scheme:kind:id`` with a known scheme and an alphanumeric id; ``None`` otherwise."""
    parts = uri.split(":")
    if len(parts) != 3 or parts[0] not in URI_SCHEMES or not parts[2].isalnum():
        return None
    return ParsedUri(parts[1], parts[2])


def track_id_of(uri: str) -> str:
    """The id a track URI names (its last field): ``legato:track:ID`` -> ``ID``.

    Lenient on purpose: a speaker reports whatever URI it was given, and the id is
    what the media store and the catalog key on.
    """
    return uri.rsplit(":", 1)[-1]


def radio_seed_of(uri: str) -> ParsedUri | None:
    """The seed of a radio context (``album``, ``ID`` of ``legato:radio:album:ID``); None
    for anything else, so a radio URI never passes for a catalog item."""
    parts = uri.split(":")
    if len(parts) != 4 or parts[0] != "legato" or parts[1] != "radio":
        return None
    seed = split_uri(f"legato:{parts[2]}:{parts[3]}")
    return seed if seed is not None and seed.kind in RADIO_SEED_KINDS else None


def radio_uri_of(seed_kind: str, item_id: str) -> str:
    """The radio context seeded from a catalog item: ``legato:radio:KIND:ID``."""
    return f"legato:radio:{seed_kind}:{item_id}"


def kind_of(uri: str) -> str | None:
    """The kind a URI names (``album`` of ``legato:album:ID``, ``radio`` of a radio
    context); None otherwise."""
    if radio_seed_of(uri) is not None:
        return "radio"
    parts = uri.split(":")
    return parts[1] if len(parts) == 3 else None


def uri_of(kind: str, item_id: str) -> str:
    """The canonical URI of a catalog item: ``legato:KIND:ID``."""
    return f"legato:{kind}:{item_id}"
