"""A speaker's physical controls: buttons, a rotary encoder and status lights.

Pure parts first, hardware at the edges:

- ``keymap``: what a control did (``Pressed``, ``Turned``) and the action each
  button's short and long press stand for; a maker's overrides, validated.
- ``commands``: an action over the current player state -> the Connect command
  the speaker's controller applies, as if it came from the hub.
- ``status``: what the lights show (booting, not paired, ..., error) from the
  speaker's state, and each pattern's timing and colour.
- ``gestures``: one button's debounced contact edges -> press, long, release.
- ``gpio``: gpiozero buttons, encoder and the status LED (``led``) on the board's pins.

The front panel on a microcontroller speaks the same events over a serial link
(``hardware.panel``).
"""
