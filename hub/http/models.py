"""The Web API's response shapes as pydantic models, so ``/openapi.json`` tells the truth.

The routes build plain dicts (``hub.objects``); these models only describe and check
them on the way out (FastAPI's ``response_model``), field for field as Spotify's
reference names them.  ``extra="allow"`` keeps Legato's own additions (ignored by
Spotify clients) in the response.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(Model):
    status: int
    message: str
    reason: str | None = None


class ErrorObject(Model):
    error: ErrorDetail


class Image(Model):
    url: str
    height: int | None
    width: int | None


class Followers(Model):
    href: str | None
    total: int


class Linked(Model):
    id: str
    type: str
    uri: str
    href: str
    external_urls: dict[str, str]


class SimplifiedArtist(Linked):
    name: str


class Artist(SimplifiedArtist):
    popularity: int
    genres: list[str]
    followers: Followers
    images: list[Image]


class SimplifiedAlbum(Linked):
    name: str
    album_type: str
    total_tracks: int
    available_markets: list[str]
    images: list[Image]
    release_date: str
    release_date_precision: str
    artists: list[SimplifiedArtist]
    is_playable: bool | None = None


class SimplifiedTrack(Linked):
    name: str
    artists: list[SimplifiedArtist]
    available_markets: list[str]
    disc_number: int
    track_number: int
    duration_ms: int
    explicit: bool
    is_local: bool
    preview_url: str | None
    is_playable: bool | None = None


class Track(SimplifiedTrack):
    album: SimplifiedAlbum | None
    popularity: int
    external_ids: dict[str, str]


class Paging(Model, Generic[T]):
    href: str
    items: list[T]
    limit: int
    next: str | None
    offset: int
    previous: str | None
    total: int


class Album(SimplifiedAlbum):
    label: str
    popularity: int
    genres: list[str]
    copyrights: list[dict[str, str]]
    external_ids: dict[str, str]
    tracks: Paging[SimplifiedTrack]


class PublicUser(Model):
    id: str
    type: str
    uri: str
    href: str
    display_name: str | None
    external_urls: dict[str, str]
    followers: Followers
    images: list[Image]


class PrivateUser(PublicUser):
    country: str
    product: str
    explicit_content: dict[str, bool]


class PlaylistTracksRef(Model):
    href: str
    total: int


class SimplifiedPlaylist(Linked):
    name: str
    description: str
    public: bool
    collaborative: bool
    owner: PublicUser
    snapshot_id: str
    images: list[Image]
    tracks: PlaylistTracksRef


class PlaylistTrack(Model):
    added_at: str
    added_by: PublicUser | None
    is_local: bool
    track: Track | None


class Playlist(SimplifiedPlaylist):
    tracks: Paging[PlaylistTrack]  # type: ignore[assignment]
    followers: Followers


class SnapshotId(Model):
    snapshot_id: str


class SavedTrack(Model):
    added_at: str
    track: Track | None


class Context(Model):
    type: str
    uri: str


class PlayHistory(Model):
    track: Track | None
    played_at: str
    context: Context | None


class Cursors(Model):
    after: str | None
    before: str | None


class CursorPaging(Model, Generic[T]):
    href: str
    items: list[T]
    limit: int
    next: str | None
    cursors: Cursors


class Queue(Model):
    currently_playing: Track | None
    queue: list[Track]


class AudioFeatures(Model):
    id: str
    type: str
    uri: str
    track_href: str
    analysis_url: str | None
    duration_ms: int
    danceability: float
    energy: float
    valence: float
    acousticness: float
    instrumentalness: float
    speechiness: float
    liveness: float
    loudness: float
    tempo: float
    key: int
    mode: int
    time_signature: int


class RecommendationSeed(Model):
    id: str
    type: str
    href: str | None
    initialPoolSize: int  # noqa: N815 - Spotify's field name
    afterFilteringSize: int  # noqa: N815
    afterRelinkingSize: int  # noqa: N815


class Recommendations(Model):
    seeds: list[RecommendationSeed]
    tracks: list[Track]


class SeveralTracks(Model):
    tracks: list[Track | None]


class SeveralAlbums(Model):
    albums: list[Album | None]


class SeveralArtists(Model):
    artists: list[Artist | None]


class ArtistTopTracks(Model):
    tracks: list[Track]


class SeveralAudioFeatures(Model):
    audio_features: list[AudioFeatures | None]


#: What every authenticated route may answer besides success, in Spotify's error format.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorObject, "description": text}
    for code, text in (
        (400, "Bad request: the message says what is wrong"),
        (401, "Bad or expired token"),
        (403, "Forbidden (scope, ownership or admin)"),
        (404, "Not found"),
        (429, "Rate limited: retry after the Retry-After header's seconds"),
    )
}
