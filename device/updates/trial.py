"""A release in trial earns its verdict: the pure rules, over events and time.

A new release runs in trial until it says whether it works (``releases.guard``
turns that word into "good" or a rollback at the next start).  Good means:

* it reached the hub: connected to the broker and published its status, which
  carries its version (not asked of a speaker with no broker credentials: a maker's
  USB-stick install with no hub at all is judged on playing alone);
* and it has been able to play for ``grace_s``: that long since the start (or since
  the engine last reported an error) with no error.

Failed means: no hub within ``deadline_s`` of the start; or the engine kept
reporting errors until ``limit_s`` (a release that cannot play); or the self-check
at start failed (:mod:`device.updates.self_check`, judged before this machine runs).

Invariants: a verdict, once reached, never changes; times only move forward (an
event older than the last one seen is taken as happening at that last time).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class HubReached:
    at_s: float


@dataclass(frozen=True, slots=True)
class EngineError:
    at_s: float
    message: str


@dataclass(frozen=True, slots=True)
class Tick:
    at_s: float


TrialEvent = HubReached | EngineError | Tick


@dataclass(frozen=True, slots=True)
class Judgement:
    good: bool
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TrialState:
    started_s: float
    deadline_s: float
    grace_s: float
    limit_s: float  # with the hub reached, a verdict of failed after this long
    needs_hub: bool = True
    now_s: float = 0.0
    hub_at_s: float | None = None
    quiet_since_s: float = 0.0
    last_error: str = ""
    verdict: Judgement | None = None


def begin(
    started_s: float, *, deadline_s: float, grace_s: float, limit_s: float, needs_hub: bool = True
) -> TrialState:
    return TrialState(
        started_s=started_s,
        deadline_s=deadline_s,
        grace_s=grace_s,
        limit_s=max(limit_s, deadline_s),
        needs_hub=needs_hub,
        now_s=started_s,
        quiet_since_s=started_s,
    )


def step(state: TrialState, event: TrialEvent) -> TrialState:
    """The state after ``event``, judged at the event's time."""
    if state.verdict is not None:
        return state
    now = max(state.now_s, event.at_s)
    match event:
        case HubReached():
            if state.hub_at_s is None:
                state = replace(state, hub_at_s=now)
        case EngineError(message=message):
            state = replace(state, quiet_since_s=now, last_error=message[:200])
        case Tick():
            pass
    state = replace(state, now_s=now)
    return replace(state, verdict=judge(state))


def judge(state: TrialState) -> Judgement | None:
    """The verdict at ``state.now_s``, or None while it is too early to tell."""
    if state.verdict is not None:
        return state.verdict
    now = state.now_s  # compared with sums, as next_check_s computes them
    reached = state.hub_at_s is not None or not state.needs_hub
    if not reached and now >= state.started_s + state.deadline_s:
        return Judgement(False, f"could not reach the hub within {state.deadline_s:g} s")
    if reached and now >= state.quiet_since_s + state.grace_s:
        return Judgement(True)
    if now >= state.started_s + state.limit_s:
        return Judgement(
            False,
            f"could not play for {state.grace_s:g} s without an error within "
            f"{state.limit_s:g} s (last: {state.last_error or 'unknown'})",
        )
    return None


def next_check_s(state: TrialState) -> float | None:
    """When the verdict may next change with no event meanwhile (None: settled)."""
    if state.verdict is not None:
        return None
    reached = state.hub_at_s is not None or not state.needs_hub
    candidates = [state.started_s + state.limit_s]
    if reached:
        candidates.append(state.quiet_since_s + state.grace_s)
    else:
        candidates.append(state.started_s + state.deadline_s)
    return max(state.now_s, min(candidates))
