"""Reading source files: which files, their tags and art, decoding, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hub.errors import IngestError
from hub.ingest.decode import PcmReader, decode
from hub.ingest.integrity import check_complete
from hub.ingest.limits import IngestLimits
from hub.ingest.sources import check_supported, content_hash, find_audio
from hub.ingest.tags import UNKNOWN_ALBUM, UNKNOWN_ARTIST, read_art, read_tags, track_info
from tests.audio_files import FileTags, music, png_bytes, sine, write_audio

FORMATS = [".flac", ".wav", ".mp3", ".ogg"]
FULL = FileTags(
    title="Low Tide",
    artist="The Quay Ensemble",
    album="Harbour Lights",
    album_artist="Various Harbours",
    track=3,
    disc=2,
    year=2021,
    isrc="GBAYE2100123",
    art=png_bytes(),
)


def test_find_audio_walks_folders_and_keeps_named_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ["a/1.flac", "a/b/2.MP3", "a/notes.txt", "a/b/3.ogg", "x.wav"]:
        (tmp_path / name).write_bytes(b"")
    named = tmp_path / "a" / "notes.txt"
    found = find_audio([tmp_path / "a", tmp_path / "x.wav", named, tmp_path / "a" / "1.flac"])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a/1.flac",
        "a/b/2.MP3",
        "a/b/3.ogg",
        "x.wav",
        "a/notes.txt",
    ]
    with pytest.raises(IngestError, match=r"unsupported file type '\.txt'"):
        check_supported(named)
    with pytest.raises(IngestError, match="no such file"):
        find_audio([tmp_path / "missing"])


def test_content_hash_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.wav"
    path.write_bytes(b"abc")
    assert content_hash(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize("suffix", FORMATS)
def test_tags_and_art_are_read_from_every_format(suffix: str, tmp_path: Path) -> None:
    path = write_audio(tmp_path / f"t{suffix}", sine(22_050, 44_100), 44_100, FULL)
    tags = read_tags(path)
    assert tags.title == "Low Tide"
    assert tags.artist == "The Quay Ensemble"
    assert tags.album == "Harbour Lights"
    assert tags.album_artist == "Various Harbours"
    assert (tags.track_number, tags.disc_number, tags.year) == (3, 2, 2021)
    assert tags.isrc == "GBAYE2100123"
    art = read_art(path)
    assert art is not None
    assert (art.mime, art.extension, art.data) == ("image/png", "png", FULL.art)


def test_untagged_files_get_names_from_the_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "07 Some Song.flac", sine(4410, 44_100), 44_100)
    info = track_info(read_tags(path), path)
    assert (info.name, info.artist, info.album) == ("07 Some Song", UNKNOWN_ARTIST, UNKNOWN_ALBUM)
    assert (info.album_artist, info.track_number) == (UNKNOWN_ARTIST, 0)
    assert read_art(path) is None


def test_riff_info_tags_are_read_through_libav(tmp_path: Path) -> None:
    path = tmp_path / "info.wav"
    with sf.SoundFile(path, "w", 44_100, 1) as out:
        out.title, out.artist, out.album, out.tracknumber = "Sodium Glow", "Mira", "Night Bus", "2"
        out.write(np.zeros(4410, dtype=np.float32))
    tags = read_tags(path)
    assert (tags.title, tags.artist, tags.album, tags.track_number) == (
        "Sodium Glow",
        "Mira",
        "Night Bus",
        2,
    )


def test_art_whose_bytes_are_not_jpeg_or_png_is_ignored(tmp_path: Path) -> None:
    tags = FileTags(title="x", art=b"GIF89a....", art_mime="image/jpeg")
    path = write_audio(tmp_path / "t.flac", sine(4410, 44_100), 44_100, tags)
    assert read_art(path) is None
    jpeg = FileTags(title="x", art=b"\xff\xd8\xff\xe0fake", art_mime="image/png")
    path = write_audio(tmp_path / "t.mp3", sine(4410, 44_100), 44_100, jpeg)
    art = read_art(path)
    assert art is not None
    assert art.mime == "image/jpeg"  # from the bytes, not the declared type


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (48_000, 1)])
def test_decode_gives_float_frames_at_the_source_rate(
    suffix: str, rate: int, channels: int, tmp_path: Path
) -> None:
    frames = rate * 2 + 13
    pcm = music(2.1, rate)[:frames, :channels]
    source = decode(write_audio(tmp_path / f"t{suffix}", pcm, rate))
    assert source.pcm.dtype == np.float32
    assert (source.rate, source.pcm.shape[1], source.source_channels) == (rate, channels, channels)
    if suffix in {".flac", ".wav"}:  # lossless: the very samples, to 16-bit precision
        assert source.frames == frames
        assert np.abs(source.pcm - pcm).max() < 1e-4
    else:  # lossy but gapless: the same length
        assert source.frames == frames


def test_decoding_into_a_buffer_that_was_sized_too_small() -> None:
    from hub.ingest.decode import _Buffer

    buffer = _Buffer(10, 2)
    chunks = [np.full((n, 2), n, dtype=np.float32) for n in (4, 9, 30, 1)]
    for chunk in chunks:
        buffer.append(chunk)
    assert np.array_equal(buffer.result(), np.concatenate(chunks))


def test_surround_is_mixed_down_to_stereo(tmp_path: Path) -> None:
    pcm = np.zeros((4800, 6), dtype=np.float32)  # a WAV without a channel mask: 5.1 order
    pcm[:, 0], pcm[:, 2], pcm[:, 3], pcm[:, 5] = 0.5, 0.2, 0.9, 0.1  # FL, FC, LFE, BR
    source = decode(write_audio(tmp_path / "six.wav", pcm, 48_000))
    assert source.source_channels == 6
    left, right = source.pcm[100]
    assert left == pytest.approx(0.5 + 0.2 * 0.7071, abs=1e-3)  # no LFE
    assert right == pytest.approx(0.2 * 0.7071 + 0.1 * 0.7071, abs=1e-3)


def test_random_bytes_do_not_decode(tmp_path: Path) -> None:
    path = tmp_path / "noise.flac"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(IngestError, match="decode"):
        decode(path)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_truncated_file_is_caught(suffix: str, tmp_path: Path) -> None:
    path = write_audio(tmp_path / f"t{suffix}", music(3, 44_100), 44_100)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(IngestError, match=r"truncated|decode"):
        check_complete(path, decode(path).frames)


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_whole_file_passes(suffix: str, tmp_path: Path) -> None:
    path = write_audio(tmp_path / f"t{suffix}", music(3, 44_100), 44_100)
    check_complete(path, decode(path).frames)


@pytest.mark.parametrize("suffix", FORMATS)
def test_blocks_are_the_whole_decode_in_pieces(suffix: str, tmp_path: Path) -> None:
    path = write_audio(tmp_path / f"t{suffix}", music(5, 44_100), 44_100)
    whole = decode(path)
    with PcmReader(path, limits=IngestLimits()) as reader:
        blocks = list(reader.blocks(frames=10_000))
    assert max(b.shape[0] for b in blocks) < 10_000 + 8192  # at most one codec frame over
    assert np.array_equal(np.concatenate(blocks), whole.pcm)
    assert reader.frames == whole.frames
    with PcmReader(path, limits=IngestLimits()) as reader:
        assert reader.check() == whole.frames


def test_non_finite_samples_are_caught_before_encoding(tmp_path: Path) -> None:
    pcm = sine(4800, 48_000)
    pcm[100, 0] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, pcm, 48_000, subtype="FLOAT")
    with PcmReader(path, limits=IngestLimits()) as reader, pytest.raises(IngestError, match="NaN"):
        reader.check()
