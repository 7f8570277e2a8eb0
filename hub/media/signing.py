"""Signed segment URLs: the capability a speaker (or a CDN edge) needs to fetch audio.

``/audio/{id}/{quality}/{n}.ogg?exp=E&kid=K&sig=S`` carries its own authority,
so segments are served without a token lookup by anything that holds the keys:

    S = base64url(HMAC-SHA256(key[K], f"{path}\\n{E}\\n{K}")), without padding
    E = expiry, whole seconds since the epoch

Keys live in ``keys/audio/{kid}.key`` (directories 0700, files 0600), 256
random bits each.  A kid is ``{created_s}-{6 hex}``: a key's age is in its name,
not in an mtime that a backup restore would change.  The newest key signs; an
older key keeps verifying for ``retention_s`` (URL lifetime + margin) after the
key that replaced it was made, so a rotation never breaks a URL already handed
out.  Secrets are never logged: ``Key``'s repr shows only the kid.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from connect_protocol.media import Manifest, Quality, Rendition
from hub.clock import now_ms as wall_ms
from hub.files import keys_dir, write_private

logger = logging.getLogger(__name__)

#: How long a signed URL works (a track plus a long pause fits comfortably).
URL_TTL_S = 6 * 60 * 60
#: Extra life for retired keys: clock skew between workers and requests in flight.
MARGIN_S = 60 * 60
#: A running hub re-reads the key directory at most this often.
REFRESH_INTERVAL_S = 2.0
SECRET_BYTES = 32

KID = re.compile(r"[0-9]{1,12}-[0-9a-f]{6}")  # always fullmatch: "$" allows a final "\n"
_EXP = re.compile(r"0|[1-9][0-9]{0,11}")  # canonical: "0123" is not another spelling
_SIG = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes, base64url, unpadded


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    secret: bytes = field(repr=False)

    @property
    def created_s(self) -> int:
        return int(self.kid.partition("-")[0])

    @property
    def order(self) -> tuple[int, str]:
        return self.created_s, self.kid


class Verdict(Enum):
    """Why a signed URL was accepted or refused (each refusal is a 403)."""

    OK = "ok"
    MALFORMED = "The URL is missing its signature or has a malformed one"
    UNKNOWN_KEY = "The URL was signed with an unknown or retired key"
    BAD_SIGNATURE = "The URL's signature does not match"
    EXPIRED = "The URL has expired"


def segment_url_path(track_id: str, quality: Quality, n: int) -> str:
    """The signed part of a segment's URL (the app's own path, before any proxy prefix)."""
    return f"/audio/{track_id}/{quality.label}/{n}.ogg"


def signature(secret: bytes, path: str, exp_s: int, kid: str) -> str:
    """HMAC-SHA256 over path, expiry and key id, as unpadded base64url."""
    mac = hmac.new(secret, f"{path}\n{exp_s}\n{kid}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def check(key: Key | None, path: str, exp: str, kid: str, sig: str, now_ms: int) -> Verdict:
    """Judge a URL's query values; ``key`` is the usable key named ``kid``, if any."""
    if not (_EXP.fullmatch(exp) and KID.fullmatch(kid) and _SIG.fullmatch(sig)):
        return Verdict.MALFORMED
    if key is None or key.kid != kid:
        return Verdict.UNKNOWN_KEY
    if not hmac.compare_digest(signature(key.secret, path, int(exp), kid), sig):
        return Verdict.BAD_SIGNATURE
    if now_ms >= int(exp) * 1000:
        return Verdict.EXPIRED
    return Verdict.OK


@dataclass(frozen=True, slots=True)
class UrlSigner:
    """One key and one expiry, so every URL of a manifest agrees on both."""

    key: Key
    exp_s: int

    @property
    def expires_ms(self) -> int:
        return self.exp_s * 1000

    def url(self, path: str) -> str:
        sig = signature(self.key.secret, path, self.exp_s, self.key.kid)
        return f"{path}?exp={self.exp_s}&kid={self.key.kid}&sig={sig}"


def sign_manifest(manifest: Manifest, signer: UrlSigner) -> Manifest:
    """The stored manifest with every segment's URL filled in and its expiry set."""

    def signed(r: Rendition) -> Rendition:
        quality = Quality.parse(r.quality)
        segments = tuple(
            dataclasses.replace(s, url=signer.url(segment_url_path(manifest.track_id, quality, n)))
            for n, s in enumerate(r.segments)
        )
        return dataclasses.replace(r, segments=segments)

    return dataclasses.replace(
        manifest,
        renditions=tuple(signed(r) for r in manifest.renditions),
        expires_ms=signer.expires_ms,
    )


def usable_keys(keys: Iterable[Key], now_s: int, retention_s: int) -> list[Key]:
    """Keys that may verify at ``now_s``, oldest first; the last one signs.

    A key retires when its successor is made and verifies ``retention_s`` longer.
    """
    ordered = sorted(keys, key=lambda k: k.order)
    return [
        k
        for k, successor in zip(ordered, [*ordered[1:], None], strict=True)
        if successor is None or now_s < successor.created_s + retention_s
    ]


# --- the key directory ---------------------------------------------------------------


def audio_keys_dir(data_dir: Path) -> Path:
    path = keys_dir(data_dir) / "audio"
    path.mkdir(mode=0o700, exist_ok=True)
    path.chmod(0o700)
    return path


def read_keys(directory: Path) -> list[Key]:
    """Every well-formed key file; others are skipped with a warning naming the file."""
    keys = []
    for path in sorted(directory.glob("*.key")):
        if not KID.fullmatch(path.stem):
            continue
        try:
            secret = base64.urlsafe_b64decode(path.read_text().strip() + "=")
        except (OSError, ValueError, binascii.Error):
            secret = b""
        if len(secret) != SECRET_BYTES:
            logger.warning("ignoring unreadable audio signing key file %s", path.name)
            continue
        keys.append(Key(path.stem, secret))
    return keys


def create_key(directory: Path, now_s: int, existing: Iterable[Key] = ()) -> Key:
    """A new key, named after the newest existing one even when made in the same second."""
    created = max([now_s, *(k.created_s + 1 for k in existing)])
    key = Key(f"{created}-{secrets.token_hex(3)}", secrets.token_bytes(SECRET_BYTES))
    text = base64.urlsafe_b64encode(key.secret).rstrip(b"=").decode("ascii")
    write_private(directory / f"{key.kid}.key", text + "\n")
    logger.info("created audio signing key %s", key.kid)
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    new: str
    pruned: tuple[str, ...]


def rotate(data_dir: Path, *, now_ms: int, retention_s: int = URL_TTL_S + MARGIN_S) -> Rotation:
    """Add a signing key and delete those retired for longer than ``retention_s``."""
    directory = audio_keys_dir(data_dir)
    existing = read_keys(directory)
    key = create_key(directory, now_ms // 1000, existing)
    keep = {k.kid for k in usable_keys([*existing, key], now_ms // 1000, retention_s)}
    pruned = tuple(k.kid for k in existing if k.kid not in keep)
    for kid in pruned:
        (directory / f"{kid}.key").unlink(missing_ok=True)
        logger.info("removed retired audio signing key %s", kid)
    return Rotation(new=key.kid, pruned=pruned)


class KeyRing:
    """The hub's keys in memory, re-read (rate-limited) to pick up ``keys rotate``.

    Thread-safe: routes sign in worker threads and verify on the event loop.
    """

    def __init__(
        self,
        directory: Path,
        *,
        url_ttl_s: int = URL_TTL_S,
        margin_s: int = MARGIN_S,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
        clock: Callable[[], int] = wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if url_ttl_s <= 0 or margin_s < 0:
            raise ValueError("the URL lifetime must be positive and the margin not negative")
        self.directory = directory
        self.url_ttl_s = url_ttl_s
        self.retention_s = url_ttl_s + margin_s
        self.clock = clock
        self._refresh_interval_s = refresh_interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._keys: dict[str, Key] = {}
        self._refreshed_at = float("-inf")
        self.refresh(force=True)

    @classmethod
    def open(cls, data_dir: Path, **options: Any) -> KeyRing:
        """The ring of a data directory, making its first key if it has none."""
        return cls(audio_keys_dir(data_dir), **options)

    def refresh(self, *, force: bool = False) -> None:
        """Re-read the directory unless that was done less than the interval ago."""
        with self._lock:
            now = self._monotonic()
            if not force and now - self._refreshed_at < self._refresh_interval_s:
                return
            self._refreshed_at = now
            try:
                names = {p.stem for p in self.directory.glob("*.key") if KID.fullmatch(p.stem)}
                if names and names == set(self._keys):
                    return
                keys = read_keys(self.directory)
                if not keys:
                    keys = [create_key(self.directory, self.clock() // 1000)]
            except OSError as exc:
                if not self._keys:
                    raise
                logger.warning(
                    "cannot re-read audio signing keys in %s (%s); keeping the %d known",
                    self.directory,
                    exc.strerror,
                    len(self._keys),
                )
                return
            self._keys = {k.kid: k for k in keys}
            logger.info(
                "audio signing keys: %s signs, %d in the ring",
                max(keys, key=lambda k: k.order).kid,
                len(keys),
            )

    def _usable(self) -> list[Key]:
        with self._lock:
            keys = list(self._keys.values())
        return usable_keys(keys, self.clock() // 1000, self.retention_s)

    def signer(self) -> UrlSigner:
        """The newest key with an expiry ``url_ttl_s`` from now."""
        self.refresh()
        exp_s = (self.clock() + self.url_ttl_s * 1000) // 1000
        return UrlSigner(self._usable()[-1], exp_s)

    def verify(self, path: str, exp: str, kid: str, sig: str) -> Verdict:
        """Check a URL against the ring, re-read first (rate-limited) to learn of rotations.

        Known kids need the re-read too: a successor is what retires a key.
        """
        self.refresh()
        key = next((k for k in self._usable() if k.kid == kid), None)
        return check(key, path, exp, kid, sig, self.clock())

    @property
    def kids(self) -> list[str]:
        """Kids that verify now, oldest first (the last one signs)."""
        self.refresh()
        return [k.kid for k in self._usable()]
