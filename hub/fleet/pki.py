"""The hub's own certificate authority and its TLS certificate.

Made at the first start under ``DATA/keys`` (mode 0700; private keys 0600): a CA
that signs only this hub's certificates, and the certificate the broker's TLS
listener and the speakers' HTTPS port present.  A speaker's config pins the CA
(``hub-ca.pem``, written when it is paired), so it can tell this hub from anyone
else on the network before it sends a secret.  The server certificate names the
hub's host names and addresses and is made again when those change or it is
within :data:`RENEW_WITHIN` of expiring; the CA lasts twenty years.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hub.files import create_private_once, keys_dir, write_private

logger = logging.getLogger(__name__)

CA_CERT = "hub-ca.pem"
CA_KEY = "hub-ca.key"
SERVER_CERT = "hub-tls.pem"
SERVER_KEY = "hub-tls.key"
CA_LIFETIME = datetime.timedelta(days=20 * 365)
SERVER_LIFETIME = datetime.timedelta(days=2 * 365)
RENEW_WITHIN = datetime.timedelta(days=30)


@dataclass(frozen=True, slots=True)
class HubTls:
    """Paths a TLS server needs, and the CA as text (what speakers pin)."""

    ca_cert: Path
    cert: Path
    key: Path

    @property
    def ca_pem(self) -> str:
        return self.ca_cert.read_text()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the hub's TLS keys must be EC keys")
    return key


def ensure_ca(data_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The hub's CA, made once (two hubs starting at once agree on one key)."""
    directory = keys_dir(data_dir)
    key = _load_key(create_private_once(directory / CA_KEY, _new_key_pem()))
    cert_path = directory / CA_CERT
    if cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.public_key() == key.public_key():
            return cert, key
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Legato"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Legato hub CA {socket.gethostname()}"[:64]),
        ]
    )
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
    logger.info("made the hub's certificate authority (%s)", cert_path)
    return cert, key


def ca_pem(data_dir: Path) -> str:
    """The hub's CA certificate as PEM (made if need be): what a speaker's config pins.

    Read as written once it exists (pages and the enrolment API ask on every request;
    :func:`ensure_ca`, run at start, is what checks it against the key)."""
    try:
        return (data_dir / "keys" / CA_CERT).read_text()
    except FileNotFoundError:
        cert, _key = ensure_ca(data_dir)
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def wanted_names(hosts: Iterable[str]) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the server certificate should carry."""
    dns, ips = {"localhost"}, {"127.0.0.1", "::1"}
    base = socket.gethostname().split(".")[0]
    if base:
        dns |= {base, f"{base}.local"}
    for host in hosts:
        if not host or host in ("0.0.0.0", "::"):
            continue
        try:
            ips.add(str(ipaddress.ip_address(host)))
        except ValueError:
            dns.add(host)
    return sorted(dns), sorted(ips)


def _sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    names = sorted(ext.get_values_for_type(x509.DNSName))
    ips = sorted(str(ip) for ip in ext.get_values_for_type(x509.IPAddress))
    return names, ips


def ensure_server_cert(data_dir: Path, hosts: Iterable[str] = ()) -> HubTls:
    """The hub's TLS certificate for ``hosts`` (and its own names), made or renewed."""
    ca_cert, ca_key = ensure_ca(data_dir)
    directory = keys_dir(data_dir)
    cert_path, key_path = directory / SERVER_CERT, directory / SERVER_KEY
    dns, ips = wanted_names(hosts)
    key = _load_key(create_private_once(key_path, _new_key_pem()))
    if cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        fresh = cert.not_valid_after_utc - _now() > RENEW_WITHIN
        same = cert.issuer == ca_cert.subject and cert.public_key() == key.public_key()
        if fresh and same and _sans(cert) == (dns, ips):
            return HubTls(directory / CA_CERT, cert_path, key_path)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_LIFETIME, ca_cert.not_valid_after_utc))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in dns]
                + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode())
    logger.info("made the hub's TLS certificate for %s", ", ".join(dns + ips))
    return HubTls(directory / CA_CERT, cert_path, key_path)
