"""The FastAPI application factory."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.context import HubContext
from hub.errors import HubError
from hub.http.body_caps import BodyCaps, LargerBody
from hub.http.deps import admin_headers, install_rate_limits
from hub.http.ratelimit import DEFAULT_LIMITS, Category, Limit, RateLimiter
from hub.http.routes import (
    admin,
    admin_ingest,
    audio,
    auth,
    catalog_api,
    connect_ws,
    devices,
    enrolment,
    groups,
    health,
    history,
    offline,
    player,
    playlists,
    profile,
    releases,
    saved,
    search,
    speaker_offline,
)
from hub.http.routes.audio import AudioAccess
from hub.http.shapes import error_body
from hub.http.validation import message_of
from hub.web import dashboard, pages
from hub.web.templating import STATIC_DIR

logger = logging.getLogger(__name__)
UPLOAD_PATH = re.compile(r"/api/admin/ingest/upload")
SYNC_PATH = re.compile(r"/v1/devices/[^/]+/offline/sync")
MAX_SYNC_BYTES = 16 * 1024 * 1024


def create_app(
    ctx: HubContext,
    *,
    manage_relay: bool = True,
    audio_access: AudioAccess | None = None,
    rate_limits: Mapping[Category, Limit] | None = DEFAULT_LIMITS,
) -> FastAPI:
    """Build the app; with ``manage_relay`` the context's live parts (the relay and
    the recorder) start and stop with it.

    ``audio_access`` (signing keys, speakers' logins) defaults to the data dir's own;
    ``rate_limits`` None turns the per-user limits off.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_relay:
            await ctx.start()
        try:
            yield
        finally:
            if manage_relay:
                await ctx.stop()

    app = FastAPI(
        title="Legato hub",
        version="0.1.0",
        description="Spotify-Web-API-compatible control of Legato speakers.",
        lifespan=lifespan,
        # Swagger UI and ReDoc load their scripts from a CDN, which a hub with no
        # internet cannot reach: serve the description itself, not a blank page.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.audio = audio_access or AudioAccess.for_context(ctx)
    install_rate_limits(app, RateLimiter(rate_limits))  # app.state.rate_limiter, 429 handler
    app.add_middleware(
        BodyCaps,
        larger=[
            LargerBody(UPLOAD_PATH, admin_ingest.MAX_UPLOAD_BYTES, admin_headers(ctx)),
            LargerBody(SYNC_PATH, MAX_SYNC_BYTES),  # a speaker's reports on 10,000 tracks
            LargerBody(releases.UPLOAD_PATH, releases.MAX_UPLOAD_BYTES, admin_headers(ctx)),
        ],
    )
    routers = (auth, health, player, groups, devices, connect_ws, audio, catalog_api, search)
    library = (profile, playlists, saved, history)
    faces = (speaker_offline, enrolment, offline, pages, dashboard, admin, admin_ingest, releases)
    for module in (*routers, *library, *faces):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    """Every error answers in the Web API's format (``{"error": {status, message}}``)."""

    @app.exception_handler(HubError)
    async def hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, str(exc), exc.reason), status_code=exc.status)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body(500, "Internal server error"), status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(
            error_body(exc.status_code, str(exc.detail)),
            status_code=exc.status_code,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(400, message_of(exc.errors())), status_code=400)
