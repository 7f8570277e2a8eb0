"""The operator's console, ``/dashboard``: server-rendered pages for administrators.

Pages are ``GET``s decided by the ``legato_token`` cookie (hub/web/session.py):
no valid cookie goes to the login page, a listener's account gets a plain 403
page with no fleet data in it.  Everything the pages change goes through the
admin JSON (routes/admin*.py) with the bearer token, from static/dashboard.js.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from connect_protocol.tls import fingerprint
from hub.accounts import admin as user_admin
from hub.accounts import scopes
from hub.accounts.users import User
from hub.catalog import reads
from hub.clock import now_ms
from hub.context import HubContext
from hub.fleet import enrolment, pki
from hub.fleet import events as device_events
from hub.fleet.local_control import local_token
from hub.releases.status import DISPLAY_STATES
from hub.web import charts_page, formatting, health_view
from hub.web.fleet import fleet_rows
from hub.web.session import page_session, page_user, to_login
from hub.web.templating import templates

router = APIRouter(prefix="/dashboard", include_in_schema=False)
T = TypeVar("T")

templates.env.filters.update(
    when=formatting.when,
    when_s=formatting.when_s,
    size=formatting.size,
    percent=formatting.percent,
    duration=formatting.duration,
)
#: the releases whose per-speaker table the page shows (the newest)
RELEASES_WITH_SPEAKERS = 5
#: (path, label) of the navigation, in order
SECTIONS = (
    ("/dashboard", "Fleet"),
    ("/dashboard/speakers", "Speakers"),
    ("/dashboard/charts", "Charts"),
    ("/dashboard/catalog", "Catalog"),
    ("/dashboard/users", "Users"),
    ("/dashboard/licences", "Licences"),
    ("/dashboard/releases", "Releases"),
    ("/dashboard/health", "Health"),
)


def _ctx(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.ctx
    return ctx


def _refuse(request: Request) -> Response | None:
    """The redirect or the refusal for anyone but a signed-in administrator."""
    session = page_session(request)
    if session is None:
        return to_login(request)
    user = session.user
    if not user.is_admin or scopes.ADMIN not in session.scopes:
        return templates.TemplateResponse(
            request, "dashboard/forbidden.html", {"user": user}, status_code=403
        )
    return None


def _render(
    request: Request, name: str, section: str, *, status: int = 200, **context: Any
) -> Response:
    user: User | None = page_user(request)
    now = now_ms()
    return templates.TemplateResponse(
        request,
        f"dashboard/{name}",
        {
            "user": user,
            "sections": SECTIONS,
            "section": section,
            "now_ms": now,
            "ago": lambda ms: formatting.ago(ms, now),
            **context,
        },
        status_code=status,
    )


async def _read(request: Request, query: Callable[[sqlite3.Connection], T]) -> T:
    def run() -> T:
        with _ctx(request).db.reading() as conn:
            return query(conn)

    return await run_in_threadpool(run)


@router.get("")
async def fleet(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    devices = list(_ctx(request).relay.devices.values())
    rows = await _read(request, lambda conn: fleet_rows(conn, devices, now_ms()))
    return _render(request, "fleet.html", "/dashboard", speakers=rows)


@router.get("/speakers")
async def setups(request: Request) -> Response:
    """Flashed speakers from enrolment to first boot, and new enrolment codes."""
    if (refused := _refuse(request)) is not None:
        return refused
    ctx = _ctx(request)
    online = {device_id for device_id, d in ctx.relay.devices.items() if d.online}
    rows = await _read(request, enrolment.setups)
    ca = await run_in_threadpool(pki.ca_pem, ctx.data_dir)
    return _render(
        request,
        "setups.html",
        "/dashboard/speakers",
        setups=rows,
        online=online,
        fingerprint=fingerprint(ca),
        https_port=ctx.public_https_port or 8443,
        in_clear=request.url.scheme != "https"
        and request.url.hostname not in ("127.0.0.1", "localhost", "::1"),
    )


@router.get("/speakers/{device_id}")
async def speaker(request: Request, device_id: str) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    device = _ctx(request).relay.devices.get(device_id)
    if device is None:
        return _render(request, "missing.html", "/dashboard", status=404, device_id=device_id)
    row, events = await _read(
        request,
        lambda conn: (
            fleet_rows(conn, [device], now_ms())[0],
            device_events.recent(conn, device_id, 50),
        ),
    )
    live = [
        {
            "kind": e.kind.value,
            "ts_ms": e.timestamp_ms,
            "track_id": e.track_uri or "",
            "message": e.message,
        }
        for e in reversed(device.recent_events)
    ]
    stored = [vars_of(e) for e in events]
    return _render(
        request,
        "speaker.html",
        "/dashboard",
        s=row,
        state=device.state,
        events=stored or live,
        local_token=await run_in_threadpool(local_token, _ctx(request).data_dir, device_id),
    )


def vars_of(e: device_events.StoredEvent) -> dict[str, Any]:
    return {
        "kind": e.kind,
        "ts_ms": e.ts_ms,
        "track_id": e.track_id,
        "track": e.track_name or e.track_id,
        "played_ms": e.played_ms,
        "message": e.message,
    }


@router.get("/charts")
async def charts(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    view = await _read(request, lambda conn: charts_page.build(conn, now_ms()))
    return _render(request, "charts.html", "/dashboard/charts", charts=view)


@router.get("/catalog")
async def catalog(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    counts = await _read(request, reads.counts)
    job = _ctx(request).ingest.current()
    return _render(request, "catalog.html", "/dashboard/catalog", counts=counts, job=job)


@router.get("/users")
async def users(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    people = await _read(request, lambda conn: user_admin.list_users(conn, now_ms()))
    return _render(request, "users.html", "/dashboard/users", users=people)


@router.get("/licences")
async def licences(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    rows = await run_in_threadpool(_ctx(request).offline.licences)
    return _render(request, "licences.html", "/dashboard/licences", licences=rows)


@router.get("/releases")
async def releases(request: Request) -> Response:
    """Releases with their rollouts, and each speaker's progress on the newest ones."""
    if (refused := _refuse(request)) is not None:
        return refused
    service = _ctx(request).releases
    found = await run_in_threadpool(service.summaries)
    speakers = {}
    for r in found[:RELEASES_WITH_SPEAKERS]:
        speakers[r["version"]] = (await run_in_threadpool(service.devices, r["version"]))[1]
    key = await run_in_threadpool(lambda: service.key.public_text)
    return _render(
        request,
        "releases.html",
        "/dashboard/releases",
        releases=found,
        speakers=speakers,
        release_key=key,
        states=DISPLAY_STATES,
    )


@router.get("/health")
async def health(request: Request) -> Response:
    if (refused := _refuse(request)) is not None:
        return refused
    report = await health_view.collect(_ctx(request), request.app.version)
    return _render(request, "health.html", "/dashboard/health", health=report)
