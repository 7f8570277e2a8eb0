"""Tokens for a speaker's local control: what lets a phone steer it without the hub.

A speaker's own port (``/control``, ``/offline``) answers only requests carrying its
token.  The hub derives each speaker's token from a key of its own
(``keys/local-control.key``, 0600) and the speaker's id, so it can show the token on
the dashboard or hand it to a signed-in listener's phone at any time without
storing one per speaker; pairing (``legato-hub device add``) writes it into a 0600
file next to the speaker's config.  Rotating the key changes every token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

from hub.files import create_private_once, keys_dir

KEY_FILE = "local-control.key"


def local_token(data_dir: Path, device_id: str) -> str:
    """The token ``device_id``'s local API accepts (22 URL-safe characters, 128 bits)."""
    key = create_private_once(keys_dir(data_dir) / KEY_FILE, secrets.token_bytes(32))
    mac = hmac.new(key, f"legato-local-control|{device_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")
