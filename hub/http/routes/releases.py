"""Signed releases over HTTP: what speakers ask (their offer, the bundle) and what the
operator does (add a wheel, roll out, halt, follow each speaker).

Speakers authenticate with their broker login (HTTP Basic, ``SpeakerDep``) and may
only ask for their own offer; any speaker may fetch a bundle (it is signed, not
secret), with ``Range`` to resume.  Everything else is for administrators
(``AdminDep``, the bearer token); a wheel is sent as ``multipart/form-data`` (field
``wheel``) or as the raw body with ``?filename=``, at most 100 MiB.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile

from hub.errors import ReleaseRefused
from hub.http.deps import AdminDep, ContextDep
from hub.http.routes.audio import SpeakerDep, not_modified
from hub.releases import adding, service
from releases.manifest import MAX_NOTES, WHEEL_NAME

router = APIRouter(tags=["releases"])

#: the body cap of ``POST /v1/releases`` (hub.http.body_caps), with room for the form
MAX_UPLOAD_BYTES = adding.MAX_WHEEL_BYTES + 1024 * 1024
UPLOAD_PATH = re.compile(r"/v1/releases")
BUNDLE_ROUTE = "/v1/releases/{version}/bundle"


class RolloutRequest(BaseModel):
    """Either ``percent`` or ``devices``; ``wave`` caps the speakers in flight at once."""

    percent: int | None = Field(default=None, ge=1, le=100)
    devices: list[str] | None = Field(default=None, min_length=1, max_length=service.MAX_DEVICES)
    wave: int | None = Field(default=None, ge=1, le=service.MAX_DEVICES)


class HaltRequest(BaseModel):
    reason: str = Field(default=service.OPERATOR_HALT, min_length=1, max_length=500)


class BundleResponse(FileResponse):
    """One byte range at most: a resumed download needs no more, and a request for
    many is refused rather than answered piece by piece."""

    max_ranges = 1


# --- speakers ---------------------------------------------------------------------


@router.get(
    "/v1/devices/{device_id}/update",
    summary="A speaker asks for the release it should install (204: none)",
    responses={204: {"description": "nothing offered now"}},
)
async def update_offer(device_id: str, ctx: ContextDep, speaker: SpeakerDep) -> Response:
    if device_id != speaker:
        raise HTTPException(
            status_code=403, detail=f"speaker {speaker} may only ask for its own updates"
        )
    offer = await run_in_threadpool(ctx.releases.offer, device_id)
    if offer is None:
        return Response(status_code=204)
    return Response(
        json.dumps(offer.to_json(), separators=(",", ":")).encode(),
        media_type="application/json",
        headers={"Cache-Control": "private, no-store"},
    )


@router.get(BUNDLE_ROUTE, summary="A release's signed bundle (Range resumes a download)")
@router.head(BUNDLE_ROUTE, include_in_schema=False)
async def bundle(version: str, request: Request, ctx: ContextDep, _speaker: SpeakerDep) -> Response:
    try:
        found = await run_in_threadpool(ctx.releases.release, version)
    except ReleaseRefused:
        raise HTTPException(status_code=404, detail="No such release") from None
    path = Path(found.path)
    try:
        st = await run_in_threadpool(path.stat)
    except OSError:
        raise HTTPException(status_code=404, detail="The release's bundle is missing") from None
    etag = f'"{found.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, max-age=86400, immutable"}
    if not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return BundleResponse(
        path,
        stat_result=st,
        media_type="application/x-tar",
        filename=path.name,
        headers=headers,
    )


# --- the operator -----------------------------------------------------------------


@router.get("/v1/releases", summary="Every release with its rollout and speakers per state")
async def list_releases(ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    return {"releases": await run_in_threadpool(ctx.releases.summaries)}


@router.post(
    "/v1/releases",
    status_code=201,
    summary="Add a release: a Legato wheel, signed into a bundle with the hub's release key",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "wheel": {"type": "string", "format": "binary"},
                            "notes": {"type": "string"},
                        },
                        "required": ["wheel"],
                    }
                },
                "application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "the wheel itself; name it with ?filename=",
                },
            },
        }
    },
)
async def add_release(
    request: Request,
    ctx: ContextDep,
    _admin: AdminDep,
    filename: Annotated[str | None, Query(max_length=200)] = None,
    notes: Annotated[str, Query(max_length=MAX_NOTES)] = "",
) -> dict[str, Any]:
    # The body is read only after AdminDep; hub.http.body_caps caps it.
    folder = ctx.data_dir / "releases" / f".upload-{secrets.token_hex(6)}"
    try:
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            wheel, notes = await _from_form(request, folder, notes)
        else:
            wheel = await _from_body(request, folder, filename)
        added = await run_in_threadpool(ctx.releases.add, wheel, notes=notes)
    finally:
        await run_in_threadpool(shutil.rmtree, folder, True)
    return added.to_json()


def _target(folder: Path, name: str | None) -> Path:
    base = Path((name or "").replace("\\", "/")).name
    if not WHEEL_NAME.fullmatch(base):
        raise ReleaseRefused(
            f"{base[:100] or 'the upload'} is not a Legato wheel (legato-VERSION-py3-none-any.whl)"
        )
    folder.mkdir(parents=True, mode=0o700)
    return folder / base


async def _from_form(request: Request, folder: Path, notes: str) -> tuple[Path, str]:
    form = await request.form(max_files=1, max_fields=2)
    try:
        upload = form.get("wheel")
        if not isinstance(upload, UploadFile):
            raise ReleaseRefused("send the wheel as the form's file field 'wheel'")
        text = form.get("notes")
        if isinstance(text, str) and text:
            notes = text[:MAX_NOTES]
        target = await run_in_threadpool(_target, folder, upload.filename)

        def save() -> None:
            with target.open("wb") as out:
                shutil.copyfileobj(upload.file, out, 1 << 20)

        await run_in_threadpool(save)
        return target, notes
    finally:
        await form.close()


async def _from_body(request: Request, folder: Path, filename: str | None) -> Path:
    if not filename:
        raise ReleaseRefused("name the wheel: POST /v1/releases?filename=legato-VERSION-….whl")
    target = await run_in_threadpool(_target, folder, filename)
    out = await run_in_threadpool(target.open, "wb")
    try:
        async for chunk in request.stream():
            await run_in_threadpool(out.write, chunk)
    finally:
        await run_in_threadpool(out.close)
    return target


@router.post("/v1/releases/{version}/rollout", summary="Start, widen or resume a rollout")
async def rollout(
    version: str, body: RolloutRequest, ctx: ContextDep, _admin: AdminDep
) -> dict[str, Any]:
    done = await run_in_threadpool(
        lambda: ctx.releases.rollout(
            version, percent=body.percent, devices=body.devices, wave=body.wave
        )
    )
    return {"version": version, "rollout": service.rollout_json(done)}


@router.post("/v1/releases/{version}/halt", summary="Stop offering a release")
async def halt(
    version: str, ctx: ContextDep, _admin: AdminDep, body: HaltRequest | None = None
) -> dict[str, Any]:
    reason = body.reason if body is not None else service.OPERATOR_HALT
    done = await run_in_threadpool(ctx.releases.halt, version, reason)
    return {"version": version, "rollout": service.rollout_json(done)}


@router.get("/v1/releases/{version}/devices", summary="Each speaker's progress, with reasons")
async def devices(version: str, ctx: ContextDep, _admin: AdminDep) -> dict[str, Any]:
    found, rows = await run_in_threadpool(ctx.releases.devices, version)
    return {
        "version": version,
        "rollout": service.rollout_json(found),
        "speakers": [r.to_json() for r in rows],
    }
