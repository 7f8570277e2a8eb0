"""The music: an album of three noise tracks, ingested once by the hub's pipeline, and the
reference PCM the DACs' windows are found in.

Why noise: a window of noise correlates sharply with exactly one place in the album, so
each window's position is found to a fraction of a frame.  Low-passed (6 kHz) so that
Vorbis at ``normal`` keeps it nearly whole, with a slowly varying envelope as music has;
one continuous signal cut into tracks, played gapless.

The reference is what a speaker decodes: the segments at the pinned quality through the
speaker's own decoder (libvorbisfile), left channel, in album order.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from audio.material import CACHE, Library, ingested
from numpy.typing import NDArray
from sync_analysis import decode_left

from connect_protocol.media import Quality
from hub.media import store

from .common import QUALITY, RATE

TRACKS = 3
CUTOFF_HZ = 6000
PEAK_DBFS = -3.0


def noise_album(seconds: float, seed: int = 19) -> NDArray[np.int16]:
    """Stereo int16: band-limited noise (left and right independent) with an envelope."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    chans = []
    for _ in range(2):
        spec = np.fft.rfft(rng.standard_normal(n))
        spec[int(n * CUTOFF_HZ / RATE) :] = 0
        chans.append(np.fft.irfft(spec, n))
    x = np.stack(chans, axis=1)
    slow = np.interp(
        np.arange(n),
        np.linspace(0, n, max(2, int(seconds * 2))),
        rng.uniform(0.3, 1.0, max(2, int(seconds * 2))),
    )
    x = x * slow[:, None]
    x *= 32767 * 10 ** (PEAK_DBFS / 20) / np.abs(x).max()
    out: NDArray[np.int16] = np.rint(x).astype(np.int16)
    return out


def album_flacs(track_seconds: float) -> list[Path]:
    """The album's tracks as tagged FLAC files under the audio bench's cache."""
    pcm = noise_album(track_seconds * TRACKS)
    per = len(pcm) // TRACKS
    out = []
    for i in range(TRACKS):
        path = CACHE / "flac" / "noise" / f"noise-{track_seconds:g}s-{i + 1}.flac"
        buffer = io.BytesIO()
        with sf.SoundFile(buffer, "w", RATE, 2, "PCM_16", format="FLAC") as f:
            f.title = f"Noise {i + 1}"
            f.artist = "Legato bench"
            f.album = f"Bench noise {track_seconds:g}s"
            f.tracknumber = str(i + 1)
            f.write(pcm[i * per : (i + 1) * per])
        data = buffer.getvalue()
        if not path.exists() or path.read_bytes() != data:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        out.append(path)
    return out


def prepare(track_seconds: float, say: Callable[[str], None]) -> Library:
    return ingested(
        album_flacs(track_seconds), f"a noise album ({TRACKS} x {track_seconds:g} s)", None, say
    )


def reference(library: Library) -> NDArray[np.float32]:
    """The album as the members decode it: left channel, album order."""
    quality = Quality.parse(QUALITY)
    files = [
        store.segment_path(library.dir, t.id, quality, n)
        for t in library.tracks
        for n in range(len(t.manifest.rendition(quality).segments))
    ]
    return decode_left(files)
