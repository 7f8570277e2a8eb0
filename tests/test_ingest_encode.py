"""The ladder's hard requirement: every segment decodes (PyAV) to exactly its frames."""

from __future__ import annotations

import io
import itertools

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
from numpy.typing import NDArray

from connect_protocol.media import Quality, Rendition, scaled_boundaries, segment_boundaries
from connect_protocol.ogg import OggError, ogg_crc, parse_pages
from hub.errors import IngestError
from hub.ingest.encode import (
    COMPRESSION_LEVEL,
    decoded_frames,
    encode_rendition,
    encode_segment,
    rendition_pcm,
)
from hub.ingest.oggpages import split_single_page
from tests.audio_files import music, pink_noise, sine


def pyav_frames(blob: bytes) -> int:
    with av.open(io.BytesIO(blob), mode="r") as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def libsndfile_ogg(pcm: NDArray[np.float32], rate: int, level: float = 1.0) -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(
        buf, "w", rate, pcm.shape[1], format="OGG", subtype="VORBIS", compression_level=level
    ) as out:
        out.write(pcm)
    return buf.getvalue()


def encode_all(pcm: NDArray[np.float32], rate: int) -> dict[Quality, tuple[Rendition, list[bytes]]]:
    bounds = segment_boundaries(pcm.shape[0], rate)
    out = {}
    for quality in Quality:
        blobs: dict[int, bytes] = {}
        rendition = encode_rendition(pcm, rate, bounds, quality, blobs.__setitem__)
        out[quality] = (rendition, [blobs[n] for n in sorted(blobs)])
    return out


# --- Ogg paging ------------------------------------------------------------------


def test_crc_matches_libogg() -> None:
    blob = libsndfile_ogg(pink_noise(20_000, channels=1), 22_050)
    for page in parse_pages(blob):
        stored = int.from_bytes(page.raw[22:26], "little")
        assert ogg_crc(page.raw[:22] + b"\0\0\0\0" + page.raw[26:]) == stored


@pytest.mark.parametrize(
    ("frames", "rate", "channels"),
    [(1, 22_050, 1), (100, 22_050, 1), (1000, 44_100, 2), (44_100, 22_050, 1), (44_100, 44_100, 2)],
)
def test_a_single_page_stream_is_split_so_libav_trims_it(
    frames: int, rate: int, channels: int
) -> None:
    pcm = np.zeros((frames, channels), dtype=np.float32)  # silence: the smallest pages
    original = libsndfile_ogg(pcm, rate)
    fixed = split_single_page(original)
    assert len(parse_pages(fixed)) == len(parse_pages(original)) + 1
    assert pyav_frames(fixed) == frames
    assert sf.info(io.BytesIO(fixed)).frames == frames  # and libvorbis agrees


def test_a_stream_of_several_pages_is_left_alone() -> None:
    blob = libsndfile_ogg(pink_noise(44_100 * 3), 44_100, level=0.1)
    assert split_single_page(blob) == blob


def test_pages_that_are_not_vorbis_are_refused() -> None:
    with pytest.raises(OggError):
        split_single_page(b"OggS" + b"\0" * 40)
    with pytest.raises(OggError):
        split_single_page(b"not ogg at all, just bytes that go on")


# --- segments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "channels", "frames"),
    [
        (44_100, 2, 44_100 * 7 + 13),  # odd length, several segments
        (48_000, 2, 48_000 * 7 + 13),
        (44_100, 1, 44_100 * 5 + 1),  # mono source stays mono
        (48_000, 1, 48_000 + 777),  # shorter than 2 s: one segment
        (44_100, 2, 4410),  # a tenth of a second
        (22_050, 2, 22_050 * 3 + 3),  # under 32 kHz: low keeps the rate
    ],
)
def test_every_segment_decodes_to_exactly_its_frames(rate: int, channels: int, frames: int) -> None:
    pcm = music(frames / rate + 0.1, rate)[:frames, :channels].copy()
    assert pcm.shape == (frames, channels)
    for quality, (rendition, blobs) in encode_all(pcm, rate).items():
        assert [pyav_frames(b) for b in blobs] == [s.frames for s in rendition.segments]
        assert [len(b) for b in blobs] == [s.bytes for s in rendition.segments]
        assert sum(s.frames for s in rendition.segments) == rendition.frames
        if quality is Quality.LOW:
            assert rendition.channels == 1
            if rate >= 32_000:
                assert rendition.sample_rate == rate // 2
                resampled = soxr.resample(pcm.mean(axis=1), rate, rate // 2)
                assert rendition.frames == len(resampled)
            else:
                assert (rendition.sample_rate, rendition.frames) == (rate, frames)
        else:
            assert (rendition.sample_rate, rendition.channels) == (rate, channels)
            assert rendition.frames == frames
        assert rendition.bitrate > 0


def test_segment_boundaries_are_the_same_instants_in_every_quality() -> None:
    rate, frames = 44_100, 44_100 * 9 + 5
    encoded = encode_all(music(9.2, rate)[:frames], rate)
    bounds = segment_boundaries(frames, rate)
    for quality, (rendition, _) in encoded.items():
        scale = rendition.sample_rate / rate
        starts = np.cumsum([0] + [s.frames for s in rendition.segments[:-1]])
        assert list(starts) == [int(b * scale) for b in bounds[:-1]], quality


def test_silence_and_a_quiet_start_stay_exact() -> None:
    rate = 44_100
    pcm = np.zeros((rate * 9 + 1, 2), dtype=np.float32)
    pcm[rate * 7 :] = sine(rate * 2 + 1, rate, dbfs=-60)
    for rendition, blobs in encode_all(pcm, rate).values():
        assert [pyav_frames(b) for b in blobs] == [s.frames for s in rendition.segments]


def test_low_is_mono_at_half_rate_and_the_others_keep_the_source() -> None:
    pcm, rate = music(2.5, 44_100), 44_100
    data, out_rate = rendition_pcm(pcm, rate, Quality.HIGH)
    assert data.shape == pcm.shape
    assert out_rate == rate
    low, low_rate = rendition_pcm(pcm, rate, Quality.LOW)
    assert low.shape[1] == 1
    assert low_rate == rate // 2


def test_a_segment_that_decodes_short_fails_the_track(monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 44_100
    pcm = music(2.5, rate)
    monkeypatch.setattr(
        "hub.ingest.encode.decoded_frames",
        lambda blob: (decoded_frames(blob)[0] - 1, *decoded_frames(blob)[1:]),
    )
    with pytest.raises(IngestError, match=r"high segment 0 decodes to \d+ frames"):
        encode_rendition(
            pcm, rate, segment_boundaries(len(pcm), rate), Quality.HIGH, lambda n, b: None
        )


def test_encode_segment_writes_vorbis() -> None:
    blob = encode_segment(sine(22_050, 22_050, channels=1), 22_050, 1.0)
    info = sf.info(io.BytesIO(blob))
    assert (info.format, info.subtype, info.frames) == ("OGG", "VORBIS", 22_050)


@pytest.mark.parametrize(
    ("rate", "channels", "frames"),
    [(44_100, 2, 44_100 * 9 + 5), (48_000, 2, 48_000 * 9 + 5), (44_100, 1, 44_100 * 9 + 5)],
)
@pytest.mark.parametrize("block", [1000, 65_536])
def test_streamed_segments_are_the_whole_array_cut(
    rate: int, channels: int, frames: int, block: int
) -> None:
    """Fed in blocks, each segment is the same frames as cutting the whole track at once."""
    pcm = music(frames / rate + 0.1, rate)[:frames, :channels].copy()
    bounds = segment_boundaries(frames, rate)
    for quality in Quality:
        blobs: dict[int, bytes] = {}
        rendition = encode_rendition(
            pcm, rate, bounds, quality, blobs.__setitem__, block_frames=block
        )
        whole, out_rate = rendition_pcm(pcm, rate, quality)
        cuts = scaled_boundaries(bounds, rate, out_rate, whole.shape[0])
        assert [s.frames for s in rendition.segments] == list(np.diff(cuts))
        assert (rendition.frames, rendition.sample_rate) == (whole.shape[0], out_rate)
        for n, (start, end) in enumerate(itertools.pairwise(cuts)):
            reference = encode_segment(whole[start:end], out_rate, COMPRESSION_LEVEL[quality])
            assert np.array_equal(decoded(blobs[n]), decoded(reference)), (quality, n)


def decoded(blob: bytes) -> NDArray[np.float32]:
    pcm, _ = sf.read(io.BytesIO(blob), dtype="float32", always_2d=True)
    return np.asarray(pcm, dtype=np.float32)
