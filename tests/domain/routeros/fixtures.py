"""Shared WAN fixtures for the RouterOS domain tests (a plain module: no conftest.py)."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from app.domain.model import MikrotikSpec, PeerSpec, ServiceSpec, SubnetSpec, WanSpec
from app.domain.routeros.desired import DesiredState, build_desired

# Syntactically valid (44-char base64) but made-up keys.
KEY_X_PRIV = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
KEY_X_PUB = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
KEY_A_PUB = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
KEY_B_PUB = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0="
KEY_C_PUB = "gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA="
MGMT_SOURCE = IPv4Address("192.0.2.50")


def mikrotik_x(**changes: object) -> PeerSpec:
    base = PeerSpec(
        id=1,
        uuid="7d1c0f5e-1111-4aaa-8bbb-000000000001",
        name="office-mikrotik",
        kind="mikrotik",
        tunnel_ip=IPv4Address("10.0.0.1"),
        listen_port=51820,
        public_key=KEY_X_PUB,
        private_key=KEY_X_PRIV,
        endpoint_host="office.example.net",
        endpoint_port=51820,
        subnets=(
            SubnetSpec(id=11, cidr=ip_network("192.168.10.0/24")),
            SubnetSpec(id=12, cidr=ip_network("192.168.1.0/24"), nat_cidr=ip_network("172.16.0.0/24")),
        ),
        services=(
            ServiceSpec(
                id=21,
                name="nas-web",
                protocol="tcp",
                local_ip=ip_address("192.168.10.5"),
                local_port=8080,
                shared_ip=ip_address("10.0.5.1"),
                shared_port=80,
            ),
        ),
        mikrotik=MikrotikSpec(host="192.168.10.1", username="wirewan", password="s3cret-Pa$$"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def remote_a(**changes: object) -> PeerSpec:
    base = PeerSpec(
        id=2,
        uuid="7d1c0f5e-2222-4aaa-8bbb-000000000002",
        name="vps-a",
        kind="server",
        tunnel_ip=IPv4Address("10.0.0.2"),
        listen_port=51820,
        public_key=KEY_A_PUB,
        endpoint_host="203.0.113.10",
        endpoint_port=51820,
        subnets=(SubnetSpec(id=31, cidr=ip_network("10.20.0.0/16")),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def remote_b(**changes: object) -> PeerSpec:
    """A CGNAT peer (no endpoint) with a routed LAN."""
    base = PeerSpec(
        id=3,
        uuid="7d1c0f5e-3333-4aaa-8bbb-000000000003",
        name="home-b",
        kind="server",
        tunnel_ip=IPv4Address("10.0.0.3"),
        listen_port=51820,
        public_key=KEY_B_PUB,
        subnets=(SubnetSpec(id=41, cidr=ip_network("192.168.50.0/24")),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def mesh_wan(*peers: PeerSpec, **changes: object) -> WanSpec:
    base = WanSpec(
        id=7,
        name="homelab",
        tunnel_cidr=IPv4Network("10.0.0.0/24"),
        services_cidr=IPv4Network("10.0.5.0/24"),
        nat_pool_cidr=IPv4Network("172.16.0.0/12"),
        topology="mesh",
        peers=peers or (mikrotik_x(), remote_a(), remote_b()),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dual_stack_wan() -> WanSpec:
    """The mesh on a dual-stack overlay (fd10:77::/64, peer n at ::n): the MikroTik also hosts an
    IPv6 LAN, vps-a routes one, home-b (CGNAT) has only its tunnel addresses."""
    x = mikrotik_x(
        tunnel_ip6=IPv6Address("fd10:77::1"),
        subnets=(*mikrotik_x().subnets, SubnetSpec(id=13, cidr=ip_network("fd20:1::/64"))),
    )
    a = remote_a(
        tunnel_ip6=IPv6Address("fd10:77::2"),
        subnets=(*remote_a().subnets, SubnetSpec(id=32, cidr=ip_network("fd30::/64"))),
    )
    b = remote_b(tunnel_ip6=IPv6Address("fd10:77::3"))
    return mesh_wan(x, a, b, tunnel_cidr6=IPv6Network("fd10:77::/64"))


def desired_x(wan: WanSpec | None = None, source: IPv4Address | None = MGMT_SOURCE) -> DesiredState:
    return build_desired(wan or mesh_wan(), 1, management_source=source)


# ---------------------------------------------------------------- a router as rows per menu


def _row(rid: str, **props: str) -> dict[str, str]:
    row = {".id": rid, "dynamic": "false", "disabled": "false"}
    row.update({k.replace("_", "-"): v for k, v in props.items()})
    return row


def default_router() -> dict[str, list[dict[str, str]]]:
    """A RouterOS 7 default configuration, as parse_actual() output (what the deployer reads)."""
    return {
        "/interface/wireguard": [],
        "/interface/wireguard/peers": [],
        "/ip/address": [
            _row("*1", address="192.168.88.1/24", network="192.168.88.0", interface="bridge"),
        ],
        "/ip/route": [
            {
                ".id": "*80000001",
                "dst-address": "192.168.88.0/24",
                "gateway": "bridge",
                "distance": "0",
                "dynamic": "true",
                "connect": "true",
                "active": "true",
            },
        ],
        "/ipv6/route": [],
        "/ip/firewall/filter": [
            _row(
                "*1",
                chain="input",
                action="accept",
                connection_state="established,related,untracked",
                comment="defconf: accept established,related,untracked",
            ),
            _row(
                "*2",
                chain="input",
                action="drop",
                connection_state="invalid",
                comment="defconf: drop invalid",
            ),
            _row("*3", chain="input", action="accept", protocol="icmp", comment="defconf: accept ICMP"),
            _row(
                "*4",
                chain="input",
                action="drop",
                in_interface_list="!LAN",
                comment="defconf: drop all not coming from LAN",
            ),
            {
                ".id": "*5",
                "chain": "forward",
                "action": "passthrough",
                "dynamic": "true",
                "comment": "special dummy rule to show fasttrack counters",
            },
            _row(
                "*6",
                chain="forward",
                action="fasttrack-connection",
                connection_state="established,related",
                comment="defconf: fasttrack",
            ),
            _row(
                "*7",
                chain="forward",
                action="accept",
                connection_state="established,related,untracked",
                comment="defconf: accept established,related, untracked",
            ),
            _row(
                "*8",
                chain="forward",
                action="drop",
                connection_state="invalid",
                comment="defconf: drop invalid",
            ),
            _row(
                "*9",
                chain="forward",
                action="drop",
                connection_state="new",
                connection_nat_state="!dstnat",
                in_interface_list="WAN",
                comment="defconf: drop all from WAN not DSTNATed",
            ),
        ],
        "/ip/firewall/nat": [
            _row(
                "*1",
                chain="srcnat",
                action="masquerade",
                out_interface_list="WAN",
                comment="defconf: masquerade",
            ),
        ],
        "/user": [
            {".id": "*1", "name": "admin", "group": "full", "address": "", "disabled": "false"},
        ],
        "/ip/service": [
            _row("*1", name="telnet", port="23", address=""),
            _row("*2", name="api", port="8728", address=""),
            _row("*3", name="api-ssl", port="8729", address=""),
            _row("*4", name="winbox", port="8291", address=""),
        ],
    }


def apply_ops(actual: dict[str, list[dict[str, str]]], ops: object) -> dict[str, list[dict[str, str]]]:
    """Apply plan ops to rows the way the router would (new ids, place-before, write-only password)."""
    from app.domain.routeros.plan import Op

    state = {menu: [dict(r) for r in rows] for menu, rows in actual.items()}
    counter = [0x100]
    for op in ops:  # type: ignore[attr-defined]
        assert isinstance(op, Op)
        rows = state.setdefault(op.menu, [])
        index = {r.get(".id"): i for i, r in enumerate(rows)}
        if op.action == "add":
            counter[0] += 1
            row = {".id": f"*{counter[0]:X}", "dynamic": "false", "disabled": "false"}
            row.update({k: v for k, v in op.props.items() if k != "password"})
            if op.place_before is not None:
                rows.insert(index[op.place_before], row)
            else:
                rows.append(row)
        elif op.action == "set":
            rows[index[op.id]].update({k: v for k, v in op.props.items() if k != "password"})
        elif op.action == "remove":
            del rows[index[op.id]]
        elif op.action == "move":
            row = rows.pop(index[op.id])
            rows.insert(next(i for i, r in enumerate(rows) if r[".id"] == op.place_before), row)
    return state
