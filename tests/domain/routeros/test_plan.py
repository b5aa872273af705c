"""plan(): minimal, ordered operations; goldens of the CLI lines a preview shows."""

from __future__ import annotations

from ipaddress import IPv4Address

from app.domain.model import MikrotikSpec, PeerSpec
from app.domain.routeros.desired import DesiredState, build_desired
from app.domain.routeros.plan import Op, Plan, parse_actual, plan, plan_hash

from .fixtures import (
    KEY_A_PUB,
    KEY_C_PUB,
    MGMT_SOURCE,
    apply_ops,
    default_router,
    desired_x,
    mesh_wan,
    mikrotik_x,
    remote_a,
    remote_b,
)
from .golden_util import check_golden

WG_PEERS = "/interface/wireguard/peers"


def _golden(name: str, p: Plan) -> None:
    check_golden(name, "".join(f"{op.cli()}\n" for op in p.ops))


def _converged(desired: DesiredState | None = None) -> dict[str, list[dict[str, str]]]:
    d = desired or desired_x()
    state = apply_ops(default_router(), plan(d, default_router()).ops)
    assert plan(d, state).empty
    return state


def remote_c() -> PeerSpec:
    return PeerSpec(
        id=4,
        uuid="7d1c0f5e-4444-4aaa-8bbb-000000000004",
        name="laptop-c",
        kind="client",
        tunnel_ip=IPv4Address("10.0.0.4"),
        listen_port=51820,
        public_key=KEY_C_PUB,
    )


def test_empty_router_full_add() -> None:
    p = plan(desired_x(), default_router())
    _golden("plan_empty_router.txt", p)
    assert {op.action for op in p.ops} == {"add", "set"}
    assert not p.conflicts
    by_key = {op.key: op for op in p.ops}
    # Accept rules go before the first non-dynamic drop of their chain; the srcnat accept before
    # the masquerade; the netmap srcnat half at the top of srcnat.
    assert by_key["WAN-Overlay-Manager:w7:allow-handshake-1"].place_before == "*2"
    assert by_key["WAN-Overlay-Manager:w7:allow-forward-in-1"].place_before == "*8"
    assert by_key["WAN-Overlay-Manager:w7:no-masq-1"].place_before == "*1"
    assert by_key["WAN-Overlay-Manager:w7:netmap-out-12"].place_before == "*1"
    assert by_key["WAN-Overlay-Manager:w7:route-10.20.0.0/16"].place_before is None
    # Step 0 first, then the interface before its peers and address.
    menus = [op.menu for op in p.ops]
    assert menus[:3] == ["/user", "/ip/service", "/interface/wireguard"]
    assert menus.index("/interface/wireguard") < menus.index(WG_PEERS) < menus.index("/ip/address")


def test_applied_plan_lands_in_the_right_order() -> None:
    state = _converged()
    filt = [(r.get("chain"), r.get("comment", "")) for r in state["/ip/firewall/filter"]]
    assert filt.index(("input", "WAN-Overlay-Manager:w7:allow-handshake-1")) < filt.index(
        ("input", "defconf: drop invalid")
    )
    nat = [r.get("comment") for r in state["/ip/firewall/nat"]]
    assert (
        nat.index("WAN-Overlay-Manager:w7:netmap-out-12")
        < nat.index("WAN-Overlay-Manager:w7:no-masq-1")
        < nat.index("defconf: masquerade")
    )


def test_no_change_is_empty() -> None:
    state = _converged()
    p = plan(desired_x(), state)
    _golden("plan_no_change.txt", p)
    assert p.ops == () and not p.warnings and not p.conflicts


def test_no_change_on_rows_as_librouteros_returns_them() -> None:
    raw: dict[str, list[dict[str, object]]] = {}
    for menu, rows in _converged().items():
        raw[menu] = []
        for row in rows:
            cast: dict[str, object] = {}
            for k, v in row.items():
                cast[k] = (v == "true") if v in ("true", "false") else int(v) if v.isdigit() else v
            raw[menu].append(cast)
    assert plan(desired_x(), raw).empty


def test_remote_endpoint_change_is_one_set_with_only_that_prop() -> None:
    state = _converged()
    wan = mesh_wan(mikrotik_x(), remote_a(endpoint_port=51821, listen_port=51821), remote_b())
    p = plan(build_desired(wan, 1, management_source=MGMT_SOURCE), state)
    _golden("plan_endpoint_change.txt", p)
    assert len(p.ops) == 1
    (op,) = p.ops
    assert op.action == "set" and op.menu == WG_PEERS and dict(op.props) == {"endpoint-port": "51821"}
    assert op.id is not None and dict(op.previous) == {"endpoint-port": "51820"}


def test_remote_losing_its_endpoint_resets_endpoint_props() -> None:
    state = _converged()
    wan = mesh_wan(mikrotik_x(), remote_a(endpoint_host=None, endpoint_port=None), remote_b())
    p = plan(build_desired(wan, 1, management_source=MGMT_SOURCE), state)
    peer_ops = [op for op in p.ops if op.menu == WG_PEERS]
    assert [dict(op.props) for op in peer_ops] == [{"endpoint-address": "", "endpoint-port": "0"}]


def test_removed_remote_peer_is_one_remove() -> None:
    before = build_desired(mesh_wan(mikrotik_x(), remote_a(), remote_b(), remote_c()), 1, management_source=MGMT_SOURCE)
    state = _converged(before)
    p = plan(desired_x(), state)
    _golden("plan_removed_peer.txt", p)
    assert [(op.action, op.menu, op.key) for op in p.ops] == [
        ("remove", WG_PEERS, "WAN-Overlay-Manager:w7:peer-7d1c0f5e-4444-4aaa-8bbb-000000000004")
    ]


def test_removed_peer_with_lan_removes_its_route_after_the_entry() -> None:
    state = _converged()
    wan = mesh_wan(mikrotik_x(), remote_a())
    p = plan(build_desired(wan, 1, management_source=MGMT_SOURCE), state)
    assert [(op.action, op.menu) for op in p.ops] == [("remove", "/ip/route"), ("remove", WG_PEERS)]


def test_adds_and_sets_come_before_removes() -> None:
    state = _converged()
    wan = mesh_wan(mikrotik_x(), remote_a(endpoint_port=51821), remote_c())
    p = plan(build_desired(wan, 1, management_source=MGMT_SOURCE), state)
    actions = [op.action for op in p.ops]
    assert actions == sorted(actions, key=lambda a: a == "remove")
    assert "remove" in actions and "add" in actions


def test_unmanaged_look_alike_is_left_alone() -> None:
    router = default_router()
    router["/interface/wireguard"].append(
        {".id": "*A", "name": "wg-home", "listen-port": "13231", "mtu": "1420", "disabled": "false"}
    )
    # Same public key as our remote vps-a, but on the user's own interface and not tagged; plus a
    # comment that merely mentions the tag.
    router[WG_PEERS] += [
        {
            ".id": "*B",
            "interface": "wg-home",
            "public-key": KEY_A_PUB,
            "allowed-address": "10.20.0.0/16",
            "disabled": "false",
        },
        {
            ".id": "*C",
            "interface": "wg-home",
            "public-key": KEY_C_PUB,
            "allowed-address": "10.9.0.0/16",
            "comment": "copied from WAN-Overlay-Manager:w7:peer-x",
            "disabled": "false",
        },
    ]
    p = plan(desired_x(), router)
    _golden("plan_look_alike.txt", p)
    assert not p.conflicts
    assert all(op.id not in ("*A", "*B", "*C") for op in p.ops)
    assert [op.cli() for op in p.ops] == [op.cli() for op in plan(desired_x(), default_router()).ops]
    state = apply_ops(router, p.ops)
    assert plan(desired_x(), state).empty
    assert [r for r in state[WG_PEERS] if r[".id"] in ("*B", "*C")] == router[WG_PEERS]


def test_untagged_peer_on_our_interface_with_our_key_is_a_conflict() -> None:
    state = _converged()
    state[WG_PEERS] = [r for r in state[WG_PEERS] if r.get("public-key") != KEY_A_PUB]
    state[WG_PEERS].append(
        {
            ".id": "*D",
            "interface": "wg-wan-overlay",
            "public-key": KEY_A_PUB,
            "allowed-address": "10.0.0.2/32",
            "disabled": "false",
        }
    )
    p = plan(desired_x(), state)
    assert p.conflicts and "*D" in p.conflicts[0]
    assert all(op.id != "*D" for op in p.ops)


def test_untagged_interface_with_our_name_is_a_conflict() -> None:
    router = default_router()
    router["/interface/wireguard"].append({".id": "*A", "name": "wg-wan-overlay", "listen-port": "13231"})
    p = plan(desired_x(), router)
    assert p.conflicts and "wg-wan-overlay" in p.conflicts[0]
    assert not [op for op in p.ops if op.menu == "/interface/wireguard"]


def test_shadowing_route_is_demoted_recording_its_distance() -> None:
    state = _converged()
    state["/ip/route"] += [
        {
            ".id": "*20",
            "dst-address": "192.168.50.0/24",
            "gateway": "10.99.0.1",
            "distance": "1",
            "dynamic": "false",
            "disabled": "false",
        },
        # Left alone: dynamic, already >= 10, another destination (a more specific prefix: see
        # tests/domain/routeros/test_shadowed_routes.py).
        {
            ".id": "*21",
            "dst-address": "192.168.50.0/24",
            "gateway": "ether1",
            "distance": "1",
            "dynamic": "true",
        },
        {
            ".id": "*22",
            "dst-address": "10.20.0.0/16",
            "gateway": "10.99.0.1",
            "distance": "10",
            "dynamic": "false",
        },
        {
            ".id": "*23",
            "dst-address": "192.168.99.0/24",
            "gateway": "10.99.0.1",
            "distance": "1",
            "dynamic": "false",
        },
    ]
    p = plan(desired_x(), state)
    _golden("plan_demotion.txt", p)
    (op,) = p.ops
    assert (op.action, op.menu, op.id, dict(op.props), dict(op.previous)) == (
        "set",
        "/ip/route",
        "*20",
        {"distance": "11"},
        {"distance": "1"},
    )
    assert plan(desired_x(), apply_ops(state, p.ops)).empty


def test_demotion_comes_after_the_managed_route_is_added() -> None:
    router = default_router()
    router["/ip/route"].append(
        {
            ".id": "*20",
            "dst-address": "192.168.50.0/24",
            "gateway": "10.99.0.1",
            "distance": "1",
            "dynamic": "false",
        }
    )
    ops = plan(desired_x(), router).ops
    add = next(i for i, op in enumerate(ops) if op.key == "WAN-Overlay-Manager:w7:route-192.168.50.0/24")
    demote = next(i for i, op in enumerate(ops) if op.id == "*20")
    assert add < demote


def test_accept_rule_pushed_behind_a_drop_is_moved_back() -> None:
    state = _converged()
    rules = state["/ip/firewall/filter"]
    drop_all = next(r for r in rules if r.get("comment") == "defconf: drop all not coming from LAN")
    rules.remove(drop_all)
    rules.insert(0, drop_all)  # someone put a drop at the very top
    p = plan(desired_x(), state)
    assert [(op.action, op.place_before) for op in p.ops] == [("move", "*4"), ("move", "*4")]
    assert plan(desired_x(), apply_ops(state, p.ops)).empty


def test_disabled_managed_rule_is_re_enabled_and_stale_tag_removed() -> None:
    state = _converged()
    rule = next(r for r in state["/ip/firewall/filter"] if r.get("comment") == "WAN-Overlay-Manager:w7:allow-input-1")
    rule["disabled"] = "true"
    state["/ip/firewall/nat"].append(
        {
            ".id": "*77",
            "chain": "dstnat",
            "action": "dst-nat",
            "comment": "WAN-Overlay-Manager:w7:service-dnat-99",
            "dynamic": "false",
        }
    )
    p = plan(desired_x(), state)
    assert [(op.action, dict(op.props), op.id) for op in p.ops] == [
        ("set", {"disabled": "false"}, rule[".id"]),
        ("remove", {}, "*77"),
    ]


def test_duplicate_tagged_row_is_removed() -> None:
    state = _converged()
    dup = dict(next(r for r in state["/ip/route"] if r.get("comment", "").startswith("WAN-Overlay-Manager:w7:route")))
    dup[".id"] = "*DD"
    state["/ip/route"].append(dup)
    p = plan(desired_x(), state)
    assert [(op.action, op.id, op.cli()) for op in p.ops] == [("remove", "*DD", "/ip route remove *DD")]


def test_prefix_moving_between_entries_frees_it_first() -> None:
    state = _converged()
    rows = {r["comment"]: r for r in state[WG_PEERS]}
    a = rows["WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002"]
    b = rows["WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003"]
    # On the router, b's entry still holds a's LAN (as if it used to relay it).
    a["allowed-address"] = "10.0.0.2/32"
    b["allowed-address"] = "10.0.0.3/32,10.20.0.0/16,192.168.50.0/24"
    p = plan(desired_x(), state)
    assert [op.id for op in p.ops] == [b[".id"], a[".id"]]
    assert not p.conflicts


def test_stale_entry_holding_a_new_peers_key_is_removed_first() -> None:
    state = _converged()
    row = next(r for r in state[WG_PEERS] if r.get("public-key") == KEY_A_PUB)
    row["comment"] = "WAN-Overlay-Manager:w7:peer-old-uuid"
    p = plan(desired_x(), state)
    assert [(op.action, op.id) for op in p.ops] == [("remove", row[".id"]), ("add", None)]


def test_api_user_password_is_write_only_and_never_rewritten() -> None:
    state = _converged()
    x = mikrotik_x(mikrotik=MikrotikSpec(host="192.168.10.1", password="another"))
    p = plan(build_desired(mesh_wan(x, remote_a(), remote_b()), 1, management_source=MGMT_SOURCE), state)
    assert p.empty


def test_management_source_is_always_admitted() -> None:
    state = _converged()
    p = plan(desired_x(source=IPv4Address("198.51.100.7")), state)
    assert [op.cli() for op in p.ops] == [
        '/user set [find name="wirewan"] address=10.0.0.0/24,192.168.0.0/16,198.51.100.7/32',
        '/ip service set [find name="api"] address=10.0.0.0/24,192.168.0.0/16,198.51.100.7/32',
    ]


def test_secrets_are_masked_in_cli_and_json() -> None:
    p = plan(desired_x(), default_router())
    text = "\n".join(op.cli() for op in p.ops) + repr([op.to_dict() for op in p.ops])
    assert "s3cret" not in text and "yAnz5TF" not in text
    assert "password=***" in text and "private-key=***" in text


def test_private_key_rotation_is_a_set_and_hidden_key_is_left_alone() -> None:
    state = _converged()
    iface = state["/interface/wireguard"][0]
    iface["private-key"] = "OLD"
    assert [dict(op.props) for op in plan(desired_x(), state).ops] == [
        {"private-key": desired_x().resources[2].props["private-key"]}
    ]
    del iface["private-key"]
    p = plan(desired_x(), state)
    assert p.empty and p.warnings


def test_plan_hash_is_stable_and_pins_ids() -> None:
    p1 = plan(desired_x(), default_router())
    p2 = plan(desired_x(), default_router())
    assert plan_hash(p1) == plan_hash(p2)
    assert len(plan_hash(p1)) == 64
    router = default_router()
    router["/ip/firewall/filter"][1][".id"] = "*42"  # the first input drop got another id
    assert plan_hash(plan(desired_x(), router)) != plan_hash(p1)
    assert plan_hash(Plan(())) == plan_hash(plan(desired_x(), _converged()))
    reworded = Plan(
        tuple(
            Op(
                o.action,
                o.menu,
                o.id,
                o.props,
                o.key,
                o.place_before,
                "other words",
                o.previous,
                o.match,
                o.by_id,
            )
            for o in p1.ops
        )
    )
    assert plan_hash(reworded) == plan_hash(p1)


def test_parse_actual_normalises_librouteros_values() -> None:
    rows = parse_actual(
        {
            WG_PEERS: [
                {
                    "disabled": False,
                    "endpoint-port": 51820,
                    "persistent-keepalive": "00:00:25",
                    "allowed-address": "10.20.0.0/16,10.0.0.2/32",
                    "comment": 123,
                }
            ],
            "/ip/route": [{"dst-address": "fd00:0::/64", "dynamic": "yes"}],
        }
    )
    assert rows[WG_PEERS] == [
        {
            "disabled": "false",
            "endpoint-port": "51820",
            "persistent-keepalive": "25s",
            "allowed-address": "10.0.0.2/32,10.20.0.0/16",
            "comment": "123",
        }
    ]
    assert rows["/ip/route"] == [{"dst-address": "fd00::/64", "dynamic": "true"}]
    assert parse_actual(rows) == rows


def test_turning_psks_on_sets_them_on_existing_entries_unless_the_router_hides_secrets() -> None:
    """A peer entry without `preshared-key` is unset when the API user sees sensitive values (the
    interface shows its private key), and hidden when it does not: set in place, or left alone."""
    import base64
    from dataclasses import replace

    from app.domain.routeros.plan import WG, WG_PEERS

    state = _converged()
    with_psk = build_desired(
        replace(mesh_wan(mikrotik_x(), remote_a(), remote_b()), psk_seed=base64.b64encode(bytes(range(32))).decode()),
        1,
        management_source=MGMT_SOURCE,
    )
    p = plan(with_psk, state)
    assert [(op.action, op.menu, sorted(op.props)) for op in p.ops] == [
        ("set", WG_PEERS, ["preshared-key"]),
        ("set", WG_PEERS, ["preshared-key"]),
    ]
    assert "preshared-key=***" in p.ops[0].cli()  # masked in every plan line
    assert plan(with_psk, apply_ops(state, p.ops)).empty

    hidden = {menu: [dict(r) for r in rows] for menu, rows in state.items()}
    for row in hidden[WG]:
        row.pop("private-key", None)
    p = plan(with_psk, hidden)
    assert not [op for op in p.ops if op.menu == WG_PEERS]
    assert any("preshared-key" in w and "not readable" in w for w in p.warnings)
