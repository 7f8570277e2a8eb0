"""Ogg Vorbis from memory to float PCM through libvorbisfile (ctypes), a block at a time.

Why not PyAV, as ARCHITECTURE.md first chose: on a speaker's small RAM the
whole of libav costs ~17 MiB of resident memory before a single frame is
decoded, while libvorbisfile (the reference decoder ``oggdec`` uses; Debian's
``libvorbisfile3``) costs under 1 MiB and decodes as fast.  It also trims a
stream's end by its granule position, so an independent segment decodes to
exactly its length.

The segment's bytes are opened in place with ``fmemopen`` (no copy, no Python
callbacks from C) in vorbisfile's non-seekable mode, which reads only the
headers up front; ``read`` then hands out blocks as they decode, so the first
audio of a segment is ready after its first packets rather than its last.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

from device.audio import pcm_native
from device.errors import DeviceError

Pcm = NDArray[np.float32]  # shape (frames, channels)

_OV_FILE_BYTES = 4096  # sizeof(OggVorbis_File) is ~950 on 64-bit targets; room to spare


class VorbisError(DeviceError):
    """The bytes do not decode as Ogg Vorbis (or libvorbisfile is missing)."""


class _Callbacks(ctypes.Structure):
    _fields_ = [
        ("read_func", ctypes.c_void_p),
        ("seek_func", ctypes.c_void_p),
        ("close_func", ctypes.c_void_p),
        ("tell_func", ctypes.c_void_p),
    ]


class _Info(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_int),
        ("channels", ctypes.c_int),
        ("rate", ctypes.c_long),
        ("bitrate_upper", ctypes.c_long),
        ("bitrate_nominal", ctypes.c_long),
        ("bitrate_lower", ctypes.c_long),
        ("bitrate_window", ctypes.c_long),
        ("codec_setup", ctypes.c_void_p),
    ]


class _Lib:
    """The two C libraries and the prototypes used, loaded once on first use."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("vorbisfile") or "libvorbisfile.so.3"
        try:
            vf = ctypes.CDLL(name)
        except OSError as exc:
            raise VorbisError(
                f"cannot load libvorbisfile ({exc}); install the libvorbisfile3 package"
            ) from exc
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fmemopen = libc.fmemopen
        self.fmemopen.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
        self.fmemopen.restype = ctypes.c_void_p
        self.fclose = libc.fclose
        self.fclose.argtypes = [ctypes.c_void_p]
        # non-seekable: fread and fclose only, so opening reads just the headers
        self.callbacks = _Callbacks(
            ctypes.cast(libc.fread, ctypes.c_void_p).value,
            None,
            ctypes.cast(libc.fclose, ctypes.c_void_p).value,
            None,
        )
        self.ov_open_callbacks = vf.ov_open_callbacks
        self.ov_open_callbacks.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_long,
            _Callbacks,
        ]
        self.ov_open_callbacks.restype = ctypes.c_int
        self.ov_info = vf.ov_info
        self.ov_info.argtypes = [ctypes.c_void_p, ctypes.c_int]
        self.ov_info.restype = ctypes.POINTER(_Info)
        self.ov_read_float = vf.ov_read_float
        self.ov_read_float.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)),
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_int),
        ]
        self.ov_read_float.restype = ctypes.c_long
        self.ov_read_float_address = ctypes.cast(vf.ov_read_float, ctypes.c_void_p).value
        self.ov_clear = vf.ov_clear
        self.ov_clear.argtypes = [ctypes.c_void_p]
        self.ov_clear.restype = ctypes.c_int


@functools.cache
def _library() -> _Lib:
    """Loaded on first use, once (a lost race only loads the same library twice)."""
    return _Lib()


_ERRORS = {
    -1: "read error",
    -2: "internal fault",
    -3: "interruption in the data (a missing or corrupt page)",
    -128: "read error",
    -129: "internal fault",
    -130: "not implemented",
    -131: "invalid argument",
    -132: "not Vorbis data",
    -133: "bad Vorbis header",
    -134: "unsupported Vorbis version",
    -135: "not audio",
    -136: "bad packet",
    -137: "bad link",
    -138: "not seekable",
}


def _error(code: int) -> str:
    return _ERRORS.get(code, f"error {code}")


class VorbisStream:
    """One Ogg Vorbis stream in memory, read as float32 blocks of ``(frames, channels)``.

    Not thread-safe; one owner reads it to the end (or closes it early).  The
    bytes are referenced, not copied, and must not change while it is open.
    """

    def __init__(self, data: bytes) -> None:
        lib = self._lib = _library()
        self._data = data  # fmemopen reads this buffer in place: keep it alive
        self._vf: Any = None
        if not data:
            raise VorbisError("empty stream")
        handle = lib.fmemopen(ctypes.c_char_p(data), len(data), b"rb")
        if not handle:
            raise VorbisError(f"fmemopen failed (errno {ctypes.get_errno()})")
        vf = ctypes.create_string_buffer(_OV_FILE_BYTES)
        code = lib.ov_open_callbacks(handle, vf, None, 0, lib.callbacks)
        if code != 0:
            lib.fclose(handle)  # on failure ov_open_callbacks leaves the source open
            raise VorbisError(f"cannot open the stream: {_error(code)}")
        self._vf = vf
        info = lib.ov_info(vf, -1)
        if not info:
            self.close()
            raise VorbisError("stream has no Vorbis info")
        self.channels = int(info.contents.channels)
        self.rate = int(info.contents.rate)
        self._pcm = ctypes.POINTER(ctypes.c_void_p)()
        self._section = ctypes.c_int(0)
        self.frames_read = 0
        self.ended = False

    def read(self, max_frames: int) -> Pcm:
        """Up to ``max_frames`` more frames; an empty array at the end of the stream.

        Raises ``VorbisError`` for a packet that does not decode and for NaN or
        infinite samples (a broken stream; never handed on as audio)."""
        if self._vf is None:
            raise VorbisError("stream is closed")
        fast = pcm_native.native()
        if fast is not None:
            return self._read_native(fast, max_frames)
        channels = self.channels
        out = np.empty((channels, max_frames), np.float32)
        base = out.ctypes.data
        stride = max_frames * 4
        got = 0
        lib, vf, pcm, section = self._lib, self._vf, self._pcm, ctypes.byref(self._section)
        memmove = ctypes.memmove
        while got < max_frames and not self.ended:
            n = lib.ov_read_float(vf, ctypes.byref(pcm), max_frames - got, section)
            if n == 0:
                self.ended = True
                break
            if n < 0:
                raise VorbisError(f"cannot decode: {_error(n)}")
            for ch in range(channels):
                memmove(base + ch * stride + got * 4, pcm[ch], n * 4)
            got += n
        block = np.ascontiguousarray(out[:, :got].T)
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, caught all the same
            finite = np.isfinite(block.sum())  # any NaN or inf makes the sum so
        if not finite:
            raise VorbisError("decoded to non-finite samples")
        self.frames_read += got
        return block

    def _read_native(self, fast: pcm_native.Native, max_frames: int) -> Pcm:
        """``read`` with the packet loop and the interleaving in C."""
        if self.ended:
            return np.empty((0, self.channels), np.float32)
        out = np.empty((max_frames, self.channels), np.float32)
        code, ended, nonfinite = fast.read_interleaved(
            self._lib.ov_read_float_address, self._vf, out
        )
        if code < 0:
            raise VorbisError(f"cannot decode: {_error(code)}")
        if nonfinite:
            raise VorbisError("decoded to non-finite samples")
        got = code
        self.ended = ended
        self.frames_read += got
        return out if got == max_frames else out[:got]

    def close(self) -> None:
        if self._vf is not None:
            self._lib.ov_clear(self._vf)  # closes the memory FILE too
            self._vf = None

    def __enter__(self) -> VorbisStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
