"""The listener's pages: ``/login``, the ``/remote`` app shell, its manifest and worker."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from hub.web.session import page_user, to_login
from hub.web.templating import STATIC_DIR, static_version, templates

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/remote", status_code=303)


@router.get("/login")
async def login(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {})


@router.get("/remote")
async def remote(request: Request) -> Response:
    user = page_user(request)
    if user is None:
        return to_login(request)
    return templates.TemplateResponse(request, "remote.html", {"user": user})


@router.get("/remote/manifest.webmanifest")
async def manifest() -> Response:
    body = templates.get_template("manifest.webmanifest").render(version=static_version())
    return Response(body, media_type="application/manifest+json")


@router.get("/remote/sw.js")
async def service_worker() -> Response:
    # Served from /remote/ so that its scope is the app; never cached itself,
    # so a new release's worker is found at once.
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )
