"""The front panel's firmware on a Raspberry Pi Pico (RP2040) running MicroPython.

This is the only module that touches the hardware (``machine``, ``neopixel``, the USB serial
port or the UART) and the clock (``time.ticks_ms``); the logic lives in the pure modules
(``panel``, ``buttons``, ``encoder``, ``lights``, ``frames``).  The wiring is in ``config``.

The loop, every ``config.LOOP_SLEEP_MS``: read what the speaker sent, sample the buttons, decode
the encoder's edges (recorded by a pin interrupt into ``encoder.EdgeRing``), send the frames the
panel has due (BTN, ENC, PING, HELLO) and redraw the LED ring every ``config.LED_FRAME_MS``.
An exception in one pass is counted and the loop goes on; the watchdog resets a stalled Pico.

Hold the knob down while the Pico powers up to skip the firmware and stay at the REPL (the USB
link turns Ctrl-C off, so this is the way back in for ``mpremote``).
"""

import sys
import time

import buttons
import config
import encoder
import lights
import machine
import micropython
import neopixel
import panel
from ticks import ticks_diff

FIRMWARE_VERSION = "1.0.0"
READ_CHUNK_BYTES = 64


class UartLink:
    """The Pico's UART0, wired to the Pi's header UART."""

    def __init__(self) -> None:
        self._uart = machine.UART(
            config.UART_ID,
            baudrate=config.BAUD,
            tx=machine.Pin(config.UART_TX_PIN),
            rx=machine.Pin(config.UART_RX_PIN),
        )

    def read(self) -> bytes | None:
        if not self._uart.any():
            return None
        return self._uart.read(READ_CHUNK_BYTES)

    def write(self, data: bytes) -> None:
        self._uart.write(data)


class UsbLink:
    """The USB CDC serial port, which is also MicroPython's console."""

    def __init__(self) -> None:
        import select

        # The speaker's bytes are data: a stray 0x03 must not raise KeyboardInterrupt.
        micropython.kbd_intr(-1)
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._chunk = bytearray(READ_CHUNK_BYTES)

    def read(self) -> bytes | None:
        count = 0
        while count < READ_CHUNK_BYTES and self._poll.poll(0):
            byte = self._in.read(1)
            if not byte:
                break
            self._chunk[count] = byte[0]
            count += 1
        return bytes(self._chunk[:count]) if count else None

    def write(self, data: bytes) -> None:
        self._out.write(data)


def open_link() -> UartLink | UsbLink:
    """The serial line to the speaker that ``config.LINK`` names (each has ``read``, a
    non-blocking read of what is waiting, and ``write``)."""
    if config.LINK == "uart0":
        return UartLink()
    if config.LINK == "usb":
        return UsbLink()
    raise ValueError("config.LINK must be 'usb' or 'uart0', not %r" % config.LINK)


def input_pin(number: int) -> machine.Pin:
    return machine.Pin(number, machine.Pin.IN, machine.Pin.PULL_UP)


class Firmware:
    def __init__(self, link: UartLink | UsbLink) -> None:
        self.link = link
        self.panel = panel.Panel(
            FIRMWARE_VERSION,
            ping_interval_ms=config.PING_INTERVAL_MS,
            link_timeout_ms=config.LINK_TIMEOUT_MS,
            enc_interval_ms=config.ENC_INTERVAL_MS,
            volume_show_ms=config.VOLUME_SHOW_MS,
        )
        self._pressed_level = 0 if config.BUTTONS_ACTIVE_LOW else 1
        self.buttons = [
            (buttons.Button(name, config.DEBOUNCE_MS, config.LONG_PRESS_MS), input_pin(number))
            for name, number in config.BUTTON_PINS.items()
        ]
        self.decoder = encoder.QuadratureDecoder(config.ENCODER_REST_STATE, config.ENCODER_REVERSE)
        self.edges = encoder.EdgeRing()
        self._pin_a = input_pin(config.ENCODER_A_PIN)
        self._pin_b = input_pin(config.ENCODER_B_PIN)
        self.decoder.reset(self._encoder_state())
        edges = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING
        self._pin_a.irq(self._on_edge, edges, hard=True)
        self._pin_b.irq(self._on_edge, edges, hard=True)
        self.strip = neopixel.NeoPixel(
            machine.Pin(config.LED_PIN, machine.Pin.OUT), config.LED_COUNT
        )
        self.pixels = [lights.BLACK] * config.LED_COUNT
        self._last_draw = 0
        self.errors = 0
        self.watchdog = machine.WDT(timeout=config.WATCHDOG_MS) if config.WATCHDOG_MS else None

    def _encoder_state(self) -> int:
        return (self._pin_a.value() << 1) | self._pin_b.value()

    def _on_edge(self, _pin: machine.Pin) -> None:
        # Hard IRQ: no allocation here, only a store into the preallocated ring.
        self.edges.record((self._pin_a.value() << 1) | self._pin_b.value())

    def start(self, now_ms: int) -> None:
        self.link.write(self.panel.start(now_ms))
        self._last_draw = now_ms - config.LED_FRAME_MS
        self.draw(now_ms)

    def step(self, now_ms: int) -> None:
        """One pass of the loop at ``now_ms``."""
        data = self.link.read()
        if data:
            self.panel.receive(data, now_ms)
        for button, pin in self.buttons:
            event = button.update(pin.value() == self._pressed_level, now_ms)
            if event is not None:
                self.link.write(self.panel.button(button.name, event))
        self.edges.drain(self.decoder, self.panel.turn)
        for frame in self.panel.poll(now_ms):
            self.link.write(frame)
        if ticks_diff(now_ms, self._last_draw) >= config.LED_FRAME_MS:
            self.draw(now_ms)
        if self.watchdog is not None:
            self.watchdog.feed()

    def draw(self, now_ms: int) -> None:
        self._last_draw = now_ms
        shown = self.panel.shown_volume(now_ms)
        lights.render(self.panel.pattern(), now_ms, shown, self.pixels, config.LED_BRIGHTNESS)
        strip = self.strip
        for index in range(len(self.pixels)):
            strip[index] = self.pixels[index]
        strip.write()


def safe_mode_requested() -> bool:
    """The knob held down at power-up: leave the Pico at the REPL."""
    pin = config.BUTTON_PINS.get("knob")
    if pin is None:
        return False
    level = 0 if config.BUTTONS_ACTIVE_LOW else 1
    return bool(input_pin(pin).value() == level)


def run(max_iterations: int = -1) -> Firmware | None:
    """Run the panel (forever, or ``max_iterations`` passes); ``None`` in safe mode."""
    if safe_mode_requested():
        print("legato panel: knob held at boot, firmware not started")
        return None
    micropython.alloc_emergency_exception_buf(100)
    firmware = Firmware(open_link())
    firmware.start(time.ticks_ms())
    while max_iterations != 0:
        try:
            firmware.step(time.ticks_ms())
        except Exception:
            firmware.errors += 1
        time.sleep_ms(config.LOOP_SLEEP_MS)
        if max_iterations > 0:
            max_iterations -= 1
    return firmware


if __name__ == "__main__":
    run()
