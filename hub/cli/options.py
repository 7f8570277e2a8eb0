"""What ``legato-hub``'s options take, checked as they are parsed (a typo is a usage
error, not a hub that fails to start), and the defaults that need a look at the machine."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from hub.http.ratelimit import parse_limits

logger = logging.getLogger("legato.hub")


def default_data_dir() -> Path:
    if os.environ.get("LEGATO_DATA"):
        return Path(os.environ["LEGATO_DATA"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "legato"


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (1-65535)")
    return value


def rate_limits(text: str) -> str:
    """Checked here so a typo is a usage error, not a hub that fails to start."""
    try:
        parse_limits(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 600 seconds")
    return value


def positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def default_speaker_sink() -> str:
    """ALSA's default device when this machine has a sound card, else the null sink."""
    cards = Path("/proc/asound/cards")
    try:
        has_card = cards.exists() and "no soundcards" not in cards.read_text()
    except OSError:
        has_card = False
    if has_card:
        return "alsa"
    logger.warning("no sound card found: the local speaker plays to the null sink")
    return "null"
