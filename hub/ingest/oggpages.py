"""Re-page an Ogg Vorbis stream whose audio fits in one page.

libav (PyAV, mpv) computes a stream's start from its first audio page and its
end trim from its last one; when they are the same page it trims neither, so
the stream decodes a few hundred frames long (FIELD-NOTES.md, "Ogg Vorbis").
libsndfile writes one page per ~4 KB or 255 packets, so a short or quiet
segment can be a single page.  ``split_single_page`` moves the last audio
packet onto a page of its own, giving the first page the granule position it
would have had: Vorbis packet durations follow from the block sizes in the
identification header and the modes at the end of the setup header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_HEADER = struct.Struct("<4sBBqIII B")  # capture, version, flags, granule, serial, seq, crc, nseg
_EOS = 0x04
_CONTINUED = 0x01


class OggError(ValueError):
    """Bytes that are not the simple Ogg Vorbis stream libsndfile writes."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
            r &= 0xFFFFFFFF
        table.append(r)
    return tuple(table)


_CRC = _crc_table()


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected: not zlib's)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[(crc >> 24) ^ byte]
    return crc


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
        if size or self.flags & _CONTINUED:
            raise OggError("a packet spans pages")
        return out


def parse_pages(data: bytes) -> list[Page]:
    pages, off = [], 0
    while off < len(data):
        if len(data) - off < _HEADER.size:
            raise OggError("truncated page header")
        capture, _v, flags, granule, serial, seq, _crc, nseg = _HEADER.unpack_from(data, off)
        if capture != b"OggS":
            raise OggError(f"no page at byte {off}")
        lacing = data[off + _HEADER.size : off + _HEADER.size + nseg]
        end = off + _HEADER.size + nseg + sum(lacing)
        if end > len(data):
            raise OggError("truncated page")
        body = data[off + _HEADER.size + nseg : end]
        pages.append(Page(flags, granule, serial, seq, lacing, body, data[off:end]))
        off = end
    return pages


def build_page(*, flags: int, granule: int, serial: int, seq: int, packets: list[bytes]) -> bytes:
    lacing = bytearray()
    for packet in packets:
        lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
    if len(lacing) > 255:
        raise OggError("too many packets for one page")
    header = _HEADER.pack(b"OggS", 0, flags, granule, serial, seq, 0, len(lacing))
    page = header + bytes(lacing) + b"".join(packets)
    return page[:22] + struct.pack("<I", ogg_crc(page)) + page[26:]


def _mode_blockflags(setup: bytes) -> list[int]:
    """Block flag of each mode, read backwards from the setup header's framing bit.

    Each mode is 41 bits (blockflag, windowtype 0, transformtype 0, mapping),
    preceded by the mode count less one in 6 bits; the longest run that agrees
    with its count is the answer (as libavcodec's parser does).
    """
    bits = int.from_bytes(setup, "little")
    framing = bits.bit_length() - 1

    def field(pos: int, width: int) -> int:
        return (bits >> pos) & ((1 << width) - 1)

    flags: list[int] = []
    best: list[int] = []
    while len(flags) < 64:
        start = framing - 41 * (len(flags) + 1)
        if start < 6 or field(start + 1, 32) or field(start + 33, 8) > 63:
            break
        flags.insert(0, field(start, 1))
        if field(start - 6, 6) == len(flags) - 1:
            best = list(flags)
    if not best:
        raise OggError("cannot read the Vorbis modes")
    return best


def split_single_page(data: bytes) -> bytes:
    """The same stream with its audio on two pages if it was on one, else unchanged."""
    pages = parse_pages(data)
    located = [(i, packet) for i, page in enumerate(pages) for packet in page.packets()]
    if len(located) < 5:  # three headers and at least two audio packets
        raise OggError("too few packets for a Vorbis stream")
    ident, setup = located[0][1], located[2][1]
    audio = located[3:]
    if ident[:7] != b"\x01vorbis" or setup[:7] != b"\x05vorbis":
        raise OggError("not an Ogg Vorbis stream")
    first = audio[0][0]
    if audio[-1][0] != first:
        return data
    if located[2][0] == first:
        raise OggError("audio shares a page with the headers")
    sizes = (1 << (ident[28] & 0x0F), 1 << (ident[28] >> 4))
    flags = _mode_blockflags(setup)
    mask = (1 << (len(flags) - 1).bit_length()) - 1
    blocks = [sizes[flags[(packet[0] >> 1) & mask]] for _, packet in audio]
    # A packet's granule is the previous one's plus a quarter of each block; the first adds 0.
    granule = sum(blocks[i - 1] // 4 + blocks[i] // 4 for i in range(1, len(blocks) - 1))
    page = pages[first]
    head = b"".join(p.raw for p in pages[:first])
    body = [packet for _, packet in audio]
    return (
        head
        + build_page(
            flags=page.flags & ~_EOS,
            granule=granule,
            serial=page.serial,
            seq=page.seq,
            packets=body[:-1],
        )
        + build_page(
            flags=page.flags,
            granule=page.granule,
            serial=page.serial,
            seq=page.seq + 1,
            packets=body[-1:],
        )
    )
