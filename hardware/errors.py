"""The errors ``hardware`` raises: one root, so a CLI catches one thing and prints it."""

from __future__ import annotations


class HardwareError(Exception):
    """Something about a board, an image or a card is wrong; the message says what."""


class BoardError(HardwareError):
    """A board profile is unusable: the message names the file, the key and what is allowed."""


class FlashError(HardwareError):
    """``legato-flash`` cannot go on; the image or card is left as it was."""
