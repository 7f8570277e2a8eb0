"""What the hub offers, and what the speaker does about it: pure rules.

``GET /v1/devices/{id}/update`` answers 204 (nothing offered) or
``{"version", "size", "sha256", "url"}``.  The offer is read strictly (it decides
what is downloaded with the speaker's credentials: the URL must be a path on the
same hub), then :func:`plan` says whether to download it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from releases.versions import is_version, newer

MAX_BUNDLE_BYTES = 512 * 1024 * 1024
MAX_OFFER_BYTES = 4096
#: a bundle refused here (bad signature, hash...) is not fetched again for this long
REFUSED_HOLD_S = 6 * 3600.0
SHA256 = re.compile(r"[0-9a-f]{64}")
BUNDLE_URL = re.compile(r"/v1/releases/[0-9A-Za-z.+]{1,64}/bundle")


@dataclass(frozen=True, slots=True)
class Offer:
    version: str
    size: int
    sha256: str
    url: str


class BadOfferError(ValueError):
    """The hub's answer is not an offer this speaker will act on."""


def parse_offer(body: bytes) -> Offer:
    if len(body) > MAX_OFFER_BYTES:
        raise BadOfferError("the offer is larger than 4 KiB")
    try:
        doc: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadOfferError("the offer is not JSON") from exc
    if not isinstance(doc, dict):
        raise BadOfferError("the offer is not an object")
    version, size, digest, url = (doc.get(k) for k in ("version", "size", "sha256", "url"))
    if not isinstance(version, str) or not is_version(version):
        raise BadOfferError("the offer names no valid version")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= MAX_BUNDLE_BYTES:
        raise BadOfferError(f"the offered size must be 1 to {MAX_BUNDLE_BYTES} bytes")
    if not isinstance(digest, str) or not SHA256.fullmatch(digest):
        raise BadOfferError("the offered sha256 is not 64 lower-case hex digits")
    if not isinstance(url, str) or not BUNDLE_URL.fullmatch(url):
        raise BadOfferError("the offered URL is not /v1/releases/<version>/bundle on this hub")
    return Offer(version, size, digest, url)


@dataclass(frozen=True, slots=True)
class Skip:
    """Leave the offer; ``report`` is the reason to report as "skipped" (once), if any:
    every reason here is the speaker's own state, never the release's fault."""

    why: str
    report: str | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    offer: Offer


Plan = Skip | Fetch


def plan(
    offer: Offer,
    *,
    running: str,
    refused_here: tuple[str, ...],
    failed_at_s: dict[str, float],
    pinned_key: bool,
    now_s: float,
    in_slots: bool = True,
) -> Plan:
    """Download ``offer`` or not.  ``failed_at_s``: when a "failed" or "skipped" was
    last reported for a version (its bundle refused, or it was left for good).
    ``in_slots``: this speaker runs from release slots (else it cannot install)."""
    v = offer.version
    reported = v in failed_at_s
    if v in refused_here:
        return Skip(
            f"{v} was rolled back here before", None if reported else "rolled back here before"
        )
    if not newer(v, running):
        return Skip(f"{v} is not newer than the running {running}")
    if not in_slots:
        why = "this speaker does not run from release slots, so it cannot install releases"
        return Skip(why, None if reported else why)
    if not pinned_key:
        why = "this speaker pins no release key (updates.release_key), so it refuses every bundle"
        return Skip(why, None if reported else why)
    if reported and now_s - failed_at_s[v] < REFUSED_HOLD_S:
        return Skip(f"{v} was refused here less than {REFUSED_HOLD_S / 3600:g} h ago")
    return Fetch(offer)


def next_check_s(interval_s: float, uniform: float) -> float:
    """The wait before the next look at the hub: ``interval_s`` +-10 % (``uniform`` in
    [0, 1)), so a fleet that started together does not ask together."""
    return interval_s * (0.9 + 0.2 * uniform)
