"""Hostile input through every field of every API body (issue 3, "Bad input").

Table-driven: HOSTILE holds the values, API_FIELDS the (target, field) pairs, ACCEPTED the few
places where a hostile value is legitimate. Each value in each field must get either a 4xx JSON
error `{"error", "message", "field"}` (never a 5xx) with no row saved or changed, or, where the field
allows it, be saved and shown back exactly as sent.

The HTML-form half reuses HOSTILE, TYPE_CONFUSION and the field names of API_FIELDS (the form
field for `mikrotik.host` is `mikrotik_host`: see `form_field_name`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import Peer, Service, Subnet, Wan

# --- the values ----------------------------------------------------------------------------------

HOSTILE: dict[str, str] = {
    "double_quote": 'a"b',
    "single_quote": "a'b",
    "ros_subst": "$[/system reset-configuration]",
    "ros_break": '"; /system reset-configuration; "',
    "newline": "a\nb",
    "carriage_return": "a\rb",
    "nul": "a\x00b",
    "long_10k": "A" * 10_240,
    "non_ascii": "Zürich-東京-ñ",
    "dot_dot": "../../etc/passwd",
    "script": "<script>alert(1)</script>",
    # Hostile-looking but built from a valid value, so a lax parser would take it.
    "valid_then_newline": "192.168.50.0/24\n/system reset",
    "valid_then_nul": "192.168.50.0/24\x00",
    "tab": "a\tb",
    "bidi": "a\u202eb",
}

# JSON values of the wrong type: each must be a 4xx too (not a 500 from a str method on an int).
TYPE_CONFUSION: dict[str, Any] = {
    "list": ["x"],
    "object": {"x": 1},
    "huge_int": 10**40,
    "negative": -1,
    "float": 1.5,
    "true": True,
}

# (target, field) -> names of HOSTILE values the field legitimately accepts.
ACCEPTED: dict[tuple[str, str], set[str]] = {
    # A display name: any printable text, shown HTML-escaped; never reaches a config or a router.
    ("wan", "name"): {
        "double_quote",
        "single_quote",
        "ros_subst",
        "ros_break",
        "non_ascii",
        "dot_dot",
        "script",
    },  # fmt: skip
    # A RouterOS password: printable ASCII, quotes and `$[` included (escaped when rendered).
    ("peer", "mikrotik.password"): {
        "double_quote",
        "single_quote",
        "ros_subst",
        "ros_break",
        "dot_dot",
        "script",
    },  # fmt: skip
}
# Wrong-typed values a field may take because they mean something there.
TYPE_ACCEPTED: dict[tuple[str, str], set[str]] = {
    ("peer", "is_hub"): {"true"},
    ("peer", "has_port_forward"): {"true"},
    ("peer", "mikrotik.use_tls"): {"true"},
    ("peer", "mikrotik.verify_cert"): {"true"},
    ("peer", "mikrotik.auto_deploy"): {"true"},
    ("subnet", "routed"): {"true"},
    ("subnet", "auto_nat"): {"true"},
    ("subnet_put", "routed"): {"true"},
    ("subnet_put", "nat"): {"true"},
    ("subnet_put", "auto_nat"): {"true"},
    ("wan", "mgmt_cidrs"): set(),
}


@dataclass(frozen=True)
class Target:
    """One API body: how to send a value in a field, and where to read it back."""

    name: str
    fields: tuple[str, ...]
    list_fields: tuple[str, ...] = ()


WAN_FIELDS = ("name", "tunnel_cidr", "services_cidr", "nat_pool_cidr", "topology", "interface_name",
              "listen_port", "keepalive", "mtu", "mgmt_cidrs", "dns", "tunnel_cidr6")  # fmt: skip
PEER_FIELDS = (
    "name", "kind", "is_hub", "hub_priority", "endpoint", "listen_port", "tunnel_ip", "has_port_forward",
    "public_key", "keepalive", "mikrotik.host", "mikrotik.port", "mikrotik.use_tls", "mikrotik.verify_cert",
    "mikrotik.username", "mikrotik.password", "mikrotik.auto_deploy",
)  # fmt: skip
SUBNET_FIELDS = ("cidr", "routed", "auto_nat")
SUBNET_PUT_FIELDS = ("routed", "nat", "auto_nat")
SERVICE_FIELDS = ("name", "protocol", "local_ip", "local_port", "shared_ip", "shared_port")

# (target, field): every field of every API body. Targets: "wan" (create and PATCH), "peer" (create
# and PATCH), "subnet" (POST, JSON and query args), "subnet_put" (PUT, JSON and query), "service".
API_FIELDS: list[tuple[str, str]] = (
    [("wan", f) for f in WAN_FIELDS]
    + [("peer", f) for f in PEER_FIELDS]
    + [("subnet", f) for f in SUBNET_FIELDS]
    + [("subnet_put", f) for f in SUBNET_PUT_FIELDS]
    + [("service", f) for f in SERVICE_FIELDS]
)


def form_field_name(field: str) -> str:
    """The HTML form's name for an API field (nested mikrotik.* are flat in forms)."""
    return field.replace(".", "_")


# --- helpers -----------------------------------------------------------------------------------


def _counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m)) for m in (Wan, Peer, Subnet, Service))


def _set(body: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in body.items()}
    if field.startswith("mikrotik."):
        out.setdefault("mikrotik", {})[field.split(".", 1)[1]] = value
    else:
        out[field] = value
    return out


def _read_back(doc: dict[str, Any], field: str) -> Any:
    if field.startswith("mikrotik."):
        return (doc.get("mikrotik") or {}).get(field.split(".", 1)[1])
    return doc.get(field)


class World:
    """A WAN with a MikroTik peer (subnet + service) and a second peer, built through the API."""

    def __init__(self, api: Any) -> None:
        self.api = api
        wan = api.post("/api/wan", json={"name": "corp"})
        assert wan.status_code == 201
        self.wan = wan.get_json()["id"]
        gw = api.post(f"/api/peers/wan/{self.wan}", json={
            "name": "gw", "kind": "mikrotik", "endpoint": "gw.example.com",
            "mikrotik": {"host": "192.168.88.1", "username": "admin", "password": "pw"},
        })  # fmt: skip
        assert gw.status_code == 201, gw.get_json()
        self.peer = gw.get_json()["id"]
        sub = api.post(f"/api/peers/{self.peer}/subnets", json={"cidr": "192.168.88.0/24"})
        assert sub.status_code == 201
        self.subnet = sub.get_json()["id"]
        other = api.post(f"/api/peers/wan/{self.wan}", json={"name": "other", "kind": "server"})
        assert other.status_code == 201
        self.other = other.get_json()["id"]
        svc = api.post(f"/api/peers/{self.peer}/services", json={
            "name": "web", "protocol": "tcp", "local_ip": "192.168.88.10", "local_port": 80})  # fmt: skip
        assert svc.status_code == 201

    def views(self) -> dict[str, Any]:
        """Everything the API shows, to prove a refused request changed nothing."""
        return {
            "wans": self.api.get("/api/wan").get_json(),
            "peers": self.api.get(f"/api/peers/wan/{self.wan}").get_json(),
        }

    def requests(self, target: str, field: str, value: Any) -> list[tuple[str, Callable[[], Any], Any]]:
        """(label, send, read_back) for every way the field can be sent; read_back(resp) -> shown value."""
        api = self.api
        out: list[tuple[str, Callable[[], Any], Any]] = []
        if target == "wan":
            body = _set({"name": "new-wan"}, field, value)
            out.append(("POST /api/wan", lambda: api.post("/api/wan", json=body),
                        lambda r: api.get(f"/api/wan/{r.get_json()['id']}").get_json()[field]))  # fmt: skip
            out.append(("PATCH /api/wan", lambda: api.patch(f"/api/wan/{self.wan}", json={field: value}),
                        lambda r: api.get(f"/api/wan/{self.wan}").get_json()[field]))  # fmt: skip
        elif target == "peer":
            base = {"name": "new-peer", "kind": "mikrotik", "mikrotik": {"host": "192.168.77.1", "password": "pw"}}
            body = _set(base, field, value)
            out.append(("POST /api/peers/wan", lambda: api.post(f"/api/peers/wan/{self.wan}", json=body),
                        lambda r: _read_back(api.get(f"/api/peers/{r.get_json()['id']}").get_json(), field)))  # fmt: skip
            out.append(("PATCH /api/peers", lambda: api.patch(f"/api/peers/{self.peer}", json=_set({}, field, value)),
                        lambda r: _read_back(api.get(f"/api/peers/{self.peer}").get_json(), field)))  # fmt: skip
        elif target == "subnet":
            body = _set({"cidr": "192.168.50.0/24"}, field, value)
            url = f"/api/peers/{self.other}/subnets"
            shown = lambda r: r.get_json().get(field)  # noqa: E731
            out.append(("POST subnets (JSON)", lambda: api.post(url, json=body), shown))
            if isinstance(value, str):
                out.append(("POST subnets (query)", lambda: api.post(url, query_string=body), shown))
        elif target == "subnet_put":
            url = f"/api/peers/{self.peer}/subnets/{self.subnet}"
            shown = lambda r: r.get_json().get(field)  # noqa: E731
            out.append(("PUT subnet (JSON)", lambda: api.put(url, json={field: value}), shown))
            if isinstance(value, str):
                out.append(("PUT subnet (query)", lambda: api.put(url, query_string={field: value}), shown))
        elif target == "service":
            base = {"name": "ssh", "protocol": "tcp", "local_ip": "192.168.88.2", "local_port": 22}
            body = _set(base, field, value)
            out.append(("POST services", lambda: api.post(f"/api/peers/{self.peer}/services", json=body),
                        lambda r: r.get_json().get(field)))  # fmt: skip
        else:
            raise AssertionError(target)
        return out


_SAME = object()


def _check(app: Flask, world: World, target: str, field: str, label: str, value: Any, accepted: bool,
           send: Callable[[], Any], read_back: Any, shown_as: Any = _SAME,
           optional: bool = False) -> list[str]:  # fmt: skip
    """`accepted`: the value must be saved (or may be, with `optional`); else it must be refused."""
    problems: list[str] = []
    where = f"{target}.{field} via {label} = {value!r:.60}"
    before_counts = _counts(app)
    before_views = world.views()
    resp = send()
    status = resp.status_code
    body = resp.get_json(silent=True)
    if status >= 500:
        return [f"{where}: {status} {resp.get_data(as_text=True)[:200]}"]
    if 200 <= status < 300:
        if not accepted:
            problems.append(f"{where}: accepted ({status}) but should be refused")
        elif read_back is not None and field != "mikrotik.password":
            expected = value if shown_as is _SAME else shown_as
            shown = read_back(resp)
            if shown is not None and shown != expected:
                problems.append(f"{where}: saved but shown back as {shown!r:.60}, not {expected!r:.60}")
        if field == "mikrotik.password" and value in resp.get_data(as_text=True):
            problems.append(f"{where}: the password was echoed")
        return problems
    if not 400 <= status < 500:
        return [f"{where}: unexpected status {status}"]
    if not isinstance(body, dict) or set(body) != {"error", "message", "field"}:
        problems.append(f"{where}: {status} without the JSON error shape: {resp.get_data(as_text=True)[:200]}")
    elif not body["message"] or not body["error"]:
        problems.append(f"{where}: empty error/message {body}")
    elif isinstance(value, str) and len(value) > 200 and value in body["message"]:
        problems.append(f"{where}: the 10 kB value was echoed in the message")
    elif isinstance(value, str) and "\x00" in body["message"]:
        problems.append(f"{where}: a NUL was echoed in the message")
    if accepted and not optional and status != 409:
        problems.append(f"{where}: refused ({status} {body}) but the field allows it")
    if _counts(app) != before_counts:
        problems.append(f"{where}: refused ({status}) but rows changed {before_counts} -> {_counts(app)}")
    elif world.views() != before_views:
        problems.append(f"{where}: refused ({status}) but a record changed")
    return problems


def _cleanup(app: Flask, world: World) -> None:
    """Undo an accepted request so the next value starts from the same world."""
    with app.app_context():
        for wan in db.session.scalars(select(Wan).where(Wan.id != world.wan)):
            db.session.delete(wan)
        for peer in db.session.scalars(select(Peer).where(Peer.id.not_in([world.peer, world.other]))):
            db.session.delete(peer)
        for sub in db.session.scalars(select(Subnet).where(Subnet.id != world.subnet)):
            db.session.delete(sub)
        for svc in db.session.scalars(select(Service).where(Service.name != "web")):
            db.session.delete(svc)
        wan = db.session.get(Wan, world.wan)
        wan.name = "corp"
        peer = db.session.get(Peer, world.peer)
        peer.name, peer.kind = "gw", "mikrotik"
        db.session.commit()


def _run(app: Flask, api: Any, target: str, field: str, values: dict[str, Any], accepted: set[str],
         shown_as: Any = _SAME, world: World | None = None, optional: bool = False) -> World:  # fmt: skip
    world = world or World(api)
    problems: list[str] = []
    for value_name, value in values.items():
        for label, send, read_back in world.requests(target, field, value):
            problems += _check(app, world, target, field, label, value, value_name in accepted, send, read_back,
                               shown_as, optional)  # fmt: skip
            _cleanup(app, world)
    assert not problems, "\n".join(problems)
    return world


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "field"), API_FIELDS, ids=[f"{t}.{f}" for t, f in API_FIELDS])
def test_hostile_strings_in_every_api_field(app: Flask, api: Any, target: str, field: str) -> None:
    _run(app, api, target, field, HOSTILE, ACCEPTED.get((target, field), set()))


@pytest.mark.parametrize(("target", "field"), API_FIELDS, ids=[f"{t}.{f}" for t, f in API_FIELDS])
def test_wrong_json_types_in_every_api_field(app: Flask, api: Any, target: str, field: str) -> None:
    accepted = TYPE_ACCEPTED.get((target, field), set())
    _run(app, api, target, field, TYPE_CONFUSION, accepted)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", 'Büro "Nord" <script>alert(1)</script>'), ("name", "$[/system reset]"), ("name", "../../x")],
)
def test_accepted_wan_names_round_trip_exactly(api: Any, field: str, value: str) -> None:
    resp = api.post("/api/wan", json={field: value})
    assert resp.status_code == 201
    wan_id = resp.get_json()["id"]
    assert resp.get_json()[field] == value
    assert api.get(f"/api/wan/{wan_id}").get_json()[field] == value
    assert [w[field] for w in api.get("/api/wan").get_json()] == [value]
    assert resp.mimetype == "application/json"


def test_hostile_router_password_is_stored_exactly_and_never_shown(app: Flask, api: Any) -> None:
    from app import crypto

    password = '"; /system reset-configuration; $[:put "x"] \'q\''
    wan = api.post("/api/wan", json={"name": "corp"}).get_json()
    resp = api.post(f"/api/peers/wan/{wan['id']}", json={
        "name": "gw", "kind": "mikrotik", "mikrotik": {"host": "192.168.88.1", "password": password}})  # fmt: skip
    assert resp.status_code == 201
    assert resp.get_json()["mikrotik"]["password_set"] is True
    assert "reset-configuration" not in resp.get_data(as_text=True)
    with app.app_context():
        assert crypto.decrypt(db.session.get(Peer, resp.get_json()["id"]).mt_password_enc) == password


def test_huge_bodies_are_refused_cleanly(app: Flask, api: Any) -> None:
    before = _counts(app)
    many = '{"name": "w", "mgmt_cidrs": [' + ", ".join(['"10.0.0.0/8"'] * 10_000) + "]}"
    resp = api.post("/api/wan", data=many, headers={"Content-Type": "application/json"})
    assert_json_error(resp, 422)
    assert resp.get_json()["field"] == "mgmt_cidrs"
    assert _counts(app) == before


def test_bodies_over_the_size_limit_are_413(app: Flask, api: Any) -> None:
    before = _counts(app)
    huge = api.post("/api/wan", data='{"name": "' + "A" * (3 * 1024 * 1024) + '"}',
                    headers={"Content-Type": "application/json"})  # fmt: skip
    assert huge.status_code == 413
    assert huge.get_json()["error"] == "too_large"
    assert _counts(app) == before


@pytest.mark.parametrize("url", ["/api/wan", "/api/peers/wan/1"])
def test_deeply_nested_json_is_400(app: Flask, api: Any, url: str) -> None:
    api.post("/api/wan", json={"name": "corp"})
    before = _counts(app)
    deep = '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"
    resp = api.post(url, data=deep, headers={"Content-Type": "application/json"})
    assert_json_error(resp, 400)
    assert _counts(app) == before


def assert_json_error(resp: Any, status: int) -> None:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:300])
    assert set(resp.get_json()) == {"error", "message", "field"}


# A valid value per string-typed field, and how the API shows it back once saved.
VALID: dict[tuple[str, str], tuple[Any, Any]] = {
    ("wan", "name"): ("corp2", "corp2"),
    ("wan", "tunnel_cidr"): ("10.0.0.0/23", "10.0.0.0/23"),
    ("wan", "services_cidr"): ("10.0.4.0/23", "10.0.4.0/23"),
    ("wan", "nat_pool_cidr"): ("172.16.0.0/13", "172.16.0.0/13"),
    ("wan", "topology"): ("hub_spoke", "hub_spoke"),
    ("wan", "interface_name"): ("wg1", "wg1"),
    ("wan", "listen_port"): ("51820", 51820),
    ("wan", "keepalive"): ("20", 20),
    ("wan", "mtu"): ("1400", 1400),
    ("wan", "mgmt_cidrs"): (["192.0.2.0/24"], ["192.0.2.0/24"]),
    ("wan", "dns"): (["192.0.2.53"], ["192.0.2.53"]),
    ("wan", "tunnel_cidr6"): ("fd10:77::/64", "fd10:77::/64"),
    ("peer", "name"): ("p9", "p9"),
    ("peer", "kind"): ("mikrotik", "mikrotik"),
    ("peer", "is_hub"): ("true", True),
    ("peer", "hub_priority"): ("5", 5),
    ("peer", "endpoint"): ("198.51.100.9:51820", "198.51.100.9:51820"),
    ("peer", "listen_port"): ("51820", 51820),
    ("peer", "tunnel_ip"): ("10.0.0.9", "10.0.0.9"),
    ("peer", "has_port_forward"): ("true", True),
    ("peer", "public_key"): (
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
        "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=",
    ),
    ("peer", "keepalive"): ("25", 25),
    ("peer", "mikrotik.host"): ("192.168.77.2", "192.168.77.2"),
    ("peer", "mikrotik.port"): ("8729", 8729),
    ("peer", "mikrotik.use_tls"): ("true", True),
    ("peer", "mikrotik.verify_cert"): ("true", True),
    ("peer", "mikrotik.username"): ("api", "api"),
    # Not base64: a random public key in the same answer can never contain it by chance.
    ("peer", "mikrotik.password"): ("router-pw#2", None),
    ("peer", "mikrotik.auto_deploy"): ("true", True),
    ("subnet", "cidr"): ("192.168.50.0/24", "192.168.50.0/24"),
    ("subnet", "routed"): ("false", False),
    ("subnet", "auto_nat"): ("true", None),
    ("subnet_put", "routed"): ("false", False),
    ("subnet_put", "nat"): ("false", None),
    ("subnet_put", "auto_nat"): ("true", None),
    ("service", "name"): ("ssh2", "ssh2"),
    ("service", "protocol"): ("udp", "udp"),
    ("service", "local_ip"): ("192.168.88.3", "192.168.88.3"),
    ("service", "local_port"): ("2222", 2222),
    ("service", "shared_ip"): ("10.0.5.77", "10.0.5.77"),
    ("service", "shared_port"): ("2200", 2200),
}
SUFFIXES = {"newline": "\n", "cr": "\r", "crlf": "\r\n", "nul": "\x00", "tab": "\t", "line_sep": "\u2028"}


def _with_suffix(valid: Any, suffix: str) -> Any:
    return [valid[0] + suffix] if isinstance(valid, list) else valid + suffix


@pytest.mark.parametrize(("target", "field"), API_FIELDS, ids=[f"{t}.{f}" for t, f in API_FIELDS])
def test_valid_values_with_a_control_character_appended(app: Flask, api: Any, target: str, field: str) -> None:
    """`10.0.0.9\n` and friends: refused, or (booleans and numbers) parsed, but never stored with the character."""
    valid, shown = VALID[(target, field)]
    # The valid value itself is accepted and shown as expected (so the refusals below are about the suffix).
    world = _run(app, api, target, field, {"valid": valid}, {"valid"}, shown)
    values = {name: _with_suffix(valid, suffix) for name, suffix in SUFFIXES.items()}
    # Whitespace around a boolean or a number cannot smuggle anything anywhere: accepting it is fine
    # as long as what is stored is the parsed value.
    tolerated = set(values) - {"nul"} if isinstance(shown, bool | int) or valid in ("true", "false") else set()
    _run(app, api, target, field, values, tolerated, shown, world, optional=True)


# --- the accounts API and query-string ids (issue 11) ----------------------------------------------


@pytest.mark.parametrize("field", ["role", "active"])
def test_hostile_values_in_the_user_patch(app: Flask, client: Any, field: str) -> None:
    from app.models import User
    from tests.conftest import make_token, make_user

    make_user(app, "admin@example.com", "admin")
    target = make_user(app, "op@example.com", "operator")
    headers = {"Authorization": f"Bearer {make_token(app, 'admin@example.com')}"}
    problems = []
    for name, value in {**HOSTILE, **TYPE_CONFUSION}.items():
        if (field, value) == ("active", True):
            continue  # legitimate (and already so)
        resp = client.patch(f"/api/users/{target}", json={field: value}, headers=headers)
        if resp.status_code >= 500 or resp.status_code < 400:
            problems.append(f"{field}={name}: {resp.status_code}")
            continue
        if set(resp.get_json() or {}) != {"error", "message", "field"}:
            problems.append(f"{field}={name}: no JSON error shape")
        with app.app_context():
            user = db.session.get(User, target)
            if (user.role, user.active, user.session_generation) != ("operator", True, 0):
                problems.append(f"{field}={name}: refused but the user changed")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_query_values_for_ids_and_flags(api: Any, name: str) -> None:
    value = HOSTILE[name]
    for url, params in (("/api/jobs", {"wan_id": value}), ("/api/jobs", {"peer_id": value}),
                        ("/api/tokens", {"all": value})):  # fmt: skip
        resp = api.get(url, query_string=params)
        assert resp.status_code in (200, 404, 422), (url, name, resp.status_code)
        if resp.status_code != 200:
            assert set(resp.get_json()) == {"error", "message", "field"}
