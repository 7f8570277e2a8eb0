"""JSON codec for ``connect_protocol.messages``.

Encoding is total.  Decoding takes untrusted bytes and returns either a message
or a ``DecodeError`` value (code + message) — never raises — so a malformed
packet cannot reach a caller's loop as an exception.  Validation is driven by
the dataclasses' own type hints, so adding a field needs no codec change.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar, Union

from connect_protocol.errors import ConnectError, ErrorCode
from connect_protocol.media import Manifest
from connect_protocol.messages import (
    COMMAND_TYPES,
    MAX_ARTISTS,
    MAX_ID_LEN,
    MAX_MESSAGE_BYTES,
    MAX_NAME_LEN,
    MAX_QUEUE,
    MAX_TRACKS,
    MAX_URI_LEN,
    Ack,
    Command,
    DeviceInfo,
    Event,
    PlayerState,
)

#: Segments of the longest track a manifest may describe (~8 hours at 6 s).
MAX_SEGMENTS = 5000

M = TypeVar("M")

_TYPE_NAMES: dict[type[Any], str] = {cls: name for name, cls in COMMAND_TYPES.items()}
_TYPE_NAMES.update({Ack: "ack", Event: "event", DeviceInfo: "device", PlayerState: "state"})
_TYPE_NAMES[Manifest] = "manifest"

MAX_STRING = 4096
_SEQUENCE_CAPS = {
    "tracks": MAX_TRACKS,
    "order": MAX_TRACKS,
    "queue": MAX_QUEUE,
    "artists": MAX_ARTISTS,
    "segments": MAX_SEGMENTS,
    "boundaries": MAX_SEGMENTS + 1,
}
_BOUNDED_STRINGS = {
    "id": MAX_ID_LEN,
    "uri": MAX_URI_LEN,
    "context_uri": MAX_URI_LEN,
    "name": MAX_NAME_LEN,
    "album": MAX_NAME_LEN,
    "session": MAX_ID_LEN,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeError:
    """Why bytes could not be decoded; ``path`` names the offending field."""

    code: ErrorCode
    message: str
    path: str = ""
    command_id: str | None = None  # when the id could be read, so it can be acked


class _InvalidError(ConnectError):
    def __init__(self, code: ErrorCode, message: str, path: str) -> None:
        super().__init__(message)
        self.code, self.message, self.path = code, message, path


# --- encoding ------------------------------------------------------------------


def to_json_obj(message: object) -> dict[str, Any]:
    """A message as a JSON-ready dict with its ``type`` tag first."""
    obj: dict[str, Any] = {"type": _TYPE_NAMES[type(message)]}
    obj.update(_plain(message))
    return obj


def encode(message: object) -> bytes:
    return json.dumps(to_json_obj(message), separators=(",", ":"), ensure_ascii=False).encode()


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


# --- decoding ------------------------------------------------------------------


def parse_json(data: bytes | str) -> dict[str, Any] | DecodeError:
    """Bytes to a JSON object, with the size cap applied before parsing."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > MAX_MESSAGE_BYTES:
        return DecodeError(
            code=ErrorCode.TOO_LARGE, message=f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES}"
        )
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return DecodeError(code=ErrorCode.BAD_JSON, message=f"not valid JSON: {exc}")
    if not isinstance(obj, dict):
        return DecodeError(code=ErrorCode.BAD_MESSAGE, message="message must be a JSON object")
    return obj


def decode_command(data: bytes | str) -> Command | DecodeError:
    """Untrusted bytes to a command, or the reason they are not one."""
    obj = parse_json(data)
    if isinstance(obj, DecodeError):
        return obj
    return command_from_obj(obj)


def command_from_obj(obj: dict[str, Any]) -> Command | DecodeError:
    raw_id = obj.get("id")
    command_id = raw_id if isinstance(raw_id, str) and 0 < len(raw_id) <= MAX_ID_LEN else None
    kind = obj.get("type")
    if not isinstance(kind, str):
        return DecodeError(
            code=ErrorCode.BAD_MESSAGE, message="missing 'type'", command_id=command_id
        )
    cls = COMMAND_TYPES.get(kind)
    if cls is None:
        return DecodeError(
            code=ErrorCode.UNKNOWN_COMMAND,
            message=f"unknown command {kind[:40]!r}",
            command_id=command_id,
        )
    result = from_obj(cls, obj)
    if isinstance(result, DecodeError):
        return dataclasses.replace(result, command_id=command_id)
    return result


def decode(cls: type[M], data: bytes | str) -> M | DecodeError:
    """Untrusted bytes to a message of a known class (ack, event, state, device)."""
    obj = parse_json(data)
    if isinstance(obj, DecodeError):
        return obj
    return from_obj(cls, obj)


def from_obj(cls: type[M], obj: dict[str, Any]) -> M | DecodeError:
    expected = _TYPE_NAMES.get(cls)
    if obj.get("type", expected) != expected:
        return DecodeError(
            code=ErrorCode.BAD_MESSAGE, message=f"expected a {expected!r} message", path="type"
        )
    try:
        return typing.cast(M, _convert_dataclass(cls, obj, ""))
    except _InvalidError as exc:
        return DecodeError(code=exc.code, message=exc.message, path=exc.path)
    except RecursionError:
        return DecodeError(code=ErrorCode.BAD_MESSAGE, message="message nested too deeply")


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _convert_dataclass(cls: type[Any], obj: Any, path: str) -> Any:
    if not isinstance(obj, dict):
        raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path or 'message'} must be an object", path)
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        where = f"{path}.{f.name}" if path else f.name
        if f.name in obj:
            kwargs[f.name] = _convert(hints[f.name], obj[f.name], where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise _InvalidError(ErrorCode.BAD_MESSAGE, f"missing field {where!r}", where)
    return cls(**kwargs)


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, path)
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path} must be a list", path)
        cap = _SEQUENCE_CAPS.get(path.rsplit(".", 1)[-1], MAX_TRACKS)
        if len(value) > cap:
            raise _InvalidError(ErrorCode.TOO_LARGE, f"{path} holds more than {cap} items", path)
        return tuple(_convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in tp)
            raise _InvalidError(
                ErrorCode.INVALID_VALUE, f"{path} must be one of: {allowed}", path
            ) from None
    if tp is bool:
        if not isinstance(value, bool):
            raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path} must be true or false", path)
        return value
    if tp is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path} must be an integer", path)
        if not -(2**53) <= value <= 2**53:
            raise _InvalidError(ErrorCode.INVALID_VALUE, f"{path} is out of range", path)
        return value
    if tp is float:
        # JSON has one number type; Infinity and NaN never reach here (parse_json refuses them)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path} must be a number", path)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _InvalidError(ErrorCode.WRONG_TYPE, f"{path} must be a string", path)
        field_name = path.rsplit(".", 1)[-1].split("[", 1)[0]
        cap = _BOUNDED_STRINGS.get(
            field_name, MAX_NAME_LEN if field_name == "artists" else MAX_STRING
        )
        if len(value) > cap:
            raise _InvalidError(
                ErrorCode.TOO_LARGE, f"{path} is longer than {cap} characters", path
            )
        return value
    raise _InvalidError(ErrorCode.INTERNAL, f"no decoder for {tp!r}", path)  # pragma: no cover
