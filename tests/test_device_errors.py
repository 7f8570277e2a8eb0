"""The speaker's exceptions share one root, ``device.errors.DeviceError``, as its tree says."""

from __future__ import annotations

import pytest

from device import errors
from device.audio.decoder import DecodeFailedError
from device.audio.sinks import SinkError
from device.audio.source import SourceError, TooSlowError
from device.audio.vorbis import VorbisError
from device.config import ConfigError
from device.downloads import HubRefusedError
from device.errors import DeviceError


@pytest.mark.parametrize(
    "error",
    [
        ConfigError,
        SourceError,
        TooSlowError,
        SinkError,
        DecodeFailedError,
        VorbisError,
        HubRefusedError,
    ],
)
def test_every_speaker_error_is_a_device_error(error: type[Exception]) -> None:
    assert issubclass(error, DeviceError)
    assert error.__name__ in (errors.__doc__ or "")  # drawn in the tree


def test_source_errors_keep_their_retry_flag() -> None:
    assert SourceError("x", retryable=False).retryable is False
    assert TooSlowError("slow").retryable is True
