"""Certificates and keys of the local control plane.

One throw-away CA signs everything: the API server's serving certificate, the admin client
certificate (O=system:masters, so RBAC lets it do anything) and the node agent's client certificate.
Every certificate carries keyUsage, subjectKeyIdentifier and authorityKeyIdentifier because the
strict X.509 checks of recent Python/OpenSSL reject certificates without them.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=365)
# The first address of the service range; in-cluster clients may address the API server by it.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
_FIRST_SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Pki:
    """Paths of the files `ensure_pki` writes (PEM)."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    """RSA private key that signs service-account tokens."""
    sa_pub: Path
    """Its public half, with which the API server verifies them."""


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    subject: x509.Name,
    usage: list[x509.ObjectIdentifier],
    sans: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _load_ca(pki: Pki) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def issue_client_cert(pki: Pki, user: str, groups: list[str], cert: Path, key: Path) -> None:
    """Writes a client certificate for `user` in `groups` (CN and O, as the API server reads them)."""
    ca_cert, ca_key = _load_ca(pki)
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    leaf, leaf_key = _leaf(ca_cert, ca_key, x509.Name(attrs), [ExtendedKeyUsageOID.CLIENT_AUTH])
    cert.write_bytes(_pem(leaf))
    _write_key(key, leaf_key)


@dataclass(frozen=True)
class KubeletPki:
    """The node agent's log endpoint (a kubelet's serving certificate) and the API server's client for it."""

    apiserver_client_cert: Path
    apiserver_client_key: Path
    node_serving_cert: Path
    node_serving_key: Path


def ensure_kubelet_pki(pki: Pki) -> KubeletPki:
    """Issues (once) the certificates of the API server -> node agent connection, signed by the cluster's CA.

    Separate from `ensure_pki` so a cluster created before them keeps its CA (and its clients' kubeconfigs).
    """
    directory = pki.ca_cert.parent
    kubelet = KubeletPki(
        apiserver_client_cert=directory / "apiserver-kubelet-client.crt",
        apiserver_client_key=directory / "apiserver-kubelet-client.key",
        node_serving_cert=directory / "node-agent.crt",
        node_serving_key=directory / "node-agent.key",
    )
    if all(p.exists() for p in vars(kubelet).values()):
        return kubelet
    # As kubeadm names it; system:masters lets it through a kubelet's authorization, were there any.
    issue_client_cert(
        pki,
        "kube-apiserver-kubelet-client",
        ["system:masters"],
        kubelet.apiserver_client_cert,
        kubelet.apiserver_client_key,
    )
    ca_cert, ca_key = _load_ca(pki)
    leaf, leaf_key = _leaf(
        ca_cert,
        ca_key,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "node-agent")]),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
    )
    kubelet.node_serving_cert.write_bytes(_pem(leaf))
    _write_key(kubelet.node_serving_key, leaf_key)
    return kubelet


def issue_loopback_serving_cert(pki: Pki, name: str, cert: Path, key: Path) -> None:
    """Writes a serving certificate for 127.0.0.1 and localhost, for servers the API server calls by URL
    (Kueue's webhooks): their configurations carry the cluster CA as caBundle."""
    ca_cert, ca_key = _load_ca(pki)
    sans: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    leaf, leaf_key = _leaf(ca_cert, ca_key, subject, [ExtendedKeyUsageOID.SERVER_AUTH], sans)
    cert.write_bytes(_pem(leaf))
    _write_key(key, leaf_key)


def ensure_pki(directory: Path) -> Pki:
    """Creates the CA, certificates and keys once; later calls reuse them (so kubeconfigs stay valid)."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )
    if all(p.exists() for p in vars(pki).values()):
        return pki

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "finetune-operator-test-ca")])
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .sign(ca_key, hashes.SHA256())
    )
    pki.ca_cert.write_bytes(_pem(ca_cert))
    _write_key(pki.ca_key, ca_key)

    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    names.append("kubernetes.default.svc.cluster.local")
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", _FIRST_SERVICE_IP)]
    serving, serving_key = _leaf(
        ca_cert,
        ca_key,
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
        [ExtendedKeyUsageOID.SERVER_AUTH],
        sans,
    )
    pki.serving_cert.write_bytes(_pem(serving))
    _write_key(pki.serving_key, serving_key)

    issue_client_cert(pki, "admin", ["system:masters"], pki.admin_cert, pki.admin_key)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki
