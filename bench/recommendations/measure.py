"""Timed requests: the Web API's control path, recommendations over HTTP, and the
``Recommender`` called in process.  Every loop is bounded in count and in time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from latency.stats import LatencyStats

#: What a phone's remote polls and sends without a speaker: the device list and the
#: player's state (204 when nothing plays).
CONTROL_PATHS = ("/v1/me/player/devices", "/v1/me/player")


@dataclass(slots=True)
class Samples:
    ns: list[int] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    def stats(self) -> dict[str, float]:
        s = LatencyStats.of(self.ns)
        return {"n": s.n, "p50": s.p50, "p90": s.p90, "p99": s.p99, "max": s.max}


def _timed_get(client: httpx.Client, path: str, params: Any, out: Samples) -> httpx.Response | None:
    started = time.perf_counter_ns()
    try:
        r = client.get(path, params=params)
    except httpx.HTTPError as exc:
        out.errors += 1
        out.first_error = out.first_error or f"{path}: {exc!r}"
        return None
    out.ns.append(time.perf_counter_ns() - started)
    if r.status_code not in (200, 204):
        out.errors += 1
        out.first_error = out.first_error or f"{path}: {r.status_code} {r.text[:200]}"
    return r


def control_path(
    base: str,
    token: str,
    *,
    count: int,
    interval_s: float,
    max_s: float,
    stop: threading.Event | None = None,
) -> Samples:
    """Paced control requests (one every ``interval_s``, as a remote polls) until
    ``count`` are done, ``max_s`` has passed, or ``stop`` is set."""
    out = Samples()
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + max_s
    with httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False) as client:
        for path in CONTROL_PATHS:  # connection and first-request costs, not timed
            client.get(path)
        for n in range(count):
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                break
            tick = time.monotonic()
            _timed_get(client, CONTROL_PATHS[n % len(CONTROL_PATHS)], None, out)
            time.sleep(max(0.0, interval_s - (time.monotonic() - tick)))
    return out


def recommendations(
    base: str, token: str, seeds: Sequence[str], *, count: int, max_s: float
) -> tuple[Samples, int]:
    """``GET /v1/recommendations?seed_tracks=…`` back to back; the tracks in the last answer."""
    out = Samples()
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + max_s
    answered = 0
    with httpx.Client(base_url=base, headers=headers, timeout=30, trust_env=False) as client:
        for seed in seeds[:5]:  # warm-up
            client.get("/v1/recommendations", params={"seed_tracks": seed, "limit": 20})
        for n in range(count):
            if time.monotonic() > deadline:
                break
            params = {"seed_tracks": seeds[n % len(seeds)], "limit": 20}
            r = _timed_get(client, "/v1/recommendations", params, out)
            if r is not None and r.status_code == 200:
                answered = len(r.json().get("tracks", []))
    return out, answered


def in_process(
    data: Path, pairs: Sequence[tuple[int, str]], *, count: int, max_s: float
) -> dict[str, tuple[Samples, int]]:
    """``Recommender`` timed directly for (listener, seed track) pairs on the hub's
    database and newest model: ``recommend`` (what ``/v1/recommendations`` asks) and
    ``radio`` (what the player asks when a context ends), each ``count`` calls."""
    from hub.context import hub_database
    from hub.recommend.service import Ask, Recommender

    rec = Recommender(hub_database(data / "hub.db"), data)
    calls: dict[str, Callable[[int, str], list[str]]] = {
        "recommend": lambda user, seed: rec.recommend(user, Ask(seed_tracks=[seed], limit=20)),
        "radio": lambda user, seed: rec.radio(user, f"legato:track:{seed}", limit=20),
    }
    out: dict[str, tuple[Samples, int]] = {}
    for name, call in calls.items():
        samples = Samples()
        picked: list[str] = []
        for user_id, seed in pairs[:5]:  # the model's loading, not timed
            call(user_id, seed)
        deadline = time.monotonic() + max_s
        for n in range(count):
            if time.monotonic() > deadline:
                break
            user_id, seed = pairs[n % len(pairs)]
            started = time.perf_counter_ns()
            picked = call(user_id, seed)
            samples.ns.append(time.perf_counter_ns() - started)
        out[name] = (samples, len(picked))
    return out
