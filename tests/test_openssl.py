"""The speaker's libcrypto bindings agree with the ``cryptography`` package, both ways."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from offline_cache import openssl

RAW = serialization.Encoding.Raw
PUB = serialization.PublicFormat.Raw
keys32 = st.binary(min_size=32, max_size=32)


@settings(max_examples=60, deadline=None)
@given(
    key=keys32,
    nonce=st.binary(min_size=12, max_size=12),
    data=st.binary(max_size=5000),
    aad=st.binary(max_size=64),
)
def test_gcm_matches_cryptography_both_ways(
    key: bytes, nonce: bytes, data: bytes, aad: bytes
) -> None:
    ours = openssl.gcm_seal(key, data, aad, nonce)
    assert ours == nonce + AESGCM(key).encrypt(nonce, data, aad or None)
    assert openssl.gcm_open(key, ours, aad) == data
    theirs = nonce + AESGCM(key).encrypt(nonce, data, aad or None)
    assert openssl.gcm_open(key, theirs, aad) == data


@settings(max_examples=60, deadline=None)
@given(key=keys32, data=st.binary(min_size=1, max_size=2000), flip=st.integers(0, 10**6))
def test_gcm_refuses_any_change(key: bytes, data: bytes, flip: int) -> None:
    sealed = bytearray(openssl.gcm_seal(key, data, b"aad"))
    sealed[flip % len(sealed)] ^= 1 << (flip % 8)
    with pytest.raises(openssl.CryptoError):
        openssl.gcm_open(key, bytes(sealed), b"aad")
    with pytest.raises(InvalidTag):
        AESGCM(key).decrypt(bytes(sealed[:12]), bytes(sealed[12:]), b"aad")
    good = openssl.gcm_seal(key, data, b"aad")
    with pytest.raises(openssl.CryptoError):
        openssl.gcm_open(key, good, b"other aad")
    with pytest.raises(openssl.CryptoError):
        openssl.gcm_open(key, good[:27], b"aad")


@settings(max_examples=30, deadline=None)
@given(a=keys32, b=keys32)
def test_x25519_matches_cryptography(a: bytes, b: bytes) -> None:
    ours = openssl.x25519(a, openssl.x25519_public(b))
    theirs = X25519PrivateKey.from_private_bytes(a).exchange(
        X25519PublicKey.from_public_bytes(
            X25519PrivateKey.from_private_bytes(b).public_key().public_bytes(RAW, PUB)
        )
    )
    assert ours == theirs
    assert openssl.x25519_public(a) == X25519PrivateKey.from_private_bytes(
        a
    ).public_key().public_bytes(RAW, PUB)


def test_x25519_refuses_a_low_order_point() -> None:
    with pytest.raises(openssl.CryptoError):
        openssl.x25519(openssl.new_private_key(), bytes(32))


@settings(max_examples=30, deadline=None)
@given(key=keys32, message=st.binary(max_size=2000))
def test_ed25519_matches_cryptography(key: bytes, message: bytes) -> None:
    theirs = Ed25519PrivateKey.from_private_bytes(key)
    public = openssl.ed25519_public(key)
    assert public == theirs.public_key().public_bytes(RAW, PUB)
    sig = openssl.ed25519_sign(key, message)
    assert sig == theirs.sign(message)  # Ed25519 is deterministic
    Ed25519PublicKey.from_public_bytes(public).verify(sig, message)
    assert openssl.ed25519_verify(public, theirs.sign(message), message)
    assert not openssl.ed25519_verify(public, sig, message + b"x")
    assert not openssl.ed25519_verify(public, bytes(64), message)
    assert not openssl.ed25519_verify(bytes(31), sig, message)


@settings(max_examples=30, deadline=None)
@given(ikm=st.binary(max_size=64), info=st.binary(max_size=64), length=st.integers(1, 100))
def test_hkdf_matches_cryptography(ikm: bytes, info: bytes, length: int) -> None:
    theirs = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)
    assert openssl.hkdf_sha256(ikm, info, length) == theirs
