"""The HTML-form half of the hostile-input table (issue 3, "Bad input").

Every hostile value of tests/web/test_hostile_input.py goes through every text field of every form:
the answer is the form again (422) with a message under a field, or a 303 where the field legitimately
takes the value; never a 500, never a half-saved row, and whatever is echoed is HTML-escaped.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from app.extensions import db
from app.models import Peer, Service, Subnet, Wan
from tests.web.test_hostile_input import HOSTILE

WAN_FORM = {
    "name": "acme",
    "topology": "mesh",
    "tunnel_cidr": "10.0.0.0/24",
    "services_cidr": "10.0.5.0/24",
    "nat_pool_cidr": "172.16.0.0/12",
    "interface_name": "wg-wan-overlay",
    "listen_port": "51820",
    "keepalive": "25",
    "mtu": "1420",
    "mgmt_cidrs": "",
    "dns": "",
}
PEER_FORM = {
    "name": "branch",
    "kind": "mikrotik",
    "endpoint": "198.51.100.7",
    "listen_port": "51820",
    "tunnel_ip": "",
    "keepalive": "",
    "public_key": "",
    "mikrotik_host": "192.168.88.1",
    "mikrotik_port": "8728",
    "mikrotik_username": "wirewan",
    "mikrotik_password": "pw",
    "subnet": "",
    "subnet_routed": "y",
}
SUBNET_FORM = {"cidr": "192.168.60.0/24", "routed": "y"}
SERVICE_FORM = {
    "name": "web",
    "protocol": "tcp",
    "local_ip": "192.168.1.10",
    "local_port": "80",
    "shared_ip": "",
    "shared_port": "",
}

FORMS: dict[str, tuple[str, dict[str, str]]] = {
    "wan_new": ("/wans/new", WAN_FORM),
    "wan_edit": ("/wans/{wan}/edit", WAN_FORM),
    "peer_new": ("/wans/{wan}/peers/new", PEER_FORM),
    "peer_edit": ("/peers/{peer}/edit", PEER_FORM),
    "subnet": ("/peers/{peer}/subnets", SUBNET_FORM),
    "service": ("/peers/{peer}/services", SERVICE_FORM),
}
ACCEPTED = {
    ("wan_new", "name"): {"double_quote", "single_quote", "ros_subst", "ros_break", "non_ascii", "dot_dot", "script"},
    ("wan_edit", "name"): {"double_quote", "single_quote", "ros_subst", "ros_break", "non_ascii", "dot_dot", "script"},
    ("peer_new", "mikrotik_password"): {"double_quote", "single_quote", "ros_subst", "ros_break", "dot_dot", "script"},
    ("peer_edit", "mikrotik_password"): {"double_quote", "single_quote", "ros_subst", "ros_break", "dot_dot", "script"},
}
# Select fields only take their choices; a hostile value there is refused like any other.
CASES = [
    (form, field)
    for form, (_, body) in FORMS.items()
    for field in body
    if field not in ("subnet_routed", "routed") and not (form == "peer_edit" and field == "subnet")  # not on edit
]


def counts(app: Flask) -> tuple[int, ...]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count(m.id))) for m in (Wan, Peer, Subnet, Service))


def snapshot(app: Flask) -> list[Any]:
    with app.app_context():
        wan, peer = db.session.get(Wan, 1), db.session.get(Peer, 1)
        return [
            wan.name,
            wan.tunnel_cidr,
            wan.interface_name,
            peer.name,
            peer.endpoint_host,
            peer.mt_host,
            peer.mt_password_enc,
            peer.tunnel_ip,
            peer.keepalive,
        ]


@pytest.fixture
def world(admin_browser: Any) -> Any:
    assert admin_browser.post("/wans/new", {**WAN_FORM, "name": "home"}).status_code == 303
    data = {**PEER_FORM, "name": "hq", "kind": "server", "endpoint": "203.0.113.1", "subnet": "192.168.1.0/24"}
    assert admin_browser.post("/wans/1/peers/new", data).status_code == 303
    return admin_browser


@pytest.mark.parametrize("form,field", CASES)
def test_hostile_values_in_every_form_field(app: Flask, world: Any, form: str, field: str) -> None:
    url_template, valid = FORMS[form]
    url = url_template.format(wan=1, peer=1)
    for label, value in HOSTILE.items():
        before, state = counts(app), snapshot(app)
        resp = world.post(url, {**valid, field: value})
        body = resp.get_data(as_text=True)
        assert resp.status_code < 500, (form, field, label)
        assert "<script>alert(1)</script>" not in body, (form, field, label)
        if label in ACCEPTED.get((form, field), set()):
            assert resp.status_code == 303, (form, field, label, resp.status_code)
            _undo(app, form)
            continue
        assert resp.status_code == 422, (form, field, label, resp.status_code)
        assert '<div class="error">' in body or 'class="flash flash-error"' in body, (form, field, label)
        assert counts(app) == before and snapshot(app) == state, (form, field, label)


def _undo(app: Flask, form: str) -> None:
    """Put the world back after an accepted value so the next one starts from the same rows."""
    with app.app_context():
        if form == "wan_new":
            db.session.delete(db.session.scalar(select(Wan).order_by(Wan.id.desc())))
        elif form == "wan_edit":
            db.session.get(Wan, 1).name = "home"
        elif form == "peer_new":
            db.session.delete(db.session.scalar(select(Peer).order_by(Peer.id.desc())))
        elif form == "peer_edit":
            peer = db.session.get(Peer, 1)
            peer.name, peer.kind, peer.endpoint_host = "hq", "server", "203.0.113.1"
        db.session.commit()


# --- account forms (issue 11): the token form with its expiry, and the admin's user forms ----------

ACCOUNT_FORMS: dict[str, tuple[str, dict[str, str]]] = {
    "token": ("/account/tokens", {"tok-name": "script", "tok-expires_in_days": "30"}),
    "user_new": ("/users/", {"email": "new@example.com", "password": "long-enough", "role": "viewer"}),
    "user_role": ("/users/1/role", {"role": "admin"}),
}
# A token name is a label, shown escaped: printable hostile text is fine there.
ACCOUNT_ACCEPTED = {
    ("token", "tok-name"): {"double_quote", "single_quote", "ros_subst", "ros_break", "non_ascii", "dot_dot", "script",
                            "bidi", "long_10k"},
    # Any printable password of 8-256 characters.
    ("user_new", "password"): {"ros_subst", "ros_break", "non_ascii", "dot_dot", "script"},
}  # fmt: skip
ACCOUNT_CASES = [(form, field) for form, (_, body) in ACCOUNT_FORMS.items() for field in body]


def _account_rows(app: Flask) -> tuple[Any, ...]:
    from app.models import ApiToken, User

    with app.app_context():
        users = tuple(db.session.execute(select(User.email, User.role, User.active).order_by(User.id)).all())
        return users, db.session.scalar(select(func.count(ApiToken.id)))


@pytest.mark.parametrize("form,field", ACCOUNT_CASES)
def test_hostile_values_in_account_forms(app: Flask, admin_browser: Any, form: str, field: str) -> None:
    url, valid = ACCOUNT_FORMS[form]
    admin_browser.get("/account")
    for label, value in HOSTILE.items():
        before = _account_rows(app)
        resp = admin_browser.post(url, {**valid, field: value})
        body = resp.get_data(as_text=True)
        assert resp.status_code < 500, (form, field, label)
        assert "<script>alert(1)</script>" not in body, (form, field, label)
        accepted = label in ACCOUNT_ACCEPTED.get((form, field), set())
        if form == "token" and resp.status_code == 200 and accepted:
            continue  # a token was made with a hostile (escaped) name
        if form == "user_role":
            assert resp.status_code == 303 and _account_rows(app) == before, (field, label)
            continue
        if form == "user_new" and accepted:
            assert resp.status_code == 303, (field, label, resp.status_code)
            with app.app_context():
                from app.models import User

                db.session.execute(db.delete(User).where(User.email == "new@example.com"))
                db.session.commit()
            continue
        assert resp.status_code in (400, 422), (form, field, label, resp.status_code)
        assert '<div class="error">' in body, (form, field, label)
        assert _account_rows(app) == before, (form, field, label)
