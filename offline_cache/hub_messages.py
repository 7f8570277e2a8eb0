"""Answers from the hub that change what a speaker keeps, signed and bound to their request.

The offline sync's answer says which licences the speaker holds, which accounts'
content it must shred and which tracks it should keep: forged, it could make a
speaker delete its downloads.  So the hub signs the exact bytes of the answer with
its licence key (Ed25519, the key every licence is signed with) and names the
request it answers (``request_sha256``), and the speaker refuses an answer that is
not signed by the hub key it pinned, or that answers another request (a replay).
Bytes in, values out: no sockets or files here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from offline_cache.errors import OfflineCacheError
from offline_cache.licence import b64, unb64

SIGNATURE_HEADER = "Legato-Signature"


class ForgedAnswerError(OfflineCacheError):
    """The answer is not the hub's, or not to this request: nothing of it is applied."""


def request_digest(request_body: bytes) -> str:
    return hashlib.sha256(request_body).hexdigest()


def sign_answer(
    doc: dict[str, Any], request_body: bytes, signer: Ed25519PrivateKey
) -> tuple[bytes, str]:
    """The hub's side: the answer's bytes (naming the request) and their signature."""
    body = json.dumps({**doc, "request_sha256": request_digest(request_body)}).encode()
    return body, b64(signer.sign(body))


def read_answer(
    body: bytes, signature: str | None, hub_key: bytes, request_body: bytes
) -> dict[str, Any]:
    """The speaker's side: the answer, if ``hub_key`` signed exactly these bytes and
    they answer ``request_body``; else :class:`ForgedAnswerError`."""
    if not signature:
        raise ForgedAnswerError("the hub's answer is not signed")
    try:
        Ed25519PublicKey.from_public_bytes(hub_key).verify(unb64(signature.strip()), body)
        doc = json.loads(body)
    except (InvalidSignature, ValueError) as exc:
        raise ForgedAnswerError("the hub's answer is not signed by its licence key") from exc
    if not isinstance(doc, dict) or doc.get("request_sha256") != request_digest(request_body):
        raise ForgedAnswerError("the hub's answer does not answer this request (replayed)")
    return doc
