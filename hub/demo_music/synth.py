"""Sound sources for the demo music: additive voices, drums, a mixer and a cheap reverb.

Everything renders whole notes as numpy arrays and adds them into a buffer, never a
sample at a time in Python, so the whole demo library renders in seconds on one core.
Only numpy: scipy.signal alone would add most of a second to the hub's start.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

Audio = NDArray[np.float32]  # mono (n,) or stereo (2, n): channels first, so loops run long
Phase = NDArray[np.uint32]  # cycles as 32-bit fixed point: wraps by itself
TABLE_BITS = 16
REVERB_DECIMATION = 4  # a room's tail is dark: convolving at a quarter rate is 4x cheaper


def midi_hz(note: float) -> float:
    return float(440.0 * 2.0 ** ((note - 69.0) / 12.0))


@functools.cache
def wavetable(partials: tuple[float, ...]) -> Audio:
    """One cycle of a harmonic spectrum: an oscillator is then a lookup."""
    x = np.arange(1 << TABLE_BITS) / (1 << TABLE_BITS)
    wave = sum(a * np.sin(2 * np.pi * (k + 1) * x) for k, a in enumerate(partials) if a)
    table = np.asarray(wave / np.max(np.abs(wave)), dtype=np.float32)
    table.flags.writeable = False  # shared by every note of every track
    return table


def phases(freq: float, n: int, sr: int, start: float) -> Phase:
    """A steady tone's phases in fixed point: integer maths, several times faster than a
    float phase and a modulo."""
    step = np.uint32(round(freq / sr * 2**32) % 2**32)
    return np.arange(n, dtype=np.uint32) * step + np.uint32(round(start * 2**32) % 2**32)


def lookup(table: Audio, phase: Phase) -> Audio:
    """A table read: with 2^16 entries no interpolation is needed (errors below -80 dB)."""
    return np.take(table, phase >> np.uint32(32 - TABLE_BITS))


@functools.lru_cache(maxsize=32)
def adsr(n: int, gate: int, sr: int, a: float, d: float, s: float) -> Audio:
    """Attack, decay to sustain while the gate is open, then a release ending at exactly zero,
    so a note never ends in a click. Cached: a chord's notes share one."""
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    env = np.where(t < a, t / np.float32(a), s + (1 - s) * np.exp(-(t - a) / np.float32(d)))
    if n > gate:
        rel = np.clip((np.arange(n, dtype=np.float32) - gate) / np.float32(n - gate), 0, 1)
        env *= (np.exp(-5 * rel) - np.exp(-5.0)) / (1 - np.exp(-5.0))
    out = np.asarray(env, dtype=np.float32)
    out.flags.writeable = False
    return out


def pan_gains(pan: float) -> NDArray[np.float32]:
    """Constant-power pan: -1 is hard left, 1 hard right."""
    angle = (pan + 1) * np.pi / 4
    return np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)


@dataclass(frozen=True)
class Instrument:
    """An additive voice: a bright spectrum fading into a dark one (a filter envelope on the
    cheap) under an ADSR, played by detuned, panned copies for chorus width."""

    bright: tuple[float, ...]  # partial amplitudes at the attack
    dark: tuple[float, ...]  # and once the brightness has decayed
    brightness: float  # seconds the brightness takes to fade
    attack: float
    decay: float
    sustain: float
    release: float
    voices: tuple[tuple[float, float], ...] = ((0.0, 0.0),)  # (detune in cents, pan)
    vibrato_cents: float = 0.0


def render_note(inst: Instrument, midi: float, gate_s: float, sr: int) -> Audio:
    """A stereo note: `gate_s` held, then the release."""
    gate = max(1, round(gate_s * sr))
    n = gate + round(inst.release * sr)
    env = adsr(n, gate, sr, inst.attack, inst.decay, inst.sustain)
    bright_n = min(n, round(5 * inst.brightness * sr)) if inst.bright != inst.dark else 0
    fade = np.exp(-np.arange(bright_n, dtype=np.float32) / np.float32(inst.brightness * sr))
    left, right = np.zeros(n, dtype=np.float32), np.zeros(n, dtype=np.float32)
    for index, (cents, pan) in enumerate(inst.voices):
        freq = midi_hz(midi + cents / 100)
        phase = phases(freq, n, sr, index / len(inst.voices))
        if inst.vibrato_cents:
            phase += vibrato(freq, n, sr, inst.vibrato_cents)
        wave = lookup(wavetable(inst.dark), phase)
        if bright_n:
            head = wave[:bright_n]
            head += (lookup(wavetable(inst.bright), phase[:bright_n]) - head) * fade
        wave *= env
        gains = pan_gains(pan) / np.float32(np.sqrt(len(inst.voices)))
        left += wave * gains[0]
        right += wave * gains[1]
    return np.stack([left, right])


def vibrato(freq: float, n: int, sr: int, cents: float) -> Phase:
    """Phase offsets of a 5 Hz vibrato that sets in after the attack, as a player's does."""
    t = np.arange(n) / sr
    depth = cents / 1200 * np.log(2) * np.clip(t / 0.4 - 0.5, 0, 1)
    cycles = freq * depth * np.sin(2 * np.pi * 5.2 * t) / (2 * np.pi * 5.2)
    return np.asarray(np.round(cycles * 2**32).astype(np.int64), dtype=np.uint32)


def band_noise(rng: np.random.Generator, n: int, sr: int, low: float, high: float) -> Audio:
    """Noise with its spectrum shaped directly (4th-order band edges), no filter library."""
    spectrum = rng.standard_normal(n // 2 + 1) + 1j * rng.standard_normal(n // 2 + 1)
    f = np.fft.rfftfreq(n, 1 / sr) + 1e-9
    shape = 1 / np.sqrt(1 + (f / high) ** 8) / np.sqrt(1 + (low / f) ** 8)
    return np.asarray(np.fft.irfft(spectrum * shape, n), dtype=np.float32)


def decay(n: int, sr: int, seconds: float, attack: float = 0.001) -> Audio:
    t = np.arange(n, dtype=np.float32) / np.float32(sr)
    return np.asarray(np.minimum(t / attack, 1) * np.exp(-t / seconds), dtype=np.float32)


def drum_kit(sr: int, seed: int) -> dict[str, Audio]:
    """One-shot drums for a track: a pitch-dropping sine kick, noise snare, hats and cymbals."""
    rng = np.random.default_rng(seed)

    def hit(seconds: float, low: float, high: float, tail: float, attack: float = 0.001) -> Audio:
        n = round(seconds * sr)
        return band_noise(rng, n, sr, low, high) * decay(n, sr, tail, attack)

    n = round(0.5 * sr)
    t = np.arange(n) / sr
    sweep = 46 + 120 * np.exp(-t / 0.04)  # the drop from a thump to a boom
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / sr) * decay(n, sr, 0.16, 0.002)
    body_n = round(0.35 * sr)
    body = np.sin(2 * np.pi * 185 * np.arange(body_n) / sr) * decay(body_n, sr, 0.05)
    ride_t = np.arange(round(1.2 * sr)) / sr
    bell = sum(np.sin(2 * np.pi * 3150 * r * ride_t) for r in (1.0, 1.47, 1.98, 2.41))
    kit = {
        "kick": kick + 0.3 * hit(0.5, 20, 3000, 0.004),
        "snare": hit(0.35, 1200, 7500, 0.08) + 0.6 * body,
        "clap": hit(0.3, 900, 3500, 0.07) + hit(0.3, 900, 3500, 0.008),
        "hat": hit(0.12, 7000, 16000, 0.025),
        "open_hat": hit(0.5, 6500, 16000, 0.14),
        "shaker": hit(0.12, 4000, 11000, 0.03, 0.012),
        "ride": 0.6 * hit(1.2, 5000, 16000, 0.45) + 0.05 * bell * decay(len(ride_t), sr, 0.45),
        "crash": hit(2.0, 3000, 12000, 0.6, 0.003),
    }
    return {name: _normalised(sound) for name, sound in kit.items()}


def _normalised(sound: NDArray[np.floating]) -> Audio:
    out = np.asarray(sound / np.max(np.abs(sound)), dtype=np.float32)
    tail = len(out) // 5  # the last fifth fades out: no click where the one-shot is cut
    out[-tail:] *= np.cos(np.linspace(0, np.pi / 2, tail, dtype=np.float32))
    return out


def reverb_into(out: Audio, send: Audio, sr: int, seconds: float, seed: int) -> None:
    """Add a diffuse stereo tail: the send convolved with dark, decaying noise.

    At a quarter of the rate: the tail loses its top octaves, which a real room's tail
    lacks too. Separate noise per channel gives width.
    """
    f = REVERB_DECIMATION
    frames = send.shape[1] // f
    low = send[:, 0 : frames * f : f] + send[:, 1 : frames * f : f]
    low += send[:, 2 : frames * f : f] + send[:, 3 : frames * f : f]
    rate = sr / f
    length = round(seconds * rate)
    rng = np.random.default_rng(seed)
    # 250 Hz up: a muddy low end in the tail is what mixing engineers filter out of reverbs.
    ir = np.stack([band_noise(rng, length, round(rate), 250, 2500) for _ in range(2)])
    ir *= np.exp(-6.9 * np.arange(length) / length).astype(np.float32)
    ir[:, : round(0.02 * rate)] = 0  # pre-delay: the dry sound first, then the room
    ir /= np.sqrt(np.sum(ir**2, axis=1, keepdims=True)) * f
    size = _fast_length(frames + length)
    spectrum = np.fft.rfft(low, size) * np.fft.rfft(ir, size)
    wet = np.fft.irfft(spectrum, size)[:, :frames].astype(np.float32)
    # Back to the full rate by linear interpolation (holding each sample would leave images
    # of the tail around 11 kHz), added through a view of `out`.
    held = out[:, : frames * f].reshape(2, frames, f)
    held += wet[:, :, None]
    held += np.diff(wet, append=wet[:, -1:])[:, :, None] * (np.arange(f, dtype=np.float32) / f)


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c at least n: FFTs of such lengths are quick."""
    best = 1 << (n - 1).bit_length()
    for fives in (1, 5, 25):
        for threes in (1, 3, 9, 27):
            base = fives * threes
            if base <= n:
                best = min(best, base << max(0, (-(-n // base) - 1).bit_length()))
    return best


@dataclass
class Mixer:
    """Buses notes are added into: `dry` (drums, bass), `wet` (chords and tune, sent to the
    reverb most) and `ducked` (dips at each kick, for dance music's pumping).

    Sends are per bus, not per note: one pass over the bus instead of one per note.
    """

    frames: int
    sr: int
    buses: dict[str, Audio] = field(init=False)
    scratch: Audio = field(init=False)  # reused: fresh big temporaries cost page faults

    def __post_init__(self) -> None:
        self.buses = {
            bus: np.zeros((2, self.frames), dtype=np.float32) for bus in ("dry", "wet", "ducked")
        }
        self.scratch = np.zeros(self.frames, dtype=np.float32)

    def add(
        self, start_s: float, sound: Audio, gain: float, pan: float = 0.0, bus: str = "wet"
    ) -> None:
        """Add a mono (panned) or stereo (balanced) sound at `start_s`, cut at the end."""
        i = round(start_s * self.sr)
        m = min(sound.shape[-1], self.frames - i)
        if m <= 0 or i < 0:
            return
        target = self.buses[bus][:, i : i + m]
        part = self.scratch[:m]
        if sound.ndim == 1:
            for channel, channel_gain in enumerate(pan_gains(pan) * np.float32(gain)):
                target[channel] += np.multiply(sound[:m], channel_gain, out=part)
        else:
            balance = np.array([min(1.0, 1 - pan), min(1.0, 1 + pan)], dtype=np.float32)
            for channel, channel_gain in enumerate(balance * np.float32(gain)):
                target[channel] += np.multiply(sound[channel, :m], channel_gain, out=part)

    def mixdown(
        self, kicks: list[float], duck_depth: float, room_s: float, send: float, seed: int
    ) -> Audio:
        """The buses summed, the ducked one pumping with the kick, and the reverb tail added."""
        dry, wet, ducked = self.buses["dry"], self.buses["wet"], self.buses["ducked"]
        if duck_depth:
            ducked *= self.duck_envelope(kicks, duck_depth)
        wet += ducked
        sent = wet * np.float32(send)
        sent += dry * np.float32(0.15 * send)
        wet += dry
        reverb_into(wet, sent, self.sr, room_s, seed)
        return wet

    def duck_envelope(self, kicks: list[float], depth: float) -> Audio:
        """The dip-and-swell of dance music's 'sidechain' at each kick."""
        env = np.ones(self.frames, dtype=np.float32)
        t = np.arange(round(0.4 * self.sr), dtype=np.float32) / np.float32(self.sr)
        shape = 1 - depth * np.minimum(t / 0.005, 1) * np.exp(-t / 0.07)  # 5 ms in, no click
        length = len(shape)
        for start in kicks:
            i = round(start * self.sr)
            m = min(length, self.frames - i)
            if m > 0:
                env[i : i + m] = np.minimum(env[i : i + m], shape[:m])
        return env
