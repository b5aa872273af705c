"""The RouterOS default configuration ("defconf") and ready-made start states.

A new hAP-style router ships with a bridge for the LAN, ether1 as WAN (DHCP
client), interface lists LAN/WAN and a default firewall whose input chain ends in
``drop all not coming from LAN``.  WireWAN's deployer must insert its accept rules
*before* that drop, so the simulator preloads it exactly (reference §3),
including the dynamic fasttrack counter dummy at position 0 of the filter table.

:func:`preset_existing` builds "a router that already has things" on top:
a WireGuard interface on 13231, a distance-1 static route to a LAN WireWAN will
also route, user firewall rules and extra users -- the unmanaged look-alikes a
deploy must leave alone.
"""

from __future__ import annotations

from collections.abc import Callable

from .state import RouterState

WAN_ADDRESS = "203.0.113.10/24"
WAN_GATEWAY = "203.0.113.1"
LAN_ADDRESS = "192.168.88.1/24"

FULL_POLICY = (
    "local,telnet,ssh,ftp,reboot,read,write,policy,test,winbox,password,web,sniff,sensitive,api,romon,rest-api"
)
READ_POLICY = "local,telnet,ssh,reboot,read,test,winbox,password,web,sniff,sensitive,api,romon,rest-api"
WRITE_POLICY = "local,telnet,ssh,reboot,read,write,test,winbox,password,web,sniff,sensitive,api,romon,rest-api"

DEFCONF_FILTER: list[dict[str, str]] = [
    {
        "chain": "input",
        "action": "accept",
        "connection-state": "established,related,untracked",
        "comment": "defconf: accept established,related,untracked",
    },
    {"chain": "input", "action": "drop", "connection-state": "invalid", "comment": "defconf: drop invalid"},
    {"chain": "input", "action": "accept", "protocol": "icmp", "comment": "defconf: accept ICMP"},
    {
        "chain": "input",
        "action": "accept",
        "dst-address": "127.0.0.1",
        "comment": "defconf: accept to local loopback (for CAPsMAN)",
    },
    {
        "chain": "input",
        "action": "drop",
        "in-interface-list": "!LAN",
        "comment": "defconf: drop all not coming from LAN",
    },
    {
        "chain": "forward",
        "action": "accept",
        "ipsec-policy": "in,ipsec",
        "comment": "defconf: accept in ipsec policy",
    },
    {
        "chain": "forward",
        "action": "accept",
        "ipsec-policy": "out,ipsec",
        "comment": "defconf: accept out ipsec policy",
    },
    {
        "chain": "forward",
        "action": "fasttrack-connection",
        "connection-state": "established,related",
        "hw-offload": "yes",
        "comment": "defconf: fasttrack",
    },
    {
        "chain": "forward",
        "action": "accept",
        "connection-state": "established,related,untracked",
        "comment": "defconf: accept established,related, untracked",
    },
    {"chain": "forward", "action": "drop", "connection-state": "invalid", "comment": "defconf: drop invalid"},
    {
        "chain": "forward",
        "action": "drop",
        "connection-state": "new",
        "connection-nat-state": "!dstnat",
        "in-interface-list": "WAN",
        "comment": "defconf: drop all from WAN not DSTNATed",
    },
]

# RouterOS 7's default IPv6 firewall (defconf), which drops much more than the IPv4 one: any input
# not from the LAN list, bad addresses, ICMPv6 with hop limit 1 in forward, and every forward not
# from the LAN list.
DEFCONF_BAD_IPV6: list[tuple[str, str]] = [
    ("::/128", "defconf: unspecified address"),
    ("::1/128", "defconf: lo"),
    ("fec0::/10", "defconf: site-local"),
    ("::ffff:0.0.0.0/96", "defconf: ipv4-mapped"),
    ("::/96", "defconf: ipv4 compat"),
    ("100::/64", "defconf: discard only "),
    ("2001:db8::/32", "defconf: documentation"),
    ("2001:10::/28", "defconf: ORCHID"),
    ("3ffe::/16", "defconf: 6bone"),
]

DEFCONF_FILTER6: list[dict[str, str]] = [
    {
        "chain": "input",
        "action": "accept",
        "connection-state": "established,related,untracked",
        "comment": "defconf: accept established,related,untracked",
    },
    {"chain": "input", "action": "drop", "connection-state": "invalid", "comment": "defconf: drop invalid"},
    {"chain": "input", "action": "accept", "protocol": "icmpv6", "comment": "defconf: accept ICMPv6"},
    {
        "chain": "input",
        "action": "accept",
        "protocol": "udp",
        "dst-port": "33434-33534",
        "comment": "defconf: accept UDP traceroute",
    },
    {
        "chain": "input",
        "action": "accept",
        "protocol": "udp",
        "dst-port": "546",
        "src-address": "fe80::/10",
        "comment": "defconf: accept DHCPv6-Client prefix delegation.",
    },
    {"chain": "input", "action": "accept", "protocol": "udp", "dst-port": "500,4500", "comment": "defconf: accept IKE"},
    {"chain": "input", "action": "accept", "protocol": "ipsec-ah", "comment": "defconf: accept ipsec AH"},
    {"chain": "input", "action": "accept", "protocol": "ipsec-esp", "comment": "defconf: accept ipsec ESP"},
    {
        "chain": "input",
        "action": "accept",
        "ipsec-policy": "in,ipsec",
        "comment": "defconf: accept all that matches ipsec policy",
    },
    {
        "chain": "input",
        "action": "drop",
        "in-interface-list": "!LAN",
        "comment": "defconf: drop everything else not coming from LAN",
    },
    {
        "chain": "forward",
        "action": "accept",
        "connection-state": "established,related,untracked",
        "comment": "defconf: accept established,related,untracked",
    },
    {"chain": "forward", "action": "drop", "connection-state": "invalid", "comment": "defconf: drop invalid"},
    {
        "chain": "forward",
        "action": "drop",
        "src-address-list": "bad_ipv6",
        "comment": "defconf: drop packets with bad src ipv6",
    },
    {
        "chain": "forward",
        "action": "drop",
        "dst-address-list": "bad_ipv6",
        "comment": "defconf: drop packets with bad dst ipv6",
    },
    {
        "chain": "forward",
        "action": "drop",
        "protocol": "icmpv6",
        "hop-limit": "equal:1",
        "comment": "defconf: rfc4890 drop hop-limit=1",
    },
    {"chain": "forward", "action": "accept", "protocol": "icmpv6", "comment": "defconf: accept ICMPv6"},
    {"chain": "forward", "action": "accept", "protocol": "139", "comment": "defconf: accept HIP"},
    {
        "chain": "forward",
        "action": "accept",
        "protocol": "udp",
        "dst-port": "500,4500",
        "comment": "defconf: accept IKE",
    },
    {"chain": "forward", "action": "accept", "protocol": "ipsec-ah", "comment": "defconf: accept ipsec AH"},
    {"chain": "forward", "action": "accept", "protocol": "ipsec-esp", "comment": "defconf: accept ipsec ESP"},
    {
        "chain": "forward",
        "action": "accept",
        "ipsec-policy": "in,ipsec",
        "comment": "defconf: accept all that matches ipsec policy",
    },
    {
        "chain": "forward",
        "action": "drop",
        "in-interface-list": "!LAN",
        "comment": "defconf: drop everything else not coming from LAN",
    },
]

DEFCONF_NAT: list[dict[str, str]] = [
    {
        "chain": "srcnat",
        "action": "masquerade",
        "out-interface-list": "WAN",
        "ipsec-policy": "out,none",
        "comment": "defconf: masquerade",
    },
]

SERVICES: list[tuple[str, int, bool]] = [
    ("telnet", 23, False),
    ("ftp", 21, False),
    ("www", 80, False),
    ("ssh", 22, False),
    ("www-ssl", 443, True),
    ("api", 8728, False),
    ("winbox", 8291, False),
    ("api-ssl", 8729, False),
]


def apply_defconf(state: RouterState, users: list[tuple[str, str, str]]) -> None:
    """Load the default configuration plus ``users`` as (name, password, group)."""
    with state.lock:
        state.tables["/system/identity"] = [{"name": "MikroTik"}]
        state.tables["/system/resource"] = [
            {
                "board-name": "CHR",
                "architecture-name": "x86_64",
                "platform": "MikroTik",
                "cpu": "QEMU",
                "cpu-count": "1",
                "cpu-load": "1",
                "free-memory": "210763776",
                "total-memory": "268435456",
                "free-hdd-space": "80285696",
                "total-hdd-space": "93585408",
            }
        ]
        for n in range(1, 6):
            state.tables["/interface"].append(
                {
                    ".id": state.new_id("interface"),
                    "name": f"ether{n}",
                    "default-name": f"ether{n}",
                    "type": "ether",
                    "mtu": "1500",
                    "mac-address": f"02:00:00:00:00:{n:02X}",
                    "disabled": "false",
                    "dynamic": "false",
                }
            )
        state.tables["/interface"].append(
            {
                ".id": state.new_id("interface"),
                "name": "bridge",
                "type": "bridge",
                "mtu": "1500",
                "mac-address": "02:00:00:00:00:10",
                "disabled": "false",
                "comment": "defconf",
                "dynamic": "false",
            }
        )
        for name in ("all", "none", "dynamic", "static"):
            state.tables["/interface/list"].append(
                {".id": state.new_id("/interface/list"), "name": name, "builtin": "true", "dynamic": "false"}
            )
        state.add("/interface/list", {"name": "WAN", "comment": "defconf"})
        state.add("/interface/list", {"name": "LAN", "comment": "defconf"})
        state.add("/interface/list/member", {"list": "LAN", "interface": "bridge", "comment": "defconf"})
        state.add("/interface/list/member", {"list": "WAN", "interface": "ether1", "comment": "defconf"})
        state.add("/ip/address", {"address": LAN_ADDRESS, "interface": "bridge", "comment": "defconf"})
        # The DHCP client on ether1 contributes a dynamic address and default route.
        state.tables["/ip/address"].append(
            {
                ".id": state.new_id("/ip/address"),
                "address": WAN_ADDRESS,
                "interface": "ether1",
                "disabled": "false",
                "dynamic": "true",
            }
        )
        state._sync_connected_routes()
        state.tables["/ip/route"].append(
            {
                ".id": state.new_id("/ip/route"),
                "dst-address": "0.0.0.0/0",
                "gateway": WAN_GATEWAY,
                "distance": "1",
                "routing-table": "main",
                "scope": "30",
                "target-scope": "10",
                "disabled": "false",
                "suppress-hw-offload": "false",
                "dynamic": "true",
                "dhcp": "true",
                "_owner": "dhcp",
            }
        )
        # Position 0: the dynamic dummy RouterOS shows while fasttrack is enabled.
        state.tables["/ip/firewall/filter"].append(
            {
                ".id": state.new_id("/ip/firewall/filter"),
                "chain": "forward",
                "action": "passthrough",
                "comment": "special dummy rule to show fasttrack counters",
                "disabled": "false",
                "log": "false",
                "log-prefix": "",
                "dynamic": "true",
                "bytes": "0",
                "packets": "0",
            }
        )
        for rule in DEFCONF_FILTER:
            state.add("/ip/firewall/filter", rule)
        for rule in DEFCONF_NAT:
            state.add("/ip/firewall/nat", rule)
        for address, comment in DEFCONF_BAD_IPV6:
            state.add("/ipv6/firewall/address-list", {"list": "bad_ipv6", "address": address, "comment": comment})
        for rule in DEFCONF_FILTER6:
            state.add("/ipv6/firewall/filter", rule)
        for name, port_no, disabled in SERVICES:
            state.tables["/ip/service"].append(
                {
                    ".id": state.new_id("/ip/service"),
                    "name": name,
                    "port": str(port_no),
                    "address": "",
                    "vrf": "main",
                    "disabled": "true" if disabled else "false",
                    "invalid": "false",
                }
            )
        for group, policy in (("read", READ_POLICY), ("write", WRITE_POLICY), ("full", FULL_POLICY)):
            state.tables["/user/group"].append(
                {".id": state.new_id("/user/group"), "name": group, "policy": policy, "skin": "default"}
            )
        for name, password, group in users:
            state.add("/user", {"name": name, "password": password, "group": group})


def preset_existing(state: RouterState) -> None:
    """Unmanaged configuration a real, already-used router would have."""
    with state.lock:
        state.add(
            "/interface/wireguard",
            {"name": "wg-home", "listen-port": "13231", "comment": "road warriors"},
        )
        state.add("/ip/address", {"address": "10.99.0.1/24", "interface": "wg-home"})
        state.add(
            "/interface/wireguard/peers",
            {
                "interface": "wg-home",
                "public-key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
                "allowed-address": "10.99.0.2/32",
                "comment": "phone",
            },
        )
        state.add(
            "/ip/route",
            {
                "dst-address": "192.168.1.0/24",
                "gateway": "192.168.88.254",
                "comment": "office LAN via old VPN box",
            },
        )
        drop = state.find("/ip/firewall/filter", lambda r: r.get("comment") == "defconf: drop all not coming from LAN")
        state.add(
            "/ip/firewall/filter",
            {
                "chain": "input",
                "action": "accept",
                "protocol": "udp",
                "dst-port": "13231",
                "comment": "allow wg-home",
                "place-before": drop[0],
            },
        )
        state.add(
            "/ip/firewall/filter",
            {
                "chain": "input",
                "action": "accept",
                "protocol": "tcp",
                "dst-port": "22",
                "src-address": "198.51.100.0/24",
                "comment": "ssh from office",
                "place-before": drop[0],
            },
        )
        state.add(
            "/ip/firewall/nat",
            {
                "chain": "dstnat",
                "action": "dst-nat",
                "protocol": "tcp",
                "dst-port": "8080",
                "to-addresses": "192.168.88.10",
                "to-ports": "80",
                "comment": "web server",
            },
        )
        state.add("/user", {"name": "monitor", "password": "monitor", "group": "read", "comment": "read-only NMS"})
        state.add("/user", {"name": "backup", "password": "backup", "group": "write", "address": "192.168.88.0/24"})
        state.set("/system/identity", None, {"name": "branch-router"})


PRESETS: dict[str, Callable[[RouterState], None]] = {
    "defconf": lambda state: None,
    "existing": preset_existing,
}
