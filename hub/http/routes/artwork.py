"""Album art at the sizes the catalog objects link to, resized once and kept on disk.

The original stays as ingest found it (``art/{album_id}.{ext}``); each size is made
on first request with Pillow and written atomically under ``art/sized/`` so later
requests are a file read.  Strong ETags from the file and a day of caching: a
re-ingest with new art changes the ETag.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from fastapi import Request, Response
from PIL import Image, ImageOps, UnidentifiedImageError

from hub.context import HubContext
from hub.errors import NotFound
from hub.ingest.files import write_atomic


def _sized(ctx: HubContext, album_id: str, size: int) -> tuple[Path, str]:
    with ctx.db.reading() as conn:
        row = conn.execute(
            "SELECT mime, path FROM album_art WHERE album_id = ?", (album_id,)
        ).fetchone()
    if row is None:
        raise NotFound(f"Album {album_id} has no art")
    original = ctx.data_dir / row["path"]
    ext = "png" if row["mime"] == "image/png" else "jpg"
    target = ctx.data_dir / "art" / "sized" / f"{album_id}-{size}.{ext}"
    try:
        fresh = target.exists() and target.stat().st_mtime >= original.stat().st_mtime
    except OSError:
        raise NotFound(f"Album {album_id}'s art is missing from the store") from None
    if fresh:
        return target, row["mime"]
    try:
        with Image.open(original) as source:
            # the square size the album object promises, centred, up or down
            image = ImageOps.fit(source, (size, size), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            if ext == "png":
                image.save(out, "PNG", optimize=True)
            else:
                image.convert("RGB").save(out, "JPEG", quality=88)
    except (OSError, UnidentifiedImageError) as exc:
        raise NotFound(f"Album {album_id}'s art cannot be read: {exc}") from exc
    write_atomic(target, out.getvalue())
    return target, row["mime"]


def serve(ctx: HubContext, album_id: str, size: int, request: Request) -> Response:
    path, mime = _sized(ctx, album_id, size)
    data = path.read_bytes()
    etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=mime, headers=headers)
