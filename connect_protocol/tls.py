"""TLS to a pinned hub: trust exactly one certificate authority, the hub's own.

A speaker's config carries its hub's CA certificate (written at pairing).  Every
connection that carries a secret (MQTT with the broker password, HTTP with the
speaker's credentials) is made through :func:`pinned_context`, so the handshake
proves the peer holds a key that CA signed before a byte of the secret is sent.
Host names are not checked: the CA is this hub's alone and signs nothing else,
and a speaker finds its hub by an address that may change (mDNS, DHCP).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ssl


def pinned_context(ca_pem: str) -> ssl.SSLContext:
    """A client context that accepts only servers whose chain ends at ``ca_pem``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # the pinned CA is the identity (see the module)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=ca_pem)
    return context


_BEGIN = "-----BEGIN CERTIFICATE-----"
_END = "-----END CERTIFICATE-----"


def single_certificate(pem: str) -> bytes:
    """The DER bytes of the one certificate ``pem`` holds; ValueError for anything else.

    Strict on purpose: a lenient reader (``ssl.PEM_cert_to_DER_cert``) stops at the
    first ``=`` of padding, so a real CA followed by a second one would fingerprint
    as the real CA alone while a context built from the text trusts both."""
    text = pem.strip()
    if text.count(_BEGIN) != 1 or not text.startswith(_BEGIN) or not text.endswith(_END):
        raise ValueError("expected exactly one PEM certificate")
    body = "".join(text[len(_BEGIN) : -len(_END)].split())
    try:
        der = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the certificate is not valid base64: {exc}") from exc
    if not der.startswith(b"\x30"):
        raise ValueError("the certificate is not DER inside")
    return der


def canonical_pem(pem: str) -> str:
    """The one certificate in ``pem``, re-encoded: what a pinned context is built from."""
    return ssl.DER_cert_to_PEM_cert(single_certificate(pem))


def fingerprint(cert_pem: str) -> str:
    """``sha256:…`` of a certificate's DER bytes: how a person compares two CAs."""
    digest = hashlib.sha256(single_certificate(cert_pem)).hexdigest()
    return "sha256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
