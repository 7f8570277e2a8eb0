"""The controls bench judges what it claims to: a volume change is found at the sink in
the block where the engine's own ramp starts, the panel frames it writes are the
protocol's, and a spin that lost or reversed a detent is caught.

The bench's parts live in ``bench/knob`` and are imported as the bench imports them
(``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from device.audio import dsp
from hardware.panel import frames

BENCH = Path(__file__).resolve().parents[1] / "bench"


def part(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(f"knob.{name}")


BLOCK_FRAMES = 512  # what the engine writes at a time


def played(before: int, after: int, change_at_block: int, blocks: int) -> list[bytes]:
    """The tone as the speaker writes it, block by block, the volume changed at a block
    (ramped over it by the engine's own DSP)."""
    tone = part("tone")
    pcm = tone.tone_pcm(blocks * BLOCK_FRAMES / 44100)
    g0, g1 = dsp.volume_gain(before), dsp.volume_gain(after)
    out = []
    for k in range(blocks):
        block = np.ascontiguousarray(pcm[k * BLOCK_FRAMES : (k + 1) * BLOCK_FRAMES])
        if k < change_at_block:
            block = dsp.apply_volume(block, g0)
        elif k == change_at_block:
            block = dsp.ramp_volume(block, g0, g1)
        else:
            block = dsp.apply_volume(block, g1)
        out.append(block.tobytes())
    return out


def windows(blocks: list[bytes], block_ns: int) -> tuple[list[int], list[float]]:
    """Each block read at its own time; every window of a block carries that time."""
    levels = part("levels")
    at: list[int] = []
    db: list[float] = []
    for k, data in enumerate(blocks):
        got = levels.window_levels_db(data)
        at += [(k + 1) * block_ns] * len(got)
        db += got
    return at, db


@pytest.mark.parametrize(("before", "after"), [(50, 52), (52, 50), (10, 12), (90, 88)])
def test_a_change_is_found_in_the_block_the_ramp_starts(before: int, after: int) -> None:
    levels = part("levels")
    block_ns = 11_000_000
    at, db = windows(played(before, after, change_at_block=20, blocks=40), block_ns)
    sent_ns = 18 * block_ns + 1  # sent while block 18 was the newest read
    found = levels.find_change(at, db, sent_ns, 10**12, before, after)
    assert found is not None
    assert found.at_ns == 21 * block_ns  # block 20, read as the 21st
    assert abs((found.new_db - found.old_db) - levels.step_db(before, after)) < 0.05


def test_no_change_or_the_wrong_one_is_not_found() -> None:
    levels = part("levels")
    block_ns = 11_000_000
    steady = played(50, 50, change_at_block=20, blocks=40)
    at, db = windows(steady, block_ns)
    assert levels.find_change(at, db, 18 * block_ns + 1, 10**12, 50, 52) is None
    # a change to 54 % is not the 52 % that was asked for
    at, db = windows(played(50, 54, change_at_block=20, blocks=40), block_ns)
    assert levels.find_change(at, db, 18 * block_ns + 1, 10**12, 50, 52) is None
    # nor one that came after the next detent was sent
    at, db = windows(played(50, 52, change_at_block=30, blocks=40), block_ns)
    assert levels.find_change(at, db, 18 * block_ns + 1, 25 * block_ns, 50, 52) is None


def test_panel_frames_are_the_protocols() -> None:
    """Written by the bench from the issue's definition, they are what the speaker's own
    codec makes and reads; the speaker's frames back are read as its codec writes them."""
    panel = part("panel")
    assert panel.frame("ENC,+1") == b"$ENC,+1*7E\r\n"
    for payload in ("HELLO,1,bench", "ENC,+1", "ENC,-1"):
        written = panel.frame(payload)
        assert written == frames.encode(*payload.split(","))
        assert isinstance(frames.decode_line(written.rstrip(b"\n")), frames.Encoder | frames.Hello)
    assert panel.parse(frames.encode("VOL", "52").rstrip(b"\r\n")) == "VOL,52"
    assert panel.parse(b"$VOL,52*7E") == "VOL,52"
    assert panel.parse(b"$VOL,52*7F") is None  # a bad checksum
    assert panel.parse(b"garbage$PONG*" + f"{0x50 ^ 0x4F ^ 0x4E ^ 0x47:02X}".encode()) == "PONG"


def test_a_spin_that_lost_or_reversed_a_detent_fails() -> None:
    spin = part("spin")
    legs = spin.legs_of(200)
    assert legs == [40, -40, 40, -40, 40]
    start = 10
    good = []
    volume = start
    for n in legs:
        for _ in range(abs(n)):
            volume += 2 if n > 0 else -2
            good.append(volume)
    assert spin.judge(good, start, legs, 2)["ok"]
    lost = good[:30] + [v - 2 for v in good[31:]]  # one up-detent never counted
    assert not spin.judge(lost, start, legs, 2)["ok"]
    reversed_ = [*good[:10], good[9] - 2, *good[10:]]  # a step down within the first leg
    assert not spin.judge(reversed_, start, legs, 2)["ok"]
