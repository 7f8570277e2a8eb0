"""Timing searches the way the hub runs them, and the baselines, on the same database.

Every timed search opens its own connection (``Database.reading``), as each request
to ``GET /v1/search`` does, and asks for tracks, artists and albums.  Baselines:

- ``FTS5 + bm25``: the same index and expressions, ranked the textbook way
  (``ORDER BY bm25(...) LIMIT n``) with an exact ``count(*)``, so FTS5 must visit
  every match instead of stopping at the first n in popularity order;
- ``LIKE``: ``tracks.name LIKE '%word%'`` by popularity, with no index at all.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from latency.common import Progress

from connect_protocol.mqtt import BrokerAddress
from hub.accounts import tokens as accounts
from hub.accounts import users
from hub.catalog import search
from hub.catalog.search.query import match_expression, parse
from hub.catalog.search.vocabulary import resolve
from hub.context import HubContext
from hub.db import Database
from hub.fleet.relay import Relay
from hub.http.app import create_app

KINDS = ("track", "artist", "album")


def _timed(
    label: str, queries: Sequence[str], run: Callable[[str], object], progress: Progress
) -> list[int]:
    samples: list[int] = []
    for n, q in enumerate(queries, start=1):
        started = time.perf_counter_ns()
        run(q)
        samples.append(time.perf_counter_ns() - started)
        progress.show(f"{label}: {n}/{len(queries)}")
    progress.finish(f"{label}: {len(queries)} queries")
    return samples


def hub_search(
    db: Database, label: str, queries: Sequence[str], limit: int, progress: Progress
) -> list[int]:
    def run(q: str) -> None:
        with db.reading() as conn:
            search.find(conn, q, KINDS, limit=limit, offset=0)

    return _timed(label, queries, run, progress)


def fts_bm25(
    db: Database, label: str, queries: Sequence[str], limit: int, progress: Progress
) -> list[int]:
    """Baseline: the same FTS5 expressions, ordered by bm25 over all matches, counted."""

    def run(q: str) -> None:
        with db.reading() as conn:
            parsed = resolve(conn, parse(q))
            for name in KINDS:
                kind = search.KINDS[name]
                expression = match_expression(
                    parsed, kind.text_columns, kind.field_columns, kind.year_column
                )
                if expression is None:
                    continue
                weights = ", ".join(map(str, kind.weights))
                fts = kind.fts
                conn.execute(
                    f"SELECT rowid FROM {fts} WHERE {fts} MATCH ?"
                    f" ORDER BY bm25({fts}, {weights}) LIMIT ?",
                    (expression, limit),
                ).fetchall()
                conn.execute(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH ?", (expression,))

    return _timed(label, queries, run, progress)


def like_scan(db: Database, label: str, words: Sequence[str], progress: Progress) -> list[int]:
    """Baseline: a substring scan of track names, most popular first."""

    def run(word: str) -> None:
        with db.reading() as conn:
            conn.execute(
                "SELECT id FROM tracks WHERE name LIKE ? ORDER BY popularity DESC LIMIT 20",
                (f"%{word}%",),
            ).fetchall()

    return _timed(label, words, run, progress)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serving(db: Database, data_dir: Path) -> Iterator[str]:
    """The hub's app (no broker, no rate limits) under uvicorn on loopback."""
    ctx = HubContext(
        data_dir=data_dir,
        db=db,
        relay=Relay(db, BrokerAddress(host="127.0.0.1", port=1, username="hub", password="-")),
        public_mqtt_host="127.0.0.1",
        public_mqtt_port=1,
    )
    app = create_app(ctx, manage_relay=False, rate_limits=None)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="bench-uvicorn")
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the hub did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def over_http(
    db: Database, data_dir: Path, label: str, queries: Sequence[str], progress: Progress
) -> list[int]:
    """``GET /v1/search`` on a real server: search plus the item objects and JSON."""
    logging.getLogger("hub").setLevel(logging.WARNING)
    user = users.add_user(db, "bench", "bench password")
    token = accounts.issue_token(db, user).access_token
    with _serving(db, data_dir) as url, httpx.Client(base_url=url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {token}"}

        def run(q: str) -> None:
            r = client.get(
                "/v1/search",
                params={"q": q, "type": ",".join(KINDS), "limit": 10},
                headers=headers,
            )
            if r.status_code != 200:
                raise RuntimeError(f"GET /v1/search?q={q!r} answered {r.status_code}: {r.text}")

        for q in queries[:10]:  # the first requests pay for imports and connections
            run(q)
        return _timed(label, queries, run, progress)
