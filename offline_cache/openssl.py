"""AES-256-GCM, X25519, Ed25519 and HKDF-SHA256 from the system's libcrypto, through ctypes.

Why not the ``cryptography`` package on the speaker: it brings its own OpenSSL, statically
linked, which costs a speaker ~7.5 MiB of resident memory, while Python's ``ssl`` and
``hashlib`` already have the system's ``libcrypto`` mapped.  Only the handful of calls the
cache needs are bound here; every one is checked against ``cryptography`` in
tests/test_openssl.py (same outputs, each side opens what the other sealed).
The hub, where memory is no concern, keeps using ``cryptography``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import os

from offline_cache.errors import OfflineCacheError

NONCE = 12
TAG = 16
_NID_X25519 = 1034
_NID_ED25519 = 1087
_GCM_SET_IVLEN, _GCM_GET_TAG, _GCM_SET_TAG = 0x9, 0x10, 0x11

_P = ctypes.c_void_p
_SIZE = ctypes.c_size_t
_INT = ctypes.c_int


class CryptoError(OfflineCacheError):
    """An authentication tag or signature did not verify, or a key was unusable."""


def _load() -> ctypes.CDLL:
    for name in ("libcrypto.so.3", ctypes.util.find_library("crypto")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    raise ImportError("libcrypto (OpenSSL 3) not found: install libssl3")


_lib = _load()


def _fn(name: str, restype: type | None, *argtypes: type) -> ctypes._CFuncPtr:  # type: ignore[name-defined]
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_ctx_new = _fn("EVP_CIPHER_CTX_new", _P)
_ctx_free = _fn("EVP_CIPHER_CTX_free", None, _P)
_aes_256_gcm = _fn("EVP_aes_256_gcm", _P)
_ctrl = _fn("EVP_CIPHER_CTX_ctrl", _INT, _P, _INT, _INT, _P)
_enc_init = _fn("EVP_EncryptInit_ex", _INT, _P, _P, _P, _P, _P)
_dec_init = _fn("EVP_DecryptInit_ex", _INT, _P, _P, _P, _P, _P)
_enc_update = _fn("EVP_EncryptUpdate", _INT, _P, _P, ctypes.POINTER(_INT), _P, _INT)
_dec_update = _fn("EVP_DecryptUpdate", _INT, _P, _P, ctypes.POINTER(_INT), _P, _INT)
_enc_final = _fn("EVP_EncryptFinal_ex", _INT, _P, _P, ctypes.POINTER(_INT))
_dec_final = _fn("EVP_DecryptFinal_ex", _INT, _P, _P, ctypes.POINTER(_INT))
_pkey_private = _fn("EVP_PKEY_new_raw_private_key", _P, _INT, _P, ctypes.c_char_p, _SIZE)
_pkey_public = _fn("EVP_PKEY_new_raw_public_key", _P, _INT, _P, ctypes.c_char_p, _SIZE)
_pkey_get_public = _fn("EVP_PKEY_get_raw_public_key", _INT, _P, _P, ctypes.POINTER(_SIZE))
_pkey_free = _fn("EVP_PKEY_free", None, _P)
_pctx_new = _fn("EVP_PKEY_CTX_new", _P, _P, _P)
_pctx_free = _fn("EVP_PKEY_CTX_free", None, _P)
_derive_init = _fn("EVP_PKEY_derive_init", _INT, _P)
_derive_peer = _fn("EVP_PKEY_derive_set_peer", _INT, _P, _P)
_derive = _fn("EVP_PKEY_derive", _INT, _P, _P, ctypes.POINTER(_SIZE))
_md_new = _fn("EVP_MD_CTX_new", _P)
_md_free = _fn("EVP_MD_CTX_free", None, _P)
_sign_init = _fn("EVP_DigestSignInit", _INT, _P, _P, _P, _P, _P)
_sign = _fn("EVP_DigestSign", _INT, _P, _P, ctypes.POINTER(_SIZE), ctypes.c_char_p, _SIZE)
_verify_init = _fn("EVP_DigestVerifyInit", _INT, _P, _P, _P, _P, _P)
_verify = _fn("EVP_DigestVerify", _INT, _P, ctypes.c_char_p, _SIZE, ctypes.c_char_p, _SIZE)


def _address(data: bytes) -> int:
    """Where a bytes object's buffer is (no copy); valid while ``data`` lives."""
    return ctypes.cast(ctypes.c_char_p(data), _P).value or 0


def _check(ok: int, what: str) -> None:
    if ok != 1:
        raise CryptoError(f"libcrypto: {what} failed")


# --- AES-256-GCM --------------------------------------------------------------------


def gcm_seal(key: bytes, data: bytes, aad: bytes, nonce: bytes | None = None) -> bytes:
    """``nonce || ciphertext || tag`` (a fresh random nonce unless one is given)."""
    if len(key) != 32:
        raise ValueError("AES-256-GCM takes a 32-byte key")
    nonce = os.urandom(NONCE) if nonce is None else nonce
    out = ctypes.create_string_buffer(len(data) + TAG + 1)
    n = _INT(0)
    ctx = _ctx_new()
    try:
        _check(_enc_init(ctx, _aes_256_gcm(), None, None, None), "cipher init")
        _check(_ctrl(ctx, _GCM_SET_IVLEN, NONCE, None), "nonce length")
        _check(_enc_init(ctx, None, None, key, nonce), "key")
        if aad:
            _check(_enc_update(ctx, None, ctypes.byref(n), aad, len(aad)), "aad")
        _check(_enc_update(ctx, out, ctypes.byref(n), data, len(data)), "encrypt")
        done = n.value
        _check(_enc_final(ctx, ctypes.byref(out, done), ctypes.byref(n)), "final")
        done += n.value
        _check(_ctrl(ctx, _GCM_GET_TAG, TAG, ctypes.byref(out, done)), "tag")
    finally:
        _ctx_free(ctx)
    return nonce + ctypes.string_at(out, done + TAG)


def gcm_open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """The plaintext of ``nonce || ciphertext || tag``; ``CryptoError`` unless the tag holds."""
    if len(key) != 32:
        raise ValueError("AES-256-GCM takes a 32-byte key")
    if len(sealed) < NONCE + TAG:
        raise CryptoError("sealed data too short")
    size = len(sealed) - NONCE - TAG
    base = _address(sealed)
    out = ctypes.create_string_buffer(size + 1)
    n = _INT(0)
    ctx = _ctx_new()
    try:
        _check(_dec_init(ctx, _aes_256_gcm(), None, None, None), "cipher init")
        _check(_ctrl(ctx, _GCM_SET_IVLEN, NONCE, None), "nonce length")
        _check(_dec_init(ctx, None, None, key, base), "key")
        if aad:
            _check(_dec_update(ctx, None, ctypes.byref(n), aad, len(aad)), "aad")
        _check(_dec_update(ctx, out, ctypes.byref(n), base + NONCE, size), "decrypt")
        done = n.value
        _check(_ctrl(ctx, _GCM_SET_TAG, TAG, base + NONCE + size), "tag")
        if _dec_final(ctx, ctypes.byref(out, done), ctypes.byref(n)) != 1:
            raise CryptoError("authentication tag mismatch")
        done += n.value
    finally:
        _ctx_free(ctx)
    return ctypes.string_at(out, done)  # one copy, not two (``out.raw[:done]``)


# --- X25519 and Ed25519 (raw 32-byte keys) -------------------------------------------


def _private(nid: int, key: bytes) -> int:
    if len(key) != 32:
        raise ValueError("a raw private key is 32 bytes")
    pkey = _pkey_private(nid, None, key, 32)
    if not pkey:
        raise CryptoError("unusable private key")
    return int(pkey)


def _public(nid: int, key: bytes) -> int:
    if len(key) != 32:
        raise CryptoError("a raw public key is 32 bytes")
    pkey = _pkey_public(nid, None, key, 32)
    if not pkey:
        raise CryptoError("unusable public key")
    return int(pkey)


def _raw_public(nid: int, private: bytes) -> bytes:
    pkey = _private(nid, private)
    try:
        out = ctypes.create_string_buffer(32)
        size = _SIZE(32)
        _check(_pkey_get_public(pkey, out, ctypes.byref(size)), "public key")
        return out.raw[: size.value]
    finally:
        _pkey_free(pkey)


def x25519_public(private: bytes) -> bytes:
    return _raw_public(_NID_X25519, private)


def ed25519_public(private: bytes) -> bytes:
    return _raw_public(_NID_ED25519, private)


def new_private_key() -> bytes:
    """A fresh raw X25519 or Ed25519 private key (any 32 random bytes serve both)."""
    return os.urandom(32)


def x25519(private: bytes, peer_public: bytes) -> bytes:
    """The shared secret; ``CryptoError`` for a bad peer key (all-zero result included)."""
    mine, theirs = _private(_NID_X25519, private), _public(_NID_X25519, peer_public)
    ctx = _pctx_new(mine, None)
    try:
        _check(_derive_init(ctx), "derive init")
        _check(_derive_peer(ctx, theirs), "peer key")
        out = ctypes.create_string_buffer(32)
        size = _SIZE(32)
        _check(_derive(ctx, out, ctypes.byref(size)), "X25519")
        return out.raw[: size.value]
    finally:
        _pctx_free(ctx)
        _pkey_free(theirs)
        _pkey_free(mine)


def ed25519_sign(private: bytes, message: bytes) -> bytes:
    pkey = _private(_NID_ED25519, private)
    md = _md_new()
    try:
        _check(_sign_init(md, None, None, None, pkey), "sign init")
        sig = ctypes.create_string_buffer(64)
        size = _SIZE(64)
        _check(_sign(md, sig, ctypes.byref(size), message, len(message)), "sign")
        return sig.raw[: size.value]
    finally:
        _md_free(md)
        _pkey_free(pkey)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        pkey = _public(_NID_ED25519, public)
    except CryptoError:
        return False
    md = _md_new()
    try:
        _check(_verify_init(md, None, None, None, pkey), "verify init")
        return bool(_verify(md, signature, len(signature), message, len(message)) == 1)
    finally:
        _md_free(md)
        _pkey_free(pkey)


# --- HKDF-SHA256 (RFC 5869), on hashlib's HMAC ----------------------------------------


def hkdf_sha256(ikm: bytes, info: bytes, length: int = 32, salt: bytes = b"") -> bytes:
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]
