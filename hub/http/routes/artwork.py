"""Album art over HTTP: the sized file (:mod:`hub.media.artwork`) with a strong ETag
from its bytes and a day of caching, so a re-ingest with new art changes the ETag."""

from __future__ import annotations

import hashlib

from fastapi import Request, Response

from hub.context import HubContext
from hub.media.artwork import sized_art


def serve(ctx: HubContext, album_id: str, size: int, request: Request) -> Response:
    path, mime = sized_art(ctx.db, ctx.data_dir, album_id, size)
    data = path.read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=mime, headers=headers)
