"""The offline cache's cryptography, through its public API: the bytes already on speakers'
disks and in the hub's licences still open, anything else is refused with the package's
own errors (``cryptography``'s are their cause), and keys round-trip.

The vectors below were made by the libcrypto (ctypes) bindings the speaker used before
it moved to the ``cryptography`` package: a cache written then must read the same now.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from offline_cache import licence as lic
from offline_cache import sealing
from offline_cache.device_keys import DeviceKeys
from offline_cache.errors import OfflineCacheError

TRACK = "t" * 22
T0 = 1_790_000_000_000


def seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


CONTENT_KEY, KEK = seed("content key"), seed("kek")
DEVICE = DeviceKeys(x25519_private=seed("device x25519"), ed25519_private=seed("device ed25519"))
HUB = Ed25519PrivateKey.from_private_bytes(seed("hub"))
PLAIN = b"OggS" + bytes(range(60))  # segment 3 of TRACK at "high"
SEGMENT = bytes.fromhex(
    "8b03b618557431cf96b2720196f566c3a4dc69b6fc042b5848a7a58b0667755465cfc2739864"
    "2084ab2bc4af83a3d155a5dcfc8d9b2ddcb9628ac8e6a1a51f074d108d7d14cc71b1c71ecaba"
    "921ae9fe1848d7b366d305cee057835b"
)
WRAPPED = bytes.fromhex(  # CONTENT_KEY wrapped by KEK for TRACK
    "91ec7c4567ac919efa7c1cba37bd4d4ea9507c7b1fdc1678d78f3c8f0dfe330fb1c3a05e1ce4"
    "7982145837dbc36db8b6a091f1b97062b0be499279fe"
)
LICENCE = lic.SignedLicence(  # KEK for account "1" on "den", sealed to DEVICE, signed by HUB
    body="eyJhY2NvdW50IjoiMSIsImRldmljZV9pZCI6ImRlbiIsImRldmljZV94MjU1MTkiOiJ3Zk1nT1JvVjlxQnVN"
    "dGpfazNpTmY1VFlqYk1OTGNSNGl3cHdtS0V1TUVnIiwiZXhwaXJlc19tcyI6MTc5MjU5MjAwMDAwMCwiZm9ybWF0"
    "IjoibGVnYXRvLWxpY2VuY2UtMSIsImlzc3VlZF9tcyI6MTc5MDAwMDAwMDAwMCwia2VrX2VwayI6IkVyT2FuSFdz"
    "dW1kY2FwQWVOWkI5d0VDV3pGMjBWRWpXLUR3UHh1MHNWQ2siLCJrZWtfbm9uY2UiOiJCVF92RFo5VktWcjBLTVh5"
    "Iiwia2VrX3NlYWxlZCI6Im9YRjJhZlNWNFV4b3c4VnZ1NTFTMU1aWW9wdXdhMDF5OU5iUHp3bmRBMlUwekJScG5S"
    "X2JUbGNLdDJDRXRhU0kiLCJsaWNlbmNlX2lkIjoiTDEiLCJtYXhfdHJhY2tzIjoxMDAwMH0",
    signature="um7-kUJbDQMlGPpA2_y2mgmGOFDHPlgTXUY5QubXBwdoUB9jyVxDsJ0oYEaWaPtPH5W3zj9cMzfmlLOoGrUPDQ",
)


# --- what is already on disk and on the wire -------------------------------------------


def test_blobs_and_wrapped_keys_sealed_before_still_open() -> None:
    assert sealing.open_segment(CONTENT_KEY, TRACK, "high", 3, SEGMENT) == PLAIN
    assert sealing.unwrap_key(KEK, TRACK, WRAPPED) == CONTENT_KEY


def test_a_licence_issued_before_still_reads_and_opens() -> None:
    licence = lic.read(LICENCE, lic.raw_public(HUB.public_key()))
    assert licence == lic.read(LICENCE, HUB.public_key())  # raw bytes or a key object
    assert (licence.device_id, licence.account, licence.issued_ms) == ("den", "1", T0)
    lic.check(
        licence, device_id="den", device_x25519=DEVICE.x25519_public, now_ms=T0, latest_seen_ms=0
    )
    assert lic.unwrap_kek(licence, DEVICE.x25519_private) == KEK
    as_object = X25519PrivateKey.from_private_bytes(DEVICE.x25519_private)
    assert lic.unwrap_kek(licence, as_object) == KEK


def test_device_keys_give_the_same_public_keys_and_signatures() -> None:
    assert DEVICE.x25519_public.hex() == (
        "c1f320391a15f6a06e32d8ff93788d7f94d88db30d2dc4788b0a7098a12e3048"
    )
    assert DEVICE.ed25519_public.hex() == (
        "feff12591f01f3b86b7d60841d85fcfcf9a385bbd9c3302c72d5d88a420fd586"
    )
    assert DEVICE.sign(b"sync body") == (  # Ed25519 signatures are deterministic
        "fSqDPLdnV48iwY3oaPIGLqF_iQ-CqAMNn5EOuUbX2kbGTUMwrFcuLhEGVs5hEIfAdI-TCZ8YpYNpJmARChK-Dg"
    )


# --- sealing refuses, as TamperedError caused by InvalidTag --------------------------------


@pytest.mark.parametrize(
    "where", [0, sealing.NONCE - 1, sealing.NONCE, len(SEGMENT) - sealing.TAG, len(SEGMENT) - 1]
)
def test_a_changed_nonce_body_or_tag_is_tampered(where: int) -> None:
    damaged = bytearray(SEGMENT)
    damaged[where] ^= 0x80
    with pytest.raises(sealing.TamperedError, match=r"segment 3 of t+ \(high\) failed") as refused:
        sealing.open_segment(CONTENT_KEY, TRACK, "high", 3, bytes(damaged))
    assert isinstance(refused.value.__cause__, InvalidTag)


@pytest.mark.parametrize("size", [0, 1, sealing.OVERHEAD - 1])
def test_a_blob_too_short_for_nonce_and_tag_is_tampered(size: int) -> None:
    with pytest.raises(sealing.TamperedError, match="truncated"):
        sealing.open_segment(CONTENT_KEY, TRACK, "high", 3, SEGMENT[:size])


def test_the_blob_is_bound_to_its_key_track_quality_and_number() -> None:
    for key, track, quality, n in (
        (KEK, TRACK, "high", 3),
        (CONTENT_KEY, "u" * 22, "high", 3),
        (CONTENT_KEY, TRACK, "low", 3),
        (CONTENT_KEY, TRACK, "high", 4),
    ):
        with pytest.raises(sealing.TamperedError):
            sealing.open_segment(key, track, quality, n, SEGMENT)


def test_a_key_wrapped_under_another_kek_does_not_open() -> None:
    with pytest.raises(sealing.TamperedError, match="does not open with this account"):
        sealing.unwrap_key(CONTENT_KEY, TRACK, WRAPPED)
    with pytest.raises(sealing.TamperedError, match="does not open with this account"):
        sealing.unwrap_key(KEK, TRACK, WRAPPED[: sealing.OVERHEAD - 1])


@pytest.mark.parametrize("size", [16, 24, 31, 33])
def test_only_a_256_bit_key_is_taken(size: int) -> None:
    """AESGCM itself takes 128- and 192-bit keys: the cache does not."""
    with pytest.raises(ValueError, match="32-byte key"):
        sealing.seal_segment(bytes(size), TRACK, "high", 0, PLAIN)
    with pytest.raises(ValueError, match="32-byte key"):
        sealing.open_segment(bytes(size), TRACK, "high", 3, SEGMENT)


def test_each_seal_takes_a_fresh_nonce_in_front() -> None:
    a = sealing.seal_segment(CONTENT_KEY, TRACK, "high", 3, PLAIN)
    b = sealing.seal_segment(CONTENT_KEY, TRACK, "high", 3, PLAIN)
    assert a[: sealing.NONCE] != b[: sealing.NONCE]
    assert len(a) == len(PLAIN) + sealing.OVERHEAD
    aad = sealing.segment_aad(TRACK, "high", 3)  # the layout: nonce || ciphertext || tag
    assert AESGCM(CONTENT_KEY).decrypt(a[: sealing.NONCE], a[sealing.NONCE :], aad) == PLAIN


# --- licences refuse, as LicenceError ---------------------------------------------------


def resigned(**changes: str) -> lic.SignedLicence:
    """LICENCE with fields changed and signed again by HUB: only the crypto can refuse it."""
    body = asdict(lic.read(LICENCE, HUB.public_key())) | changes
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return lic.SignedLicence(body=lic.b64(data), signature=lic.b64(HUB.sign(data)))


def test_a_kek_nonce_of_another_length_is_refused() -> None:
    """Sealed under a 16-byte nonce, which AESGCM would accept: the format says 12."""
    original = lic.read(LICENCE, HUB.public_key())
    nonce = os.urandom(16)
    shared = X25519PrivateKey.from_private_bytes(DEVICE.x25519_private).exchange(
        X25519PrivateKey.from_private_bytes(seed("ephemeral")).public_key()
    )
    key = lic._kek_key(shared, original.licence_id, original.device_id)
    odd = resigned(
        kek_epk=lic.b64(
            lic.raw_public(X25519PrivateKey.from_private_bytes(seed("ephemeral")).public_key())
        ),
        kek_nonce=lic.b64(nonce),
        kek_sealed=lic.b64(AESGCM(key).encrypt(nonce, KEK, original.licence_id.encode())),
    )
    with pytest.raises(lic.WrongDeviceError, match="does not open with this speaker's key"):
        lic.unwrap_kek(lic.read(odd, HUB.public_key()), DEVICE.x25519_private)


@pytest.mark.parametrize(
    "changes",
    [
        {"kek_epk": lic.b64(bytes(32))},  # a point of small order: no shared secret
        {"kek_epk": lic.b64(bytes(31))},
        {"kek_sealed": lic.b64(b"")},
        {"kek_nonce": "not base64!"},
    ],
)
def test_a_kek_that_cannot_open_is_a_wrong_device(changes: dict[str, str]) -> None:
    licence = lic.read(resigned(**changes), HUB.public_key())
    with pytest.raises(lic.WrongDeviceError) as refused:
        lic.unwrap_kek(licence, DEVICE.x25519_private)
    assert isinstance(refused.value.__cause__, ValueError | sealing.TamperedError)


def test_another_speakers_key_does_not_open_the_kek() -> None:
    licence = lic.read(LICENCE, HUB.public_key())
    with pytest.raises(lic.WrongDeviceError):
        lic.unwrap_kek(licence, seed("another speaker"))


@pytest.mark.parametrize(
    ("hub_key", "signature"),
    [
        (lic.raw_public(Ed25519PrivateKey.generate().public_key()), LICENCE.signature),
        (lic.raw_public(HUB.public_key())[:31], LICENCE.signature),
        (lic.raw_public(HUB.public_key()), LICENCE.signature[:-4]),
        (lic.raw_public(HUB.public_key()), lic.b64(bytes(64))),
    ],
)
def test_a_bad_signature_or_hub_key_is_forged(hub_key: bytes, signature: str) -> None:
    with pytest.raises(lic.ForgedLicenceError, match="not signed by this hub") as refused:
        lic.read(lic.SignedLicence(LICENCE.body, signature), hub_key)
    assert isinstance(refused.value.__cause__, InvalidSignature | ValueError)


@pytest.mark.parametrize("device_x25519", [bytes(32), bytes(31)])
def test_the_hub_cannot_seal_to_an_unusable_device_key(device_x25519: bytes) -> None:
    with pytest.raises(lic.CryptoError) as refused:
        lic.issue(
            signer=HUB,
            licence_id="L2",
            device_id="den",
            account="1",
            device_x25519=device_x25519,
            kek=KEK,
            issued_ms=T0,
        )
    assert isinstance(refused.value, OfflineCacheError)
    assert isinstance(refused.value.__cause__, ValueError)


# --- keys round-trip --------------------------------------------------------------------


def test_device_keys_are_made_once_and_read_back_the_same(tmp_path: Path) -> None:
    made = DeviceKeys.load_or_create(tmp_path / "keys")
    again = DeviceKeys.load_or_create(tmp_path / "keys")
    assert again == made
    assert made.x25519_private != made.ed25519_private
    registration = made.registration()
    assert lic.unb64(registration["x25519"]) == made.x25519_public
    hub_side = Ed25519PublicKey.from_public_bytes(lic.unb64(registration["ed25519"]))
    hub_side.verify(lic.unb64(made.sign(b"body")), b"body")  # what the hub checks a sync with
    signed = lic.issue(
        signer=HUB,
        licence_id="L3",
        device_id="den",
        account="1",
        device_x25519=made.x25519_public,
        kek=KEK,
        issued_ms=T0,
    )
    assert lic.unwrap_kek(lic.read(signed, HUB.public_key()), again.x25519_private) == KEK


def test_damaged_key_files_are_refused(tmp_path: Path) -> None:
    DeviceKeys.load_or_create(tmp_path / "keys")
    (tmp_path / "keys" / "x25519.key").write_bytes(bytes(31))
    with pytest.raises(ValueError, match="damaged"):
        DeviceKeys.load_or_create(tmp_path / "keys")
