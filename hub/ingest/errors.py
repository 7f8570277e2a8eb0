"""Why a file could not be ingested.

``IngestError``'s message is the one-line reason shown next to the file name
(``truncated: 132295 of 220500 frames decoded``); the file is skipped and
nothing of it reaches the catalog.
"""

from __future__ import annotations

from hub.errors import HubError


class IngestError(HubError):
    """A file that cannot be ingested; the message says why, in one line."""
