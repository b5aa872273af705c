"""API-SSL (8729): WireWAN's TLS settings against the simulator wrapped in real TLS.

verify_cert off accepts a router's self-signed certificate and also an api-ssl service without any
certificate (anonymous Diffie-Hellman, which RouterOS uses then); verify_cert on refuses a certificate
it cannot verify, with a message that says what to change.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.routeros_api import RouterError, RouterSession, RouterTarget
from tests.routeros_sim.server import SimRouter

PASSWORD = "secret"
# RFC 7919 ffdhe2048: fixed, published parameters, so no slow generation in the test.
FFDHE2048 = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "router.lan")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "router.crt", tmp_path / "router.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def _target(sim: SimRouter, verify: bool) -> RouterTarget:
    host, port = sim.address
    return RouterTarget(
        host=host,
        port=port,
        username="admin",
        password=PASSWORD,
        use_tls=True,
        verify_cert=verify,
        connect_timeout=3,
        command_timeout=3,
    )


def test_self_signed_certificate_without_verification(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    with SimRouter(password=PASSWORD, tls=server) as sim, RouterSession(_target(sim, verify=False)) as session:
        assert session.system_resource()["version"].startswith("7.")


def test_verified_tls_refuses_an_unverifiable_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    with SimRouter(password=PASSWORD, tls=server) as sim, pytest.raises(RouterError) as caught:
        RouterSession(_target(sim, verify=True)).connect()
    assert caught.value.kind == "unreachable"
    assert "TLS with 127.0.0.1" in caught.value.message and "verify certificate" in caught.value.message


def test_api_ssl_without_a_certificate_uses_anonymous_dh(tmp_path: Path) -> None:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.maximum_version = ssl.TLSVersion.TLSv1_2
    try:
        server.set_ciphers("ADH:@SECLEVEL=0")
        params = tmp_path / "dh.pem"
        params.write_text(FFDHE2048)
        server.load_dh_params(str(params))
    except ssl.SSLError as exc:  # an OpenSSL built without anonymous suites
        pytest.skip(f"this OpenSSL offers no anonymous DH: {exc}")
    with SimRouter(password=PASSWORD, tls=server) as sim, RouterSession(_target(sim, verify=False)) as session:
        assert session.system_resource()["version"].startswith("7.")
        assert "ADH" in session._socket().cipher()[0] or "anon" in session._socket().cipher()[0].lower()
