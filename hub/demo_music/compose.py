"""From a key, a tempo, a progression and a style to a finished stereo track.

A track is phrases of the progression (intro, verses, choruses, a break, an outro) and
an ending: the tonic chord struck once and left to ring out. Tunes are drawn from the
scale by a seeded generator, so a track is the same every time it is rendered.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from hub.demo_music.styles import DRUM_MIX, STYLES, Style
from hub.demo_music.synth import Audio, Instrument, Mixer, drum_kit, render_note

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
NAMES = "C.D.EF.G.A.B"  # pitch classes of the natural notes
ROMAN = ("I", "II", "III", "IV", "V", "VI", "VII")
STEP_LEVEL = {"X": 1.0, "x": 0.7, "o": 0.4}
Pcm = NDArray[np.int16]  # frames x channels
Note = tuple[float, float, int]  # (beat in the phrase, length in beats, MIDI note)


@dataclass(frozen=True)
class Tune:
    """What a track plays: a style, a key, a tempo and a chord a bar, in Roman numerals
    (upper case major, lower case minor: "V" in a minor key has the raised leading note)."""

    style: str
    tonic: int  # pitch class, 0 is C
    minor: bool
    bpm: float
    progression: tuple[str, ...]

    @classmethod
    def of(cls, style: str, key: str, bpm: float, chords: str) -> Tune:
        """Written as a musician would: Tune.of("pop", "F#m", 104, "i VI III VII")."""
        minor = key.endswith("m")
        tonic = NAMES.index(key.rstrip("m")[0]) + {"#": 1, "b": -1}.get(key.rstrip("m")[1:], 0)
        return cls(style, tonic % 12, minor, bpm, tuple(chords.split()))

    @property
    def melody_tonic(self) -> int:
        """The tonic's MIDI note for the tune: between F4 and E5, where a voice sits."""
        return 60 + self.tonic if self.tonic >= 5 else 72 + self.tonic

    def offset(self, degree: int) -> int:
        """Semitones above the tonic of a scale degree (any octave)."""
        scale = MINOR if self.minor else MAJOR
        return scale[degree % 7] + 12 * (degree // 7)

    def chord(self, numeral: str) -> list[int]:
        """Pitch classes of the triad (or seventh chord), root first."""
        degree = ROMAN.index(numeral.upper())
        steps = (0, 2, 4, 6) if STYLES[self.style].sevenths else (0, 2, 4)
        tones = [(self.tonic + self.offset(degree + s)) % 12 for s in steps]
        tones[1] = (tones[0] + (4 if numeral.isupper() else 3)) % 12
        return tones

    def melody_offset(self, numeral: str, degree: int) -> int:
        """Semitones above the tonic of a tune's note: the scale, bent to the chord's third."""
        root = ROMAN.index(numeral.upper())
        bend = 0
        if degree % 7 == (root + 2) % 7:
            chord = self.chord(numeral)
            bend = (chord[1] - chord[0]) - (self.offset(root + 2) - self.offset(root))
        return self.offset(degree) + bend

    def chord_degrees(self, numeral: str) -> tuple[int, ...]:
        """The scale degrees (0 to 6) of the chord's root, third and fifth."""
        root = ROMAN.index(numeral.upper())
        return (root, (root + 2) % 7, (root + 4) % 7)


def seed_of(text: str) -> int:
    """A stable seed (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def voicing(pitch_classes: list[int], center: int) -> tuple[int, ...]:
    """Each chord tone in the octave nearest `center`: close, smooth-moving voicings."""
    return tuple(sorted(center + ((pc - center + 6) % 12) - 6 for pc in pitch_classes))


def swung(beat: float, swing: float) -> float:
    """Delay off-beat eighths (and stretch the sixteenths around them) by `swing` beats."""
    whole, frac = divmod(beat, 1.0)
    if frac <= 0.5:
        return whole + frac * (0.5 + swing) / 0.5
    return whole + 0.5 + swing + (frac - 0.5) * (0.5 - swing) / 0.5


def sections(phrases: int) -> list[str]:
    """Intro, verses (A) and choruses (B), a break half-way and an outro, as length allows."""
    if phrases < 3:
        return ["B"] * phrases
    middle = ["A", "B"] * phrases
    if phrases >= 7:
        middle[phrases // 2 - 1] = "break"
    outro = ["outro"] if phrases >= 5 else []
    return ["intro", *middle[: phrases - 1 - len(outro)], *outro]


def melody(rng: np.random.Generator, tune: Tune, style: Style) -> list[Note]:
    """A phrase of tune: chord tones on strong beats, steps between, a long last note."""
    degree, notes = 0, list[Note]()
    for bar, numeral in enumerate(tune.progression):
        tones = tune.chord_degrees(numeral)
        last = bar == len(tune.progression) - 1
        rhythm = style.cadence if last else style.rhythms[rng.integers(len(style.rhythms))]
        beat = 0.0
        for length in rhythm:
            if beat % 2 == 0 or last:
                # A chord tone: the nearest above or below, as a singer would reach for.
                near = [d for d in range(degree - 3, degree + 4) if d % 7 in tones]
                near.sort(key=lambda d: (abs(d - degree), rng.random()))
                degree = near[0] if last else near[rng.integers(2)]
            else:
                degree += int(rng.choice([-2, -1, -1, 0, 1, 1, 2]))
            degree = min(max(degree, -3), 9)
            if not notes or last or rng.random() > 0.12:  # else a rest, to breathe
                pitch = tune.melody_tonic + tune.melody_offset(numeral, degree)
                notes.append((bar * style.beats_per_bar + beat, length, pitch))
            beat += length
    return notes


class Track:
    """One rendering of a tune: the plan of bars, then each layer added into a mixer."""

    def __init__(self, tune: Tune, seconds: float, sr: int, seed: int) -> None:
        self.tune, self.style, self.sr = tune, STYLES[tune.style], sr
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.beat_s = 60.0 / tune.bpm
        self.bar_s = self.beat_s * self.style.beats_per_bar
        tail = min(max(seconds * 0.1, 1.5), 4.5)  # room for the last chord to ring out
        self.bars = max(1, int((seconds - tail) / self.bar_s))
        phrase = len(tune.progression)
        names = sections(-(-self.bars // phrase))
        self.sections = [names[bar // phrase] for bar in range(self.bars)]
        self.mixer = Mixer(round(seconds * sr), sr)
        self.kit = drum_kit(sr, seed)
        self.kicks: list[float] = []
        self.cache: dict[tuple[Instrument, tuple[int, ...], float], Audio] = {}
        self.tunes = {name: melody(self.rng, tune, self.style) for name in ("A", "B")}
        self.pad_bus = "ducked" if self.style.duck else "wet"
        self.bass_bus = "ducked" if self.style.duck else "dry"

    def note(self, inst: Instrument, midis: tuple[int, ...] | int, gate_s: float) -> Audio:
        """A rendered note or chord, shared by every repeat (the progression comes round a lot)."""
        chord = midis if isinstance(midis, tuple) else (midis,)
        key = (inst, chord, round(gate_s, 4))
        if key not in self.cache:
            sounds = [render_note(inst, midi, gate_s, self.sr) for midi in chord]
            self.cache[key] = sounds[0] if len(sounds) == 1 else np.sum(sounds, axis=0)
        return self.cache[key]

    def time(self, bar: int, beat: float, swing: bool = True) -> float:
        """Seconds from the start of the track, off-beats swung as the style plays them."""
        return bar * self.bar_s + swung(beat, self.style.swing if swing else 0.0) * self.beat_s

    def level(self, part: str) -> float:
        return self.style.levels.get(part, 0.0)

    def render(self) -> Audio:
        for bar, section in enumerate(self.sections):
            self.bar(bar, section)
        self.ending(self.bars)
        style = self.style
        mix = self.mixer.mixdown(
            self.kicks, style.duck, style.room_s, self.level("send"), self.seed
        )
        return fade(mix, self.sr)

    def bar(self, bar: int, section: str) -> None:
        chord = self.tune.chord(self.tune.progression[bar % len(self.tune.progression)])
        following = self.tune.progression[(bar + 1) % len(self.tune.progression)]
        self.chords(bar, chord, section)
        if section != "intro":
            self.bass_bar(bar, chord, self.tune.chord(following)[0])
        if section in ("A", "B", "outro"):
            self.drum_bar(bar, section)
        if section in ("A", "B", "break"):
            self.tune_bar(bar, self.tunes["B" if section == "B" else "A"])

    def chords(self, bar: int, chord: list[int], section: str) -> None:
        style = self.style
        if style.pad:
            sound = self.note(style.pad, voicing(chord, 64), self.bar_s)
            self.mixer.add(self.time(bar, 0), sound, self.level("pad"), bus=self.pad_bus)
        if style.comp:
            for beat, length in style.comp_hits:
                sound = self.note(style.comp, voicing(chord, 62), length * self.beat_s)
                gain = self.level("comp") * (0.85 + 0.15 * self.rng.random())
                gain *= 0.6 if section == "intro" else 1.0
                self.mixer.add(self.time(bar, beat), sound, gain)
        if style.arp and section in ("intro", "B", "outro"):
            tones = voicing(chord, 72)
            tones = (*tones, tones[0] + 12, *tones[1:][::-1])
            gate = 0.9 / style.arp_per_beat * self.beat_s
            for i in range(style.beats_per_bar * style.arp_per_beat):
                sound = self.note(style.arp, tones[i % len(tones)], gate)
                gain = self.level("arp") * (0.7 if i % 2 else 1.0)  # accents on the beat
                pan = 0.5 if i % 2 else -0.5  # and a ping-pong across the stereo field
                self.mixer.add(self.time(bar, i / style.arp_per_beat), sound, gain, pan)

    def bass_bar(self, bar: int, chord: list[int], next_root: int) -> None:
        """Bass notes from the bar's chord: root, third, fifth, octave, a chromatic approach to
        the next root (A) or root and fifth in alternate bars (F), in the second octave."""
        root, third, fifth = (36 + pc for pc in chord[:3])
        alternate = root if bar % 2 == 0 else fifth
        tones = {
            "R": root,
            "3": third,
            "5": fifth,
            "8": root + 12,
            "A": 35 + next_root,
            "F": alternate,
        }
        for beat, length, tone in self.style.bass_line:
            midi = tones[tone] - 12 if tones[tone] > 50 else tones[tone]
            sound = self.note(self.style.bass, midi, length * self.beat_s)
            self.mixer.add(self.time(bar, beat), sound, self.level("bass"), bus=self.bass_bus)

    def drum_bar(self, bar: int, section: str) -> None:
        phrase = len(self.tune.progression)
        before_change = bar + 1 < self.bars and self.sections[bar + 1] != section
        fill = self.style.fill if (bar % phrase == phrase - 1 and before_change) else {}
        first = bar == 0 or self.sections[bar - 1] != section
        if self.style.crash and first and section in ("A", "B"):
            self.hit("crash", bar * self.bar_s, 1.0)
        for name, pattern in (self.style.drums | fill).items():
            if section == "outro" and name in ("snare", "clap"):
                continue
            per_beat = len(pattern) / self.style.beats_per_bar
            for i, step in enumerate(pattern):
                if step == ".":
                    continue
                # Triplet grids (jazz ride) already swing; eighths and sixteenths get the style's.
                start = self.time(bar, i / per_beat, swing=per_beat in (2, 4))
                self.hit(name, start, STEP_LEVEL[step] * (1 + 0.08 * self.rng.standard_normal()))

    def hit(self, name: str, start: float, velocity: float) -> None:
        gain, pan = DRUM_MIX[name]
        if name == "kick":
            self.kicks.append(start)
        self.mixer.add(start, self.kit[name], gain * velocity * self.level("drums"), pan, "dry")

    def tune_bar(self, bar: int, notes: list[Note]) -> None:
        bpb = self.style.beats_per_bar
        offset = (bar % len(self.tune.progression)) * bpb
        for beat, length, midi in notes:
            if offset <= beat < offset + bpb:
                sound = self.note(self.style.lead, midi, 0.92 * length * self.beat_s)
                self.mixer.add(self.time(bar, beat - offset), sound, self.level("lead"), 0.15)

    def ending(self, bar: int) -> None:
        """The tonic struck once and left to ring until the track ends: no chord cut off."""
        start = bar * self.bar_s
        ring = self.mixer.frames / self.sr - start
        chord = self.tune.chord("i" if self.tune.minor else "I")
        style = self.style
        for inst, part, center in ((style.pad, "pad", 64), (style.comp, "comp", 62)):
            if inst:
                long = dataclasses.replace(inst, release=max(ring - self.beat_s, 0.1))
                sound = self.note(long, voicing(chord, center), self.beat_s)
                self.mixer.add(start, sound, self.level(part))
        bass = dataclasses.replace(style.bass, release=max(ring - self.beat_s, 0.1) / 2)
        sound = self.note(bass, 36 + chord[0], self.beat_s)
        self.mixer.add(start, sound, self.level("bass"), bus="dry")
        lead = dataclasses.replace(style.lead, release=max(ring - 2 * self.beat_s, 0.1) / 2)
        sound = self.note(lead, self.tune.melody_tonic, 2 * self.beat_s)
        self.mixer.add(start, sound, self.level("lead"), 0.15)
        if "kick" in style.drums:
            self.hit("kick", start, 1.0)
        self.hit("ride" if "ride" in style.drums else "crash", start, 0.8)


def fade(mix: Audio, sr: int) -> Audio:
    """A short fade-in (no click at the first sample) and a gentle fade over the last second."""
    frames = mix.shape[1]
    n_in, n_out = min(round(0.02 * sr), frames), min(sr, frames)
    mix[:, :n_in] *= np.linspace(0, 1, n_in, dtype=np.float32)
    mix[:, frames - n_out :] *= np.cos(np.linspace(0, np.pi, n_out, dtype=np.float32)) * 0.5 + 0.5
    return mix


def render(tune: Tune, seconds: float, sr: int, seed: int, peak_db: float) -> Pcm:
    """A finished track as 16-bit stereo PCM whose peak is `peak_db` dBFS."""
    mix = Track(tune, seconds, sr, seed).render()
    peak = float(np.max(np.abs(mix)))
    scaled = mix * np.float32(10 ** (peak_db / 20) * 32767 / max(peak, 1e-9))
    return np.ascontiguousarray(np.round(scaled).astype(np.int16).T)  # frames x channels
