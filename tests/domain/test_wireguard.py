"""wg-quick rendering: whole-file golden configs per rule, hashing, sanitising, diffs.

Golden files live in tests/domain/golden/wireguard/<scenario>__<peer>.conf. After an intended
change, regenerate them with ``WIREWAN_UPDATE_GOLDEN=1 pytest tests/domain/test_wireguard.py`` and
review the diff like code.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import replace
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest

from app.domain.model import PeerSpec, WanSpec
from app.domain.topology import build_topology
from app.domain.wireguard import (
    BYOK_COMMENT,
    config_diff,
    config_hash,
    render_all,
    render_config,
    safe_wan_name,
)
from tests.domain.test_topology import key, peer, service, subnet, wan_of

GOLDEN = Path(__file__).parent / "golden" / "wireguard"
UPDATE = os.environ.get("WIREWAN_UPDATE_GOLDEN") == "1"


def scenarios() -> dict[str, WanSpec]:
    return {
        # Three public servers, one routing a LAN (and one not routed, never advertised).
        "mesh3": wan_of(
            peer(1, "hq", subnets=(subnet(1, "192.168.1.0/24"), subnet(2, "192.168.50.0/24", routed=False))),
            peer(2, "branch", kind="mikrotik", subnets=(subnet(3, "192.168.2.0/24"),)),
            peer(3, "vps", endpoint="203.0.113.10", port=51821),
        ),
        # Two CGNAT clients meet through the server.
        "cgnat_relay": wan_of(
            peer(1, "vps", subnets=(subnet(1, "192.168.1.0/24"),)),
            peer(2, "laptop", kind="client", endpoint=False),
            peer(3, "phone", kind="client", endpoint=False, keepalive=15),
        ),
        # Two hubs: the first (lowest tunnel IP) carries relayed prefixes.
        "hub_spoke_2hubs": wan_of(
            peer(1, "hub1", hub=True, subnets=(subnet(1, "192.168.1.0/24"),)),
            peer(2, "hub2", hub=True, kind="mikrotik"),
            peer(3, "site", kind="mikrotik", subnets=(subnet(2, "192.168.3.0/24"),)),
            peer(4, "roamer", kind="client", endpoint=False),
            topology="hub_spoke",
        ),
        # Spokes with an endpoint talk directly, CGNAT spokes through the hub.
        "hybrid": wan_of(
            peer(1, "hub", hub=True),
            peer(2, "a", subnets=(subnet(1, "192.168.2.0/24"),)),
            peer(3, "b", endpoint=False, subnets=(subnet(2, "192.168.3.0/24"),)),
            peer(4, "c", kind="client", endpoint=False),
            topology="hybrid",
        ),
        # hub_spoke without any hub: mesh; the CGNAT pair uses the server.
        "no_hub_fallback": wan_of(
            peer(1, "srv"),
            peer(2, "x", kind="client", endpoint=False),
            peer(3, "y", kind="client", endpoint=False),
            topology="hub_spoke",
        ),
        # Both LANs are 192.168.1.0/24; b's is NAT'd to 172.16.0.0/24.
        "nat_subnet": wan_of(
            peer(1, "a", subnets=(subnet(1, "192.168.1.0/24"),)),
            peer(2, "b", subnets=(subnet(2, "192.168.1.0/24", nat="172.16.0.0/24"),)),
            peer(3, "c", kind="client"),
        ),
        # Services on a LAN host and on the server itself.
        "service": wan_of(
            peer(
                1,
                "srv",
                subnets=(subnet(1, "192.168.1.0/24", routed=False),),
                services=(
                    service(1, "10.0.5.1", 8080, "192.168.1.10", 80),
                    service(2, "10.0.5.2", 2222, "10.0.0.1", 22),
                    service(3, "10.0.5.3", 53, "127.0.0.1", 5353, proto="udp"),
                ),
            ),
            peer(2, "user", kind="client", endpoint=False),
        ),
        # The device keeps its private key.
        "byok": wan_of(
            peer(1, "srv"),
            peer(2, "own-key", kind="client", endpoint=False, byok=True),
        ),
        # IPv6 endpoint, IPv6 LAN, DNS, WAN keepalive 0.
        "ipv6": wan_of(
            peer(1, "v6", endpoint="2001:db8::1", port=51000, subnets=(subnet(1, "2001:db8:1::/64"),)),
            peer(2, "v4", endpoint="198.51.100.2"),
            keepalive=0,
            dns=(ip_address("10.0.0.1"), ip_address("2001:db8::53")),
        ),
        # Dual stack (issue 14): a hub relays a CGNAT pair, a site routes a v4 and a v6 LAN, the hub
        # publishes a LAN service over both families and one on itself over IPv4 only.
        "dual_stack": dual(
            peer(
                1,
                "hub",
                hub=True,
                subnets=(subnet(1, "192.168.1.0/24", routed=False), subnet(2, "fd20:1::/64", routed=False)),
                services=(
                    replace(
                        service(1, "10.0.5.1", 80, "192.168.1.10", 8080),
                        local_ip6=ip_address("fd20:1::10"),
                        shared_ip6=ip_address("fd10:78::1"),
                    ),
                    service(2, "10.0.5.2", 2222, "10.0.0.1", 22),
                ),
            ),
            peer(2, "site", kind="mikrotik", subnets=(subnet(3, "192.168.2.0/24"), subnet(4, "fd20:2::/64"))),
            peer(3, "laptop", kind="client", endpoint=False),
            peer(4, "phone", kind="client", endpoint=False),
            topology="hub_spoke",
        ),
        # A dual-stack mesh of servers: the relay forwards both families; a v4-only LAN owner
        # forwards IPv4 only.
        "dual_stack_mesh": dual(
            peer(1, "srv1"),
            peer(2, "srv2", subnets=(subnet(1, "192.168.2.0/24"),)),
            peer(3, "cg", endpoint=False),
            peer(4, "cg2", kind="client", endpoint=False),
        ),
        # a and b both route 192.168.1.0/24 without NAT (refused at save; stays consistent).
        "unreachable_overlap": wan_of(
            peer(1, "a", subnets=(subnet(1, "192.168.1.0/24"),)),
            peer(2, "b", subnets=(subnet(2, "192.168.1.0/24"), subnet(3, "192.168.20.0/24"))),
            peer(3, "c", kind="client"),
        ),
    }


def dual(*peers: PeerSpec, **kw: Any) -> WanSpec:
    """A dual-stack WAN: fd10:77::/64 tunnel range (peer n gets ::n), fd10:78::/64 services."""
    return wan_of(
        *(replace(p, tunnel_ip6=ip_address(f"fd10:77::{p.id}")) for p in peers),
        tunnel_cidr6=ip_network("fd10:77::/64"),
        services_cidr6=ip_network("fd10:78::/64"),
        **kw,
    )


CASES = [(name, p.id, p.name) for name, wan in scenarios().items() for p in wan.peers]


@pytest.mark.parametrize(("scenario", "peer_id", "peer_name"), CASES, ids=[f"{s}-{n}" for s, _, n in CASES])
def test_golden(scenario: str, peer_id: int, peer_name: str) -> None:
    wan = scenarios()[scenario]
    text = render_config(wan, peer_id).text
    path = GOLDEN / f"{scenario}__{peer_name}.conf"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with WIREWAN_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_golden_dir_has_no_stale_files() -> None:
    expected = {f"{s}__{n}.conf" for s, _, n in CASES}
    assert {p.name for p in GOLDEN.glob("*.conf")} == expected


# --- structure -----------------------------------------------------------------------------------


def lines_of(text: str, prefix: str) -> list[str]:
    return [line[len(prefix) :] for line in text.splitlines() if line.startswith(prefix)]


def test_mesh3_hq_config_in_full() -> None:
    text = render_config(scenarios()["mesh3"], 1).text
    body = text.split("\n", 2)[2]
    assert body == (
        "[Interface]\n"
        "Address = 10.0.0.1/24\n"
        "ListenPort = 51820\n"
        f"PrivateKey = {key(101)}\n"
        "MTU = 1420\n"
        "PostUp = sysctl -w net.ipv4.ip_forward=1\n"
        "PostUp = iptables -A FORWARD -i %i -j ACCEPT\n"
        "PostUp = iptables -A FORWARD -o %i -j ACCEPT\n"
        "PostDown = iptables -D FORWARD -o %i -j ACCEPT\n"
        "PostDown = iptables -D FORWARD -i %i -j ACCEPT\n"
        "\n"
        "[Peer]\n"
        "# branch\n"
        f"PublicKey = {key(2)}\n"
        "AllowedIPs = 10.0.0.2/32, 192.168.2.0/24\n"
        "Endpoint = branch.example.net:51820\n"
        "PersistentKeepalive = 25\n"
        "\n"
        "[Peer]\n"
        "# vps\n"
        f"PublicKey = {key(3)}\n"
        "AllowedIPs = 10.0.0.3/32\n"
        "Endpoint = 203.0.113.10:51821\n"
        "PersistentKeepalive = 25\n"
    )
    assert text.startswith("# WireWAN config for peer 'hq' in WAN 'acme'\n# config-hash: ")


def test_hash_covers_everything_after_the_header() -> None:
    for cfg in render_all(scenarios()["cgnat_relay"]).values():
        header, hash_line, body = cfg.text.split("\n", 2)
        assert header.startswith("# WireWAN config for peer ")
        assert hash_line == f"# config-hash: {cfg.sha256}"
        assert cfg.sha256 == hashlib.sha256(body.encode()).hexdigest()
        assert config_hash(cfg.text) == cfg.sha256
        assert body.startswith("[Interface]\n") and body.endswith("\n") and not body.endswith("\n\n")


def test_render_all_matches_render_config_and_is_deterministic() -> None:
    wan = scenarios()["hub_spoke_2hubs"]
    topo = build_topology(wan)
    every = render_all(wan)
    assert set(every) == {p.id for p in wan.peers}
    for pid, cfg in every.items():
        assert render_config(wan, pid) == cfg
        assert render_config(wan, pid, topo) == cfg
    assert render_all(wan) == every


def test_client_and_mikrotik_get_no_hooks() -> None:
    wan = scenarios()["hub_spoke_2hubs"]
    every = render_all(wan)
    assert "PostUp" not in every[2].text and "PostUp" not in every[3].text and "PostUp" not in every[4].text
    assert "PostUp = sysctl -w net.ipv4.ip_forward=1" in every[1].text


def test_every_post_up_rule_is_undone_in_reverse_order() -> None:
    for wan in scenarios().values():
        for cfg in render_all(wan).values():
            up = [c for c in lines_of(cfg.text, "PostUp = ") if not c.startswith("sysctl")]
            down = lines_of(cfg.text, "PostDown = ")
            assert down == [c.replace(" -A ", " -D ") for c in reversed(up)]
            assert all(" -A " in c for c in up)
            # Every rule names the interface as %i; the service masquerade matches DNAT'ed
            # connections instead of an interface.
            assert all("%i" in c for c in up + down if "MASQUERADE" not in c)
            assert "wg-wan-overlay" not in cfg.text


def test_nat_owner_netmaps_both_ways() -> None:
    text = render_config(scenarios()["nat_subnet"], 2).text
    assert lines_of(text, "PostUp = ")[3:] == [
        "iptables -t nat -A PREROUTING -i %i -d 172.16.0.0/24 -j NETMAP --to 192.168.1.0/24",
        "iptables -t nat -A POSTROUTING -o %i -s 192.168.1.0/24 -j NETMAP --to 172.16.0.0/24",
    ]


def test_service_dnat_and_masquerade() -> None:
    up = lines_of(render_config(scenarios()["service"], 1).text, "PostUp = ")
    assert up == [
        "sysctl -w net.ipv4.ip_forward=1",
        "iptables -A FORWARD -i %i -j ACCEPT",
        "iptables -A FORWARD -o %i -j ACCEPT",
        "iptables -t nat -A PREROUTING -i %i -d 10.0.5.1 -p tcp --dport 8080 -j DNAT --to-destination 192.168.1.10:80",
        "iptables -t nat -A POSTROUTING -d 192.168.1.10 -p tcp --dport 80 -m conntrack --ctstate DNAT "
        "--ctorigdst 10.0.5.1 -j MASQUERADE",
        # On the server itself: DNAT to its tunnel address, no masquerade.
        "iptables -t nat -A PREROUTING -i %i -d 10.0.5.2 -p tcp --dport 2222 -j DNAT --to-destination 10.0.0.1:22",
        # On loopback: the interface must accept DNAT to 127.0.0.0/8.
        "sysctl -w net/ipv4/conf/%i/route_localnet=1",
        "iptables -t nat -A PREROUTING -i %i -d 10.0.5.3 -p udp --dport 53 -j DNAT --to-destination 127.0.0.1:5353",
    ]


def test_local_services_only_need_no_forwarding() -> None:
    wan = wan_of(peer(1, "srv", services=(service(1, "10.0.5.2", 2222, "10.0.0.1", 22),)), peer(2, "b"))
    text = render_config(wan, 1).text
    assert "ip_forward" not in text and "FORWARD" not in text
    assert "--to-destination 10.0.0.1:22" in text


def test_ipv6_lan_on_a_server_turns_on_ipv6_forwarding() -> None:
    up = lines_of(render_config(scenarios()["ipv6"], 1).text, "PostUp = ")
    assert "sysctl -w net.ipv6.conf.all.forwarding=1" in up
    assert "ip6tables -A FORWARD -i %i -j ACCEPT" in up


def test_byok_omits_private_key_with_a_hint() -> None:
    text = render_config(scenarios()["byok"], 2).text
    assert "PrivateKey" not in text.replace(BYOK_COMMENT, "")
    assert BYOK_COMMENT in text.splitlines()


def test_ipv6_endpoint_is_bracketed() -> None:
    assert "Endpoint = [2001:db8::1]:51000" in render_config(scenarios()["ipv6"], 2).text


def test_dns_only_when_set() -> None:
    assert "DNS = 10.0.0.1, 2001:db8::53" in render_config(scenarios()["ipv6"], 2).text.splitlines()
    assert "DNS" not in render_config(scenarios()["mesh3"], 1).text


def test_unreachable_overlap_is_left_out_of_the_config() -> None:
    wan = scenarios()["unreachable_overlap"]
    b = render_config(wan, 2).text
    assert lines_of(b, "AllowedIPs = ") == ["10.0.0.1/32", "10.0.0.3/32"]
    c = render_config(wan, 3).text
    assert lines_of(c, "AllowedIPs = ") == ["10.0.0.1/32, 192.168.1.0/24", "10.0.0.2/32, 192.168.20.0/24"]


# --- no user free text in config lines ------------------------------------------------------------

NASTY = "evil\"'\n[Peer]\nPublicKey = AAAA\r\nPostUp = rm -rf / #\u2028x\x00"


def test_wan_name_with_newlines_quotes_and_sections_never_adds_a_line() -> None:
    plain = scenarios()["cgnat_relay"]
    nasty = replace(plain, name=NASTY)
    for pid in (1, 2, 3):
        good = render_config(plain, pid)
        bad = render_config(nasty, pid)
        assert len(bad.text.splitlines()) == len(good.text.splitlines())
        assert len(bad.text.split("\n")) == len(good.text.split("\n"))
        assert bad.sha256 == good.sha256  # the header is not hashed
        assert bad.text.count("[Peer]") == good.text.count("[Peer]")
        header = bad.text.split("\n", 1)[0]
        assert re.fullmatch(r"# WireWAN config for peer '[A-Za-z0-9._-]+' in WAN '[A-Za-z0-9 ._-]*'", header)


def test_peer_names_are_reduced_to_the_safe_charset() -> None:
    wan = wan_of(peer(1, "a\nPostUp = reboot", endpoint=False), peer(2, "b", kind="client"))
    text = render_config(wan, 2).text
    assert "\nPostUp" not in text
    assert "# a_PostUp___reboot\n" in text


@pytest.mark.parametrize(
    "bad",
    [
        {"public_key": "AAAA\nPostUp = x"},
        {"private_key": "x y"},
        {"endpoint_host": "evil.example\nPostUp = x"},
    ],
)
def test_unsafe_keys_or_endpoints_are_refused(bad: dict[str, str]) -> None:
    good = wan_of(peer(1, "a"), peer(2, "b"))
    broken = replace(good, peers=(replace(good.peers[0], **bad), good.peers[1]))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refusing to render"):
        render_all(broken)


def test_safe_wan_name() -> None:
    assert safe_wan_name("ACME  corp\n[Peer]") == "ACME corp__Peer_"
    assert safe_wan_name("\n\n") == "__"


# --- diffs and staleness --------------------------------------------------------------------------


def test_config_diff_masks_keys_but_shows_that_they_changed() -> None:
    wan = scenarios()["cgnat_relay"]
    old = render_config(wan, 2).text + "PresharedKey = c2VjcmV0\n"
    rotated = replace(wan, peers=(wan.peers[0], replace(wan.peers[1], private_key=key(222)), wan.peers[2]))
    new = render_config(rotated, 2).text + "PresharedKey = c2VjcmV0\n"
    diff = config_diff(old, new)
    assert key(102) not in diff and key(222) not in diff and "c2VjcmV0" not in diff
    assert "-PrivateKey = <hidden 1>" in diff
    assert "+PrivateKey = <hidden 3>" in diff
    assert diff.startswith("--- applied\n+++ current\n")
    assert config_diff(old, old) == ""


def test_config_diff_shows_a_new_peer() -> None:
    wan = scenarios()["mesh3"]
    bigger = replace(wan, peers=(*wan.peers, peer(9, "newbie")))
    diff = config_diff(render_config(wan, 1).text, render_config(bigger, 1).text)
    assert "+# newbie" in diff and "+AllowedIPs = 10.0.0.9/32" in diff
    assert "PrivateKey" not in diff or "<hidden" in diff


def hashes(wan: WanSpec) -> dict[int, str]:
    return {pid: cfg.sha256 for pid, cfg in render_all(wan).items()}


def test_non_routed_subnet_on_another_peer_does_not_stale_anyone_else() -> None:
    wan = scenarios()["mesh3"]
    before = hashes(wan)
    vps = wan.peers[2]
    changed = replace(wan, peers=(*wan.peers[:2], replace(vps, subnets=(subnet(9, "10.99.0.0/16", routed=False),))))
    after = hashes(changed)
    assert after[1] == before[1] and after[2] == before[2]


def test_routed_subnet_stales_exactly_the_others() -> None:
    wan = scenarios()["mesh3"]
    before = hashes(wan)
    vps = wan.peers[2]
    changed = replace(wan, peers=(*wan.peers[:2], replace(vps, subnets=(subnet(9, "10.99.0.0/16"),))))
    after = hashes(changed)
    assert after[1] != before[1] and after[2] != before[2]
    assert after[3] != before[3]  # vps now forwards for its LAN: forwarding hooks added


def test_adding_a_spoke_leaves_other_spokes_fresh() -> None:
    wan = scenarios()["hub_spoke_2hubs"]
    before = hashes(wan)
    bigger = replace(wan, peers=(*wan.peers, peer(5, "spoke5", kind="client", endpoint=False)))
    after = hashes(bigger)
    assert after[3] == before[3] and after[4] == before[4]
    assert after[1] != before[1] and after[2] != before[2]  # the hubs gain a section


def test_wan_rename_does_not_stale_anything() -> None:
    wan = scenarios()["hub_spoke_2hubs"]
    assert hashes(replace(wan, name="Renamed WAN")) == hashes(wan)
