"""X25519 key generation and WireGuard key validation."""

from __future__ import annotations

import base64

import pytest

from app.domain.errors import ValidationError
from app.domain.keys import generate_keypair, public_from_private, validate_public_key

# RFC 7748 section 6.1 test vector (Alice), in WireGuard's base64 form.
ALICE_PRIVATE = base64.b64encode(
    bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
).decode()
ALICE_PUBLIC = base64.b64encode(
    bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
).decode()

KEY_MESSAGE = (
    "Public key must be a WireGuard key: 44 characters of base64 encoding 32 bytes (as printed by `wg pubkey`)."
)


def test_generate_keypair_is_consistent_and_fresh() -> None:
    private, public = generate_keypair()
    assert len(private) == 44 and len(public) == 44
    assert len(base64.b64decode(private)) == 32
    assert public_from_private(private) == public
    assert validate_public_key(public) == public
    assert generate_keypair() != (private, public)


def test_public_from_private_matches_rfc7748() -> None:
    assert public_from_private(ALICE_PRIVATE) == ALICE_PUBLIC


def test_public_from_private_rejects_junk() -> None:
    with pytest.raises(ValidationError) as info:
        public_from_private("not a key")
    assert (info.value.message, info.value.field) == (
        "Private key must be a WireGuard key: 44 characters of base64 encoding 32 bytes (as printed by `wg genkey`).",
        "private_key",
    )


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        ALICE_PUBLIC[:-1],  # 43 characters
        ALICE_PUBLIC + "=",  # 45 characters
        ALICE_PUBLIC.replace("/", "_"),  # URL-safe alphabet is not WireGuard's
        "A" * 42 + "==",  # 31 bytes
        ALICE_PUBLIC[:43] + "a",  # no padding
        ALICE_PUBLIC[:42] + "l=",  # non-canonical: stray low bits before the padding
        " " + ALICE_PUBLIC[1:],
    ],
)
def test_validate_public_key_rejects(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_public_key(text)
    assert (info.value.message, info.value.field) == (KEY_MESSAGE, "public_key")


def test_validate_public_key_other_messages() -> None:
    with pytest.raises(ValidationError) as info:
        validate_public_key("A" * 43 + "=")
    assert info.value.message == "Public key is all zeros; paste the key printed by `wg pubkey`."
    with pytest.raises(ValidationError) as info:
        validate_public_key("", "peer_public_key")
    assert (info.value.message, info.value.field) == ("Public key is required.", "peer_public_key")
    with pytest.raises(ValidationError) as info:
        validate_public_key(ALICE_PUBLIC[:43] + "\n")
    assert info.value.message == (
        "Public key contains a control or invisible character (such as a newline, tab or NUL); remove it."
    )


def test_validate_public_key_accepts_rfc_vector() -> None:
    assert validate_public_key(ALICE_PUBLIC) == ALICE_PUBLIC


def test_the_routing_inputs_of_a_wan_hold_no_secret() -> None:
    """What the topology cache keeps beyond a request (services.configs.wan_topology)."""
    from dataclasses import replace

    from app.domain.model import MikrotikSpec
    from tests.domain.test_topology import key, peer, subnet, wan_of

    router = replace(peer(2, "rt", kind="mikrotik"), mikrotik=MikrotikSpec(host="192.0.2.7", password="router-pass"))
    hq = replace(peer(1, "hq", subnets=(subnet(1, "192.168.7.0/24"),)), private_key=key(9))
    wan = wan_of(hq, router, psk_seed="seed-secret")
    routing = wan.routing_inputs()
    for secret in ("router-pass", "seed-secret", key(9)):
        assert secret not in repr(routing)
    assert [p.subnets for p in routing.peers] == [p.subnets for p in wan.peers]
