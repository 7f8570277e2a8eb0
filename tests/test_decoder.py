"""The speaker's decoder (libvorbisfile through ctypes) on segments cut and encoded by ingest."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.media import Quality
from device.audio.decoder import DecodeFailedError, SegmentDecoder, decode_segment
from device.audio.vorbis import VorbisError, VorbisStream
from tests.media_fixtures import Track, make_track, sweep

RATE = 44100


@pytest.fixture(scope="module")
def track() -> Track:
    # 9.3 s: a 2 s first segment, then one of 7.3 s (the short tail merged into it)
    return make_track("d" * 22, sweep(int(RATE * 9.3), RATE), RATE, qualities=tuple(Quality))


def pyav_decode(data: bytes, frames: int) -> np.ndarray:
    with av.open(io.BytesIO(data), mode="r", format="ogg") as container:
        planes = [f.to_ndarray() for f in container.decode(audio=0)]
    return np.concatenate(planes, axis=1)[:, :frames].T


def test_every_segment_of_every_quality_decodes_to_exactly_its_length(track: Track) -> None:
    for rendition in track.manifest.renditions:
        quality = Quality.parse(rendition.quality)
        total = 0
        for n, segment in enumerate(rendition.segments):
            pcm = decode_segment(track.blobs[(quality, n)], segment.frames, rendition.channels)
            assert pcm.shape == (segment.frames, rendition.channels)
            assert pcm.dtype == np.float32
            assert pcm.flags.c_contiguous
            total += segment.frames
        assert total == rendition.frames


def test_it_decodes_what_libav_decodes(track: Track) -> None:
    """The same samples as PyAV (the hub's verifier), so ingest's checks hold for it."""
    rendition = track.manifest.rendition(Quality.VERY_HIGH)
    for n, segment in enumerate(rendition.segments):
        blob = track.blobs[(Quality.VERY_HIGH, n)]
        ours = decode_segment(blob, segment.frames, 2)
        theirs = pyav_decode(blob, segment.frames)
        assert np.abs(ours - theirs).max() < 1e-4


def test_a_one_page_stream_is_trimmed_to_its_granule_position() -> None:
    """A segment small enough for one Ogg page: libav would not trim its end."""
    short = make_track("s" * 22, sweep(1234, RATE), RATE)
    rendition = short.manifest.rendition(Quality.NORMAL)
    assert len(rendition.segments) == 1
    with VorbisStream(short.blobs[(Quality.NORMAL, 0)]) as stream:
        got = 0
        while block := stream.read(10_000).shape[0]:
            got += block
    assert got == 1234


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 30_000), min_size=1, max_size=40))
def test_blocks_of_any_size_add_up_to_the_whole(track: Track, sizes: list[int]) -> None:
    segment = track.manifest.rendition(Quality.NORMAL).segments[1]
    blob = track.blobs[(Quality.NORMAL, 1)]
    whole = decode_segment(blob, segment.frames, 2)
    parts = []
    with SegmentDecoder(blob, segment.frames, 2) as decoder:
        k = 0
        while not decoder.finished:
            parts.append(decoder.read(sizes[k % len(sizes)]))
            k += 1
    assert np.array_equal(np.concatenate(parts), whole)


def test_a_segment_cut_short_is_an_error_not_noise(track: Track) -> None:
    segment = track.manifest.rendition(Quality.NORMAL).segments[1]
    blob = track.blobs[(Quality.NORMAL, 1)]
    with pytest.raises(DecodeFailedError, match="expected"):
        decode_segment(blob[: len(blob) // 2], segment.frames, 2)


@pytest.mark.parametrize(
    "data",
    [b"", b"OggS" + bytes(200), b"not an ogg stream at all" * 20],
    ids=["empty", "zeros", "text"],
)
def test_bytes_that_are_not_vorbis_are_refused(data: bytes) -> None:
    with pytest.raises(DecodeFailedError):
        decode_segment(data, 1000, 2)
    with pytest.raises(VorbisError):
        VorbisStream(data)


def test_a_channel_count_other_than_the_manifest_says_is_refused(track: Track) -> None:
    low = track.manifest.rendition(Quality.LOW)  # mono
    with pytest.raises(DecodeFailedError, match="1 channels"):
        decode_segment(track.blobs[(Quality.LOW, 0)], low.segments[0].frames, 2)


def test_flipped_bits_in_audio_packets_give_an_error_or_finite_audio_of_the_right_length(
    track: Track,
) -> None:
    """Pages are CRC-checked before decoding; past that, the decoder never returns garbage
    shapes or non-finite samples, whatever the bytes."""
    segment = track.manifest.rendition(Quality.NORMAL).segments[1]
    blob = bytearray(track.blobs[(Quality.NORMAL, 1)])
    rng = np.random.default_rng(7)
    for _ in range(20):
        broken = bytearray(blob)
        for at in rng.integers(len(blob) // 4, len(blob), 8):
            broken[int(at)] ^= 0xFF
        try:
            pcm = decode_segment(bytes(broken), segment.frames, 2)
        except DecodeFailedError:
            continue
        assert pcm.shape == (segment.frames, 2)
        assert np.isfinite(pcm).all()
