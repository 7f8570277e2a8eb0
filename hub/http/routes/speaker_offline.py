"""Speakers' side of offline downloads: register their keys, then sync, signed.

Both need the speaker's broker login (HTTP Basic), and a speaker may only speak
for itself.  A sync's body is signed as sent (``Legato-Signature``: base64url
Ed25519 over the exact bytes) with the key it registered, and stamped with its
clock, which must be within ten minutes of the hub's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool

from hub.errors import OfflineForbidden
from hub.http import offline_models as m
from hub.http.deps import ContextDep
from hub.http.routes.audio import SpeakerDep
from offline_cache.hub_messages import SIGNATURE_HEADER

router = APIRouter(prefix="/v1/devices", tags=["offline (speakers)"], responses=m.OFFLINE_ERRORS)


def _itself(device_id: str, speaker: str) -> None:
    if device_id != speaker:
        raise OfflineForbidden(
            f"speaker {speaker} may only register keys and sync for itself, not {device_id[:64]!r}"
        )


@router.put(
    "/{device_id}/keys",
    status_code=204,
    summary="A speaker registers its offline public keys (once per pairing)",
)
async def register_keys(
    device_id: str, keys: m.DeviceKeys, ctx: ContextDep, speaker: SpeakerDep
) -> Response:
    _itself(device_id, speaker)
    await run_in_threadpool(ctx.offline.register_keys, device_id, keys.x25519, keys.ed25519)
    return Response(status_code=204)


@router.post(
    "/{device_id}/offline/sync",
    summary="A speaker reports its downloads and learns its licences and tracks (signed)",
    response_model=m.SyncResponse,
)
async def sync(
    device_id: str,
    report: m.SyncRequest,
    request: Request,
    ctx: ContextDep,
    speaker: SpeakerDep,
    legato_signature: Annotated[
        str | None,
        Header(description="base64url Ed25519 signature of the exact body, by the speaker"),
    ] = None,
) -> Response:
    """The answer is signed in turn (``Legato-Signature``, by the hub's licence key) and
    names the request it answers (``request_sha256``)."""
    _itself(device_id, speaker)
    body = await request.body()  # the bytes as signed (FastAPI parsed the same bytes)
    reports = [r.model_dump() for r in report.progress]
    answer, signature = await run_in_threadpool(
        ctx.offline.signed_sync, device_id, body, legato_signature, report.ts, reports
    )
    return Response(answer, media_type="application/json", headers={SIGNATURE_HEADER: signature})
