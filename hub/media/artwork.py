"""Album art at the sizes the catalog objects link to, resized once and kept on disk.

The original stays as ingest found it (``art/{album_id}.{ext}``); each size is made
on first request with Pillow and written atomically under ``art/sized/`` so later
requests are a file read.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from hub.db import Database
from hub.errors import NotFound
from hub.files import write_atomic
from hub.media import store


def sized_art(db: Database, data_dir: Path, album_id: str, size: int) -> tuple[Path, str]:
    """The album's art as a ``size`` px square file (made now if need be) and its type."""
    with db.reading() as conn:
        found = store.album_art(conn, album_id)
    if found is None:
        raise NotFound(f"Album {album_id} has no art")
    mime, stored = found
    original = data_dir / stored
    ext = "png" if mime == "image/png" else "jpg"
    target = data_dir / "art" / "sized" / f"{album_id}-{size}.{ext}"
    try:
        fresh = target.exists() and target.stat().st_mtime >= original.stat().st_mtime
    except OSError:
        raise NotFound(f"Album {album_id}'s art is missing from the store") from None
    if fresh:
        return target, mime
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
    return target, mime
