"""The styles of the demo music: instruments, grooves and levels, as data.

A style says how a chord progression is played (sustained pads, stabs, arpeggios), what
the bass and the drums do in a bar and how the tune moves; `compose` turns a style, a
key, a tempo and a progression into a track.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.demo_music.synth import Instrument

# fmt: off
SAW = tuple(1 / k for k in range(1, 15))
MELLOW = (1, 0.4, 0.2, 0.12, 0.06)
REED = (1, 0.2, 0.12, 0.04, 0.03)
PLUCKED = (1, 0.6, 0.45, 0.35, 0.3, 0.25)
TINE = (1, 0.4, 0.25, 0.1, 0.06, 0, 0.04)
ROUND = (1, 0.55, 0.3, 0.18, 0.1)
BELLS = (1, 0, 0.3, 0, 0.12, 0, 0.05)
ONE = ((0.0, 0.0),)
TWO = ((-3.0, -0.3), (3.0, 0.3))  # two voices a few cents apart: chorus
WIDE = ((-7.0, -0.7), (7.0, 0.7))
SUPERSAW = ((-14.0, -0.9), (-6.0, -0.45), (0.0, 0.0), (6.0, 0.45), (14.0, 0.9))

# Spectra are partial amplitudes; "fade" is how long the bright spectrum takes to turn
# into the dark one; attack, decay and release in seconds; vibrato in cents.
#                       bright    dark             fade  attack decay sustain release voices vib
SOFT_PAD = Instrument(  MELLOW,   MELLOW,          1.0,  0.6,   1.2,  0.8,    1.6,    WIDE)
SAW_PAD = Instrument(   SAW,      SAW[:5],         0.7,  0.08,  0.8,  0.75,   0.5,    SUPERSAW)
PLUCK = Instrument(     PLUCKED,  (1, 0.2, 0.05),  0.08, 0.003, 0.3,  0.05,   0.15)
SAW_PLUCK = Instrument( SAW[:10], (1, 0.35, 0.1),  0.06, 0.002, 0.18, 0.1,    0.08)
KEYS = Instrument(      TINE,     (1, 0.12),       0.25, 0.004, 1.2,  0.35,   0.25,   TWO)
BASS = Instrument(      ROUND,    (1, 0.25, 0.06), 0.12, 0.006, 0.4,  0.7,    0.08)
SYNTH_BASS = Instrument(SAW[:10], (1, 0.4, 0.15),  0.09, 0.004, 0.2,  0.6,    0.05)
UPRIGHT = Instrument(   ROUND[:4], (1, 0.15),      0.1,  0.01,  0.35, 0.35,   0.1)
FLUTE = Instrument(     REED,     REED,            1.0,  0.04,  0.3,  0.85,   0.18,   ONE,   18)
BELL = Instrument(      BELLS,    (1, 0, 0.05),    0.6,  0.01,  1.5,  0.3,    0.8)
SAW_LEAD = Instrument(  SAW[:8],  (1, 0.5, 0.25),  0.3,  0.01,  0.4,  0.7,    0.12,   TWO,   10)
# fmt: on

Hits = tuple[tuple[float, float], ...]  # (beat, length in beats) within a bar
BassLine = tuple[tuple[float, float, str], ...]  # (beat, length, tone: R 3 5 8 A F)


@dataclass(frozen=True)
class Style:
    """How one kind of track is played; levels are linear gains before the master."""

    name: str
    beats_per_bar: int
    drums: dict[str, str]  # instrument -> one bar of steps: X loud, x medium, o ghost, . rest
    bass: Instrument
    bass_line: BassLine
    lead: Instrument
    rhythms: tuple[tuple[float, ...], ...]  # melody rhythms per bar, in beats
    cadence: tuple[float, ...]  # the rhythm of a phrase's last bar: it ends on a long note
    pad: Instrument | None = None
    comp: Instrument | None = None
    comp_hits: Hits = ()
    arp: Instrument | None = None
    arp_per_beat: int = 2
    swing: float = 0.0  # how late an off-beat eighth lands, in beats (1/6 is triplet swing)
    sevenths: bool = False
    fill: dict[str, str] = field(default_factory=dict)  # drums of the bar before a new section
    crash: bool = True
    duck: float = 0.0  # how deep the kick ducks pads and bass
    room_s: float = 1.8
    levels: dict[str, float] = field(default_factory=dict)


FOUR = ((1.0, 1.0, 1.0, 1.0), (1.5, 0.5, 2.0), (0.5, 0.5, 1.0, 2.0), (2.0, 1.0, 1.0))
STYLES: dict[str, Style] = {
    "ambient": Style(
        "ambient", 4,
        drums={"kick": "x.......o.......", "shaker": "..o...o...o...o."},
        bass=BASS, bass_line=((0, 3.5, "R"),), lead=BELL,
        rhythms=((2.0, 2.0), (3.0, 1.0), (1.0, 3.0)), cadence=(4.0,),
        pad=SOFT_PAD, arp=PLUCK, arp_per_beat=2, crash=False, room_s=3.2,
        levels={"pad": 0.30, "arp": 0.2, "bass": 0.35, "lead": 0.18, "drums": 0.5, "send": 0.7},
    ),
    "pop": Style(
        "pop", 4,
        drums={"kick": "X.....x.X.x.....", "snare": "....X.......X...", "hat": "x.o.x.o.x.o.x.o."},
        bass=BASS, bass_line=tuple((i / 2, 0.45, "8" if i in (3, 7) else "R") for i in range(8)),
        lead=FLUTE, rhythms=FOUR, cadence=(1.0, 3.0),
        pad=SOFT_PAD, arp=PLUCK, arp_per_beat=4,
        fill={"snare": "....X.......XxXX"},
        levels={"pad": 0.20, "arp": 0.25, "bass": 0.40, "lead": 0.28, "drums": 0.8, "send": 0.4},
    ),
    "groove": Style(
        "groove", 4,
        drums={"kick": "X..x..x...X..x..", "snare": "....X..o.o..X..o", "hat": "xoxoXoxoxoxoXoxo"},
        bass=BASS,
        bass_line=((0, 0.7, "R"), (0.75, 0.2, "R"), (1.5, 0.4, "8"), (2.5, 0.4, "R"),
                   (3, 0.4, "5"), (3.5, 0.4, "8")),
        lead=FLUTE, rhythms=((0.5, 0.5, 1.0, 0.5, 1.5), *FOUR), cadence=(0.5, 0.5, 3.0),
        pad=SOFT_PAD, comp=KEYS, comp_hits=((0.5, 0.3), (1.5, 0.5), (2.75, 0.2), (3.5, 0.4)),
        swing=0.06, fill={"snare": "....X..o.oXxXxXX"},
        levels={"pad": 0.16, "comp": 0.32, "bass": 0.38, "lead": 0.22, "drums": 0.8, "send": 0.3},
    ),
    "electronic": Style(
        "electronic", 4,
        drums={"kick": "X...X...X...X...", "clap": "....X.......X...",
               "hat": "xo.oxo.oxo.oxo.o", "open_hat": "..x...x...x...x."},
        bass=SYNTH_BASS, bass_line=tuple((i + 0.5, 0.4, "R") for i in range(4)),
        lead=SAW_LEAD, rhythms=((0.5, 0.5, 0.5, 0.5, 1.0, 1.0), (0.75, 0.75, 0.5, 2.0), FOUR[0]),
        cadence=(0.5, 0.5, 3.0), pad=SAW_PAD, arp=SAW_PLUCK, arp_per_beat=4,
        fill={"clap": "....X.......XXXX"}, duck=0.75, room_s=2.2,
        levels={"pad": 0.2, "arp": 0.25, "bass": 0.4, "lead": 0.22, "drums": 0.9, "send": 0.35},
    ),
    "downtempo": Style(
        "downtempo", 4,
        drums={"kick": "X.....x...X.....", "snare": "....X.......X...", "hat": "x.x.x.x.x.x.x.xo"},
        bass=BASS, bass_line=((0, 1.4, "R"), (1.5, 0.4, "5"), (2, 1.4, "R"), (3.5, 0.4, "A")),
        lead=FLUTE, rhythms=FOUR, cadence=(1.0, 3.0),
        comp=KEYS, comp_hits=((0, 1.4), (1.5, 2.4)), swing=0.14, sevenths=True, crash=False,
        levels={"comp": 0.24, "bass": 0.45, "lead": 0.2, "drums": 0.75, "send": 0.45},
    ),
    "waltz": Style(
        "waltz", 3,
        drums={"kick": "X.....", "hat": "..x.x.", "shaker": "o.o.oo"},
        bass=UPRIGHT, bass_line=((0, 0.9, "F"),), lead=FLUTE,
        rhythms=((1.0, 1.0, 1.0), (2.0, 1.0), (1.5, 0.5, 1.0)), cadence=(3.0,),
        pad=SOFT_PAD, comp=KEYS, comp_hits=((1, 0.6), (2, 0.6)), crash=False,
        levels={"pad": 0.12, "comp": 0.2, "bass": 0.5, "lead": 0.22, "drums": 0.6, "send": 0.5},
    ),
    "swing": Style(
        "swing", 4,
        drums={"ride": "X..x.xX..x.x", "hat": "...X.....X..", "kick": "o..o..o..o.."},
        bass=UPRIGHT, bass_line=((0, 0.9, "R"), (1, 0.9, "3"), (2, 0.9, "5"), (3, 0.9, "A")),
        lead=FLUTE, rhythms=((0.5, 0.5, 0.5, 0.5, 1.0, 1.0), (1.0, 0.5, 0.5, 2.0), FOUR[1]),
        cadence=(0.5, 0.5, 3.0), comp=KEYS, comp_hits=((0, 0.5), (1.5, 0.4)),
        swing=1 / 6, sevenths=True, crash=False,
        fill={"snare": "......o..x.X"},
        levels={"comp": 0.3, "bass": 0.45, "lead": 0.22, "drums": 0.6, "send": 0.35},
    ),
}  # fmt: skip

DRUM_MIX: dict[str, tuple[float, float]] = {  # gain, pan
    "kick": (1.0, 0.0),
    "snare": (0.5, -0.1),
    "clap": (0.45, 0.1),
    "hat": (0.16, 0.3),
    "open_hat": (0.12, 0.35),
    "shaker": (0.1, -0.4),
    "ride": (0.2, 0.4),
    "crash": (0.22, -0.3),
}
