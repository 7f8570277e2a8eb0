"""Time to first audio: a play command sent to the hub -> the first frame at the sink.

The speaker is the real one (``SpeakerService``: MQTT, controller, reducer) running in
this process so the bench can read its engine's ``first_audio_ns``; its engine is a
``NativeEngine`` fetching from the hub process (``HubMedia``, through a ``Recorder`` that
also makes every manifest fetch cold) and writing to a real-time ``NullSink``.  Each play
is ``PUT /v1/me/player/play`` with the track's URI, sent by a listener's HTTP client with
a bearer token on a kept-alive connection.

Four such speakers, one per way of reaching the hub (``LINKS``), play each track in
turn, the order rotating from one track to the next: over TLS as a paired speaker does
(MQTT over TLS and HTTPS, the hub's CA pinned: the target is judged on it), and in
clear (the embedded broker's plain listener, HTTP on the Web API port) for reference;
each with its HTTP connection to the hub kept alive between plays, and with it closed
before each play, as after the hub has closed an idle one (uvicorn closes them after
5 s), so the first fetch opens a new connection (a TLS handshake, over TLS).

The baseline the target is set against, in the same run and alternating with our
plays, is the ``mpv`` program playing the same track from the hub as a user of mpv
would, cold: ``mpv --no-config --ao=pcm URL`` of the track's first segment's signed URL
(from ``GET /v1/audio/{id}/manifest`` with the listener's token on the Web API port, in
the quality our TLS speaker started with; the fetch is not counted), over plain HTTP as
before TLS, timed from starting the process to the first byte of audio it writes (raw
PCM, into a FIFO the bench reads).

A second, stricter reference is shown beside it: libmpv already running in this
process (python-mpv, ``ao=null``), ``loadfile`` of the same URL to its
``playback-restart`` event.  It has no process start, no command path and no
manifest fetch in it: the floor of what any player built on mpv could do.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connect_protocol.media import Quality
from device.audio.native import EngineOptions, NativeEngine
from device.audio.sinks import NullSink
from device.audio.source import HubMedia
from device.service import SpeakerService

from .common import BenchError, LatencyStats, Options, Progress, wait_until
from .material import Track
from .rig import Rig
from .sources import Recorder

WARMUP_PLAYS = 2  # not counted: the first plays load codecs and open connections
IDLE_MS = 150  # the engine has fetched nothing for this long: its buffer is full
FIRST_AUDIO_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Link:
    """How one series' speaker reaches the hub."""

    name: str
    label: str
    tls: bool  # MQTT over TLS and HTTPS, the CA pinned (paired); else both in clear
    new_connection: bool  # its HTTP connection to the hub closed before each play


LINKS = (
    Link("tls", "TLS: MQTT over TLS + HTTPS, CA pinned", tls=True, new_connection=False),
    Link("plain", "plain: MQTT + HTTP in clear", tls=False, new_connection=False),
    Link("tls_new", "TLS, new HTTPS connection each play", tls=True, new_connection=True),
    Link("plain_new", "plain, new HTTP connection each play", tls=False, new_connection=True),
)
TARGET = "tls"  # the series the targets are judged on: what a paired speaker does


@dataclass(frozen=True, slots=True)
class Play:
    """One play through the hub, with where its time went (nanoseconds)."""

    track_id: str
    quality: Quality  # of the first segment
    total_ns: int  # PUT sent -> first frame written to the sink
    to_manifest_ns: int  # PUT sent -> the engine starts fetching the manifest
    manifest_ns: int
    segment_ns: int  # the first segment's fetch
    after_ns: int  # segment fetched -> first frame written (decode, DSP, queue, write)


class InProcessSpeaker:
    """``SpeakerService`` in this process, its engine a ``NativeEngine`` the bench can see.

    The service is started with the clock engine (so it builds no audio engine of its
    own), then its controller is handed a ``NativeEngine`` wired to the service's own
    callbacks, exactly as ``device.engine_factory.build_engine`` wires one.
    """

    def __init__(self, rig: Rig, device_id: str, options: EngineOptions, link: Link) -> None:
        self.rig = rig
        self.device_id = device_id
        self.options = options
        self.link = link
        self.service: SpeakerService | None = None
        self.engine: NativeEngine | None = None
        self.media: HubMedia | None = None
        self.recorder: Recorder | None = None

    async def start(self) -> None:
        os.environ.setdefault("LEGATO_MDNS_INTERFACES", "127.0.0.1")  # as the harness sets
        cfg = self.rig.login(self.device_id)
        tls = self.link.tls
        service = self.service = SpeakerService(
            dataclasses.replace(cfg, engine="clock", http_port=0), self.rig.broker(cfg, tls=tls)
        )
        await service.start()
        assert service.controller is not None
        self.media = self.rig.media(cfg, tls=tls)
        self.recorder = Recorder(self.media, cold=True)
        engine = self.engine = NativeEngine(
            service._on_track_ended,
            source=self.recorder,
            sink=NullSink(cfg.sample_rate),
            options=self.options,
            on_event=service._on_engine_event,
            on_report=service._on_engine_report,
            loop=asyncio.get_running_loop(),
        )
        engine.set_volume(service.controller.state.volume_percent)
        clock, service.controller.engine = service.controller.engine, engine
        clock.close()
        await self.rig.wait_online(self.device_id)

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()  # closes the engine, its source and its sink
        elif self.engine is not None:
            await asyncio.to_thread(self.engine.close)

    async def wait_idle(self) -> None:
        """Until the engine has fetched nothing for ``IDLE_MS`` (its buffer is full)."""
        recorder = self.recorder
        assert recorder is not None
        await wait_until(lambda: recorder.idle_for_ns() >= IDLE_MS * 1_000_000, 60, "idle")

    async def play(self, track: Track) -> Play:
        engine, recorder, media = self.engine, self.recorder, self.media
        assert engine is not None
        assert recorder is not None
        assert media is not None
        await self.wait_idle()
        if self.link.new_connection:
            await asyncio.to_thread(media.close)  # the next request connects afresh
        before = engine.first_audio_ns
        mark = len(recorder.fetches)
        t0 = time.monotonic_ns()
        await self.rig.command("PUT", "play", self.device_id, {"uris": [track.uri]})

        def started() -> bool:
            first = engine.first_audio_ns
            return first is not None and first != before and first > t0

        await wait_until(started, FIRST_AUDIO_TIMEOUT_S, f"first audio of {track.name}")
        first = engine.first_audio_ns
        assert first is not None
        fetched = recorder.fetches[mark:]
        manifest = next((f for f in fetched if f.kind == "manifest"), None)
        segment = next((f for f in fetched if f.kind == "segment"), None)
        if manifest is None or segment is None or segment.quality is None:
            raise BenchError(f"play of {track.name}: no manifest or segment fetch was seen")
        return Play(
            track_id=track.id,
            quality=segment.quality,
            total_ns=first - t0,
            to_manifest_ns=manifest.started_ns - t0,
            manifest_ns=manifest.ended_ns - manifest.started_ns,
            segment_ns=segment.ended_ns - segment.started_ns,
            after_ns=first - segment.ended_ns,
        )


class Mpv:
    """libmpv with the null audio output; times ``loadfile`` to ``playback-restart``."""

    def __init__(self) -> None:
        import mpv

        self.version = ""
        self._restarted = threading.Event()
        self._restart_ns = 0
        self.player = mpv.MPV(
            ao="null",
            vo="null",
            video=False,
            ytdl=False,
            idle=True,
            config=False,
            terminal=False,
            input_default_bindings=False,
        )
        self.version = str(self.player.mpv_version)
        self.player.event_callback("playback-restart")(self._on_restart)

    def _on_restart(self, _event: object) -> None:
        self._restart_ns = time.monotonic_ns()
        self._restarted.set()

    def play(self, url: str, timeout_s: float = FIRST_AUDIO_TIMEOUT_S) -> int:
        """Nanoseconds from ``loadfile`` to audio output starting; the file is then stopped."""
        self._restarted.clear()
        t0 = time.monotonic_ns()
        self.player.loadfile(url)
        if not self._restarted.wait(timeout_s):
            raise BenchError(f"mpv did not start playing {url.split('?')[0]} in {timeout_s} s")
        took = self._restart_ns - t0
        self.player.command("stop")
        return took

    def close(self) -> None:
        self.player.terminate()


class MpvCommand:
    """The ``mpv`` program, started afresh for each play; times it to its first audio byte."""

    def __init__(self, workdir: Path) -> None:
        exe = shutil.which("mpv")
        if exe is None:
            raise BenchError("the mpv program is not installed (apt install mpv)")
        self.exe = exe
        self.workdir = workdir
        first = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
        self.version = (first.stdout.splitlines() or ["mpv"])[0]
        self._plays = 0

    def play(self, url: str, timeout_s: float = FIRST_AUDIO_TIMEOUT_S) -> int:
        """Nanoseconds from starting ``mpv URL`` to the first byte of audio it writes."""
        self._plays += 1
        fifo = self.workdir / f"mpv-{self._plays}.pcm"
        os.mkfifo(fifo)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # never blocks on a writer
        args = [self.exe, "--no-config", "--really-quiet", "--no-video", "--vo=null"]
        args += ["--ao=pcm", "--ao-pcm-waveheader=no", f"--ao-pcm-file={fifo}", url]
        try:
            t0 = time.monotonic_ns()
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            try:
                first = self._first_byte(fd, proc, t0 + int(timeout_s * 1e9))
            finally:
                proc.kill()
                _, err = proc.communicate(timeout=10)
            if first is None:
                tail = err.decode(errors="replace").strip()[-300:]
                raise BenchError(f"mpv wrote no audio for {url.split('?')[0]}: {tail}")
            return first - t0
        finally:
            os.close(fd)
            fifo.unlink()

    @staticmethod
    def _first_byte(fd: int, proc: subprocess.Popen[bytes], deadline_ns: int) -> int | None:
        while time.monotonic_ns() < deadline_ns:
            ready, _, _ = select.select([fd], [], [], 0.005)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    data = b""
                if data:
                    return time.monotonic_ns()
            if proc.poll() is not None:
                return None
            if ready:  # no writer yet (EOF): do not spin
                time.sleep(0.0005)
        return None


async def _first_segment_url(rig: Rig, track: Track, quality: Quality) -> tuple[int, str]:
    """(manifest fetch ns, the track's first segment's signed URL at ``quality``)."""
    t0 = time.monotonic_ns()
    r = await rig.http.get(f"/v1/audio/{track.id}/manifest")
    manifest_ns = time.monotonic_ns() - t0
    if r.status_code != 200:
        raise BenchError(f"GET manifest of {track.name}: {r.status_code}")
    rendition = next(x for x in r.json()["renditions"] if x["quality"] == quality.label)
    return manifest_ns, rig.system.url + rendition["segments"][0]["url"]


async def measure(rig: Rig, opts: Options, progress: Progress) -> dict[str, Any]:
    tracks = rig.library.tracks
    speakers = [
        InProcessSpeaker(rig, f"bench-ttfa-{link.name.replace('_', '-')}", EngineOptions(), link)
        for link in LINKS
    ]
    player: Mpv | None = None
    command = MpvCommand(Path(tempfile.mkdtemp(prefix="ttfa-mpv-", dir=rig.root)))
    ours: dict[str, list[Play]] = {link.name: [] for link in LINKS}
    mpv_ns: list[int] = []
    mpv_cold_ns: list[int] = []
    mpv_manifest_ns: list[int] = []
    try:
        for speaker in speakers:
            await speaker.start()
        player = await asyncio.to_thread(Mpv)
        for k in range(WARMUP_PLAYS + opts.plays):
            track = tracks[k % len(tracks)]
            first = k % len(speakers)  # who plays first rotates
            played: dict[str, Play] = {}
            for speaker in speakers[first:] + speakers[:first]:
                played[speaker.link.name] = await speaker.play(track)
                await speaker.wait_idle()
                await rig.command("PUT", "pause", speaker.device_id)
            manifest_ns, url = await _first_segment_url(rig, track, played[TARGET].quality)
            loaded_ns = await asyncio.to_thread(player.play, url)
            cold_ns = await asyncio.to_thread(command.play, url)
            if k >= WARMUP_PLAYS:
                for name, play in played.items():
                    ours[name].append(play)
                mpv_ns.append(loaded_ns)
                mpv_cold_ns.append(cold_ns)
                mpv_manifest_ns.append(manifest_ns)
            progress.show(
                f"time to first audio: {len(mpv_ns)}/{opts.plays} plays by each of "
                f"{len(speakers)} speakers (and as many by mpv)"
            )
        progress.finish(
            f"time to first audio: {len(mpv_ns)} plays by each of {len(speakers)} speakers, "
            f"{len(mpv_ns)} by mpv"
        )
    finally:
        if player is not None:
            await asyncio.to_thread(player.close)
        for speaker in speakers:
            await speaker.stop()
    series = {link.name: {"label": link.label, **_series(ours[link.name])} for link in LINKS}
    return {
        "plays": len(mpv_ns),
        "warmup_plays": WARMUP_PLAYS,
        "distinct_tracks": min(len(tracks), opts.plays),
        "target_series": TARGET,
        "ours": series[TARGET]["total"],
        "first_segment_quality": series[TARGET]["first_segment_quality"],
        "series": series,
        "mpv_command": LatencyStats.of(mpv_cold_ns),
        "mpv_command_version": command.version,
        "mpv": LatencyStats.of(mpv_ns),
        "mpv_with_manifest": LatencyStats.of(
            [a + b for a, b in zip(mpv_ns, mpv_manifest_ns, strict=True)]
        ),
        "mpv_manifest": LatencyStats.of(mpv_manifest_ns),
        "mpv_version": player.version if player is not None else "",
        "mpv_ms": [round(ns / 1e6, 2) for ns in mpv_ns],
        "mpv_command_ms": [round(ns / 1e6, 2) for ns in mpv_cold_ns],
    }


#: Where a play's time goes, step by step.
STEPS: dict[str, Callable[[Play], int]] = {
    "command to engine (HTTP, hub, MQTT, controller)": lambda p: p.to_manifest_ns,
    "manifest fetch": lambda p: p.manifest_ns,
    "first segment fetch": lambda p: p.segment_ns,
    "decode, DSP, queue, first write": lambda p: p.after_ns,
}


def _series(plays: list[Play]) -> dict[str, Any]:
    """One speaker's plays: the totals, where the time went, the slowest three."""
    slowest = sorted(plays, key=lambda p: p.total_ns, reverse=True)[:3]
    return {
        "total": LatencyStats.of([p.total_ns for p in plays]),
        "first_segment_quality": sorted({p.quality.label for p in plays}),
        "breakdown_p50_ms": {s: _p50([f(p) for p in plays]) for s, f in STEPS.items()},
        "breakdown_p99_ms": {s: _p99([f(p) for p in plays]) for s, f in STEPS.items()},
        "ms": [round(p.total_ns / 1e6, 2) for p in plays],
        "slowest_ms": [
            {
                "total": round(p.total_ns / 1e6, 1),
                "command": round(p.to_manifest_ns / 1e6, 1),
                "manifest": round(p.manifest_ns / 1e6, 1),
                "segment": round(p.segment_ns / 1e6, 1),
                "after": round(p.after_ns / 1e6, 1),
            }
            for p in slowest
        ],
    }


def _p50(ns: list[int]) -> float:
    return round(LatencyStats.of(ns).p50, 2)


def _p99(ns: list[int]) -> float:
    return round(LatencyStats.of(ns).p99, 2)
