"""Ogg pages: the CRC, reading and writing pages, and checking a segment whole.

Shared by the hub (ingest re-pages single-page segments) and the speaker
(every segment is checked before a decoder sees it: a page whose CRC fails,
a cut-short stream or a wrong length is refetched, never played as noise).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from connect_protocol.errors import ConnectError
from connect_protocol.media import Rendition

HEADER = struct.Struct("<4sBBqIII B")  # capture, version, flags, granule, serial, seq, crc, nseg
CONTINUED, BOS, EOS = 0x01, 0x02, 0x04

_BIT_REVERSED = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class OggError(ConnectError, ValueError):
    """Bytes that are not the simple Ogg Vorbis stream ingest writes."""


class BadSegmentError(OggError):
    """The bytes are not the segment the manifest describes."""


def ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 (poly 0x04C11DB7, MSB first, no reflection, init 0, no xor-out).

    zlib's CRC-32 is the bit-reflected twin, so reflecting every input byte and
    the result gives Ogg's, at C speed.  zlib's start value 0xFFFFFFFF undoes
    its own pre-inversion (init 0) and the final xor undoes its post-inversion.
    """
    reflected = zlib.crc32(page.translate(_BIT_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(frozen=True, slots=True)
class Page:
    flags: int
    granule: int
    serial: int
    seq: int
    lacing: bytes
    body: bytes
    raw: bytes

    def packets(self) -> list[bytes]:
        """Whole packets in this page (libsndfile never splits one across pages)."""
        out, pos, size = [], 0, 0
        for value in self.lacing:
            size += value
            if value < 255:
                out.append(self.body[pos : pos + size])
                pos, size = pos + size, 0
        if size or self.flags & CONTINUED:
            raise OggError("a packet spans pages")
        return out


def parse_pages(data: bytes) -> list[Page]:
    pages, off = [], 0
    while off < len(data):
        if len(data) - off < HEADER.size:
            raise OggError("truncated page header")
        capture, _v, flags, granule, serial, seq, _crc, nseg = HEADER.unpack_from(data, off)
        if capture != b"OggS":
            raise OggError(f"no page at byte {off}")
        lacing = data[off + HEADER.size : off + HEADER.size + nseg]
        end = off + HEADER.size + nseg + sum(lacing)
        if end > len(data):
            raise OggError("truncated page")
        body = data[off + HEADER.size + nseg : end]
        pages.append(Page(flags, granule, serial, seq, lacing, body, data[off:end]))
        off = end
    return pages


def build_page(*, flags: int, granule: int, serial: int, seq: int, packets: list[bytes]) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    if len(lacing) > 255:
        raise OggError("too many packets for one page")
    header = HEADER.pack(b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    page = header + bytes(lacing) + b"".join(packets)
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def check_segment(data: bytes, frames: int, rendition: Rendition) -> None:
    """Raise ``BadSegmentError`` unless ``data`` is one whole Ogg Vorbis stream of
    ``frames`` frames in the rendition's format: every page complete with a good
    CRC, a Vorbis identification header, and an end-of-stream granule of ``frames``.
    """
    pos, last_granule, pages, eos = 0, -1, 0, False
    while pos < len(data):
        if eos:
            raise BadSegmentError("data after the end of the stream")
        if len(data) - pos < 27 or data[pos : pos + 4] != b"OggS":
            raise BadSegmentError(f"no Ogg page at byte {pos}")
        flags, granule = data[pos + 5], struct.unpack_from("<q", data, pos + 6)[0]
        stored_crc = struct.unpack_from("<I", data, pos + 22)[0]
        nseg = data[pos + 26]
        body = sum(data[pos + 27 : pos + 27 + nseg])
        end = pos + 27 + nseg + body
        if end > len(data):
            raise BadSegmentError(f"page at byte {pos} is cut short")
        page = data[pos:end]
        if ogg_crc(page[:22] + b"\0\0\0\0" + page[26:]) != stored_crc:
            raise BadSegmentError(f"page at byte {pos} fails its CRC")
        if pages == 0:
            head = page[27 + nseg :]
            if not flags & 0x02 or head[:7] != b"\x01vorbis" or len(head) < 16:
                raise BadSegmentError("not an Ogg Vorbis stream")
            channels, rate = head[11], struct.unpack_from("<I", head, 12)[0]
            if (channels, rate) != (rendition.channels, rendition.sample_rate):
                raise BadSegmentError(
                    f"segment is {channels} ch {rate} Hz, the manifest says "
                    f"{rendition.channels} ch {rendition.sample_rate} Hz"
                )
        if granule != -1:
            last_granule = granule
        eos = bool(flags & 0x04)
        pages += 1
        pos = end
    if not eos:
        raise BadSegmentError("the stream has no end")
    if last_granule != frames:
        raise BadSegmentError(f"segment holds {last_granule} frames, expected {frames}")
