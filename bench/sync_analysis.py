"""What the virtual DACs heard, judged against the music: skew, drift, corrections.

Why: "in sync" is a claim until the audio each member actually played is found in the
music and compared at the same instants.  The DAC harness (``tests/virtual_dac.py``)
records, per member, windows of the left channel with the host instant each played; this
module finds every window in the reference (the tracks decoded as the speaker decodes
them, left channel, concatenated in play order) by FFT cross-correlation near where it
should be, with a parabolic sub-frame peak.  Windows of silence or that correlate poorly
(e.g. one straddling a start) are skipped.

From that, per member, a map "play instant -> reference position", and across members:

- skew: the spread of the same instant's reference positions (ms of audio), p50/p99/max;
- drift: each member's signed skew against the first, its least-squares slope (ms/min);
- corrections seen in the audio: between consecutive windows the music advanced by the
  DAC frames in between, plus what the member inserted (or minus what it removed); the rate
  of that (<= 0.5 % is inaudible), and jumps: an adjustment that differs by more than 1.5
  frames from both its neighbours' (a step in the audio, not a rate), or that 0.5 % cannot
  explain.  Windows are 50 ms apart, so a jump is seen by how the music moved between them;
  frames spread through a block read as a rate;
- a late joiner: from the join to the instant after which it stays within 1 ms.

Pure functions over numpy arrays (the reference decoding at the end is the one helper
that reads files).  Imported by ``bench/multiroom.py`` and the end-to-end tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
MAX_RATE_ADJUST = 0.005  # the bound on a correction's rate (0.5 %)
MIN_CORR = 0.6  # below this a window is not trusted (a start, a glitch, a wrong track)
MIN_RMS = 30.0  # int16 units: quieter than this is silence (no correlation to speak of)
LOCAL_SEARCH = 4096  # frames either side of the predicted position
JUMP_FRAMES = 1.5  # one frame at a time is allowed; a window is placed to ~0.2 frame
NEIGHBOURS = 3  # pairs either side a step is judged against
DISCONTINUITY_FRAMES = 22050  # half a second: a seek, a reload, a wrap, not a correction


class Played(Protocol):
    """What a DAC recorded (``tests.virtual_dac.Recording`` is one)."""

    @property
    def window_k(self) -> NDArray[np.int64]: ...
    @property
    def windows(self) -> NDArray[np.int16]: ...
    @property
    def underrun_k(self) -> NDArray[np.int64]: ...
    @property
    def gone_k(self) -> NDArray[np.int64]: ...
    @property
    def t0_ns(self) -> int: ...
    @property
    def dac_rate(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Located:
    """One member's windows found in the reference."""

    name: str
    k: NDArray[np.int64]  # DAC frame index of each window's first frame
    t_ns: F64  # the host instant it played
    pos: F64  # where it is in the reference (frames, sub-frame)
    corr: F64  # normalised correlation at the peak (1: identical up to gain)
    breaks: NDArray[np.int64]  # DAC frames where the stream broke (underrun, writer gone)
    t0_ns: int
    dac_rate: float
    skipped: int  # windows silent or uncorrelated

    def frame_at(self, t_ns: F64) -> F64:
        out: F64 = (np.asarray(t_ns, dtype=np.float64) - self.t0_ns) * (self.dac_rate / 1e9)
        return out


# --- finding windows --------------------------------------------------------------------


class Reference:
    """The reference (float left channel) with what repeated searches need precomputed."""

    def __init__(self, left: NDArray[np.floating] | NDArray[np.integer]) -> None:
        self.x: F64 = np.asarray(left, dtype=np.float64)
        if self.x.ndim != 1 or self.x.size < 16:
            raise ValueError("the reference is a 1-D signal of some length")
        self.energy: F64 = np.concatenate([[0.0], np.cumsum(self.x * self.x)])
        self._spectrum: tuple[int, NDArray[np.complex128]] | None = None

    def __len__(self) -> int:
        return int(self.x.size)

    def spectrum(self, window: int) -> tuple[int, NDArray[np.complex128]]:
        n = 1 << math.ceil(math.log2(self.x.size + window))
        if self._spectrum is None or self._spectrum[0] != n:
            self._spectrum = (n, np.fft.rfft(self.x, n))
        return self._spectrum


def _ncc_peak(window: F64, seg: F64, seg_energy: F64, corr: F64) -> tuple[float, float] | None:
    """The best normalised correlation of ``corr`` (raw dot products at each lag) and its
    parabolic sub-frame lag."""
    w = window.size
    lag_energy = seg_energy[w:] - seg_energy[:-w]
    lags = min(corr.size, lag_energy.size)
    if lags < 1:
        return None
    denom = np.sqrt(np.maximum(lag_energy[:lags], 1e-9) * float(window @ window))
    ncc = corr[:lags] / denom
    i = int(np.argmax(ncc))
    peak = float(ncc[i])
    frac = 0.0
    if 0 < i < lags - 1:
        a, b, c = float(ncc[i - 1]), peak, float(ncc[i + 1])
        den = a - 2 * b + c
        if den < 0:
            frac = max(-0.5, min(0.5, 0.5 * (a - c) / den))
    return i + frac, peak


def locate(
    window: NDArray[np.integer], ref: Reference, around: float | None
) -> tuple[float, float]:
    """Where ``window`` is in the reference (sub-frame) and how well it matches.

    Searched within ``LOCAL_SEARCH`` frames of ``around``, or everywhere when ``around`` is
    None; the result's correlation is 0 when nothing could be compared.
    """
    w = np.asarray(window, dtype=np.float64)
    if math.sqrt(float(w @ w) / w.size) < MIN_RMS:
        return math.nan, 0.0
    if around is not None:
        lo = max(0, int(around) - LOCAL_SEARCH)
        hi = min(len(ref), int(around) + LOCAL_SEARCH + w.size)
        if hi - lo < w.size:
            return math.nan, 0.0
        seg = ref.x[lo:hi]
        n = 1 << math.ceil(math.log2(seg.size + w.size))
        raw = np.fft.irfft(np.fft.rfft(seg, n) * np.conj(np.fft.rfft(w, n)), n)
        found = _ncc_peak(w, seg, ref.energy[lo : hi + 1] - ref.energy[lo], raw)
        return (math.nan, 0.0) if found is None else (lo + found[0], found[1])
    n, spec = ref.spectrum(w.size)
    raw = np.fft.irfft(spec * np.conj(np.fft.rfft(w, n)), n)
    found = _ncc_peak(w, ref.x, ref.energy, raw)
    return (math.nan, 0.0) if found is None else found


def locate_member(name: str, played: Played, ref: Reference) -> Located:
    """Every window of one member found in the reference: near where the previous one
    predicts (the DAC plays one frame per frame), everywhere when that fails."""
    ks: list[int] = []
    pos: list[float] = []
    corr: list[float] = []
    skipped = 0
    prev: tuple[int, float] | None = None
    for k, win in zip(played.window_k.tolist(), played.windows, strict=True):
        guess = None if prev is None else prev[1] + (k - prev[0])
        p, c = locate(win, ref, guess) if guess is not None and guess < len(ref) else (0.0, 0.0)
        if c < MIN_CORR:
            p, c = locate(win, ref, None)
        if c < MIN_CORR or not math.isfinite(p):
            skipped += 1
            prev = None
            continue
        ks.append(k)
        pos.append(p)
        corr.append(c)
        prev = (k, p)
    k_arr = np.asarray(ks, dtype=np.int64)
    return Located(
        name=name,
        k=k_arr,
        t_ns=played.t0_ns + k_arr.astype(np.float64) * (1e9 / played.dac_rate),
        pos=np.asarray(pos, dtype=np.float64),
        corr=np.asarray(corr, dtype=np.float64),
        breaks=np.sort(np.concatenate([played.underrun_k, played.gone_k]).astype(np.int64)),
        t0_ns=played.t0_ns,
        dac_rate=played.dac_rate,
        skipped=skipped,
    )


# --- one member over time ---------------------------------------------------------------


def _pairs(loc: Located, max_gap: int) -> NDArray[np.bool_]:
    """Which consecutive windows belong to one stretch of steady play: close enough, no
    underrun or writer change between them, and the music moved on with the DAC (not a
    seek, a reload or the album starting over: a discontinuity, never a correction)."""
    if loc.k.size < 2:
        return np.zeros(0, dtype=bool)
    dk = np.diff(loc.k)
    near = (dk <= max_gap) & (np.abs(dk - np.diff(loc.pos)) < DISCONTINUITY_FRAMES)
    first = np.searchsorted(loc.breaks, loc.k[:-1], side="right")
    last = np.searchsorted(loc.breaks, loc.k[1:] + 1024, side="left")
    out: NDArray[np.bool_] = near & (first == last)
    return out


def position_at(loc: Located, t_ns: F64, max_gap: int) -> F64:
    """The reference position each instant's audio came from (NaN where unknown): between
    two windows of one steady stretch, interpolated along the DAC's own frames."""
    t = np.asarray(t_ns, dtype=np.float64)
    out = np.full(t.shape, np.nan)
    if loc.k.size < 2:
        return out
    frames = loc.frame_at(t)
    i = np.searchsorted(loc.k, frames, side="right") - 1
    ok = (i >= 0) & (i < loc.k.size - 1)
    good = _pairs(loc, max_gap)
    ii = np.clip(i, 0, max(0, loc.k.size - 2))
    ok &= good[ii]
    k0, k1 = loc.k[ii].astype(np.float64), loc.k[ii + 1].astype(np.float64)
    p0, p1 = loc.pos[ii], loc.pos[ii + 1]
    est = p0 + (frames - k0) * (p1 - p0) / np.maximum(k1 - k0, 1.0)
    out[ok] = est[ok]
    return out


@dataclass(frozen=True, slots=True)
class Corrections:
    """What a member's audio shows of its corrections, in steady play."""

    pairs: int  # consecutive windows compared
    max_rate: float  # the largest |adjustment| / frames over a pair (0.005 = 0.5 %)
    max_step_frames: float  # the largest |adjustment| between two windows
    jumps: int  # pairs whose adjustment no rate <= 0.5 % explains (beyond 1 frame)
    jump_t_ns: tuple[float, ...]  # where (the later window's instant)
    net_frames: float  # inserted (+) minus removed (-) over the stretch


def _steps(dev: F64) -> NDArray[np.bool_]:
    """Pairs whose adjustment differs by more than ``JUMP_FRAMES`` from both the pairs before
    and the pairs after it (their medians): a jump, not a rate (a rate that changes, even
    at once, agrees with one side)."""
    out = np.zeros(dev.size, dtype=bool)
    for i in range(dev.size):
        before = dev[max(0, i - NEIGHBOURS) : i]
        after = dev[i + 1 : i + 1 + NEIGHBOURS]
        if before.size and after.size:
            out[i] = (
                min(abs(dev[i] - float(np.median(before))), abs(dev[i] - float(np.median(after))))
                > JUMP_FRAMES
            )
    return out


def corrections(
    loc: Located, max_gap: int, t_from: float = -math.inf, t_to: float = math.inf
) -> Corrections:
    """Between consecutive windows the music advances by the DAC frames in between plus what
    the member inserted (-: it removed); judged against 0.5 % and single frames."""
    good = _pairs(loc, max_gap)
    if good.size:
        good &= (loc.t_ns[:-1] >= t_from) & (loc.t_ns[1:] <= t_to)
    dk = np.diff(loc.k).astype(np.float64)[good]
    dev = (dk - np.diff(loc.pos)[good]) if good.size else np.zeros(0)
    if dev.size == 0:
        return Corrections(0, 0.0, 0.0, 0, (), 0.0)
    rate = np.abs(dev) / dk
    jump = (np.abs(dev) - MAX_RATE_ADJUST * dk > JUMP_FRAMES) | _steps(dev)
    later = loc.t_ns[1:][good]
    return Corrections(
        pairs=int(dev.size),
        max_rate=float(rate.max()),
        max_step_frames=float(np.abs(dev).max()),
        jumps=int(jump.sum()),
        jump_t_ns=tuple(float(t) for t in later[jump][:20]),
        net_frames=float(dev.sum()),
    )


# --- members against each other ---------------------------------------------------------


def stats_ms(values: F64) -> dict[str, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan, "mean": math.nan}
    return {
        "n": int(v.size),
        "p50": float(np.percentile(v, 50)),
        "p99": float(np.percentile(v, 99)),
        "max": float(v.max()),
        "mean": float(v.mean()),
    }


def slope_per_min(t_ns: F64, y_ms: F64) -> float:
    """Least-squares slope of ``y_ms`` over time, in ms per minute (NaN: too few points)."""
    ok = np.isfinite(y_ms) & np.isfinite(t_ns)
    if ok.sum() < 3:
        return math.nan
    t_min = (t_ns[ok] - t_ns[ok][0]) / 60e9
    if float(np.ptp(t_min)) <= 0:
        return math.nan
    slope = np.polyfit(t_min, y_ms[ok], 1)[0]
    return float(slope)


@dataclass(frozen=True, slots=True)
class Skew:
    """The members' positions at common instants, and what follows from them."""

    t_ns: F64  # the instants compared (where every member's position is known)
    signed_ms: F64  # (instants, members): each member minus the first (ms of audio)
    spread_ms: F64  # max minus min over members at each instant
    stats: dict[str, float]  # of spread_ms
    drift_ms_per_min: tuple[float, ...]  # each member's signed skew vs the first, its slope
    trend_ms: float  # the largest drift over the stretch's length (ms)
    coverage: float  # of the instants any member was heard, those all were (1: always)


def skew(
    members: Sequence[Located],
    rate: int,
    t_from: float,
    t_to: float,
    *,
    step_ns: float = 50e6,
    max_gap: int = 3 * 2205,
) -> Skew:
    """Compare the members' audio at common instants from ``t_from`` to ``t_to``."""
    if len(members) < 2:
        raise ValueError("skew needs two members or more")
    grid = np.arange(t_from, t_to, step_ns, dtype=np.float64)
    pos = np.stack([position_at(m, grid, max_gap) for m in members], axis=1)
    both = np.all(np.isfinite(pos), axis=1)
    heard = int(np.count_nonzero(np.any(np.isfinite(pos), axis=1)))
    grid, pos = grid[both], pos[both]
    signed = (pos - pos[:, :1]) * 1000.0 / rate
    spread = (pos.max(axis=1) - pos.min(axis=1)) * 1000.0 / rate if pos.size else np.zeros(0)
    drifts = tuple(slope_per_min(grid, signed[:, j]) for j in range(1, len(members)))
    minutes = float(np.ptp(grid)) / 60e9 if grid.size else 0.0
    finite = [abs(d) for d in drifts if math.isfinite(d)]
    return Skew(
        t_ns=grid,
        signed_ms=signed,
        spread_ms=spread,
        stats=stats_ms(spread),
        drift_ms_per_min=drifts,
        trend_ms=max(finite) * minutes if finite else math.nan,
        coverage=int(both.sum()) / heard if heard else math.nan,
    )


def time_to_sync(
    joiner: Located,
    others: Sequence[Located],
    rate: int,
    since_ns: float,
    until_ns: float,
    tol_ms: float = 1.0,
    *,
    max_gap: int = 3 * 2205,
) -> float | None:
    """Seconds from ``since_ns`` until the joiner's audio is within ``tol_ms`` of the others'
    (their median, of those heard at each instant) and stays so to ``until_ns`` (None:
    never, or never measured)."""
    grid = np.arange(since_ns, until_ns, 10e6, dtype=np.float64)
    mine = position_at(joiner, grid, max_gap)
    theirs = np.stack([position_at(m, grid, max_gap) for m in others], axis=1)
    ok = np.isfinite(mine) & np.any(np.isfinite(theirs), axis=1)
    if not ok.any():
        return None
    grid, mine, theirs = grid[ok], mine[ok], theirs[ok]
    dev = np.abs(mine - np.nanmedian(theirs, axis=1)) * 1000.0 / rate
    bad = np.nonzero(dev > tol_ms)[0]
    if bad.size == 0:
        first = float(grid[0])
    elif bad[-1] + 1 < grid.size:
        first = float(grid[bad[-1] + 1])
    else:
        return None
    return (first - since_ns) / 1e9


# --- the reference ----------------------------------------------------------------------


def decode_left(segment_files: Sequence[Path]) -> NDArray[np.float32]:
    """Ogg Vorbis segments decoded as the speaker decodes them, left channel, in order."""
    from device.audio.vorbis import VorbisStream

    parts: list[NDArray[np.float32]] = []
    for path in segment_files:
        with VorbisStream(path.read_bytes()) as stream:
            while True:
                pcm = stream.read(65536)
                if pcm.shape[0] == 0:
                    break
                parts.append(np.asarray(pcm[:, 0], dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
