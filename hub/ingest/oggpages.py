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

from connect_protocol.ogg import EOS, OggError, build_page, parse_pages


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
            flags=page.flags & ~EOS,
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
