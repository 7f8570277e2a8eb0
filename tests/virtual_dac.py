"""A virtual DAC for each member of a group: named pipes read at their own steady clocks.

Why: sync between speakers can only be judged against what was *heard*, and a machine
without sound cards has nothing that plays at a crystal's pace.  This process plays that
part for every member: it makes a named pipe per member (``mkfifo``) and opens it for
reading before the speaker starts (the speaker's ``--sink fifo:PATH`` opens it, never
makes it), then reads each pipe at the member's own rate ``rate * (1 + ppm / 1e6)`` of
the host's monotonic clock: DAC frame ``k`` plays at ``t0 + k / dac_rate``.  Every tick
(~1 ms) it reads exactly the frames now due; a short read is an underrun: the DAC plays
zeros for what is missing and the audio after it plays later, as a sound card does.

Ground truth, per member, appended while it runs to ``NAME.bin`` (``read_recording``
parses it at any time) and written as ``NAME.npz`` when it stops:

- every ``stride`` frames (2205, 50 ms at 44.1 kHz) a window of ``window`` frames (1024)
  of the left channel, with the DAC frame index of its first frame and the host
  monotonic instant it played (all-zero windows are counted, not kept);
- every underrun (the DAC frame where zeros began, how many) and every time the writer
  went away (a speaker stopped: the DAC plays zeros until one opens the pipe again).

It runs as its own process (``VirtualDac`` starts it), at real-time priority when
permitted (``SCHED_FIFO``, else ``nice -10``), so a busy core or the test's own event
loop cannot hold up its reads; each tick's lateness is kept and reported.

CLI: ``python -m tests.virtual_dac --dir DIR --member a=-150 --member b=+150`` prints
one JSON line when the pipes are open, and runs until SIGTERM/SIGINT (or ``--max-s``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

RATE = 44100
WINDOW_FRAMES = 1024
STRIDE_FRAMES = 2205  # 50 ms at 44.1 kHz
TICK_S = 0.001
LATE_NS = 5_000_000  # a tick this late is a stall of the DAC itself (reported)
FRAME_BYTES = 4  # S16LE stereo
HEAD = struct.Struct("<4sqqq")  # kind, dac frame index, its play instant (ns), count
KIND_WINDOW = b"WIN "  # count = window frames; followed by that many int16 (left channel)
KIND_UNDERRUN = b"UNDR"  # count = frames the DAC played as zeros
KIND_GONE = b"GONE"  # the writer closed the pipe (count 0)
REPO = Path(__file__).resolve().parents[1]


def dac_rate_hz(rate: int, ppm: float) -> float:
    """The DAC's true rate on the host's clock: a crystal ``ppm`` fast (+) or slow (-)."""
    return rate * (1 + ppm / 1e6)


@dataclass(slots=True)
class Recording:
    """What one member's DAC played, as far as it has been recorded."""

    name: str
    rate: int
    ppm: float
    t0_ns: int
    window_k: NDArray[np.int64]  # DAC frame index of each window's first frame
    windows: NDArray[np.int16]  # (n, window) left channel
    underrun_k: NDArray[np.int64]
    underrun_frames: NDArray[np.int64]
    gone_k: NDArray[np.int64]  # where the writer went away
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dac_rate(self) -> float:
        return dac_rate_hz(self.rate, self.ppm)

    def play_ns(self, k: NDArray[np.int64] | NDArray[np.float64] | float) -> Any:
        """The host monotonic instant (ns) DAC frame ``k`` played."""
        return self.t0_ns + np.asarray(k, dtype=np.float64) * (1e9 / self.dac_rate)

    def frame_at(self, t_ns: NDArray[np.float64] | float) -> Any:
        """The DAC frame index (fractional) playing at host instant ``t_ns``."""
        return (np.asarray(t_ns, dtype=np.float64) - self.t0_ns) * (self.dac_rate / 1e9)

    @property
    def window_ns(self) -> NDArray[np.float64]:
        out: NDArray[np.float64] = self.play_ns(self.window_k)
        return out


def read_recording(directory: Path, name: str) -> Recording:
    """A member's recording so far (a record cut short by a write in progress is left)."""
    meta = json.loads((directory / f"{name}.json").read_text())
    data = (directory / f"{name}.bin").read_bytes()
    width = int(meta["window"])
    wk: list[int] = []
    chunks: list[bytes] = []
    uk: list[int] = []
    un: list[int] = []
    gk: list[int] = []
    at = 0
    while at + HEAD.size <= len(data):
        kind, k, _ns, count = HEAD.unpack_from(data, at)
        body = count * 2 if kind == KIND_WINDOW else 0
        if at + HEAD.size + body > len(data):
            break
        if kind == KIND_WINDOW:
            wk.append(k)
            chunks.append(data[at + HEAD.size : at + HEAD.size + body])
        elif kind == KIND_UNDERRUN:
            uk.append(k)
            un.append(count)
        elif kind == KIND_GONE:
            gk.append(k)
        at += HEAD.size + body
    windows = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16).reshape(-1, width)
    return Recording(
        name=name,
        rate=int(meta["rate"]),
        ppm=float(meta["ppm"]),
        t0_ns=int(meta["t0_ns"]),
        window_k=np.asarray(wk, dtype=np.int64),
        windows=windows,
        underrun_k=np.asarray(uk, dtype=np.int64),
        underrun_frames=np.asarray(un, dtype=np.int64),
        gone_k=np.asarray(gk, dtype=np.int64),
        meta=meta,
    )


# --- the DAC process ----------------------------------------------------------------


class _Member:
    """One pipe read at one clock, and the ground truth it writes."""

    def __init__(self, directory: Path, name: str, ppm: float, rate: int, t0_ns: int) -> None:
        self.name = name
        self.fifo = directory / f"{name}.fifo"
        with contextlib.suppress(FileNotFoundError):
            self.fifo.unlink()
        os.mkfifo(self.fifo, 0o600)
        # open for reading first, without waiting for a writer (the speaker comes later)
        self.fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.rate_hz = dac_rate_hz(rate, ppm)
        self.t0_ns = t0_ns
        self.k = 0  # frames played so far
        self.carry = b""  # a frame cut in two by a read
        self.writer = False  # a writer has the pipe open
        self.flowing = False  # bytes came since the writer opened it
        self.underruns = 0
        self.underrun_frames = 0
        self.silent_windows = 0
        self.tail = np.zeros(0, dtype=np.int16)  # left channel from DAC frame tail_k on
        self.tail_k = 0
        self.next_window = 0
        self.out: IO[bytes] = (directory / f"{name}.bin").open("wb")

    def due(self, now_ns: int) -> int:
        """Frames whose play instant has come (frame k plays at t0 + k / rate)."""
        return max(0, math.floor((now_ns - self.t0_ns) * self.rate_hz / 1e9) + 1 - self.k)

    def tick(self, now_ns: int) -> None:
        want = self.due(now_ns)
        if want == 0:
            return
        data = self._read(want * FRAME_BYTES - len(self.carry))
        data = self.carry + data
        whole = len(data) - len(data) % FRAME_BYTES
        self.carry = data[whole:]
        got = min(whole // FRAME_BYTES, want)
        pcm = np.frombuffer(data[: got * FRAME_BYTES], dtype="<i2")[0::2]
        if got < want:
            if self.writer and self.flowing:
                self.underruns += 1
                self.underrun_frames += want - got
                self._record(KIND_UNDERRUN, self.k + got, want - got)
            pcm = np.concatenate([pcm, np.zeros(want - got, dtype=np.int16)])
        self.k += want
        self._windows(pcm)

    def _read(self, nbytes: int) -> bytes:
        if nbytes <= 0:
            return b""
        try:
            data = os.read(self.fd, nbytes)
        except BlockingIOError:  # a writer, and nothing waiting
            self.writer = True
            return b""
        if data:
            self.writer = self.flowing = True
        elif self.writer:  # end of file: the writer closed the pipe
            self.writer = self.flowing = False
            self._record(KIND_GONE, self.k, 0)
        return data

    def _windows(self, left: NDArray[np.int16]) -> None:
        self.tail = np.concatenate([self.tail, left.astype(np.int16)])
        end = self.k
        while self.next_window + WINDOW_FRAMES <= end:
            start = self.next_window - self.tail_k
            win = self.tail[start : start + WINDOW_FRAMES]
            if np.any(win):
                self._record(KIND_WINDOW, self.next_window, WINDOW_FRAMES, win.tobytes())
            else:
                self.silent_windows += 1
            self.next_window += STRIDE_FRAMES
        cut = min(self.next_window, end) - self.tail_k
        if cut > 0:
            self.tail = self.tail[cut:]
            self.tail_k += cut

    def _record(self, kind: bytes, k: int, count: int, body: bytes = b"") -> None:
        at_ns = self.t0_ns + round(k * 1e9 / self.rate_hz)
        self.out.write(HEAD.pack(kind, k, at_ns, count) + body)

    def close(self) -> None:
        self.out.close()
        os.close(self.fd)
        with contextlib.suppress(OSError):
            self.fifo.unlink()


def _realtime() -> str:
    """Real-time priority when permitted, else a better nice level: the DAC keeps time."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(20))
        return "SCHED_FIFO 20"
    except (OSError, AttributeError):
        pass
    try:
        os.nice(-10)
        return "nice -10"
    except OSError:
        return "normal"


def _percentile_us(samples: list[int], p: float) -> float:
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))] / 1e3


def run_dac(
    directory: Path,
    members: Mapping[str, float],
    *,
    rate: int = RATE,
    tick_s: float = TICK_S,
    max_s: float = 3600.0,
) -> None:
    """The DAC process's body: read every pipe each tick until SIGTERM/SIGINT or ``max_s``."""
    stop = False

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    priority = _realtime()
    directory.mkdir(parents=True, exist_ok=True)
    t0_ns = time.monotonic_ns()
    dacs = [_Member(directory, n, ppm, rate, t0_ns) for n, ppm in members.items()]
    for dac, ppm in zip(dacs, members.values(), strict=True):
        meta: dict[str, Any] = {"rate": rate, "ppm": ppm, "t0_ns": t0_ns}
        meta |= {"window": WINDOW_FRAMES}
        meta |= {"stride": STRIDE_FRAMES, "tick_s": tick_s, "fifo": str(dac.fifo)}
        (directory / f"{dac.name}.json").write_text(json.dumps(meta) + "\n")
    ready = {"fifos": {d.name: str(d.fifo) for d in dacs}, "t0_ns": t0_ns, "priority": priority}
    print(json.dumps(ready), flush=True)
    late_ns: list[int] = []
    stalls: list[tuple[float, float]] = []  # (seconds since t0, ms late) past LATE_NS
    tick_ns = round(tick_s * 1e9)
    next_ns = t0_ns + tick_ns
    flushed_ns = t0_ns
    end_ns = t0_ns + round(max_s * 1e9)
    try:
        while not stop and next_ns < end_ns:
            delay = next_ns - time.monotonic_ns()
            if delay > 0:
                time.sleep(delay / 1e9)
            now = time.monotonic_ns()
            late_ns.append(now - next_ns)
            if now - next_ns > LATE_NS:
                stalls.append(((next_ns - t0_ns) / 1e9, (now - next_ns) / 1e6))
            for dac in dacs:
                dac.tick(now)
            next_ns = max(next_ns + tick_ns, now + tick_ns // 4)
            if now - flushed_ns > 100_000_000:
                for dac in dacs:
                    dac.out.flush()
                flushed_ns = now
    finally:
        stats = {
            "priority": priority,
            "ticks": len(late_ns),
            "tick_late_us_p50": _percentile_us(late_ns, 50),
            "tick_late_us_p99": _percentile_us(late_ns, 99),
            "tick_late_us_max": _percentile_us(late_ns, 100),
            "stalls_over_5ms": len(stalls),
            "stalls_worst": sorted(stalls, key=lambda s: -s[1])[:10],
        }
        for dac in dacs:
            dac.close()
            _save_npz(directory, dac, stats)
        (directory / "dac-stats.json").write_text(json.dumps(stats) + "\n")


def _save_npz(directory: Path, dac: _Member, stats: Mapping[str, Any]) -> None:
    rec = read_recording(directory, dac.name)
    np.savez(
        directory / f"{dac.name}.npz",
        rate=rec.rate,
        ppm=rec.ppm,
        t0_ns=rec.t0_ns,
        window_k=rec.window_k,
        window_ns=rec.window_ns.astype(np.int64),
        windows=rec.windows,
        underrun_k=rec.underrun_k,
        underrun_frames=rec.underrun_frames,
        gone_k=rec.gone_k,
        frames_played=dac.k,
        silent_windows=dac.silent_windows,
        stats=json.dumps(dict(stats)),
    )


# --- the parent's handle ------------------------------------------------------------


class VirtualDac:
    """The DAC process for a set of members (name -> ppm), started and stopped from here."""

    def __init__(
        self,
        directory: Path,
        members: Mapping[str, float],
        *,
        rate: int = RATE,
        tick_s: float = TICK_S,
        max_s: float = 3600.0,
    ) -> None:
        if not members or any(not n.isidentifier() for n in members):
            raise ValueError("members are named with identifiers, at least one")
        self.directory = Path(directory)
        self.members = dict(members)
        self.rate = rate
        self.tick_s = tick_s
        self.max_s = max_s
        self.proc: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}

    def start(self, timeout_s: float = 10.0) -> None:
        args = [sys.executable, "-m", "tests.virtual_dac", "--dir", str(self.directory)]
        args += [f"--member={n}={p:+g}" for n, p in self.members.items()]
        args += ["--rate", str(self.rate), "--tick-ms", str(self.tick_s * 1e3)]
        args += ["--max-s", str(self.max_s)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.directory.mkdir(parents=True, exist_ok=True)
        err = (self.directory / "dac.log").open("w")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=REPO
        )
        err.close()
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        deadline = time.monotonic() + timeout_s
        line = ""
        while not line.endswith("\n"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (self.directory / "dac.log").read_text()[-2000:]
                raise RuntimeError(f"the virtual DAC did not start: {log}")
            line += self.proc.stdout.readline()
            time.sleep(0.01)
        self.ready = json.loads(line)

    def fifo(self, name: str) -> Path:
        return Path(self.ready["fifos"][name])

    def sink(self, name: str) -> str:
        """The speaker's ``--sink`` for this member."""
        return f"fifo:{self.fifo(name)}"

    def recording(self, name: str) -> Recording:
        return read_recording(self.directory, name)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> dict[str, Any]:
        """Stop the process (it writes the npz files); its timing figures."""
        if self.proc is None:
            return {}
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None
        stats = self.directory / "dac-stats.json"
        return dict(json.loads(stats.read_text())) if stats.exists() else {}

    def __enter__(self) -> VirtualDac:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def virtual_dac(directory: Path, members: Mapping[str, float], **kw: Any) -> Iterator[VirtualDac]:
    dac = VirtualDac(directory, members, **kw)
    dac.start()
    try:
        yield dac
    finally:
        dac.stop()


def _member(text: str) -> tuple[str, float]:
    name, _, ppm = text.partition("=")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"a member is NAME=PPM, got {text!r}")
    value = float(ppm or 0)
    if not -5000 <= value <= 5000:
        raise argparse.ArgumentTypeError("ppm must be within -5000..5000")
    return name, value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.virtual_dac",
        description="Virtual DACs: a named pipe per member, read at the member's own "
        "rate (rate * (1 + ppm/1e6)); records what each played (NAME.bin, NAME.npz).",
    )
    p.add_argument("--dir", type=Path, required=True, help="where the pipes and records go")
    p.add_argument(
        "--member", type=_member, action="append", required=True, help="NAME=PPM, e.g. a=-150"
    )
    p.add_argument("--rate", type=int, default=RATE, help="nominal rate (44100)")
    p.add_argument("--tick-ms", type=float, default=TICK_S * 1e3, help="read period (1 ms)")
    p.add_argument("--max-s", type=float, default=3600.0, help="stop after this long")
    a = p.parse_args(argv)
    if not 0.1 <= a.tick_ms <= 20 or not 8000 <= a.rate <= 192000:
        p.error("--tick-ms must be 0.1..20 and --rate 8000..192000")
    run_dac(a.dir, dict(a.member), rate=a.rate, tick_s=a.tick_ms / 1e3, max_s=a.max_s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
