"""Field validators, endpoint parsing and the two peer guardrails."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network

import pytest

from app.domain.addressing import parse_address, parse_network_strict
from app.domain.errors import DomainError, GuardrailError, ValidationError
from app.domain.keys import validate_public_key
from app.domain.validation import (
    check_endpoint_port,
    check_management_host,
    parse_endpoint,
    validate_host,
    validate_interface_name,
    validate_keepalive,
    validate_kind,
    validate_mtu,
    validate_password,
    validate_peer_name,
    validate_port,
    validate_protocol,
    validate_service_name,
    validate_topology,
    validate_username,
    validate_wan_name,
)

NAME_RULE = "letters A-Z and a-z, digits, '.', '_' and '-'"
CONTROL = "contains a control or invisible character (such as a newline, tab or NUL); remove it."


def message_of(func: Callable[..., object], *args: object) -> tuple[str, str | None]:
    with pytest.raises(DomainError) as info:
        func(*args)
    return info.value.message, info.value.field


# --- hostile input -----------------------------------------------------------------------------

HOSTILE: dict[str, str] = {
    "double_quote": 'office"',
    "single_quote": "office'",
    "routeros_subst": "$[/system reset]",
    "command_injection": '"; /system reset',
    "newline": "office\nrouter",
    "carriage_return": "office\r",
    "nul": "office\x00",
    "tab": "office\tx",
    "ten_kb": "a" * 10240,
    "non_ascii": "büro",
    "path_traversal": "../etc/passwd",
    "script": "<script>alert(1)</script>",
    "bidi_override": "abc\u202edef",
}
# Values a validator legitimately accepts (display name / password may hold quotes and symbols).
WAN_NAME_OK = {
    "double_quote",
    "single_quote",
    "routeros_subst",
    "command_injection",
    "non_ascii",
    "path_traversal",
    "script",
}
PASSWORD_OK = {
    "double_quote",
    "single_quote",
    "routeros_subst",
    "command_injection",
    "path_traversal",
    "script",
}

VALIDATORS: list[tuple[str, Callable[[object], object], str, set[str]]] = [
    ("peer_name", validate_peer_name, "name", set()),
    ("service_name", validate_service_name, "name", set()),
    ("interface_name", validate_interface_name, "interface_name", set()),
    ("username", validate_username, "mikrotik_username", set()),
    ("password", validate_password, "mikrotik_password", PASSWORD_OK),
    ("wan_name", validate_wan_name, "name", WAN_NAME_OK),
    ("port", validate_port, "listen_port", set()),
    ("keepalive", validate_keepalive, "keepalive", set()),
    ("mtu", validate_mtu, "mtu", set()),
    ("kind", validate_kind, "kind", set()),
    ("topology", validate_topology, "topology", set()),
    ("protocol", validate_protocol, "protocol", set()),
    ("host", validate_host, "mikrotik_host", set()),
    ("endpoint", lambda v: parse_endpoint(v, 51820), "endpoint", set()),
    ("cidr", parse_network_strict, "cidr", set()),
    ("local_ip", lambda v: parse_address(v, "local_ip", "Local IP"), "local_ip", set()),
    ("public_key", validate_public_key, "public_key", set()),
]


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize(("name", "validator", "field", "accepted"), VALIDATORS, ids=[v[0] for v in VALIDATORS])
def test_hostile_input_is_refused_with_the_field(
    name: str, validator: Callable[[object], object], field: str, accepted: set[str], hostile: str
) -> None:
    value = HOSTILE[hostile]
    if hostile in accepted:
        assert validator(value) == value
        return
    with pytest.raises(ValidationError) as info:
        validator(value)
    assert info.value.field == field
    assert info.value.status == 422
    # A refused hostile value never comes back verbatim in the message when it is long or invisible.
    if hostile in {"ten_kb", "newline", "carriage_return", "nul", "tab", "bidi_override"}:
        assert value not in info.value.message


@pytest.mark.parametrize("value", [None, 5, 3.5, ["a"], {"a": 1}, b"bytes", True])
@pytest.mark.parametrize(
    ("validator", "field"),
    [
        (validate_peer_name, "name"),
        (validate_wan_name, "name"),
        (validate_password, "mikrotik_password"),
        (validate_host, "mikrotik_host"),
        (parse_network_strict, "cidr"),
        (validate_public_key, "public_key"),
    ],
)
def test_non_text_json_values_are_refused(validator: Callable[[object], object], field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        validator(value)
    assert info.value.field == field
    assert info.value.message.endswith("must be text.")


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["office", "a", "Site-1.lan_2", "x" * 48, "..a", "-lead"])
def test_peer_names_accepted(name: str) -> None:
    assert validate_peer_name(name) == name


def test_peer_name_golden_messages() -> None:
    assert message_of(validate_peer_name, "") == ("Peer name is required.", "name")
    assert message_of(validate_peer_name, "x" * 49) == (
        "Peer name is too long (49 characters); at most 48 are allowed.",
        "name",
    )
    assert message_of(validate_peer_name, "a\nb") == (f"Peer name {CONTROL}", "name")
    assert message_of(validate_peer_name, "my office") == (
        f"Peer name may only contain {NAME_RULE}; found ' '.",
        "name",
    )
    assert message_of(validate_peer_name, 'a"b') == (
        f"Peer name may only contain {NAME_RULE}; found '\"'.",
        "name",
    )
    assert message_of(validate_peer_name, "büro") == (
        f"Peer name may only contain {NAME_RULE}; found 'ü'.",
        "name",
    )
    assert message_of(validate_peer_name, "..") == ("Peer name cannot be '.' or '..'.", "name")
    assert message_of(validate_peer_name, 7) == ("Peer name must be text.", "name")


def test_other_names_golden_messages() -> None:
    assert message_of(validate_service_name, "x" * 33) == (
        "Service name is too long (33 characters); at most 32 are allowed.",
        "name",
    )
    assert validate_service_name("x" * 32) == "x" * 32
    assert message_of(validate_interface_name, "wg-wan-overlay-1") == (
        "Interface name is too long (16 characters); at most 15 are allowed.",
        "interface_name",
    )
    assert validate_interface_name("wg-wan-overlay") == "wg-wan-overlay"
    assert message_of(validate_interface_name, "wg/0") == (
        f"Interface name may only contain {NAME_RULE}; found '/'.",
        "interface_name",
    )
    assert message_of(validate_username, "admin user") == (
        f"Router username may only contain {NAME_RULE}; found ' '.",
        "mikrotik_username",
    )
    assert validate_username("wirewan") == "wirewan"


def test_field_name_can_be_overridden() -> None:
    assert message_of(validate_username, "a b", "mikrotik.username")[1] == "mikrotik.username"
    assert message_of(validate_port, "0", "mikrotik_port", "API port") == (
        "API port must be a whole number from 1 to 65535.",
        "mikrotik_port",
    )


def test_wan_name_is_a_friendly_display_name() -> None:
    assert validate_wan_name('  Büro & Friends "home" <lab>  ') == 'Büro & Friends "home" <lab>'
    assert message_of(validate_wan_name, "   ") == ("WAN name is required.", "name")
    assert message_of(validate_wan_name, "x" * 65) == (
        "WAN name is too long (65 characters); at most 64 are allowed.",
        "name",
    )
    assert message_of(validate_wan_name, "Home\nLab") == (f"WAN name {CONTROL}", "name")
    assert message_of(validate_wan_name, "Home\u2028Lab") == (f"WAN name {CONTROL}", "name")


def test_password_golden_messages() -> None:
    assert validate_password("p\"a'ss $x;{}\\") == "p\"a'ss $x;{}\\"
    assert validate_password(" leading space kept") == " leading space kept"
    assert message_of(validate_password, "") == ("Router password is required.", "mikrotik_password")
    assert message_of(validate_password, "x" * 129) == (
        "Router password is too long (129 characters); at most 128 are allowed.",
        "mikrotik_password",
    )
    assert message_of(validate_password, "pässword") == (
        "Router password may only contain printable ASCII characters (RouterOS does not handle other "
        "characters reliably in scripts); found 'ä'.",
        "mikrotik_password",
    )
    assert message_of(validate_password, "a\x00b") == (f"Router password {CONTROL}", "mikrotik_password")


# --- numbers and choices -----------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (65535, 65535), ("51820", 51820), ("00080", 80)])
def test_ports_accepted(value: object, expected: int) -> None:
    assert validate_port(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        0,
        65536,
        -1,
        "0",
        "65536",
        "-1",
        "+5",
        " 80",
        "80 ",
        "1e3",
        "0x50",
        "８０",
        True,
        80.0,
        None,
        "9" * 5000,
    ],
)
def test_ports_refused(value: object) -> None:
    assert message_of(validate_port, value) == (
        "Listen port must be a whole number from 1 to 65535.",
        "listen_port",
    )


def test_keepalive_and_mtu_bounds() -> None:
    assert validate_keepalive(0) == 0
    assert validate_keepalive("65535") == 65535
    assert message_of(validate_keepalive, 65536) == (
        "Keepalive must be a whole number from 0 to 65535.",
        "keepalive",
    )
    assert validate_mtu(1280) == 1280
    assert validate_mtu("9000") == 9000
    assert message_of(validate_mtu, 1279) == ("MTU must be a whole number from 1280 to 9000.", "mtu")
    assert message_of(validate_mtu, 9001) == ("MTU must be a whole number from 1280 to 9000.", "mtu")


def test_choices() -> None:
    assert validate_kind("mikrotik") == "mikrotik"
    assert validate_topology("hub_spoke") == "hub_spoke"
    assert validate_protocol("udp") == "udp"
    assert message_of(validate_kind, "router") == (
        "Peer type must be one of: mikrotik, server, client.",
        "kind",
    )
    assert message_of(validate_topology, "star") == (
        "Topology must be one of: mesh, hub_spoke, hybrid.",
        "topology",
    )
    assert message_of(validate_protocol, "TCP") == ("Protocol must be one of: tcp, udp.", "protocol")


# --- hosts -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.168.1.1", "192.168.1.1"),
        ("router.example.com", "router.example.com"),
        ("a-b.c1", "a-b.c1"),
        ("localhost", "localhost"),
        ("2001:DB8::0:1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("  203.0.113.10 ", "203.0.113.10"),
        ("x" * 63 + ".com", "x" * 63 + ".com"),
    ],
)
def test_hosts_accepted(text: str, expected: str) -> None:
    assert validate_host(text) == expected


def test_host_golden_messages() -> None:
    f = "mikrotik_host"
    assert message_of(validate_host, "999.1.1.1") == (
        "Management host '999.1.1.1' is not a valid IPv4 address.",
        f,
    )
    assert message_of(validate_host, "1.2.3") == ("Management host '1.2.3' is not a valid IPv4 address.", f)
    assert message_of(validate_host, "010.0.0.1") == (
        "Management host '010.0.0.1' is not a valid IPv4 address.",
        f,
    )
    assert message_of(validate_host, "0.0.0.0") == (
        "Management host cannot be the unspecified address 0.0.0.0.",
        f,
    )
    assert message_of(validate_host, "::") == ("Management host cannot be the unspecified address ::.", f)
    assert message_of(validate_host, "fe80::1%ether1") == (
        "Management host 'fe80::1%ether1': IPv6 zone ids (%...) are not supported.",
        f,
    )
    assert message_of(validate_host, "2001:db8::zz") == (
        "Management host '2001:db8::zz' is not a valid IPv6 address.",
        f,
    )
    assert message_of(validate_host, "my_router.lan") == (
        "Management host may only contain letters, digits, '-' and '.' (or be an IP address); found '_'.",
        f,
    )
    assert message_of(validate_host, "-router.lan") == (
        "Management host '-router.lan' is not a valid hostname: each dot-separated label must be 1-63 "
        "characters and cannot start or end with '-'.",
        f,
    )
    assert message_of(validate_host, "a..b") == (
        "Management host 'a..b' is not a valid hostname: each dot-separated label must be 1-63 "
        "characters and cannot start or end with '-'.",
        f,
    )
    assert message_of(validate_host, "x" * 64 + ".com")[0].startswith("Management host 'xxxx")
    assert message_of(validate_host, "a" * 254) == (
        "Management host is too long (254 characters); at most 253 are allowed.",
        f,
    )


# --- endpoints ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("vpn.example.com", ("vpn.example.com", 51820)),
        ("vpn.example.com:51821", ("vpn.example.com", 51821)),
        ("203.0.113.10:1", ("203.0.113.10", 1)),
        ("203.0.113.10", ("203.0.113.10", 51820)),
        (" 203.0.113.10:65535 ", ("203.0.113.10", 65535)),
        ("[2001:db8::1]:51820", ("2001:db8::1", 51820)),
        ("[2001:db8::1]", ("2001:db8::1", 51820)),
        ("2001:db8::1", ("2001:db8::1", 51820)),
    ],
)
def test_parse_endpoint(text: str | None, expected: tuple[str, int] | None) -> None:
    assert parse_endpoint(text, 51820) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host:0", "Endpoint port must be a whole number from 1 to 65535."),
        ("host:65536", "Endpoint port must be a whole number from 1 to 65535."),
        ("host:port", "Endpoint port must be a whole number from 1 to 65535."),
        ("[2001:db8::1]:99999", "Endpoint port must be a whole number from 1 to 65535."),
        (
            "host:",
            "Endpoint 'host:' ends with ':' but has no port; write host:port, e.g. vpn.example.com:51820, "
            "or just the host to use the listen port 51820.",
        ),
        (":51820", "Endpoint host is required."),
        (
            "2001:db8::1:51820:1",
            "Endpoint '2001:db8::1:51820:1' is not a valid IPv6 address. To give a port with an IPv6 "
            "address write [address]:port, e.g. [2001:db8::1]:51820.",
        ),
        (
            "[2001:db8::1:51820",
            "Endpoint '[2001:db8::1:51820' is malformed: write an IPv6 endpoint as [address]:port, "
            "e.g. [2001:db8::1]:51820.",
        ),
        (
            "[2001:db8::1]51820",
            "Endpoint '[2001:db8::1]51820' is malformed: write an IPv6 endpoint as [address]:port, "
            "e.g. [2001:db8::1]:51820.",
        ),
        (
            "[203.0.113.1]:51820",
            "Endpoint '[203.0.113.1]:51820': only IPv6 addresses go in brackets; write an IPv4 address "
            "or a hostname without them.",
        ),
        (
            "bad_host:51820",
            "Endpoint host may only contain letters, digits, '-' and '.' (or be an IP address); found '_'.",
        ),
        ("300.1.1.1:51820", "Endpoint host '300.1.1.1' is not a valid IPv4 address."),
        ("x" * 301, "Endpoint is too long (301 characters); at most 300 are allowed."),
        ("host:51820\n", f"Endpoint {CONTROL}"),
    ],
)
def test_parse_endpoint_golden_messages(text: str, message: str) -> None:
    assert message_of(parse_endpoint, text, 51820) == (message, "endpoint")


# --- guardrails --------------------------------------------------------------------------------


def test_endpoint_port_guardrail() -> None:
    check_endpoint_port(None, 51820, False)
    check_endpoint_port(51820, 51820, False)
    check_endpoint_port(443, 51820, True)
    with pytest.raises(GuardrailError) as info:
        check_endpoint_port(443, 51820, False)
    err = info.value
    assert (err.code, err.status, err.field) == ("guardrail", 422, "endpoint")
    assert err.message == (
        "Endpoint port 443 differs from listen port 51820. Other peers would send their handshakes to port "
        "443 while this peer listens on 51820: the packets land on the wrong WireGuard interface or are "
        "dropped by the firewall, and the tunnel silently never comes up (last-handshake = never). Use port "
        "51820 in the endpoint, or tick 'Has port-forward upstream' if a NAT box upstream translates "
        "external port 443 to internal port 51820."
    )


LOCKOUT = (
    "WireWAN would manage the router through the tunnel itself, so any deploy that disturbs the tunnel "
    "(key rotation, listen-port change, firewall rebuild) cuts the management connection and locks WireWAN "
    "out; the only way back in is on site or via another tunnel. Use the router's LAN gateway IP "
    "(e.g. 192.168.1.1) or its public IP / DDNS hostname instead."
)


def test_management_host_guardrail() -> None:
    tunnel_ip = IPv4Address("10.0.0.3")
    tunnel = IPv4Network("10.0.0.0/24")
    for ok in ("192.168.1.1", "router.example.com", "203.0.113.10", "10.0.1.1", "2001:db8::1"):
        check_management_host(ok, tunnel_ip, tunnel)
    with pytest.raises(GuardrailError) as info:
        check_management_host("10.0.0.3", tunnel_ip, tunnel)
    assert (info.value.field, info.value.code) == ("mikrotik_host", "guardrail")
    assert info.value.message == f"Management host 10.0.0.3 is this peer's tunnel IP. {LOCKOUT}"
    assert message_of(check_management_host, "10.0.0.9", tunnel_ip, tunnel) == (
        f"Management host 10.0.0.9 is inside the WAN's tunnel range 10.0.0.0/24. {LOCKOUT}",
        "mikrotik_host",
    )
    # The network address of the range is inside it too.
    assert message_of(check_management_host, "10.0.0.0", tunnel_ip, tunnel)[0].startswith(
        "Management host 10.0.0.0 is inside the WAN's tunnel range 10.0.0.0/24."
    )
