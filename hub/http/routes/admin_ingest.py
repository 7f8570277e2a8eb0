"""Catalog ingest from the dashboard: upload files, or name a folder on the hub.

One job at a time (``hub.ingest_jobs``): starting another while one runs is a
409.  Both starts answer 202 with the job; ``GET /api/admin/ingest`` is what
the page polls for progress and the per-file results and errors.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from hub.errors import IngestBusy
from hub.http.deps import AdminDep, ContextDep

router = APIRouter(prefix="/api/admin/ingest", tags=["dashboard"])

MAX_FILES = 200
MAX_UPLOAD_BYTES = 4 * 1024**3  # all the files of one upload together
_UNSAFE = re.compile(r"[^\w.\- ()\[\]&,'+]")


class ServerPath(BaseModel):
    path: str = Field(min_length=1, max_length=4096)


def safe_name(name: str | None, index: int) -> str:
    """A browser's file name as a plain name in one folder (no path, no dot-files)."""
    base = _UNSAFE.sub("_", Path((name or "").replace("\\", "/")).name).strip(" .")
    return base[:200] or f"upload-{index}"


def _busy(exc: IngestBusy) -> HTTPException:
    return HTTPException(status_code=409, detail=str(exc))


@router.get("", summary="The latest ingest job: progress, per-file results and errors")
async def current(ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    return {"job": ctx.ingest.current()}


@router.post(
    "/upload",
    status_code=202,
    summary="Ingest uploaded audio files",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "files": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                                "description": "audio files (.flac .wav .mp3 .ogg)",
                            }
                        },
                        "required": ["files"],
                    }
                }
            },
        }
    },
)
async def upload(ctx: ContextDep, _admin: AdminDep, request: Request) -> dict[str, Any]:
    # The form is read here, after AdminDep: nothing of an upload is read (or spooled to
    # disk) for anyone but an administrator; hub.http.body_caps caps what is read.
    form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
    try:
        files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        return await _ingest_upload(ctx, files)
    finally:
        await form.close()


async def _ingest_upload(ctx: ContextDep, files: list[UploadFile]) -> dict[str, Any]:
    if not files:
        raise HTTPException(status_code=400, detail="Choose at least one file")
    if len(files) > MAX_FILES:
        raise HTTPException(status_code=400, detail=f"At most {MAX_FILES} files at once")
    try:
        folder = await run_in_threadpool(ctx.ingest.reserve_upload_dir)
    except IngestBusy as exc:
        raise _busy(exc) from None

    def save() -> list[Path]:
        saved, total = [], 0
        for index, item in enumerate(files):
            target = folder / str(index) / safe_name(item.filename, index)
            target.parent.mkdir()
            with target.open("wb") as out:
                while chunk := item.file.read(1 << 20):
                    total += len(chunk)
                    if total > MAX_UPLOAD_BYTES:
                        raise HTTPException(status_code=413, detail="The upload is too large")
                    out.write(chunk)
            saved.append(target)
        return saved

    try:
        paths = await run_in_threadpool(save)
        job = ctx.ingest.start(paths, f"upload of {len(paths)} file(s)", remove=folder)
    except (HTTPException, IngestBusy, OSError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, IngestBusy):
            raise _busy(exc) from None
        if isinstance(exc, OSError):
            detail = f"Could not store the upload: {exc}"
            raise HTTPException(status_code=500, detail=detail) from exc
        raise
    return {"job": job.to_json()}


@router.post("/path", status_code=202, summary="Ingest a file or folder on the hub's disk")
async def from_path(body: ServerPath, ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    path = Path(body.path)
    if not path.is_absolute():
        raise HTTPException(status_code=400, detail="Give an absolute path on the hub")
    if not await run_in_threadpool(path.exists):
        raise HTTPException(status_code=400, detail=f"No such file or folder on the hub: {path}")
    try:
        job = ctx.ingest.start([path], str(path))
    except IngestBusy as exc:
        raise _busy(exc) from None
    return {"job": job.to_json()}
