"""The in-cluster transport: a real HTTPS PATCH, verified against the mounted CA, with the mounted token."""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from finetune_trainer import report


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "ca.crt", folder / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class FakeApiServer(http.server.BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []
    status = 200

    def do_PATCH(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeApiServer.requests.append(
            {
                "path": self.path,
                "authorization": self.headers["Authorization"],
                "contentType": self.headers["Content-Type"],
                "body": json.loads(body),
            }
        )
        self.send_response(FakeApiServer.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"kind": "Status", "message": "denied"}' if FakeApiServer.status >= 400 else b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def apiserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = self_signed(tmp_path)
    (tmp_path / "token").write_text("first-token\n")
    server = http.server.HTTPServer(("127.0.0.1", 0), FakeApiServer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeApiServer.requests, FakeApiServer.status = [], 200
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/apis/x/status", tmp_path
    finally:
        server.shutdown()
        server.server_close()


def test_patches_status_with_the_service_account_token(apiserver: tuple[str, Path]) -> None:
    url, credentials = apiserver
    send = report.https_sender(url, credentials)
    send({"status": {"progress": {"step": 1}}})
    # Projected tokens rotate: every request reads the current one.
    (credentials / "token").write_text("rotated-token")
    send({"status": {"progress": {"step": 2}}})
    assert [request["authorization"] for request in FakeApiServer.requests] == [
        "Bearer first-token",
        "Bearer rotated-token",
    ]
    assert FakeApiServer.requests[0]["contentType"] == "application/merge-patch+json"
    assert FakeApiServer.requests[0]["path"] == "/apis/x/status"
    assert FakeApiServer.requests[1]["body"] == {"status": {"progress": {"step": 2}}}


def test_rejections_surface_the_api_servers_answer(apiserver: tuple[str, Path]) -> None:
    url, credentials = apiserver
    FakeApiServer.status = 403
    with pytest.raises(RuntimeError, match=r"HTTP 403.*denied"):
        report.https_sender(url, credentials)({"status": {}})


def test_a_server_the_ca_does_not_vouch_for_is_refused(apiserver: tuple[str, Path], tmp_path: Path) -> None:
    url = apiserver[0]
    other = tmp_path / "other"
    other.mkdir()
    self_signed(other)
    (other / "token").write_text("t")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        report.https_sender(url, other)({"status": {}})
    assert FakeApiServer.requests == []
