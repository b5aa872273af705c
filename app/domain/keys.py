"""WireGuard keys: X25519 pairs in WireGuard's base64 text form."""

from __future__ import annotations

import base64
import binascii
import os
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from app.domain.errors import ValidationError
from app.domain.validation import require_text

KEY_LENGTH = 44  # base64 of 32 bytes, with one '=' of padding


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode_key(value: object, field: str, label: str, example: str) -> bytes:
    message = f"{label} must be a WireGuard key: 44 characters of base64 encoding 32 bytes (as printed by `{example}`)."
    text = require_text(value, field, label, 1000)
    if len(text) != KEY_LENGTH or not text.endswith("="):
        raise ValidationError(message, field)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(message, field) from None
    # Reject non-canonical encodings (stray low bits before '='): wg would print another text.
    if len(raw) != 32 or _b64(raw) != text:
        raise ValidationError(message, field)
    return raw


def generate_keypair() -> tuple[str, str]:
    """A fresh (private_b64, public_b64) pair."""
    private = X25519PrivateKey.generate()
    private_raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public_raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return _b64(private_raw), _b64(public_raw)


def public_from_private(private_b64: str, field: str = "private_key") -> str:
    """The public key of a base64 private key (what `wg pubkey` prints)."""
    raw = _decode_key(private_b64, field, "Private key", "wg genkey")
    public = X25519PrivateKey.from_private_bytes(raw).public_key()
    return _b64(public.public_bytes(Encoding.Raw, PublicFormat.Raw))


def validate_public_key(text: object, field: str = "public_key") -> str:
    """A WireGuard public key: canonical base64 of 32 bytes, not all zeros."""
    raw = _decode_key(text, field, "Public key", "wg pubkey")
    if raw == bytes(32):
        raise ValidationError("Public key is all zeros; paste the key printed by `wg pubkey`.", field)
    return _b64(raw)  # equal to the input: the encoding was checked to be canonical


def generate_psk_seed() -> str:
    """A fresh secret (base64 of 32 random bytes) that a WAN's preshared keys are derived from."""
    return _b64(os.urandom(32))


@lru_cache(maxsize=1 << 16)
def pair_psk(seed: str, public_a: str, public_b: str) -> str:
    """The preshared key of the tunnel between two peers (by public key; the order does not matter).

    HKDF-SHA256 of the WAN's seed with both public keys as context: every pair gets its own key,
    rotating the seed replaces them all, and a peer's new key pair gives its tunnels new ones.
    """
    lo, hi = sorted((public_a, public_b))
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=f"wirewan-psk-v1:{lo}:{hi}".encode())
    return _b64(hkdf.derive(base64.b64decode(seed)))
