"""The OpenAPI document and the docs page (issue 7).

The document must be valid OpenAPI 3.1, name every route under /api/ with its methods (walked from
the URL map, so a new endpoint cannot be forgotten), and hold the contract of ../shared/API.md:
schemas, enums, auth schemes, error shapes, content types. The docs page must load with local assets
only.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from app.blueprints.api.openapi import api_rules, openapi_path

IGNORED_METHODS = {"HEAD", "OPTIONS"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture
def doc(client: Any) -> dict[str, Any]:
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    assert resp.mimetype == "application/json"
    return resp.get_json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in {"get", "put", "post", "delete", "patch"}
    ]


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


# --- the document ----------------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["info"]["title"] == "WireWAN API"


def test_every_api_route_and_method_is_documented(app: Flask, doc: dict[str, Any]) -> None:
    rules = api_rules(app)
    assert len(rules) > 20
    expected: set[tuple[str, str]] = set()
    for rule in rules:
        path, params = openapi_path(rule.rule)
        assert path in doc["paths"], f"{rule.rule} ({rule.endpoint}) is not in the OpenAPI document"
        item = doc["paths"][path]
        assert {p["name"] for p in item.get("parameters", [])} == {p["name"] for p in params}
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            assert method.lower() in item, f"{method} {rule.rule} ({rule.endpoint}) is not documented"
            expected.add((path, method.lower()))
    # ...and nothing is documented that the app does not serve.
    assert {(p, m) for p, m, _ in operations(doc)} == expected


def test_path_parameters_and_operation_ids(doc: dict[str, Any]) -> None:
    assert doc["paths"]["/api/wan/{wan_id}"]["parameters"] == [
        {"name": "wan_id", "in": "path", "required": True, "description": "WAN id.",
         "schema": {"type": "integer", "minimum": 1}},
    ]  # fmt: skip
    ids = [op["operationId"] for _, _, op in operations(doc)]
    assert len(ids) == len(set(ids))


def test_every_operation_has_a_summary_a_tag_and_a_success(doc: dict[str, Any]) -> None:
    for path, method, op in operations(doc):
        assert op["summary"] and op["tags"], (path, method)
        assert any(code.startswith("2") for code in op["responses"]), (path, method)


def test_every_error_answer_has_the_error_shape(doc: dict[str, Any]) -> None:
    error = doc["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "message", "field"}
    assert error["properties"]["field"]["type"] == ["string", "null"]
    for path, method, op in operations(doc):
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert resolve(doc, response)["content"]["application/json"]["schema"] == ERROR_REF, (path, method)


def test_the_contracts_error_statuses_are_described(doc: dict[str, Any]) -> None:
    responses = doc["components"]["responses"]
    for name in ("Malformed", "Unauthorized", "Forbidden", "NotFound", "Conflict", "TooLarge", "Invalid",
                 "Throttled"):  # fmt: skip
        assert responses[name]["content"]["application/json"]["schema"] == ERROR_REF
    ops = {(p, m): op for p, m, op in operations(doc)}
    create_subnet = ops[("/api/peers/{peer_id}/subnets", "post")]["responses"]
    assert {"400", "401", "403", "404", "409", "413", "422"} <= set(create_subnet)


def test_auth_schemes(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["sessionCookie"]["in"] == "cookie" and "X-CSRFToken" in schemes["sessionCookie"]["description"]
    assert doc["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
    for path, method, op in operations(doc):
        public = path in ("/api/openapi.json", "/api/docs")
        assert (op.get("security") == []) is public, (path, method)
        assert ("401" in op["responses"]) is not public, (path, method)


def test_contract_schemas_and_enums(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    for name in ("WAN", "Peer", "Subnet", "Service", "Conflict", "Topology", "Job", "JobAccepted", "Error", "Me",
                 "WANCreate", "WANUpdate", "PeerCreate", "PeerUpdate", "SubnetCreate", "SubnetUpdate",
                 "ServiceCreate", "Deploy"):  # fmt: skip
        assert name in schemas
    assert schemas["PeerCreate"]["properties"]["kind"]["enum"] == ["mikrotik", "server", "client"]
    assert set(schemas["PeerCreate"]["required"]) == {"name", "kind"}
    assert schemas["WANCreate"]["properties"]["topology"]["enum"] == ["mesh", "hub_spoke", "hybrid"]
    assert schemas["WANCreate"]["required"] == ["name"]
    assert schemas["ServiceCreate"]["properties"]["protocol"]["enum"] == ["tcp", "udp"]
    assert schemas["Conflict"]["properties"]["severity"]["enum"] == ["critical", "warning"]
    assert schemas["Job"]["properties"]["status"]["enum"] == ["queued", "running", "succeeded", "failed", "abandoned"]
    assert set(schemas["Topology"]["required"]) == {"nodes", "edges", "unreachable"}
    assert schemas["TopologyEdge"]["properties"]["via"]["type"] == ["integer", "null"]
    assert set(schemas["JobAccepted"]["required"]) == {"job_id", "status"}
    peer = schemas["Peer"]["properties"]
    assert peer["subnets"]["items"] == {"$ref": "#/components/schemas/Subnet"}
    assert peer["services"]["items"] == {"$ref": "#/components/schemas/Service"}
    assert {"$ref": "#/components/schemas/PeerMikrotik"} in peer["mikrotik"]["anyOf"]
    # Write-only secrets: the password may be sent, never shown.
    assert schemas["MikrotikAccess"]["properties"]["password"]["writeOnly"] is True
    assert "password" not in schemas["PeerMikrotik"]["properties"]
    # Request bodies refuse unknown fields (the API answers 400), as the document says.
    for name in ("WANCreate", "PeerCreate", "MikrotikAccess", "SubnetCreate", "ServiceCreate", "Deploy"):
        assert schemas[name]["additionalProperties"] is False


def test_special_responses(doc: dict[str, Any]) -> None:
    ops = {(p, m): op for p, m, op in operations(doc)}
    config = ops[("/api/peers/{peer_id}/config", "get")]
    assert set(config["responses"]["200"]["content"]) == {"text/plain"}
    assert "Content-Disposition" in config["responses"]["200"]["headers"]
    assert config["parameters"][0]["schema"]["enum"] == ["wireguard", "mikrotik-script"]
    assert set(ops[("/api/wan/{wan_id}/configs.zip", "get")]["responses"]["200"]["content"]) == {"application/zip"}
    deletes = [op for (p, m), op in ops.items() if m == "delete"]
    assert len(deletes) == 7 and all("204" in op["responses"] for op in deletes)  # + webhooks, users, tokens
    marking = ops[("/api/peers/{peer_id}/config", "post")]
    assert set(marking["responses"]["200"]["content"]) == {"text/plain"}
    assert "403" in ops[("/api/wan/{wan_id}/configs.zip", "get")]["responses"]
    jobs = [op for (p, m), op in ops.items() if "/mikrotik/" in p]
    assert len(jobs) == 8
    for op in jobs:
        accepted = op["responses"]["202"]
        assert accepted["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/JobAccepted"}
        assert accepted["headers"]["Location"]["required"] is True
    created = [op for (p, m), op in ops.items() if m == "post" and "201" in op["responses"]]
    assert len(created) == 5 and all("Location" in op["responses"]["201"]["headers"] for op in created)  # + webhooks
    list_jobs = {p["name"]: p for p in ops[("/api/jobs", "get")]["parameters"]}
    assert set(list_jobs) == {"wan_id", "peer_id", "status", "limit"}
    assert ops[("/api/me", "get")]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Me"
    }


def test_document_matches_real_answers(api: Any, doc: dict[str, Any]) -> None:
    """A quick, deterministic cross-check of the shapes (schemathesis does the exhaustive one)."""
    from jsonschema import Draft202012Validator

    def check(name: str, value: Any) -> None:
        # The components ride along so that "#/components/..." references resolve.
        schema = {**doc["components"]["schemas"][name], "components": doc["components"]}
        Draft202012Validator(schema).validate(value)

    wan = api.post("/api/wan", json={"name": "corp"}).get_json()
    check("WAN", wan)
    peer = api.post(
        f"/api/peers/wan/{wan['id']}",
        json={"name": "r1", "kind": "mikrotik", "mikrotik": {"host": "192.168.88.1", "password": "pw"}},
    ).get_json()
    check("Peer", peer)
    check("Subnet", api.post(f"/api/peers/{peer['id']}/subnets", json={"cidr": "192.168.88.0/24"}).get_json())
    service = {"name": "web", "protocol": "udp", "local_ip": "192.168.88.5", "local_port": 53}
    check("Service", api.post(f"/api/peers/{peer['id']}/services", json=service).get_json())
    check("Topology", api.get(f"/api/wan/{wan['id']}/topology").get_json())
    accepted = api.post(f"/api/peers/{peer['id']}/mikrotik/test-connection").get_json()
    check("JobAccepted", accepted)
    check("Job", api.get(f"/api/jobs/{accepted['job_id']}").get_json())
    check("Me", api.get("/api/me").get_json())
    check("Error", api.get("/api/wan/999").get_json())


# --- public, and the docs page ------------------------------------------------------------------


def test_document_and_docs_need_no_login_but_the_api_does(client: Any) -> None:
    assert client.get("/api/openapi.json").status_code == 200
    assert client.get("/api/docs").status_code == 200
    assert client.get("/api/wan").status_code == 401
    assert client.get("/api/me").status_code == 401


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in {"src", "href", "data-spec-url"} and value:
                self.urls.append(value)


def test_docs_page_loads_with_local_assets_only(client: Any) -> None:
    resp = client.get("/api/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.I), "no absolute or CDN URLs"
    parser = _Assets()
    parser.feed(html)
    assets = [u for u in parser.urls if u.startswith("/static/")]
    assert any(u.endswith("/swagger-ui-bundle.js") for u in assets)
    assert any(u.endswith("/swagger-ui.css") for u in assets)
    assert any(u.endswith("/api-docs.js") for u in assets)
    assert "/api/openapi.json" in parser.urls
    for url in parser.urls:  # same-origin paths, or inline data (the empty favicon)
        assert (url.startswith("/") and not url.startswith("//")) or url.startswith("data:"), url
    for url in [*assets, "/api/openapi.json"]:
        got = client.get(url)
        assert got.status_code == 200, url
        got.close()
    init = client.get("/static/api-docs.js")
    script = init.get_data(as_text=True)
    init.close()
    assert "validatorUrl: null" in script  # Swagger UI would otherwise call validator.swagger.io
    assert not re.search(r"https?://", script)


def test_docs_page_carries_the_csrf_token_only_for_a_session(app: Flask, operator_browser: Any) -> None:
    anonymous = app.test_client().get("/api/docs").get_data(as_text=True)
    assert 'data-csrf-token=""' in anonymous
    logged_in = operator_browser.client.get("/api/docs").get_data(as_text=True)
    assert re.search(r'data-csrf-token="[^"]+"', logged_in)


def test_vendored_swagger_ui_is_named_in_the_vendor_readme() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "app" / "static" / "vendor"
    readme = (root / "README.md").read_text()
    assert "swagger-ui-dist" in readme and "5.35.0" in readme
    assert (root / "swagger-ui-5.35.0" / "LICENSE").exists()
