"""Several WANs on one router, in the pure domain: each plans only its rows; old tags are re-tagged."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address, ip_network

from app.domain.routeros.desired import DesiredState, build_desired, legacy_key
from app.domain.routeros.plan import plan
from app.domain.routeros.rules import RouterSlot, default_interface_name, is_risky, sibling_conflicts
from app.domain.routeros.verify import verify

from .fixtures import MGMT_SOURCE, apply_ops, default_router, desired_x, mesh_wan, mikrotik_x, remote_a, remote_b


def other_wan_desired() -> DesiredState:
    """The same router as a peer of a second WAN (id 8): its own interface, port and ranges."""
    wan = mesh_wan(
        mikrotik_x(id=11, uuid="8d1c0f5e-1111-4aaa-8bbb-000000000011", listen_port=51999),
        remote_a(id=12, uuid="8d1c0f5e-2222-4aaa-8bbb-000000000012", tunnel_ip=ip_address("10.9.0.2")),
        remote_b(id=13, uuid="8d1c0f5e-3333-4aaa-8bbb-000000000013", tunnel_ip=ip_address("10.9.0.3")),
        id=8,
        interface_name="wg-other",
        tunnel_cidr=ip_network("10.9.0.0/24"),
    )
    return build_desired(wan, 11, management_source=MGMT_SOURCE)


def test_one_wans_plan_never_touches_another_wans_rows() -> None:
    other = other_wan_desired()
    state = apply_ops(default_router(), plan(other, default_router()).ops)
    mine = plan(desired_x(), state)
    assert not [op for op in mine.ops if op.action == "remove"]
    assert not [op for op in mine.ops if ":w8:" in op.key]
    both = apply_ops(state, mine.ops)
    assert not [d for d in verify(desired_x(), both) if d.kind == "extra"]
    # ... and the other WAN, seeing ours, plans nothing but the shared access rows.
    assert {op.menu for op in plan(other, both).ops} <= {"/user", "/ip/service"}


def test_old_format_rows_are_claimed_and_retagged_in_place() -> None:
    d = desired_x()
    state = apply_ops(default_router(), plan(d, default_router()).ops)
    for rows in state.values():
        for row in rows:
            if str(row.get("comment", "")).startswith("WAN-Overlay-Manager:w7:"):
                row["comment"] = legacy_key(row["comment"])
    p = plan(d, state)
    assert p.ops and all(op.action == "set" and set(op.props) == {"comment"} for op in p.ops)
    assert all(op.by_id and "[find" not in op.cli() for op in p.ops)
    assert not any(is_risky(op) for op in p.ops)
    assert plan(d, apply_ops(state, p.ops)).empty


def test_old_format_rows_of_another_interface_are_not_ours() -> None:
    other = other_wan_desired()
    state = apply_ops(default_router(), plan(other, default_router()).ops)
    for rows in state.values():
        for row in rows:
            if str(row.get("comment", "")).startswith("WAN-Overlay-Manager:w8:"):
                row["comment"] = legacy_key(row["comment"])
    # WAN 7 sees WAN 8's old rows (other interface, other ids): it removes none of them.
    assert not [op for op in plan(desired_x(), state).ops if op.action == "remove"]


def test_to_json_round_trip_and_old_states_read_with_the_wan() -> None:
    d = desired_x()
    assert DesiredState.from_json(d.to_json()) == d
    old = replace(d, wan_id=0, resources=tuple(replace(r, key=legacy_key(r.key)) for r in d.resources))
    assert DesiredState.from_json(old.to_json()).with_wan(7) == d


def test_sibling_conflicts_name_the_other_wan_and_the_fix() -> None:
    mine = RouterSlot(1, "alpha", "wg-x", 51820, "admin")
    found = sibling_conflicts(mine, [RouterSlot(2, "beta", "wg-x", 51820, "admin")])
    assert len(found) == 2
    assert "WAN 'beta'" in found[0] and "interface name" in found[0]
    assert "UDP 51820" in found[1] and "listen port" in found[1]
    assert sibling_conflicts(mine, [RouterSlot(2, "beta", "wg-y", 51821, "admin")]) == []


def test_default_interface_name() -> None:
    assert default_interface_name("Lab") == "wg-lab"
    assert default_interface_name("Ünïcode WAN!!") == "wg-n-code-wan"
    assert default_interface_name("", ["wg-wan"]) == "wg-wan-2"
    assert len(default_interface_name("x" * 60, ["wg-" + "x" * 12])) == 15
