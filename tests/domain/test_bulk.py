"""CSV bulk import planning (app.domain.bulk): a hostile table gives line-accurate errors."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_network

import pytest

from app.domain.bulk import MAX_ROWS, CsvError, plan_import
from app.domain.model import PeerSpec, SubnetSpec, WanSpec

HEADER = "name,kind,endpoint,lans\n"


def wan(*peers: PeerSpec) -> WanSpec:
    return WanSpec(
        id=1,
        name="corp",
        tunnel_cidr=ip_network("10.0.0.0/16"),  # type: ignore[arg-type]
        services_cidr=ip_network("10.1.5.0/24"),  # type: ignore[arg-type]
        nat_pool_cidr=ip_network("172.16.0.0/12"),  # type: ignore[arg-type]
        peers=peers,
    )


EXISTING = PeerSpec(
    id=1,
    uuid="u",
    name="hub",
    kind="server",
    tunnel_ip=IPv4Address("10.0.0.1"),
    listen_port=51820,
    public_key="k",
    subnets=(SubnetSpec(id=1, cidr=ip_network("192.168.1.0/24")),),
)


def error(text: str) -> CsvError:
    with pytest.raises(CsvError) as info:
        plan_import(wan(EXISTING), text)
    return info.value


def test_a_clean_table_gets_the_lowest_free_tunnel_ips_in_order() -> None:
    planned = plan_import(
        wan(EXISTING),
        HEADER + 'a,server,203.0.113.1:51820,192.168.2.0/24;192.168.3.0/24\nb,client,,\n"c",mikrotik,r.example.com,\n',
    )
    assert [(p.line, p.name, str(p.tunnel_ip)) for p in planned] == [
        (2, "a", "10.0.0.2"),
        (3, "b", "10.0.0.3"),
        (4, "c", "10.0.0.4"),
    ]
    assert [str(n) for n in planned[0].lans] == ["192.168.2.0/24", "192.168.3.0/24"]
    assert planned[2].endpoint == ("r.example.com", 51820)


@pytest.mark.parametrize(
    ("table", "line", "field", "fragment"),
    [
        ("nope\n", 1, None, "header"),
        (HEADER, 0, None, "no peers"),
        (HEADER + "a,server,,\nb,server\n", 3, None, "expected 4 fields"),
        (HEADER + "a,server,,\n=cmd|' /C calc'!A0,server,,\n", 3, "name", "Peer name"),
        (HEADER + "a;rm -rf,server,,\n", 2, "name", ""),
        (HEADER + "a,router,,\n", 2, "kind", ""),
        (HEADER + 'a,server,"x.example.com\nPostUp = evil",\n', 2, "endpoint", ""),
        (HEADER + "a,server,203.0.113.1:5000,\n", 2, "endpoint", "differs from listen port"),
        (HEADER + "a,server,,192.168.5.0/33\n", 2, "lans", ""),
        (HEADER + "a,server,,192.168.5.1/24\n", 2, "lans", ""),
        (HEADER + "hub,server,,\n", 2, "name", "already has a peer named 'hub'"),
        (HEADER + "a,server,,\nb,client,,\na,client,,\n", 4, "name", "also on line 2"),
        (HEADER + "a,server,,192.168.1.128/25\n", 2, "lans", "peer 'hub'"),
        (HEADER + "a,server,,10.0.3.0/24\n", 2, "lans", "tunnel range"),
        (HEADER + "a,server,,192.168.7.0/24;192.168.7.0/25\n", 2, "lans", "overlaps"),
        (HEADER + "a,server,,192.168.8.0/24\nb,server,,\nc,server,,192.168.8.64/26\n", 4, "lans", "peer 'a'"),
        (HEADER + "a,server,,\x00\n", 0, None, "NUL"),
    ],
)
def test_hostile_rows_name_their_line_and_field(table: str, line: int, field: str | None, fragment: str) -> None:
    exc = error(table)
    assert exc.line == line, exc.message
    assert exc.field == field, exc.message
    assert fragment in exc.message
    assert exc.to_dict()["line"] == line
    if line:
        assert exc.message.startswith(f"Line {line}:")


def test_ten_thousand_rows_plan_and_the_last_bad_one_is_found() -> None:
    rows = [f"p{i},client,,10.{100 + i // 256}.{i % 256}.0/24" for i in range(MAX_ROWS)]
    planned = plan_import(wan(EXISTING), HEADER + "\n".join(rows) + "\n")
    assert len(planned) == MAX_ROWS and str(planned[-1].tunnel_ip) == "10.0.39.17"
    rows[-1] = "p9999,client,,10.100.0.128/25"  # overlaps line 2's LAN
    exc = error(HEADER + "\n".join(rows) + "\n")
    assert exc.line == MAX_ROWS + 1 and exc.field == "lans" and "peer 'p0'" in exc.message
    exc = error(HEADER + "\n".join([*rows[:-1], "p9999,client,,", "one-more,client,,"]) + "\n")
    assert "More than" in exc.message and exc.line == MAX_ROWS + 2
