"""Wi-Fi settings for a card: the WPA key derived from the passphrase, which itself is
never written anywhere (IEEE 802.11i: PBKDF2-HMAC-SHA1, the SSID as salt, 4096
rounds, 32 bytes)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from hardware.errors import FlashError

#: ISO 3166 alpha-2, as the regulatory domain wants it.
_COUNTRY = re.compile(r"[A-Z]{2}")


@dataclass(frozen=True, slots=True)
class Wifi:
    ssid: str
    psk: str = ""  # 64 hex digits; "" for an open network
    country: str = "GB"

    def __repr__(self) -> str:  # the key is a secret: never in a log line
        return f"Wifi(ssid={self.ssid!r}, country={self.country!r})"


def wpa_psk(ssid: str, passphrase: str) -> str:
    """The 256-bit pre-shared key as 64 hex digits."""
    return hashlib.pbkdf2_hmac("sha1", passphrase.encode(), ssid.encode(), 4096, 32).hex()


def wifi_settings(ssid: str, passphrase: str | None, country: str) -> Wifi:
    """Checked settings, or a FlashError that says which one is wrong."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in ssid):
        raise FlashError("--wifi-ssid is not valid text in this terminal's encoding")
    if not 1 <= len(ssid.encode()) <= 32:
        raise FlashError("--wifi-ssid must be 1-32 bytes")
    if any(ord(c) < 32 for c in ssid):
        raise FlashError("--wifi-ssid must not contain control characters")
    country = country.upper()
    if not _COUNTRY.fullmatch(country):
        raise FlashError(
            f"--wifi-country {country!r} must be a two-letter country code (GB, DE, US…)"
        )
    if passphrase is None:
        return Wifi(ssid=ssid, country=country)
    if not 8 <= len(passphrase) <= 63 or not all(32 <= ord(c) < 127 for c in passphrase):
        raise FlashError("the Wi-Fi passphrase must be 8-63 printable ASCII characters")
    return Wifi(ssid=ssid, psk=wpa_psk(ssid, passphrase), country=country)
