"""build_desired(): what WireWAN wants on a MikroTik, from the WAN and its topology."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network

import pytest

from app.domain.model import MikrotikSpec
from app.domain.routeros.desired import (
    DesiredState,
    build_desired,
    fmt_duration,
    fmt_prefixes,
    split_endpoint,
)
from app.domain.topology import build_topology

from .fixtures import MGMT_SOURCE, desired_x, mesh_wan, mikrotik_x, remote_a, remote_b


def _props(d: DesiredState, key: str) -> dict[str, str]:
    (res,) = [r for r in d.resources if r.key == key]
    return dict(res.props)


def test_keys_are_managed_comments_and_ensures() -> None:
    d = desired_x()
    keys = [r.key for r in d.resources]
    assert keys[:2] == ["user:wirewan", "service:api"]
    assert all(k.startswith("WAN-Overlay-Manager:") for k in keys[2:])
    assert "WAN-Overlay-Manager:w7:allow-handshake-1" in keys
    assert "WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003" in keys


def test_cgnat_peer_has_no_endpoint_and_a_keepalive() -> None:
    props = _props(desired_x(), "WAN-Overlay-Manager:w7:peer-7d1c0f5e-3333-4aaa-8bbb-000000000003")
    assert (props["endpoint-address"], props["endpoint-port"], props["persistent-keepalive"]) == (
        "",
        "0",
        "25s",
    )
    a = _props(desired_x(), "WAN-Overlay-Manager:w7:peer-7d1c0f5e-2222-4aaa-8bbb-000000000002")
    assert (a["endpoint-address"], a["endpoint-port"]) == ("203.0.113.10", "51820")


def test_routes_skip_the_tunnel_range_and_own_lans() -> None:
    d = desired_x()
    routes = [r.props["dst-address"] for r in d.resources if r.menu == "/ip/route"]
    assert routes == ["10.20.0.0/16", "192.168.50.0/24"]
    assert d.demotion.dst_prefixes == (ip_network("10.20.0.0/16"), ip_network("192.168.50.0/24"))
    assert all(
        r.props["distance"] == "10" and r.props["gateway"] == "wg-wan-overlay"
        for r in d.resources
        if r.menu == "/ip/route"
    )


def test_cgnat_mikrotik_routes_the_services_range_via_the_relay() -> None:
    # X behind CGNAT depends on the relay (vps-a): the services range is routed, the tunnel range not.
    wan = mesh_wan(mikrotik_x(endpoint_host=None, endpoint_port=None), remote_a(), remote_b())
    d = build_desired(wan, 1)
    routes = [r.props["dst-address"] for r in d.resources if r.menu == "/ip/route"]
    assert "10.0.5.0/24" in routes and "10.0.0.0/24" not in routes
    # home-b is CGNAT too: reached through vps-a, so only one peer entry, holding home-b's LAN.
    (entry,) = d.in_menu("/interface/wireguard/peers")
    assert "192.168.50.0/24" in entry.props["allowed-address"].split(",")


def test_management_addresses() -> None:
    assert _props(desired_x(), "user:wirewan")["address"] == "10.0.0.0/24,192.0.2.50/32,192.168.0.0/16"
    wan = mesh_wan(mgmt_cidrs=(ip_network("192.0.2.0/24"),))
    # The source is already covered: not listed twice.
    assert _props(build_desired(wan, 1, management_source=MGMT_SOURCE), "service:api")["address"] == (
        "10.0.0.0/24,192.0.2.0/24"
    )
    assert _props(build_desired(wan, 1), "service:api")["address"] == "10.0.0.0/24,192.0.2.0/24"


def test_tls_enables_api_ssl_and_only_restricts_plain_api() -> None:
    x = mikrotik_x(mikrotik=MikrotikSpec(host="h", port=8729, use_tls=True, password="pw"))
    d = build_desired(mesh_wan(x, remote_a(), remote_b()), 1)
    assert "disabled" not in _props(d, "service:api")
    assert _props(d, "service:api-ssl")["disabled"] == "false"


def test_no_password_means_user_is_never_created() -> None:
    x = mikrotik_x(mikrotik=MikrotikSpec(host="h", password=None))
    d = build_desired(mesh_wan(x, remote_a(), remote_b()), 1)
    (user,) = d.in_menu("/user")
    assert not user.create and "password" not in user.props
    assert any("No API password" in n for n in d.notes)


def test_byo_key_omits_private_key_and_expects_public_key() -> None:
    d = build_desired(mesh_wan(mikrotik_x(private_key=None), remote_a(), remote_b()), 1)
    (iface,) = d.in_menu("/interface/wireguard")
    assert "private-key" not in iface.props and iface.expect["public-key"] == mikrotik_x().public_key
    assert any("brought its own key" in n for n in d.notes)


def test_nat_and_services() -> None:
    d = desired_x()
    assert _props(d, "WAN-Overlay-Manager:w7:netmap-in-12") == {
        "chain": "dstnat",
        "action": "netmap",
        "dst-address": "172.16.0.0/24",
        "to-addresses": "192.168.1.0/24",
        "in-interface": "wg-wan-overlay",
    }
    assert _props(d, "WAN-Overlay-Manager:w7:netmap-out-12")["to-addresses"] == "172.16.0.0/24"
    assert _props(d, "WAN-Overlay-Manager:w7:service-dnat-21")["to-ports"] == "8080"
    placements = {r.key.split(":")[-1]: r.placement for r in d.resources if r.placement}
    assert placements == {
        "allow-handshake-1": "before-first-drop:input",
        "allow-input-1": "before-first-drop:input",
        "allow-forward-in-1": "before-first-drop:forward",
        "allow-forward-out-1": "before-first-drop:forward",
        "netmap-out-12": "top:srcnat",
        "no-masq-1": "before-first-masquerade:srcnat",
    }


def test_explicit_topology_is_used() -> None:
    wan = mesh_wan()
    assert build_desired(wan, 1, build_topology(wan), MGMT_SOURCE) == desired_x()


def test_refuses_non_mikrotik_peers() -> None:
    with pytest.raises(ValueError, match="not a MikroTik"):
        build_desired(mesh_wan(), 2)


@pytest.mark.parametrize(("secs", "text"), [(0, "0s"), (25, "25s"), (125, "2m5s"), (3600, "1h"), (90061, "1d1h1m1s")])
def test_fmt_duration(secs: int, text: str) -> None:
    assert fmt_duration(secs) == text


def test_helpers() -> None:
    assert split_endpoint("[fd00::1]:51820") == ("fd00::1", "51820")
    assert split_endpoint("host.example:1") == ("host.example", "1")
    with pytest.raises(ValueError):
        split_endpoint("nohost")
    assert fmt_prefixes([ip_network("10.20.0.0/16"), ip_network("9.0.0.0/8"), ip_network("10.20.0.0/16")]) == (
        "9.0.0.0/8,10.20.0.0/16"
    )
    assert IPv4Address("10.0.0.1")
