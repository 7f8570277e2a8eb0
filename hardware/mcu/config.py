"""The panel's wiring and tunables: a maker edits this file before copying it to the Pico.

Pin numbers are RP2040 GPIO numbers (GPn on the Pico's pinout), not physical pin numbers.
"""

# How the panel talks to the speaker: "usb" (the Pico's USB CDC serial, /dev/ttyACM0 on the Pi)
# or "uart0" (GP0 = TX to the Pi's RX, GP1 = RX from the Pi's TX, 3.3 V levels, common ground).
LINK = "usb"
UART_ID = 0
UART_TX_PIN = 0
UART_RX_PIN = 1
BAUD = 115200

# Push buttons between the GPIO and ground (internal pull-ups): pressed reads 0.
BUTTON_PINS = {
    "play": 2,
    "next": 3,
    "prev": 4,
    "vol_up": 5,
    "vol_down": 6,
    "knob": 9,
}
BUTTONS_ACTIVE_LOW = True
DEBOUNCE_MS = 20
LONG_PRESS_MS = 800

# Quadrature encoder (e.g. EC11), common pin to ground, internal pull-ups; 4 transitions per
# detent, resting with both contacts open (A = B = 1, state 3).  Swap A and B, or set
# ENCODER_REVERSE, if clockwise turns the volume down.
ENCODER_A_PIN = 7
ENCODER_B_PIN = 8
ENCODER_REST_STATE = 3
ENCODER_REVERSE = False

# WS2812 ring or strip: data in on LED_PIN (through a 330 ohm resistor), 5 V from VBUS.
LED_PIN = 16
LED_COUNT = 12
LED_BRIGHTNESS = 64  # of 255: 12 LEDs at full white draw ~700 mA
LED_FRAME_MS = 30  # redraw period

# Protocol timing (milliseconds)
PING_INTERVAL_MS = 2000
LINK_TIMEOUT_MS = 6000
ENC_INTERVAL_MS = 15
VOLUME_SHOW_MS = 1500

LOOP_SLEEP_MS = 2
# Reset the Pico when the main loop stalls this long (0: no watchdog).
WATCHDOG_MS = 8000
