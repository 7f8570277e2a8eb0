"""The engine's per-sample loops in C (``pcm_native.c``), when the library was built.

Why: the speaker's CPU budget is 1.5 x oggdec for decoding and everything after
it, and libvorbisfile alone costs about one oggdec.  Per-packet ctypes calls, the
limiter's vectorised log/exp passes and the float to int16 passes in numpy cost
another half; in C each is one call per block.  ``make`` builds the library
beside this file with the system's C compiler (no Python or libvorbis headers
needed).  Without it (no compiler, or ``LEGATO_NATIVE_PCM=0``) every caller uses
its numpy twin, which is the reference: the tests hold the two to each other.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

logger = logging.getLogger(__name__)

# "lib" prefix: a pcm_native.so here would shadow this module on import
LIBRARY = Path(__file__).with_name("libpcm_native.so")
ABI_VERSION = 2  # lg_abi_version() of the C source this module speaks to
DISABLE_ENV = "LEGATO_NATIVE_PCM"  # "0" forces the numpy path (tests, benchmarks)


class Native:
    """Typed entry points of the built library."""

    def __init__(self, lib: ctypes.CDLL, held: ctypes.PyDLL) -> None:
        # Decoding a block takes a while: it lets go of the GIL (CDLL) so the sink thread
        # runs meanwhile.  The rest take microseconds and keep it (PyDLL): handing the GIL
        # to another thread and back would cost more than the call.
        self._read = lib.lg_read_interleaved
        self._read.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_long,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_long),
            ctypes.POINTER(ctypes.c_int),
        ]
        self._read.restype = ctypes.c_long
        self._limit = held.lg_limit
        self._limit.argtypes = [
            ctypes.c_void_p,
            ctypes.c_long,
            ctypes.c_int,
            ctypes.c_float,
            ctypes.c_double,
            ctypes.POINTER(ctypes.c_double),
        ]
        self._limit.restype = ctypes.c_long
        self._to_s16 = held.lg_to_s16
        self._to_s16.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
        self._to_s16.restype = None
        self._scale = held.lg_scale_s16
        self._scale.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_float]
        self._scale.restype = None
        self._ramp = held.lg_ramp_s16
        self._ramp.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_long,
            ctypes.c_int,
            ctypes.c_float,
            ctypes.c_float,
        ]
        self._ramp.restype = None

    def read_interleaved(
        self, read_fn: int | None, vf: object, out: NDArray[np.float32]
    ) -> tuple[int, bool, bool]:
        """Fill ``out`` (C-contiguous ``(frames, channels)``) from ``ov_read_float``.

        Returns ``(code, ended, nonfinite)``: code is the frames decoded or
        libvorbisfile's negative error; ``nonfinite`` is set when a decoded sample is
        NaN or infinite.
        """
        ended, done, bad = ctypes.c_int(0), ctypes.c_long(0), ctypes.c_int(0)
        code = self._read(
            read_fn,
            vf,
            out.ctypes.data,
            out.shape[0],
            out.shape[1],
            ctypes.byref(ended),
            ctypes.byref(done),
            ctypes.byref(bad),
        )
        return int(code), bool(ended.value), bool(bad.value)

    def limit(
        self, x: NDArray[np.float32], ceiling: np.float32, decay: float, reduction: float
    ) -> tuple[float, int]:
        """Limit C-contiguous float32 ``(frames, channels)`` in place; the new reduction
        and how many frames were over the ceiling."""
        r = ctypes.c_double(reduction)
        over = self._limit(x.ctypes.data, x.shape[0], x.shape[1], ceiling, decay, ctypes.byref(r))
        return float(r.value), int(over)

    def to_s16(self, x: NDArray[np.float32]) -> NDArray[np.int16]:
        out = np.empty(x.shape, np.int16)
        self._to_s16(x.ctypes.data, out.ctypes.data, x.size)
        return out

    def scale_s16(self, x: NDArray[np.int16], gain: float) -> NDArray[np.int16]:
        x = np.ascontiguousarray(x)
        out = np.empty(x.shape, np.int16)
        self._scale(x.ctypes.data, out.ctypes.data, x.size, gain)
        return out

    def ramp_s16(self, x: NDArray[np.int16], start: float, end: float) -> NDArray[np.int16]:
        x = np.ascontiguousarray(x)
        out = np.empty(x.shape, np.int16)
        self._ramp(x.ctypes.data, out.ctypes.data, x.shape[0], x.shape[1], start, end)
        return out


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") != "0"


@functools.cache
def _load() -> Native | None:
    if not LIBRARY.exists():
        logger.info("%s not built (make builds it): the numpy path is used", LIBRARY.name)
        return None
    try:
        lib = ctypes.CDLL(str(LIBRARY))
        lib.lg_abi_version.restype = ctypes.c_int
        version = int(lib.lg_abi_version())
    except (OSError, AttributeError) as exc:
        logger.warning("cannot load %s (%s): the numpy path is used", LIBRARY, exc)
        return None
    if version != ABI_VERSION:
        logger.warning(
            "%s is a stale build (ABI %d, want %d; run make): the numpy path is used",
            LIBRARY,
            version,
            ABI_VERSION,
        )
        return None
    return Native(lib, ctypes.PyDLL(str(LIBRARY)))


def native() -> Native | None:
    """The built library, or None to use the numpy path."""
    return _load() if enabled() else None
