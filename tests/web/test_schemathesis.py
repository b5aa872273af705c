"""Schemathesis against the live app (issue 7): every documented operation, generated inputs.

The document is read once from a throwaway app (the routes are the same in every app); each operation
is then a test of its own against the `app` fixture (a fresh database), with an operator's bearer token
and a seeded WAN (a MikroTik with router access, a server, a client, LANs, published services, a queued
router job); half the generated ids are swapped for 1-3 so they name real objects. Checks: no 5xx, every answer's status is documented
and its body matches the documented schema (plus its Content-Type and documented headers).
Positive and negative generation; router jobs only queue (RQ, no worker), nothing reaches a router.
"""

from __future__ import annotations

import tempfile
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import create_app
from tests.conftest import TEST_SECRETS, make_token, make_user

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
# Generated cases per operation (positive and negative data), on top of schemathesis's example and
# coverage cases (boundaries, each documented enum value, missing required fields, wrong types).
MAX_EXAMPLES = 20


def seed(app: Flask) -> str:
    """The operator's token, after creating the WAN described above through the API."""
    make_user(app, "admin@example.com", "admin")
    make_user(app, "op@example.com", "operator")
    token = make_token(app, "op@example.com")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def post(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = client.post(url, json=body, headers=headers)
        assert resp.status_code in (201, 202), (url, resp.status_code, resp.get_data(as_text=True))
        return resp.get_json()

    wan = post("/api/wan", {"name": "corp", "mgmt_cidrs": ["192.168.88.0/24"]})
    # Peer 1 is the router, so that id 1 (the lowest an id may be) reaches every kind of operation.
    router = post(
        f"/api/peers/wan/{wan['id']}",
        {"name": "branch", "kind": "mikrotik",
         "mikrotik": {"host": "192.168.88.1", "username": "wirewan", "password": "router-pass"}},
    )  # fmt: skip
    server = post(f"/api/peers/wan/{wan['id']}", {"name": "hq", "kind": "server", "is_hub": True,
                                                  "endpoint": "203.0.113.10:51820"})  # fmt: skip
    post(f"/api/peers/wan/{wan['id']}", {"name": "laptop", "kind": "client"})
    post(f"/api/peers/{router['id']}/subnets", {"cidr": "192.168.88.0/24"})
    post(f"/api/peers/{server['id']}/subnets", {"cidr": "192.168.1.0/24"})
    post(f"/api/peers/{router['id']}/services",
         {"name": "web", "protocol": "tcp", "local_ip": "192.168.88.10", "local_port": 80})  # fmt: skip
    post(f"/api/peers/{server['id']}/services",
         {"name": "ssh", "protocol": "tcp", "local_ip": "192.168.1.10", "local_port": 22})  # fmt: skip
    post(f"/api/peers/{router['id']}/mikrotik/test-connection")
    return token


@pytest.fixture
def seeded_token(app: Flask) -> str:
    return seed(app)


def _document_app() -> Flask:
    """An app only to serve the document from (no database is touched)."""
    return create_app({**TEST_SECRETS, "TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                       "INSTANCE_PATH": tempfile.mkdtemp(prefix="wirewan-openapi-")})  # fmt: skip


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", _document_app())
SEEDED_IDS = st.integers(min_value=1, max_value=3)


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Half the generated cases keep their ids (mostly 404s: unknown, huge), half name seeded objects."""
    if not path_parameters:
        return st.just(path_parameters)
    known = {name: SEEDED_IDS for name, value in path_parameters.items() if isinstance(value, int)}
    if not known:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.fixed_dictionaries({**{k: st.just(v) for k, v in path_parameters.items()}, **known}),
    )


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms(case: Any, app: Flask, seeded_token: str) -> None:
    case.call_and_validate(app=app, headers={"Authorization": f"Bearer {seeded_token}"}, checks=CHECKS)


# --- what schemathesis found -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/wan/439250817117952409600",
        "/api/peers/439250817117952409600",
        "/api/peers/1/subnets/439250817117952409600",
        "/api/jobs/9223372036854775808",
    ],
)
def test_ids_beyond_64_bits_are_404_not_500(api: Any, url: str) -> None:
    """SQLite cannot bind such a number (OverflowError → 500); no row can have it."""
    resp = api.get(url) if "subnets" not in url else api.delete(url)
    assert resp.status_code == 404, resp.get_data(as_text=True)
    assert resp.get_json()["error"] == "not_found"
    assert api.post("/api/peers/439250817117952409600/services", json={"name": "x"}).status_code == 404


def test_unauthenticated_huge_id_is_still_401(client: Any) -> None:
    assert client.get("/api/wan/439250817117952409600").status_code == 401


def test_job_filters_out_of_range(api: Any) -> None:
    # No row can have such an id: 404, as for an id in a path (issue 11).
    assert api.get("/api/jobs?wan_id=99999999999999999999999").status_code == 404
    assert api.get("/api/jobs?peer_id=-99999999999999999999999").status_code == 404
    # A negative LIMIT is "no limit" to SQLite and an error on PostgreSQL: it is taken as 1.
    resp = api.get("/api/jobs?limit=-3")
    assert resp.status_code == 200 and resp.get_json() == []
