"""The codec: round trips, and untrusted bytes never raise."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connect_protocol.codec import DecodeError, decode, decode_command, encode
from connect_protocol.errors import ErrorCode
from connect_protocol.messages import (
    MAX_MESSAGE_BYTES,
    MAX_QUEUE,
    MAX_TRACKS,
    Ack,
    AddToQueue,
    DeviceInfo,
    Event,
    EventKind,
    Next,
    Pause,
    Play,
    PlayerState,
    RepeatMode,
    Seek,
    SetRepeat,
    SetShuffle,
    SetVolume,
    TrackRef,
)

TRACK = TrackRef(uri="legato:track:abc", duration_ms=180_000, name="Song", artists=("A", "B"))

SAMPLES: list[object] = [
    Play(id="c1", tracks=(TRACK,), context_uri="legato:album:x", offset=0, position_ms=5),
    Pause(id="c2", expected_revision=4),
    Seek(id="c3", position_ms=1000),
    Next(id="c4"),
    SetVolume(id="c5", volume_percent=30),
    SetShuffle(id="c6", state=True),
    SetRepeat(id="c7", mode=RepeatMode.TRACK),
    AddToQueue(id="c8", track=TRACK),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_commands_round_trip(message: object) -> None:
    assert decode_command(encode(message)) == message


@pytest.mark.parametrize(
    "message",
    [
        Ack(id="x", ok=False, revision=3, error=ErrorCode.CONFLICT, message="stale"),
        Event(kind=EventKind.FINISHED, timestamp_ms=5, track_uri="legato:track:a", played_ms=9),
        DeviceInfo(id="spk1", name="Kitchen", model="pi4", fw="0.1.0"),
        PlayerState(revision=7, tracks=(TRACK,), order=(0,), index=0, current=TRACK),
    ],
    ids=lambda m: type(m).__name__,
)
def test_other_messages_round_trip(message: object) -> None:
    assert decode(type(message), encode(message)) == message


@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [
        (b"{not json", ErrorCode.BAD_JSON, ""),
        (b"\xff\xfe", ErrorCode.BAD_JSON, ""),
        (b"[1,2]", ErrorCode.BAD_MESSAGE, ""),
        (b'{"id":"a"}', ErrorCode.BAD_MESSAGE, ""),
        (b'{"type":"explode","id":"a"}', ErrorCode.UNKNOWN_COMMAND, ""),
        (b'{"type":"seek","id":"a","position_ms":"10"}', ErrorCode.WRONG_TYPE, "position_ms"),
        (b'{"type":"seek","id":"a","position_ms":true}', ErrorCode.WRONG_TYPE, "position_ms"),
        (b'{"type":"seek","id":"a"}', ErrorCode.BAD_MESSAGE, "position_ms"),
        (b'{"type":"repeat","id":"a","mode":"sometimes"}', ErrorCode.INVALID_VALUE, "mode"),
        (b'{"type":"play","id":"a","tracks":[{"uri":5}]}', ErrorCode.WRONG_TYPE, "tracks[0].uri"),
        (b'{"type":"pause","id":"' + b"x" * 200 + b'"}', ErrorCode.TOO_LARGE, "id"),
    ],
)
def test_bad_input_gives_a_typed_error(payload: bytes, code: ErrorCode, path: str) -> None:
    result = decode_command(payload)
    assert isinstance(result, DecodeError)
    assert result.code is code
    assert result.path == path
    assert result.message


def test_error_keeps_the_command_id_so_it_can_be_acked() -> None:
    result = decode_command(b'{"type":"volume","id":"req-9","volume_percent":"loud"}')
    assert isinstance(result, DecodeError)
    assert result.command_id == "req-9"


def test_oversized_payload_refused_before_parsing() -> None:
    big = json.dumps({"type": "pause", "id": "a", "pad": "x" * MAX_MESSAGE_BYTES}).encode()
    result = decode_command(big)
    assert isinstance(result, DecodeError)
    assert result.code is ErrorCode.TOO_LARGE


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    result = decode_command(b"[" * 100_000 + b"]" * 100_000)
    assert isinstance(result, DecodeError)


@settings(max_examples=400)
@given(st.binary(max_size=512))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = decode_command(data)
    assert isinstance(result, DecodeError) or type(result).__name__ in {
        "Pause",
        "Resume",
        "Next",
        "Previous",
        "Stop",
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(
    st.sampled_from(SAMPLES),
    st.data(),
)
def test_mutated_valid_messages_never_raise(message: object, data: st.DataObject) -> None:
    obj = json.loads(encode(message))
    key = data.draw(st.sampled_from(sorted(obj)))
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        obj[key] = data.draw(json_values)
    elif action == "delete":
        del obj[key]
    else:
        obj[data.draw(st.text(max_size=8))] = data.draw(json_values)
    result = decode_command(json.dumps(obj).encode())
    # Either a well-formed command of a known type or a typed error: nothing else.
    if isinstance(result, DecodeError):
        assert isinstance(result.code, ErrorCode)
        assert result.message
    else:
        assert decode_command(encode(result)) == result


def test_a_full_state_with_catalog_metadata_fits_in_one_message() -> None:
    """The caps agree: MAX_TRACKS plus a full queue, with long real-world names, fit."""
    track = TrackRef(
        uri="legato:track:" + "A" * 22,
        duration_ms=600_000,
        name="An Unusually Long Track Title (Extended Live Version) [Remastered 2026]",
        artists=("The Quay Ensemble", "Paloma Reyes Trio", "Mira Okafor"),
        album="Field Recordings, Vol. 3: The Complete Harbour Sessions (Deluxe Edition)",
    )
    state = PlayerState(
        revision=10**6,
        session="s" * 32,
        context_uri="legato:playlist:" + "B" * 22,
        tracks=(track,) * MAX_TRACKS,
        order=tuple(range(MAX_TRACKS)),
        index=MAX_TRACKS - 1,
        queue=(track,) * MAX_QUEUE,
        current=track,
        from_queue=True,
        timestamp_ms=2**41,
    )
    assert len(encode(state)) < MAX_MESSAGE_BYTES
    assert decode(PlayerState, encode(state)) == state


def test_too_many_tracks_is_refused_with_the_cap_named() -> None:
    obj = json.loads(encode(SAMPLES[0]))
    obj["tracks"] = obj["tracks"] * (MAX_TRACKS + 1)
    result = decode_command(json.dumps(obj))
    assert isinstance(result, DecodeError)
    assert result.code is ErrorCode.TOO_LARGE
    assert str(MAX_TRACKS) in result.message
