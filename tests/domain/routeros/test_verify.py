"""verify(): drift between the router and the desired state, by kind."""

from __future__ import annotations

from app.domain.routeros.plan import plan
from app.domain.routeros.verify import Drift, verify

from .fixtures import KEY_A_PUB, apply_ops, default_router, desired_x

WG_PEERS = "/interface/wireguard/peers"


def _in_sync() -> dict[str, list[dict[str, str]]]:
    return apply_ops(default_router(), plan(desired_x(), default_router()).ops)


def test_in_sync_has_no_drift() -> None:
    assert verify(desired_x(), _in_sync()) == []


def test_empty_router_is_all_missing() -> None:
    drift = verify(desired_x(), default_router())
    # /ip/service rows exist on every router: the api row is changed, everything else missing.
    assert [(d.kind, d.key) for d in drift if d.kind != "missing"] == [("changed", "service:api")]
    assert len(drift) == len(desired_x().resources)


def test_missing_changed_extra_and_demotion_undone() -> None:
    state = _in_sync()
    state["/ip/address"] = [r for r in state["/ip/address"] if "WAN-Overlay-Manager" not in r.get("comment", "")]
    peer = next(r for r in state[WG_PEERS] if r.get("public-key") == KEY_A_PUB)
    peer["endpoint-port"] = "4444"
    state["/ip/firewall/nat"].append(
        {
            ".id": "*70",
            "chain": "srcnat",
            "action": "accept",
            "comment": "WAN-Overlay-Manager:w7:no-masq-99",
            "dynamic": "false",
        }
    )
    state["/ip/route"].append(
        {
            ".id": "*71",
            "dst-address": "10.20.0.0/16",
            "gateway": "10.99.0.1",
            "distance": "1",
            "dynamic": "false",
        }
    )
    drift = verify(desired_x(), state)
    assert drift == [
        Drift(
            "changed",
            WG_PEERS,
            "WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002",
            "endpoint-port: 4444 -> 51820",
        ),
        Drift(
            "missing",
            "/ip/address",
            "WAN-Overlay-Manager:w7:address-1",
            "tunnel address 10.0.0.1 is not on the router",
        ),
        Drift("extra", "/ip/firewall/nat", "WAN-Overlay-Manager:w7:no-masq-99", "tagged row *70 is not desired"),
        Drift(
            "demotion-undone",
            "/ip/route",
            "10.20.0.0/16",
            "unmanaged static route *71 to 10.20.0.0/16 has distance 1 (< 10) and shadows WireWAN's route",
        ),
    ]
    assert {d.kind for d in drift} == {"missing", "changed", "extra", "demotion-undone"}


def test_placement_and_public_key_drift_are_changes() -> None:
    state = _in_sync()
    iface = state["/interface/wireguard"][0]
    iface["public-key"] = "SomeOtherKey="
    rules = state["/ip/firewall/filter"]
    handshake = next(r for r in rules if r.get("comment") == "WAN-Overlay-Manager:w7:allow-handshake-1")
    rules.remove(handshake)
    rules.append(handshake)
    drift = verify(desired_x(), state)
    assert [(d.kind, d.key) for d in drift] == [
        ("changed", "WAN-Overlay-Manager:w7:interface-1"),
        ("changed", "WAN-Overlay-Manager:w7:allow-handshake-1"),
    ]
    assert "SomeOtherKey=" in drift[0].details
    assert "placed after the first drop rule of chain input" in drift[1].details


def test_secrets_never_appear_in_drift() -> None:
    state = _in_sync()
    state["/interface/wireguard"][0]["private-key"] = "LEAKED-OLD-KEY"
    (d,) = verify(desired_x(), state)
    assert d.details == "private-key: *** -> ***"
    assert d.to_dict()["kind"] == "changed"


def test_duplicate_tagged_row_is_extra() -> None:
    state = _in_sync()
    dup = dict(state[WG_PEERS][0], **{".id": "*99"})
    state[WG_PEERS].append(dup)
    assert [(d.kind, d.details) for d in verify(desired_x(), state)] == [("extra", "duplicate row *99")]
