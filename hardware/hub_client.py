"""``legato-flash``'s side of the hub: check who the hub is, then register a speaker.

The response carries the speaker's broker secret, so it is read only over TLS to a
hub whose identity is checked first: its CA certificate must match the fingerprint
the maker copied from the dashboard (``--hub-fingerprint``), or the hub's
certificate must be one the system trusts.  Only a hub on this very machine
(loopback) may be reached over plain ``http://``.
"""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from connect_protocol.tls import canonical_pem, fingerprint, pinned_context
from hardware.errors import FlashError

TIMEOUT_S = 15.0
MAX_RESPONSE = 1 << 20


@dataclass(frozen=True, slots=True)
class ConfigFile:
    name: str
    text: str
    secret: bool


@dataclass(frozen=True, slots=True)
class Registered:
    device_id: str
    name: str
    files: list[ConfigFile]


@dataclass(frozen=True, slots=True)
class Hub:
    """A hub whose identity was checked: its base URL, its CA, and how to reach it."""

    url: str
    ca_pem: str
    context: ssl.SSLContext | None  # None: plain http on loopback

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


def normalised_fingerprint(text: str) -> str:
    digits = text.lower().removeprefix("sha256:").replace(":", "").strip()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise FlashError("--hub-fingerprint must be the hub's sha256:… fingerprint (64 hex digits)")
    return digits


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(url: str, context: ssl.SSLContext | None, request: Any = None) -> bytes:
    try:
        with urllib.request.urlopen(request or url, timeout=TIMEOUT_S, context=context) as resp:
            return bytes(resp.read(MAX_RESPONSE))
    except HTTPError:
        raise
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise reason from None
        raise FlashError(f"cannot reach the hub at {url}: {reason}") from exc


def connect(url: str, fingerprint_text: str | None) -> Hub:
    """The hub at ``url`` after checking its identity; FlashError saying why not."""
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FlashError(f"--hub {url!r} must be an http(s):// URL, e.g. https://hub.local:8443")
    if parts.scheme == "http":
        if not is_loopback(parts.hostname):
            raise FlashError(
                "--hub must be the hub's https:// address (port 8443 by default): the hub "
                "sends the speaker's secret back, which must not cross the network in clear"
            )
        return Hub(url=url, ca_pem=_read(url + "/api/hub-ca", None).decode(), context=None)
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # only to fetch the CA, checked just below
    if fingerprint_text:
        wanted = normalised_fingerprint(fingerprint_text)
        answer = _read(url + "/api/hub-ca", unverified).decode("ascii", "replace")
        try:
            ca = canonical_pem(answer)  # exactly one certificate, or nothing is trusted
        except ValueError as exc:
            raise FlashError(
                f"{url} did not send one certificate ({exc}); is it a Legato hub?"
            ) from None
        got = fingerprint(ca)
        if normalised_fingerprint(got) != wanted:
            raise FlashError(
                f"the hub at {url} is not the one you named: its fingerprint is {got}. "
                "Someone may be impersonating it; check the address and the dashboard."
            )
        return Hub(url=url, ca_pem=ca, context=pinned_context(ca))
    try:
        ca = canonical_pem(_read(url + "/api/hub-ca", ssl.create_default_context()).decode())
    except ssl.SSLCertVerificationError:  # a ValueError too: first
        raise FlashError(
            f"cannot verify the hub at {url}: it uses its own certificate authority. Read "
            "its fingerprint on the hub itself (`legato-hub device enrol`) or on its "
            "dashboard's Speakers page over HTTPS, then run again with --hub-fingerprint."
        ) from None
    except ValueError as exc:
        raise FlashError(
            f"{url} did not send one certificate ({exc}); is it a Legato hub?"
        ) from None
    return Hub(url=url, ca_pem=ca, context=ssl.create_default_context())


def speaker_url(hub: Hub) -> str:
    """The hub's HTTPS address for the speaker (the port with the hub's own certificate,
    from ``/api/connect``); empty (find it over mDNS) when the hub was reached on loopback,
    which on the speaker would be the speaker itself."""
    if is_loopback(hub.host):
        return ""
    try:
        doc = json.loads(_read(hub.url + "/api/connect", hub.context))
    except (HTTPError, ValueError):
        doc = {}
    port = doc.get("https_port") if isinstance(doc, dict) else None
    if not isinstance(port, int):
        return hub.url if hub.url.startswith("https:") else ""
    host = f"[{hub.host}]" if ":" in hub.host else hub.host
    return f"https://{host}:{port}"


def register(
    hub: Hub, *, name: str, board: str, token: str | None, code: str | None, speaker_hub_url: str
) -> Registered:
    """Create the speaker at the hub; its config files come back (secrets included)."""
    body = {"name": name, "board": board, "hub_url": speaker_hub_url}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    else:
        body["enrol_code"] = code or ""
    request = urllib.request.Request(
        hub.url + "/api/speakers", data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        doc = json.loads(_read(request.full_url, hub.context, request))
    except HTTPError as exc:
        raise FlashError(f"the hub refused to register the speaker: {_message(exc)}") from None
    files = [
        ConfigFile(name=n, text=f["text"], secret=bool(f["secret"]))
        for n, f in doc["files"].items()
    ]
    return Registered(device_id=doc["device_id"], name=doc["name"], files=files)


def _message(exc: HTTPError) -> str:
    try:
        doc = json.loads(exc.read(MAX_RESPONSE))
        detail = doc.get("error", {}).get("message") or doc.get("detail")
    except (ValueError, AttributeError):
        detail = None
    hint = {401: " (the token is not valid)", 403: ""}.get(exc.code, "")
    return f"HTTP {exc.code}: {detail or exc.reason}{hint}"
