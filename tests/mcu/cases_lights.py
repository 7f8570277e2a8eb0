"""The LED ring's frames.

Plain-assert cases run by pytest under CPython and by runner.py under MicroPython.
"""

import lights

OFF = (0, 0, 0)


def ring(count: int = 12) -> list[tuple[int, int, int]]:
    return [OFF] * count


def test_playing_is_steady() -> None:
    first = list(lights.render("playing", 0, -1, ring()))
    later = list(lights.render("playing", 12345, -1, ring()))
    assert first == later
    assert all(pixel == first[0] and pixel != OFF for pixel in first)


def test_error_blinks_red() -> None:
    on = lights.render("error", 0, -1, ring())
    assert on[0][0] > 0
    assert on[0][1] == 0
    assert on[0][2] == 0
    off = lights.render("error", lights.BLINK_MS, -1, ring())
    assert off == ring()


def test_buffering_spins() -> None:
    first = list(lights.render("buffering", 0, -1, ring()))
    second = list(lights.render("buffering", lights.SPINNER_STEP_MS, -1, ring()))
    assert first != second
    assert sum(1 for pixel in first if pixel != OFF) == 3
    assert first[0] > first[11] > first[10]  # head, then a fading tail
    assert second[1] == first[0]


def test_not_paired_pulses_amber_and_never_goes_dark() -> None:
    dim = lights.render("not_paired", 0, -1, ring())[0]
    bright = lights.render("not_paired", lights.PULSE_MS // 2, -1, ring())[0]
    assert dim != OFF
    assert bright[0] > dim[0]
    assert bright[0] > bright[1] > bright[2]


def test_an_unknown_pattern_shows_the_default() -> None:
    assert lights.render("disco", 0, -1, ring()) == lights.render(
        lights.DEFAULT_PATTERN, 0, -1, ring()
    )
    assert not lights.known("disco")
    for name in ("booting", "not_paired", "connecting", "idle", "playing", "buffering", "error"):
        assert lights.known(name)


def test_the_volume_fills_the_ring() -> None:
    assert lights.render("playing", 0, 0, ring()) == ring()
    full = lights.render("playing", 0, 100, ring())
    assert all(pixel == (255, 255, 255) for pixel in full)
    half = lights.render("playing", 0, 50, ring())
    assert half[:6] == [(255, 255, 255)] * 6
    assert half[6:] == [OFF] * 6
    partial = lights.render("idle", 0, 54, ring())  # 6.48 LEDs
    assert partial[5] == (255, 255, 255)
    assert OFF != partial[6] != (255, 255, 255)
    assert partial[7] == OFF


def test_brightness_scales_every_pixel() -> None:
    full = lights.render("playing", 0, -1, ring(), 255)
    dim = lights.render("playing", 0, -1, ring(), 64)
    assert dim[0] == lights.scale(full[0], 64)


def test_render_fills_the_list_it_is_given() -> None:
    pixels = ring(5)
    assert lights.render("idle", 0, -1, pixels) is pixels
    assert len(pixels) == 5
    assert lights.render("buffering", 0, -1, []) == []
