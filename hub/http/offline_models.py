"""Request and response shapes of the offline-download routes, so ``/openapi.json`` is
honest about them (and FastAPI turns a malformed body into a 400 before a route runs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from hub.http.models import ERROR_RESPONSES, ErrorObject
from hub.offline.items import MAX_URIS
from offline_cache.licence import MAX_TRACKS_PER_DEVICE

#: A raw 32-byte key in base64url without padding.
KEY_PATTERN = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"
MAX_SAFE = 2**53  # what every JSON reader keeps exact (and SQLite stores)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceKeys(Strict):
    x25519: str = Field(
        pattern=KEY_PATTERN, description="X25519 public key (raw 32 bytes, base64url, no padding)"
    )
    ed25519: str = Field(
        pattern=KEY_PATTERN, description="Ed25519 public key (raw 32 bytes, base64url, no padding)"
    )


class TrackReport(BaseModel):  # fields a newer speaker adds are ignored
    track_id: str = Field(pattern=r"^[0-9A-Za-z]{22}$")
    state: Literal["downloading", "ready", "failed"]
    bytes_done: int = Field(ge=0, le=MAX_SAFE)
    bytes_total: int = Field(ge=0, le=MAX_SAFE)
    error: str = Field(default="", description="why it failed (kept to 500 characters)")


class SyncRequest(BaseModel):
    ts: int = Field(ge=0, le=MAX_SAFE, description="the speaker's clock, ms since the epoch")
    progress: list[TrackReport] = Field(default=[], max_length=2 * MAX_TRACKS_PER_DEVICE)


class SignedLicence(BaseModel):
    body: str
    signature: str


class SyncTrack(BaseModel):
    track_id: str
    uri: str
    account: str
    name: str
    artists: list[str]
    album: str
    duration_ms: int
    explicit_ms: int | None = Field(description="when it was asked for by name (track, album)")
    playlist_position: int | None
    item_uri: str


class SyncResponse(BaseModel):
    hub_key: str = Field(description="the hub's Ed25519 licence key (raw, base64url)")
    now_ms: int
    licences: list[SignedLicence]
    revoked: list[str] = Field(description="accounts whose offline content must be shredded")
    tracks: list[SyncTrack]
    request_sha256: str = Field(description="SHA-256 (hex) of the request this answers")


class DownloadRequest(Strict):
    uris: list[str] = Field(
        min_length=1,
        max_length=MAX_URIS,
        description="legato:track:, legato:album: or legato:playlist: URIs",
    )


class DownloadItem(BaseModel):
    uri: str
    name: str
    requested_ms: int
    state: Literal["queued", "downloading", "ready", "failed"]
    tracks: int
    tracks_ready: int
    bytes_done: int
    bytes_total: int
    error: str


class LicenceSummary(BaseModel):
    id: str
    expires_ms: int
    expires: str
    revoked: bool


class Downloads(BaseModel):
    items: list[DownloadItem]
    licence: LicenceSummary | None


class BytesByQuality(BaseModel):
    low: int
    normal: int
    high: int
    very_high: int


class Estimate(BaseModel):
    tracks: int
    bytes: BytesByQuality
    duration_ms: int


class LicenceRow(BaseModel):
    id: str
    device_id: str
    device_name: str
    user: str
    epoch: int
    issued_ms: int
    expires_ms: int
    expires: str
    revoked_ms: int | None
    revoked: bool
    current: bool = Field(description="false once renewed or replaced by a newer licence")


class Licences(BaseModel):
    licences: list[LicenceRow]


OFFLINE_ERRORS: dict[int | str, dict[str, object]] = {
    **ERROR_RESPONSES,
    409: {"model": ErrorObject, "description": "Conflict: the message says what to do"},
}
