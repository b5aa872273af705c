"""Encryption at rest for private keys and router passwords.

Fernet with a key derived by PBKDF2 from ENCRYPTION_KEY + ENCRYPTION_SALT. MultiFernet lets an operator
rotate: put the old key in ENCRYPTION_OLD_KEYS, set a new ENCRYPTION_KEY, run `flask secrets rotate`.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from flask import current_app

PBKDF2_ITERATIONS = 390_000


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted with the configured keys."""


@lru_cache(maxsize=8)
def _derive(key: str, salt: str) -> Fernet:
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt.encode(), iterations=PBKDF2_ITERATIONS)
    return Fernet(base64.urlsafe_b64encode(kdf.derive(key.encode())))


def cipher(key: str, salt: str, old_keys: str = "") -> MultiFernet:
    fernets = [_derive(key, salt)]
    fernets += [_derive(k.strip(), salt) for k in old_keys.split(",") if k.strip()]
    return MultiFernet(fernets)


def _app_cipher() -> MultiFernet:
    cfg = current_app.config
    return cipher(cfg["ENCRYPTION_KEY"], cfg["ENCRYPTION_SALT"], cfg.get("ENCRYPTION_OLD_KEYS") or "")


def prepare() -> None:
    """Derive the app's keys now (PBKDF2: tens of milliseconds each). A forking worker calls this
    before it forks, so each job's work horse inherits the derived keys instead of paying for them."""
    _app_cipher()


def encrypt(plaintext: str) -> str:
    return _app_cipher().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _app_cipher().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted: ENCRYPTION_KEY or ENCRYPTION_SALT changed "
            "since it was saved. Restore instance/secrets.env from your backup."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt under the current key (MultiFernet decrypts with any configured key)."""
    try:
        return _app_cipher().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with ENCRYPTION_KEY or ENCRYPTION_OLD_KEYS."
        ) from exc
