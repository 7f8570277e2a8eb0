"""The speaker's side of the front panel's serial link (a microcontroller's buttons,
knob and lights, speaking NMEA-0183-style lines).

Pure parts first, I/O at the edge:

- ``frames``: the wire format, sans-I/O: ``encode`` fields -> one line of bytes, and a
  ``FrameReader`` fed any bytes that yields typed messages and counts what it drops.
- ``session``: messages from the panel -> ``ControlEvent`` values and replies; the
  speaker's ``View`` -> the ``STATE``/``VOL``/``LED`` frames for what changed.
- ``link``: pyserial, a reader and a writer thread, reopening the port when the panel
  is unplugged and plugged back.

The firmware on the panel (``hardware/mcu/``) has its own copy of the framing: it runs
under MicroPython and imports nothing from here.
"""
