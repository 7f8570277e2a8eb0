"""The keys that open the store's content keys, and the licences that guard them.

Two kinds of key-encryption key (KEK) wrap the per-track content keys:

* the streaming tier's own key, ``cache.key`` (32 random bytes, mode 0600), made
  on first use and never leaving the speaker;
* each account's KEK, which only a licence signed by the pinned hub key and
  addressed to this speaker's X25519 key opens.  It is handed out only while
  that licence is valid: expiry and a clock set back behind the latest time
  this speaker has seen are checked on every use.  The signature check and the
  unwrapping are done once per licence and kept in memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.errors import StoreError
from offline_cache.private_files import write_private_bytes
from offline_cache.store.index import HUB_KEY, LATEST_SEEN_MS, Index

#: ``latest_seen_ms`` is written at most this often (it guards against a clock set back).
_SEEN_WRITE_MS = 60_000


def load_stream_key(path: Path) -> bytes:
    """The streaming tier's KEK at ``path``, made first if there is none."""
    if not path.exists():
        write_private_bytes(path, sealing.new_key())
    key = path.read_bytes()
    if len(key) != 32:
        raise StoreError(f"{path} is not a 32-byte key; delete the cache directory to reset")
    return key


class Keyring:
    """The streaming KEK, the pinned hub key, the licences kept and the accounts' KEKs."""

    def __init__(
        self,
        index: Index,
        *,
        device_id: str,
        keys: DeviceKeys,
        stream_key_path: Path,
        now_ms: Callable[[], int],
    ) -> None:
        self._index = index
        self._lock = index.lock
        self._device_id = device_id
        self._keys = keys
        self._x25519_public = keys.x25519_public  # derived once: checked on every read
        self._now_ms = now_ms
        self.stream_kek = load_stream_key(stream_key_path)
        self._keks: dict[str, tuple[lic.Licence, bytes]] = {}  # account -> licence, its KEK
        self._latest_seen = self.latest_seen_ms()
        self._seen_written_ms = self._latest_seen

    # --- the hub's key --------------------------------------------------------------

    def hub_key_b64(self) -> str | None:
        """The pinned hub key as stored (base64), ``None`` before the first sync."""
        return self._index.meta(HUB_KEY)

    def hub_key(self) -> bytes | None:
        """The raw Ed25519 key of the hub whose licences this speaker accepts."""
        raw_b64 = self.hub_key_b64()
        return lic.unb64(raw_b64) if raw_b64 is not None else None

    def trust_hub_key(self, raw_b64: str) -> None:
        self._index.set_meta(HUB_KEY, raw_b64)

    # --- licences -------------------------------------------------------------------

    def accept(self, signed: lic.SignedLicence) -> lic.Licence:
        """Check a licence from the hub (signature, this device) and keep it."""
        hub_key = self.hub_key()
        if hub_key is None:
            raise lic.ForgedLicenceError("no hub key pinned yet: sync with the hub first")
        licence = lic.read(signed, hub_key)
        self.check_device(licence)
        lic.unwrap_kek(licence, self._keys.x25519_private)  # opens here, or WrongDeviceError
        self._index.put_licence(
            account=licence.account,
            licence_id=licence.licence_id,
            signed_json=json.dumps(signed.to_json()),
            expires_ms=licence.expires_ms,
        )
        with self._lock:
            self._keks.pop(licence.account, None)
        return licence

    def check_device(self, licence: lic.Licence) -> None:
        if licence.device_id != self._device_id or lic.unb64(licence.device_x25519) != (
            self._x25519_public
        ):
            raise lic.WrongDeviceError(
                f"the licence was issued to speaker {licence.device_id!r}, not this one "
                f"({self._device_id!r}); cached files copied from another speaker cannot play "
                "here — download them on this speaker"
            )

    def licence(self, account: str) -> lic.Licence | None:
        signed_json = self._index.signed_licence(account)
        hub_key = self.hub_key()
        if signed_json is None or hub_key is None:
            return None
        return lic.read(lic.SignedLicence.from_json(json.loads(signed_json)), hub_key)

    def licences(self) -> list[lic.Licence]:
        accounts = self._index.licence_accounts()
        return [x for a in accounts if (x := self.licence(a)) is not None]

    def forget(self, account: str) -> None:
        """Drop the account's KEK from memory (its licence is gone)."""
        with self._lock:
            self._keks.pop(account, None)

    # --- time and KEKs --------------------------------------------------------------

    def latest_seen_ms(self) -> int:
        value = self._index.meta(LATEST_SEEN_MS)
        return int(value) if value is not None else 0

    def _saw(self, now: int) -> None:
        """Remember the latest time seen (a clock set back behind it is refused)."""
        self._latest_seen = max(self._latest_seen, now)
        if now - self._seen_written_ms < _SEEN_WRITE_MS:
            return
        self._index.raise_latest_seen(now)
        self._seen_written_ms = now

    def kek(self, account: str) -> bytes:
        """The account's KEK, only through a licence valid for this device now.

        Checked on every use (expiry, clock set back); the signature check and the
        unwrapping are done once per licence and kept in memory.
        """
        with self._lock:
            held = self._keks.get(account)
        if held is None:
            licence = self.licence(account)
            if licence is None:
                raise lic.LicenceError(
                    "there is no offline licence for this download on this speaker; "
                    f"to get one, {lic.RENEW_HOW}"
                )
            self.check_device(licence)
            held = (licence, lic.unwrap_kek(licence, self._keys.x25519_private))
        now = self._now_ms()
        lic.check(
            held[0],
            device_id=self._device_id,
            device_x25519=self._x25519_public,
            now_ms=now,
            latest_seen_ms=self._latest_seen,
        )
        self._saw(now)
        with self._lock:
            self._keks[account] = held
        return held[1]
