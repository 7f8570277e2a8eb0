"""The maker's path over HTTP: enrolment codes, speaker registration, first boot.

``legato-flash`` registers a speaker with ``POST /api/speakers``, authorised by an
administrator's bearer token or by a one-time enrolment code in the body, and gets
back the speaker's config files (broker secret included: call it over the hub's
HTTPS, whose certificate the flasher pins).  Failed codes count against the
caller's address like failed logins.  The speaker reports the end of its first
boot with its own login (``POST /v1/devices/{id}/first-boot``).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.accounts import scopes, tokens
from hub.accounts.throttle import LoginThrottle
from hub.clock import now_ms
from hub.errors import TokenRejected
from hub.fleet import enrolment, pki
from hub.http.deps import AdminDep, ContextDep, bearer_token
from hub.http.routes.audio import SpeakerDep

router = APIRouter(tags=["speaker set-up"])
PEM = "application/x-pem-file"


class NewSpeaker(BaseModel):
    name: str = Field(min_length=1, max_length=enrolment.MAX_NAME)
    board: str = Field(default="", max_length=64, description="a board profile's key")
    hub_url: str = Field(
        default="", max_length=200, description="the hub's https:// address the speaker uses"
    )
    enrol_code: str | None = Field(
        default=None, max_length=40, description="a one-time code, instead of an admin token"
    )


@router.get(
    "/api/hub-ca",
    summary="The hub's CA certificate (public): legato-flash checks its fingerprint",
    response_class=Response,
    responses={
        200: {
            "description": "the CA certificate, PEM",
            "content": {PEM: {"schema": {"type": "string"}}},
        }
    },
)
async def hub_ca(ctx: ContextDep) -> Response:
    pem = await run_in_threadpool(pki.ca_pem, ctx.data_dir)
    return Response(pem, media_type=PEM)


@router.post(
    "/api/admin/enrolments",
    status_code=201,
    summary="A one-time enrolment code for legato-flash (single use, 1 hour)",
)
async def new_enrolment(ctx: ContextDep, admin: AdminDep) -> dict[str, Any]:
    made = await run_in_threadpool(
        lambda: enrolment.create(ctx.db, created_by=admin.name, now_ms=now_ms())
    )
    return {"code": made.code, "expires_ms": made.expires_ms}


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _admin_name(request: Request, ctx: Any) -> str | None:
    """The administrator behind the bearer token, None without one; 401/403 for a bad one."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return None
    try:
        session = tokens.access_session(ctx.db, token)
    except TokenRejected as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from None
    if not session.user.is_admin or scopes.ADMIN not in session.scopes:
        raise HTTPException(
            status_code=403,
            detail=f"registering a speaker needs an administrator's token with {scopes.ADMIN}",
        )
    return session.user.name


@router.post(
    "/api/speakers",
    status_code=201,
    summary="Register a speaker (admin token or enrolment code); returns its config files",
)
async def register(body: NewSpeaker, request: Request, ctx: ContextDep) -> Response:
    client = request.client.host if request.client else "-"
    if request.url.scheme != "https" and not _loopback(client):
        # the answer carries the speaker's broker secret: never in clear on the network
        raise HTTPException(
            status_code=403,
            detail="register speakers over the hub's HTTPS port (8443 by default), "
            "whose certificate legato-flash checks",
        )
    throttle: LoginThrottle = request.app.state.address_throttle
    if wait_s := throttle.retry_after_s("enrol", client):
        return JSONResponse(
            {"error": {"status": 429, "message": "Too many attempts; retry later"}},
            status_code=429,
            headers={"Retry-After": str(wait_s)},
        )
    admin = await run_in_threadpool(_admin_name, request, ctx)

    def run() -> enrolment.Registration:
        return enrolment.register(
            ctx.db,
            ctx.data_dir,
            name=body.name,
            board=body.board,
            hub_url=body.hub_url,
            code=body.enrol_code,
            admin=admin,
            now_ms=now_ms(),
            release_key=ctx.releases.key.public_text,
        )

    try:
        made = await run_in_threadpool(run)
    except enrolment.EnrolmentRefused:
        throttle.record("enrol", client, succeeded=False)
        raise
    files = {f.name: {"text": f.text, "secret": f.secret} for f in made.files}
    return JSONResponse(
        {"device_id": made.device_id, "name": made.name, "files": files},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/v1/devices/{device_id}/first-boot",
    status_code=204,
    summary="A flashed speaker says its first boot is done (its own login)",
)
async def first_boot(device_id: str, ctx: ContextDep, speaker: SpeakerDep) -> Response:
    if device_id != speaker:
        raise HTTPException(status_code=403, detail="a speaker may only report for itself")
    await run_in_threadpool(enrolment.first_boot_done, ctx.db, device_id, now_ms())
    return Response(status_code=204)
