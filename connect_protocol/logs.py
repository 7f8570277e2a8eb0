"""Logging set-up shared by Legato's command-line programs."""

from __future__ import annotations

import logging

#: Libraries that narrate every connection at INFO (amqtt's state machine).
NOISY = ("transitions", "amqtt")


def configure(level: str) -> None:
    """Log to stderr at ``level``; keep chatty libraries quiet unless debugging."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        for name in NOISY:
            logging.getLogger(name).setLevel(logging.WARNING)
