"""The bodies the listener's library routes take: playlists and saved tracks.

Shaped as Spotify documents them, with what its clients really send accepted too
(spotipy posts a playlist's new items as a bare list of URIs).  Unknown fields are
ignored; a wrong type is a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from hub.fields import StrictBoolean, Text, Whole, refuse, string_list


def _uri_list(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw):
        raise refuse("must be a list of track URIs")
    return list(raw)


UriList = Annotated[list[str], BeforeValidator(_uri_list)]


def _listed(data: Any, key: str) -> Any:
    """A bare JSON list stands for ``{key: [...]}`` (spotipy posts new items so)."""
    return {key: data} if isinstance(data, list) else data


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PlaylistDetails(_Body):
    """A playlist's details; those left out stay as they are."""

    name: Text | None = None
    description: Text | None = None
    public: StrictBoolean | None = None
    collaborative: StrictBoolean | None = None


class NewPlaylist(PlaylistDetails):
    """A playlist to create: public unless ``public`` is false; a collaborative one is
    never public."""

    name: Annotated[Text, Field(description="1-200 characters")]


class AddItems(_Body):
    """Tracks to add, at ``position`` (the end when absent); also as a bare list."""

    uris: Annotated[UriList | None, Field(description="Track URIs, at most 100")] = None
    position: Whole | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return _listed(data, "uris")


class ChangeItems(_Body):
    """Reorder (``range_start``, ``insert_before``, ``range_length``) or replace (``uris``)."""

    range_start: Whole | None = None
    insert_before: Whole | None = None
    range_length: Whole | None = None
    snapshot_id: Text | None = None
    uris: UriList | None = None

    @property
    def reorders(self) -> bool:
        return self.range_start is not None or self.insert_before is not None


def _positions(raw: Any) -> Any:
    if raw is not None and (
        not isinstance(raw, list) or not all(isinstance(p, int) and p is not True for p in raw)
    ):
        raise refuse("must be a list of integers")
    return raw


class RemovedItem(_Body):
    uri: Text
    positions: Annotated[list[int], BeforeValidator(_positions)] | None = None


def _items(raw: Any) -> Any:
    if not isinstance(raw, list) or not raw:
        raise refuse("must be a non-empty list of {uri, positions?}")
    return raw


class RemoveItems(_Body):
    """Items to remove (``items``, or ``tracks`` as older clients say), each everywhere
    in the playlist or only at ``positions``."""

    items: Annotated[list[RemovedItem], BeforeValidator(_items)] | None = None
    tracks: Annotated[list[RemovedItem], BeforeValidator(_items)] | None = None
    snapshot_id: Text | None = None

    @model_validator(mode="after")
    def _some(self) -> RemoveItems:
        if self.items is None and self.tracks is None:
            raise refuse("items must be a non-empty list of {uri, positions?}")
        return self

    @property
    def removals(self) -> list[RemovedItem]:
        return self.items if self.items is not None else self.tracks or []


_some_tracks = string_list("must name at least one track")


class SavedTrackIds(_Body):
    """``PUT``/``DELETE /v1/me/tracks``: ids in the body (or the ``ids`` query)."""

    ids: Annotated[list[str], BeforeValidator(_some_tracks)]

    @property
    def listed(self) -> list[str]:
        return self.ids

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return _listed(data, "ids")


class SavedTrackUris(_Body):
    """``PUT``/``DELETE /v1/me/library``: URIs in the body (or the ``uris`` query)."""

    uris: Annotated[list[str], BeforeValidator(_some_tracks)]

    @property
    def listed(self) -> list[str]:
        return self.uris

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return _listed(data, "uris")
