"""Audio delivery: the manifest (authenticated) and its segments (signed URLs).

The manifest needs a listener's bearer token or a speaker's broker login over
HTTP Basic, and hands out URLs that are themselves the capability: segment
requests touch neither the database nor the accounts, only the key ring and the
media store, so they stay cheap and could be answered by a CDN instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from connect_protocol import codec
from connect_protocol.media import Quality
from connect_protocol.topics import is_valid_device_id
from hub.context import HubContext
from hub.fleet.broker import UserLookup, verify_secret
from hub.fleet.provisioning import BrokerUserCache
from hub.http.deps import ContextDep, current_user
from hub.media import store
from hub.media.signing import KeyRing, Verdict, segment_url_path, sign_manifest

router = APIRouter(tags=["audio"])

SEGMENT_ROUTE = "/audio/{track_id}/{quality}/{segment}"
IMMUTABLE = "public, max-age=31536000, immutable"
_SEGMENT_FILE = re.compile(r"(0|[1-9][0-9]{0,5})\.ogg")  # fullmatch: no "0.ogg\n"
_QUALITIES = {q.label: q for q in Quality}


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioAccess:
    """What the audio routes need beyond the context: keys, and speakers' logins."""

    keys: KeyRing
    speakers: UserLookup

    @classmethod
    def for_context(cls, ctx: HubContext) -> AudioAccess:
        return cls(keys=KeyRing.open(ctx.data_dir), speakers=BrokerUserCache(ctx.db))


def get_audio(request: Request) -> AudioAccess:
    audio: AudioAccess = request.app.state.audio
    return audio


AudioDep = Annotated[AudioAccess, Depends(get_audio)]


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic`` header, else ``None``."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = text.partition(":")
    return (user, password) if sep and user and password else None


def speaker_login(request: Request, audio: AudioAccess) -> str:
    """The speaker whose broker login (``Authorization: Basic id:secret``) came with
    the request: 401 for none or a wrong one, 403 for a login that is not a speaker's."""
    credentials = basic_credentials(request.headers.get("authorization") or "")
    user = None
    if credentials is not None and is_valid_device_id(credentials[0]):
        found = audio.speakers(credentials[0])
        if found is not None and verify_secret(credentials[1], found.secret_hash):
            user = found
    if user is None:
        raise HTTPException(status_code=401, detail="Invalid device credentials")
    if user.role != "speaker":
        raise HTTPException(status_code=403, detail="Only speakers may use device credentials")
    return user.username


def manifest_reader(request: Request, ctx: ContextDep, audio: AudioDep) -> str:
    """Who may read manifests: a listener (bearer token) or a speaker (its broker login)."""
    header = request.headers.get("authorization") or ""
    if not header.lower().startswith("basic "):
        return f"user:{current_user(request, ctx).id}"
    return f"device:{speaker_login(request, audio)}"


ReaderDep = Annotated[str, Depends(manifest_reader)]

# Parses nothing itself (speaker_login reads the header): it is here so that
# /openapi.json says how speakers authenticate.
_speaker_basic = HTTPBasic(
    auto_error=False,
    scheme_name="SpeakerLogin",
    description="A speaker's broker login: its device id and broker secret.",
)


def authenticated_speaker(
    request: Request,
    audio: AudioDep,
    _documented: Annotated[HTTPBasicCredentials | None, Depends(_speaker_basic)] = None,
) -> str:
    """A route dependency: the id of the speaker making the request."""
    return speaker_login(request, audio)


SpeakerDep = Annotated[str, Depends(authenticated_speaker)]


@router.get("/v1/audio/{track_id}/manifest", summary="A track's segments, with signed URLs")
async def manifest(track_id: str, ctx: ContextDep, audio: AudioDep, _who: ReaderDep) -> Response:
    def signed() -> bytes | None:
        stored = store.load_manifest(ctx.db, track_id)
        return None if stored is None else codec.encode(sign_manifest(stored, audio.keys.signer()))

    if not store.TRACK_ID.fullmatch(track_id):
        raise HTTPException(status_code=404, detail="Track not found")
    body = await run_in_threadpool(signed)  # a long track is thousands of HMACs
    if body is None:
        raise HTTPException(status_code=404, detail="Track not found")
    return Response(
        body, media_type="application/json", headers={"Cache-Control": "private, no-store"}
    )


def _one(request: Request, name: str) -> str:
    values = request.query_params.getlist(name)
    return values[0] if len(values) == 1 else ""


def _as_sent(request: Request, path: str) -> bool:
    """The client wrote the path plainly: ``%2F`` and friends name no segment."""
    raw: bytes | None = request.scope.get("raw_path")
    return raw is None or raw.partition(b"?")[0].endswith(path.encode())


def _regular_file(path: Path) -> os.stat_result | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def strong_etag(path_key: str, st: os.stat_result) -> str:
    """Name, size and mtime: a segment's file is only replaced by a re-ingest."""
    base = f"{path_key}\n{st.st_size}\n{st.st_mtime_ns}".encode()
    return f'"{hashlib.blake2b(base, digest_size=16).hexdigest()}"'


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison, ``*`` matches any current representation."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


@router.get(
    SEGMENT_ROUTE,
    summary="One Ogg Vorbis segment; the query's signature is the capability",
    response_class=FileResponse,
)
@router.head(SEGMENT_ROUTE, include_in_schema=False)  # one operation id in the schema
async def segment(
    track_id: str, quality: str, segment: str, request: Request, ctx: ContextDep, audio: AudioDep
) -> Response:
    number = _SEGMENT_FILE.fullmatch(segment)
    level = _QUALITIES.get(quality)
    if number is None or level is None or not store.TRACK_ID.fullmatch(track_id):
        raise HTTPException(status_code=404, detail="Segment not found")
    n = int(number.group(1))
    path = segment_url_path(track_id, level, n)
    if not _as_sent(request, path):
        raise HTTPException(status_code=404, detail="Segment not found")
    exp, kid, sig = (_one(request, name) for name in ("exp", "kid", "sig"))
    verdict = audio.keys.verify(path, exp, kid, sig)
    if verdict is not Verdict.OK:
        raise HTTPException(status_code=403, detail=verdict.value)
    file = store.segment_path(ctx.data_dir, track_id, level, n)
    st = await run_in_threadpool(_regular_file, file)
    if st is None:
        raise HTTPException(status_code=404, detail="Segment not found")
    etag = strong_etag(path, st)
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(file, stat_result=st, media_type="audio/ogg", headers=headers)
