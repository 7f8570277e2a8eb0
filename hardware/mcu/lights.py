"""What the LED ring shows: a status pattern, or the volume as a ring fill.

``render(pattern, now_ms, volume, pixels, brightness)`` fills ``pixels`` (a list of (r, g, b),
one per LED) in place, so the main loop draws without allocating a new list every frame.

Patterns (names shared with the speaker's GPIO status LED):
booting      white spinner            not_paired  slow amber pulse
connecting   blue spinner             idle        dim white, steady
playing      green, steady            paused      white, slow breathing
buffering    cyan spinner             error       red blink
An unknown name shows ``DEFAULT_PATTERN``.  ``volume`` 0-100 (or -1 for none) overrides the
pattern with a fill of ``volume`` percent of the ring, the last lit LED partly bright.

Pure: the caller passes the clock (any tick value: only its phase is used).
"""

DEFAULT_PATTERN = "idle"
NO_VOLUME = -1

BLACK = (0, 0, 0)
_WHITE = (255, 255, 255)
_AMBER = (255, 120, 0)
_BLUE = (0, 60, 255)
_GREEN = (0, 255, 40)
_CYAN = (0, 200, 255)
_RED = (255, 0, 0)
_VOLUME_COLOUR = (255, 255, 255)

SPINNER_STEP_MS = 80
BLINK_MS = 400
PULSE_MS = 2000
BREATHE_MS = 4000

# name -> (kind, colour, level 0-255, period_ms)
_PATTERNS = {
    "booting": ("spin", _WHITE, 160, SPINNER_STEP_MS),
    "not_paired": ("pulse", _AMBER, 255, PULSE_MS),
    "connecting": ("spin", _BLUE, 255, SPINNER_STEP_MS),
    "idle": ("steady", _WHITE, 40, 0),
    "playing": ("steady", _GREEN, 255, 0),
    "paused": ("pulse", _WHITE, 160, BREATHE_MS),
    "buffering": ("spin", _CYAN, 255, SPINNER_STEP_MS),
    "error": ("blink", _RED, 255, BLINK_MS),
}


def known(pattern: str) -> bool:
    return pattern in _PATTERNS


def scale(colour: tuple[int, int, int], level: int) -> tuple[int, int, int]:
    """``colour`` at ``level``/255 of its brightness."""
    return (colour[0] * level // 255, colour[1] * level // 255, colour[2] * level // 255)


def triangle(now_ms: int, period_ms: int) -> int:
    """0 .. 255 .. 0 over one period."""
    phase = now_ms % period_ms
    half = period_ms // 2
    if phase < half:
        return phase * 255 // half
    return (period_ms - phase) * 255 // (period_ms - half)


def render(
    pattern: str,
    now_ms: int,
    volume: int,
    pixels: list[tuple[int, int, int]],
    brightness: int = 255,
) -> list[tuple[int, int, int]]:
    """Fill ``pixels`` with the frame to show at ``now_ms`` and return it."""
    if volume >= 0:
        _fill_volume(volume, pixels, brightness)
        return pixels
    kind, colour, level, period = _PATTERNS.get(pattern, _PATTERNS[DEFAULT_PATTERN])
    level = level * brightness // 255
    count = len(pixels)
    if kind == "spin":
        head = (now_ms // period) % count if count else 0
        for i in range(count):
            # a bright head with a fading two-LED tail
            distance = (head - i) % count
            pixels[i] = scale(colour, level >> (2 * distance)) if distance < 3 else BLACK
        return pixels
    if kind == "pulse":
        # never fully dark, so the ring still reads as "on"
        level = level * (32 + triangle(now_ms, period) * 223 // 255) // 255
    elif kind == "blink" and (now_ms // period) % 2:
        level = 0
    shown = scale(colour, level)
    for i in range(count):
        pixels[i] = shown
    return pixels


def _fill_volume(volume: int, pixels: list[tuple[int, int, int]], brightness: int) -> None:
    count = len(pixels)
    volume = min(max(volume, 0), 100)
    # in 1/255ths of an LED: how much of the ring is lit
    lit = volume * count * 255 // 100
    for i in range(count):
        part = min(max(lit - i * 255, 0), 255)
        pixels[i] = scale(_VOLUME_COLOUR, part * brightness // 255)
