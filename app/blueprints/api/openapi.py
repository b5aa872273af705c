"""The OpenAPI 3.1 document of the JSON API, generated from the code (issue 7).

apispec builds the document; the marshmallow schemas below exist only to describe the JSON shapes
(docs/api.md) and are never used to load or validate a request: the views keep their own
parsing and error bodies. Each view carries its operation (summary, body, query parameters,
responses) through :func:`documented`; :func:`build_spec` walks the Flask URL map, so a path, its
path parameters and its methods always come from the routes themselves. A view under /api/ without
a description is left out here and fails tests/web/test_openapi.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields, validate

from app.domain.model import DEFAULT_API_PORT, DEFAULT_API_USERNAME, PEER_KINDS, PROTOCOLS, TOPOLOGIES
from app.domain.validation import (
    HOST_MAX,
    INTERFACE_NAME_MAX,
    MTU_MAX,
    MTU_MIN,
    PASSWORD_MAX,
    PEER_NAME_MAX,
    SERVICE_NAME_MAX,
    USERNAME_MAX,
    WAN_NAME_MAX,
)
from app.models.jobs import JOB_KINDS, JOB_STATUSES
from app.models.user import ROLES
from app.services.webhooks import EVENTS as WEBHOOK_EVENTS

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"  # pyproject.toml's version
DOC_ATTR = "__openapi__"
SEVERITIES = ("critical", "warning")
PORT = validate.Range(1, 65535)
KEEPALIVE = validate.Range(0, 65535)


def _d(text: str, **extra: Any) -> dict[str, Any]:
    return {"description": text, **extra}


# --- shapes: answers ------------------------------------------------------------------------------
# Every member is always present (required); members that may be null say so (allow_none).
# marshmallow's default `unknown = RAISE` becomes `additionalProperties: false`: an answer that grows
# a member the document does not name fails the schemathesis test until the document says it.


class ErrorSchema(Schema):
    error = fields.String(
        required=True,
        metadata=_d(
            "Machine code: malformed, csrf, unauthorized, forbidden, not_found, method_not_allowed, conflict, "
            "range_full, too_large, invalid, guardrail, throttled, router_busy, …",
            example="conflict",
        ),
    )
    message = fields.String(required=True, metadata=_d("What went wrong and how to fix it, fit to show a user."))
    field = fields.String(
        required=True, allow_none=True, metadata=_d("The request field the error is about, or null for the request.")
    )
    job_id = fields.Integer(
        metadata=_d("With router_busy (409): the queued or running job of that router; its actions wait for it.")
    )


class CsvErrorSchema(ErrorSchema):
    line = fields.Integer(
        required=True, metadata=_d("The CSV line at fault (the header is line 1), or 0 for the whole table.")
    )


class MeSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    active = fields.Boolean(required=True, metadata=_d("False: cannot log in; sessions and tokens ended."))
    last_login_at = fields.DateTime(required=True, allow_none=True)


class UserUpdateSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES), metadata=_d("Ends the user's sessions."))
    active = fields.Boolean(metadata=_d("false ends the user's sessions and revokes every token at once."))


class TokenSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    user_id = fields.Integer(required=True)
    hint = fields.String(required=True, metadata=_d("The first characters of the token."))
    created_at = fields.DateTime(required=True)
    last_used_at = fields.DateTime(required=True, allow_none=True)
    expires_at = fields.DateTime(required=True, allow_none=True)
    revoked = fields.Boolean(required=True)


class WanSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    tunnel_cidr = fields.String(
        required=True, metadata=_d("IPv4 range of the tunnel addresses.", example="10.0.0.0/24")
    )
    services_cidr = fields.String(required=True, metadata=_d("IPv4 range of published services' shared IPs."))
    nat_pool_cidr = fields.String(required=True, metadata=_d("IPv4 range Auto-NAT takes translations from."))
    tunnel_cidr6 = fields.String(
        required=True,
        allow_none=True,
        metadata=_d("IPv6 (ULA) range of the tunnel addresses; null for an IPv4-only overlay.", example="fd10:77::/64"),
    )
    services_cidr6 = fields.String(
        required=True, allow_none=True, metadata=_d("IPv6 (ULA) range of published services' shared IPv6 addresses.")
    )
    topology = fields.String(required=True, validate=validate.OneOf(TOPOLOGIES))
    interface_name = fields.String(required=True)
    listen_port = fields.Integer(required=True)
    keepalive = fields.Integer(required=True)
    mtu = fields.Integer(required=True)
    mgmt_cidrs = fields.List(fields.String(), required=True)
    dns = fields.List(fields.String(), required=True)
    preshared_keys = fields.Boolean(
        required=True, metadata=_d("Every pair of peers sharing a tunnel has its own preshared key.")
    )
    peer_count = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


class SubnetSchema(Schema):
    id = fields.Integer(required=True)
    cidr = fields.String(required=True, metadata=_d("The LAN as the peer hosts it.", example="192.168.1.0/24"))
    routed = fields.Boolean(required=True, metadata=_d("Other peers route to it."))
    nat_cidr = fields.String(
        required=True, allow_none=True, metadata=_d("Auto-NAT: the block the LAN is reachable as, or null.")
    )


class ServiceSchema(Schema):
    id = fields.Integer(required=True)
    peer_id = fields.Integer(required=True)
    name = fields.String(required=True)
    protocol = fields.String(required=True, validate=validate.OneOf(PROTOCOLS))
    local_ip = fields.String(required=True)
    local_port = fields.Integer(required=True)
    shared_ip = fields.String(required=True, metadata=_d("Where the overlay reaches the service."))
    shared_port = fields.Integer(required=True)
    local_ip6 = fields.String(required=True, allow_none=True, metadata=_d("The service's IPv6 target, or null."))
    shared_ip6 = fields.String(
        required=True, allow_none=True, metadata=_d("Where the overlay reaches the service over IPv6, or null.")
    )


class PeerMikrotikSchema(Schema):
    """Router access of a MikroTik peer. The password is write-only: only whether one is set shows."""

    host = fields.String(required=True, allow_none=True)
    port = fields.Integer(required=True, allow_none=True)
    use_tls = fields.Boolean(required=True)
    verify_cert = fields.Boolean(required=True)
    username = fields.String(required=True, allow_none=True)
    auto_deploy = fields.Boolean(required=True)
    password_set = fields.Boolean(required=True)


class PeerStatusSchema(Schema):
    peer_id = fields.Integer(required=True)
    online = fields.Boolean(
        required=True, allow_none=True, metadata=_d("A handshake in the last 180 s; null when nothing saw the peer.")
    )
    last_handshake_at = fields.DateTime(required=True, allow_none=True)
    rx_bytes = fields.Integer(required=True, metadata=_d("Received by the overlay from the peer (all sources)."))
    tx_bytes = fields.Integer(required=True, metadata=_d("Sent by the overlay to the peer (all sources)."))
    endpoint = fields.String(required=True, allow_none=True, metadata=_d("Where the peer's packets come from."))
    source = fields.String(
        required=True, allow_none=True, metadata=_d('"router:<peer id>" or "report" (the peer\'s own report).')
    )
    observed_at = fields.DateTime(required=True, allow_none=True)


class RouterStatusSchema(Schema):
    peer_id = fields.Integer(required=True)
    name = fields.String(required=True)
    reachable = fields.Boolean(required=True, allow_none=True, metadata=_d("At the last poll; null before the first."))
    error = fields.String(required=True, allow_none=True)
    checked_at = fields.DateTime(required=True, allow_none=True)
    in_sync = fields.Boolean(required=True, allow_none=True, metadata=_d("At the last verify; null before the first."))
    drift_count = fields.Integer(required=True)
    verified_at = fields.DateTime(required=True, allow_none=True)


class WanStatusSchema(Schema):
    wan_id = fields.Integer(required=True)
    peers = fields.List(fields.Nested(PeerStatusSchema), required=True)
    routers = fields.List(fields.Nested(RouterStatusSchema), required=True)


class WebhookSchema(Schema):
    id = fields.Integer(required=True)
    url = fields.String(required=True)
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True)
    has_secret = fields.Boolean(required=True, metadata=_d("The secret itself is never shown."))
    created_at = fields.DateTime(required=True)


class WebhookCreateSchema(Schema):
    url = fields.String(required=True, metadata=_d("http:// or https:// URL.", example="https://hooks.example/x"))
    events = fields.List(fields.String(validate=validate.OneOf(WEBHOOK_EVENTS)), required=True)
    secret = fields.String(
        allow_none=True, load_only=True, metadata=_d("Signs each delivery (X-WireWAN-Signature: sha256=<HMAC>).")
    )


class WebhookDeliverySchema(Schema):
    event = fields.String(required=True, validate=validate.OneOf(WEBHOOK_EVENTS))
    status_code = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    attempts = fields.Integer(required=True)
    at = fields.DateTime(required=True)


class PeerSchema(Schema):
    id = fields.Integer(required=True)
    wan_id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PEER_KINDS))
    is_hub = fields.Boolean(required=True)
    hub_priority = fields.Integer(required=True, allow_none=True)
    tunnel_ip = fields.String(required=True)
    tunnel_ip6 = fields.String(
        required=True, allow_none=True, metadata=_d("Its address in the IPv6 tunnel range; null on an IPv4-only WAN.")
    )
    listen_port = fields.Integer(required=True)
    endpoint = fields.String(required=True, allow_none=True, metadata=_d("host:port, or null (no endpoint)."))
    has_port_forward = fields.Boolean(required=True)
    keepalive = fields.Integer(required=True, allow_none=True)
    public_key = fields.String(required=True)
    brings_own_key = fields.Boolean(
        required=True, metadata=_d("The device holds its private key; WireWAN only knows the public key.")
    )
    cgnat = fields.Boolean(required=True, metadata=_d("No reachable endpoint: it must dial out to others."))
    stale = fields.Boolean(required=True, metadata=_d("Its current config was not applied (downloaded/deployed) yet."))
    enabled = fields.Boolean(
        required=True, metadata=_d("False: kept in IP planning but in no other peer's config nor on any router.")
    )
    expires_at = fields.DateTime(
        required=True, allow_none=True, metadata=_d("When the expiry job disables the peer (UTC), or null.")
    )
    subnets = fields.List(fields.Nested(SubnetSchema), required=True)
    services = fields.List(fields.Nested(ServiceSchema), required=True)
    status = fields.Nested(PeerStatusSchema, required=True)
    mikrotik = fields.Nested(
        PeerMikrotikSchema, required=True, allow_none=True, metadata=_d("Router access; null unless kind is mikrotik.")
    )


class ConflictSchema(Schema):
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    kind = fields.String(required=True, metadata=_d("Machine code of the rule that found it."))
    message = fields.String(required=True)
    peer_id = fields.Integer(required=True, allow_none=True)
    subnet_id = fields.Integer(required=True, allow_none=True)
    other_peer_id = fields.Integer(required=True, allow_none=True)
    other_subnet_id = fields.Integer(required=True, allow_none=True)


class TopologyNodeSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(PEER_KINDS))
    is_hub = fields.Boolean(required=True)
    tunnel_ip = fields.String(required=True)
    tunnel_ip6 = fields.String(required=True, allow_none=True)
    cgnat = fields.Boolean(required=True)
    stale = fields.Boolean(required=True)


class TopologyEdgeSchema(Schema):
    a = fields.Integer(required=True, metadata=_d("Peer id (a < b)."))
    b = fields.Integer(required=True, metadata=_d("Peer id."))
    via = fields.Integer(
        required=True, allow_none=True, metadata=_d("null for a direct tunnel, else the relaying peer's id.")
    )


class UnreachableSchema(Schema):
    from_peer_id = fields.Integer(required=True)
    peer_id = fields.Integer(required=True)
    subnet_id = fields.Integer(required=True, allow_none=True, metadata=_d("null for a tunnel or service address."))
    prefix = fields.String(required=True)
    message = fields.String(required=True, metadata=_d("Why, and the fix."))


class TopologySchema(Schema):
    nodes = fields.List(fields.Nested(TopologyNodeSchema), required=True)
    edges = fields.List(fields.Nested(TopologyEdgeSchema), required=True)
    unreachable = fields.List(
        fields.Nested(UnreachableSchema), required=True, metadata=_d("Prefixes a peer cannot reach.")
    )


class JobSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(JOB_KINDS))
    wan_id = fields.Integer(required=True, allow_none=True)
    peer_id = fields.Integer(required=True, allow_none=True, metadata=_d("null once the peer was deleted."))
    peer_name = fields.String(required=True)
    actor = fields.String(required=True)
    trigger = fields.String(required=True, validate=validate.OneOf(("manual", "auto", "schedule")))
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))
    progress = fields.Integer(required=True, metadata=_d("Percent."))
    step = fields.String(required=True)
    log = fields.List(fields.String(), required=True)
    result = fields.Dict(
        required=True,
        allow_none=True,
        metadata=_d(
            "null until the job finishes. preflight: {plan: [ops], plan_lines, plan_hash, conflicts: [...], "
            "blocking, warnings}; verify: {in_sync: bool, drift: [...]}; test_connection: {version, identity, "
            "local_address}; deploy: {plan_hash, deployment_id, handshakes, …}. Every router job's result "
            "has writes and reads: the API sentences that changed or read the router."
        ),
    )
    warnings = fields.List(fields.String(), required=True)
    error = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    started_at = fields.DateTime(required=True, allow_none=True)
    finished_at = fields.DateTime(required=True, allow_none=True)


class AuditEntrySchema(Schema):
    id = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    user_id = fields.Integer(required=True, allow_none=True, metadata=_d("null for the system or a deleted user."))
    actor = fields.String(required=True, metadata=_d("Who: the user's e-mail, or 'auto-deploy (…)' / 'system'."))
    action = fields.String(required=True, metadata=_d("What: create, update, delete, deploy, revert, router-call, …"))
    kind = fields.String(required=True, validate=validate.OneOf(("action", "router")))
    object_type = fields.String(required=True, metadata=_d("wan, peer, subnet, service, user, api_token, …"))
    object_id = fields.Integer(required=True, allow_none=True)
    wan_id = fields.Integer(required=True, allow_none=True)
    summary = fields.String(required=True)
    details = fields.Dict(required=True, allow_none=True, metadata=_d("Before/after values, job id; no secrets."))


class JobAcceptedSchema(Schema):
    job_id = fields.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(JOB_STATUSES))


# --- shapes: request bodies ------------------------------------------------------------------------
# Unknown members are refused with 400 (additionalProperties: false). The views validate; these
# describe. Booleans are also accepted as "true"/"false" text, numbers as decimal text.


class _WanFields(Schema):
    tunnel_cidr = fields.String(metadata=_d("IPv4 network, host bits clear.", example="10.0.0.0/24"))
    services_cidr = fields.String(metadata=_d("IPv4 network.", example="10.0.5.0/24"))
    nat_pool_cidr = fields.String(metadata=_d("IPv4 network.", example="172.16.0.0/12"))
    tunnel_cidr6 = fields.String(
        allow_none=True,
        metadata=_d(
            "IPv6 unique local range (fc00::/7, /48 to /120) for a dual-stack overlay; null or absent keeps "
            "the overlay IPv4 only. Setting it numbers every peer (lowest first, first hub first).",
            example="fd10:77::/64",
        ),
    )
    services_cidr6 = fields.String(
        allow_none=True, metadata=_d("IPv6 unique local range for published services; needs tunnel_cidr6.")
    )
    topology = fields.String(validate=validate.OneOf(TOPOLOGIES))
    interface_name = fields.String(
        validate=validate.Length(1, INTERFACE_NAME_MAX), metadata=_d("[A-Za-z0-9._-]", example="wg-wan-overlay")
    )
    listen_port = fields.Integer(validate=PORT)
    keepalive = fields.Integer(validate=KEEPALIVE)
    mtu = fields.Integer(validate=validate.Range(MTU_MIN, MTU_MAX))
    mgmt_cidrs = fields.List(fields.String(), validate=validate.Length(max=64), metadata=_d("Management networks."))
    dns = fields.List(fields.String(), validate=validate.Length(max=64), metadata=_d("DNS server addresses."))
    preshared_keys = fields.Boolean(metadata=_d("Give every tunnel its own preshared key; false removes them all."))


class WanCreateSchema(_WanFields):
    name = fields.String(required=True, validate=validate.Length(1, WAN_NAME_MAX), metadata=_d("Printable text."))


class WanUpdateSchema(_WanFields):
    name = fields.String(validate=validate.Length(1, WAN_NAME_MAX))


class ExportSchema(Schema):
    passphrase = fields.String(
        required=True, validate=validate.Length(12, 1024), metadata=_d("At least 12 characters; needed to import.")
    )


class ImportSchema(Schema):
    document = fields.Dict(required=True, metadata=_d("A document from POST /api/wan/{wan_id}/export."))
    passphrase = fields.String(required=True, validate=validate.Length(12, 1024))
    name = fields.String(validate=validate.Length(1, WAN_NAME_MAX), metadata=_d("Import under this name instead."))


class MikrotikAccessSchema(Schema):
    host = fields.String(
        allow_none=True, validate=validate.Length(max=HOST_MAX), metadata=_d("Management address or DNS name.")
    )
    port = fields.Integer(validate=PORT, metadata=_d(f"RouterOS API port (default {DEFAULT_API_PORT})."))
    use_tls = fields.Boolean()
    verify_cert = fields.Boolean()
    username = fields.String(validate=validate.Length(1, USERNAME_MAX), metadata=_d(f"Default {DEFAULT_API_USERNAME}."))
    password = fields.String(
        load_only=True,
        validate=validate.Length(1, PASSWORD_MAX),
        metadata=_d("Write-only, printable ASCII; blank keeps the stored one."),
    )
    auto_deploy = fields.Boolean()


class _PeerFields(Schema):
    is_hub = fields.Boolean()
    hub_priority = fields.Integer(allow_none=True, validate=validate.Range(0, 1000))
    endpoint = fields.String(
        allow_none=True, metadata=_d("host:port (or host), null for none.", example="203.0.113.7:51820")
    )
    listen_port = fields.Integer(validate=PORT, metadata=_d("Defaults to the WAN's."))
    tunnel_ip = fields.String(allow_none=True, metadata=_d("Inside the tunnel range; null picks the lowest free."))
    tunnel_ip6 = fields.String(
        allow_none=True, metadata=_d("Inside the IPv6 tunnel range; null picks the lowest free (dual-stack WANs).")
    )
    has_port_forward = fields.Boolean()
    public_key = fields.String(
        allow_none=True, metadata=_d("The device's own WireGuard public key; null lets WireWAN generate a pair.")
    )
    keepalive = fields.Integer(allow_none=True, validate=KEEPALIVE)
    mikrotik = fields.Nested(MikrotikAccessSchema, allow_none=True, metadata=_d("Router access (kind mikrotik)."))
    enabled = fields.Boolean(metadata=_d("False takes the peer out of every other config and router."))
    expires_at = fields.DateTime(allow_none=True, metadata=_d("ISO 8601 (UTC unless an offset is given), or null."))


class PeerCreateSchema(_PeerFields):
    name = fields.String(
        required=True, validate=validate.Length(1, PEER_NAME_MAX), metadata=_d("[A-Za-z0-9._-]", example="branch-1")
    )
    kind = fields.String(required=True, validate=validate.OneOf(PEER_KINDS))


class PeerUpdateSchema(_PeerFields):
    name = fields.String(validate=validate.Length(1, PEER_NAME_MAX))
    kind = fields.String(validate=validate.OneOf(PEER_KINDS))


class SubnetCreateSchema(Schema):
    cidr = fields.String(required=True, metadata=_d("The LAN, host bits clear.", example="192.168.1.0/24"))
    routed = fields.Boolean(metadata=_d("Default true."))
    auto_nat = fields.Boolean(metadata=_d("On overlap, take a free NAT block instead of refusing. Default false."))


class SubnetUpdateSchema(Schema):
    routed = fields.Boolean()
    nat = fields.Boolean(metadata=_d("false removes the Auto-NAT translation."))
    auto_nat = fields.Boolean(metadata=_d("true gives the subnet an Auto-NAT translation."))


class ServiceCreateSchema(Schema):
    name = fields.String(
        required=True, validate=validate.Length(1, SERVICE_NAME_MAX), metadata=_d("[A-Za-z0-9._-]", example="web")
    )
    protocol = fields.String(validate=validate.OneOf(PROTOCOLS), metadata=_d("Default tcp."))
    local_ip = fields.String(required=True, metadata=_d("The host on the peer's LAN (or the peer itself)."))
    local_port = fields.Integer(required=True, validate=PORT)
    shared_ip = fields.String(allow_none=True, metadata=_d("In the services range; null picks one."))
    shared_port = fields.Integer(allow_none=True, validate=PORT, metadata=_d("null keeps local_port."))
    local_ip6 = fields.String(
        allow_none=True,
        metadata=_d("IPv6 target (the peer's tunnel IPv6 or on its IPv6 LAN); publishes it over IPv6 too."),
    )
    shared_ip6 = fields.String(allow_none=True, metadata=_d("In the IPv6 services range; null picks one."))


class DeploySchema(Schema):
    approve = fields.Boolean(metadata=_d("Must be true."))
    plan_hash = fields.String(metadata=_d("plan_hash of the latest succeeded preflight."))


SCHEMAS: tuple[type[Schema], ...] = (
    ErrorSchema,
    CsvErrorSchema,
    MeSchema,
    UserSchema,
    UserUpdateSchema,
    TokenSchema,
    WanSchema,
    WanCreateSchema,
    WanUpdateSchema,
    PeerSchema,
    PeerMikrotikSchema,
    PeerCreateSchema,
    PeerUpdateSchema,
    MikrotikAccessSchema,
    SubnetSchema,
    SubnetCreateSchema,
    SubnetUpdateSchema,
    ServiceSchema,
    ServiceCreateSchema,
    ConflictSchema,
    TopologySchema,
    TopologyNodeSchema,
    TopologyEdgeSchema,
    UnreachableSchema,
    JobSchema,
    JobAcceptedSchema,
    AuditEntrySchema,
    DeploySchema,
    ExportSchema,
    ImportSchema,
    PeerStatusSchema,
    RouterStatusSchema,
    WanStatusSchema,
    WebhookSchema,
    WebhookCreateSchema,
    WebhookDeliverySchema,
)


# --- responses and parameters --------------------------------------------------------------------

ERRORS: dict[int, tuple[str, str]] = {
    400: (
        "Malformed",
        "Malformed request: not a JSON object, unknown field, bad query value, or CSRF failed "
        "(error 'csrf', session auth only).",
    ),  # fmt: skip
    401: ("Unauthorized", "No valid bearer token and no logged-in session."),
    403: ("Forbidden", "The role may not do this (viewers may only read, and may not download configs)."),
    404: ("NotFound", "No such object (or it belongs to another parent)."),
    409: (
        "Conflict",
        "Conflicts with existing data (overlapping subnet, name taken, stale plan, full range, a concurrent change, "
        "a router busy with another job: router_busy with its job_id).",
    ),  # fmt: skip
    413: ("TooLarge", "The body exceeds the size limit."),
    422: ("Invalid", "A value is invalid or breaks a guardrail (error 'invalid' or 'guardrail'); 'field' names it."),
    429: ("Throttled", "Too many attempts; wait and retry. (Login throttling; no API operation answers it today.)"),
    503: ("Unavailable", "The job queue (Redis) cannot be reached; nothing was queued or saved. Retry later."),
}
LOCATION = {"description": "URL of the new object (201) or of the job (202).", "schema": {"type": "string"}}
JOB_PARAM_DOC = "Filter by {}."


def json_response(schema: type[Schema] | str, description: str, *, many: bool = False,
                  location: bool = False) -> dict[str, Any]:  # fmt: skip
    name = schema if isinstance(schema, str) else _schema_name(schema)
    ref: dict[str, Any] = {"$ref": f"#/components/schemas/{name}"}
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"type": "array", "items": ref} if many else ref}},
    }
    if location:
        response["headers"] = {"Location": {**LOCATION, "required": True}}
    return response


def job_accepted() -> dict[str, Any]:
    return json_response(
        JobAcceptedSchema, "Queued. Poll the job at the Location URL (GET /api/jobs/{job_id}).", location=True
    )


NO_CONTENT = {"description": "Deleted."}


def query_param(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def _schema_name(schema: Any) -> str:
    """`WanCreateSchema` → `WANCreate` (the contract's spelling), `PeerSchema` → `Peer`."""
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema")
    return "WAN" + name[3:] if name.startswith("Wan") else name


# --- the registry --------------------------------------------------------------------------------


def documented(
    summary: str,
    *,
    tags: Iterable[str],
    responses: Mapping[int, dict[str, Any]],
    errors: Iterable[int] = (),
    description: str | None = None,
    body: type[Schema] | None = None,
    body_required: bool = True,
    query: Iterable[dict[str, Any]] = (),
    public: bool = False,
    security: list[dict[str, list[str]]] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach the OpenAPI operation of a view (every method of its rule shares it)."""
    operation: dict[str, Any] = {"summary": summary, "tags": list(tags)}
    if description:
        operation["description"] = description
    params = list(query)
    if params:
        operation["parameters"] = params
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{_schema_name(body)}"}}},
        }
    out = {str(status): response for status, response in responses.items()}
    auth_errors = () if public else (401,)
    for status in sorted({*errors, *auth_errors}):
        out[str(status)] = {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
    operation["responses"] = out
    if public:
        operation["security"] = []
    elif security is not None:
        operation["security"] = security

    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        setattr(view, DOC_ATTR, operation)
        return view

    return mark


_RULE_ARG = re.compile(r"<(?:(?P<converter>[a-zA-Z_][a-zA-Z0-9_]*)(?:\([^)]*\))?:)?(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)>")
_CONVERTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "int": {"type": "integer", "minimum": 1},
    "string": {"type": "string"},
    "default": {"type": "string"},
}
PATH_PARAM_DOC = {
    "wan_id": "WAN id.",
    "peer_id": "Peer id.",
    "subnet_id": "Subnet id (of this peer).",
    "service_id": "Service id (of this peer).",
    "job_id": "Job id.",
    "webhook_id": "Webhook id.",
    "user_id": "User id.",
    "token_id": "API token id.",
}


def openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """`/api/wan/<int:wan_id>` → `/api/wan/{wan_id}` and its path parameters."""
    params: list[dict[str, Any]] = []
    for match in _RULE_ARG.finditer(rule):
        converter = match.group("converter") or "default"
        params.append(
            {
                "name": match.group("name"),
                "in": "path",
                "required": True,
                "description": PATH_PARAM_DOC.get(match.group("name"), ""),
                "schema": dict(_CONVERTER_SCHEMAS.get(converter, {"type": "string"})),
            }
        )
    return _RULE_ARG.sub(lambda m: "{" + m.group("name") + "}", rule), params


def api_rules(app: Flask) -> list[Any]:
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")), key=lambda r: r.rule)


DESCRIPTION = """\
The WireWAN JSON API: the same services as the browser UI. Its guide lives in the repository:
docs/api.md (authentication, errors, paging, downloads, jobs) and docs/concepts.md (what WANs, peer
kinds, relays, Auto-NAT and staleness mean).

**Authentication.** Send `Authorization: Bearer <token>` (tokens are made on the account page or with
`flask --app wsgi token create --email E --name N`). A logged-in browser session (the `session` cookie)
works too; it must then send the page's CSRF token in `X-CSRFToken` with every change and with the GETs
that queue router jobs (preflight, verify). Roles: viewer may only read; operator and admin may change
networks and deploy.

**Errors.** Every refusal is JSON `{"error": code, "message": text, "field": name or null}` with 400
(malformed, csrf), 401, 403, 404, 409 (conflict with existing data), 413 (too large), 422 (invalid value
or guardrail) or 429. Bad input is never a 500. No answer holds a private key or router password,
except the config downloads.

**Jobs.** Router operations answer 202 with `{job_id, status}` and a `Location` header; poll
`GET /api/jobs/{job_id}` until its status is succeeded, failed or abandoned.
"""


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every documented view under /api/ (cached per app)."""
    cached: dict[str, Any] | None = app.extensions.get("wirewan_openapi")
    if cached is not None:
        return cached
    spec = APISpec(
        title="WireWAN API",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)],
        info={"description": DESCRIPTION},
        tags=[
            {"name": "Account", "description": "Who is calling."},
            {"name": "Accounts", "description": "Users and API tokens (admins manage every one)."},
            {"name": "Networks", "description": "WANs: ranges, topology, conflicts, config bundles."},
            {"name": "Peers", "description": "Peers of a WAN, their configs, LANs and published services."},
            {"name": "MikroTik", "description": "Router jobs: test, preflight, deploy, verify, revert, clear."},
            {"name": "Jobs", "description": "Background jobs and their results."},
            {"name": "Operations", "description": "Live status, report tokens' reports, webhooks."},
            {"name": "Documentation", "description": "This document and its viewer."},
        ],
        security=[{"bearerAuth": []}, {"sessionCookie": []}],
    )
    spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "An API token: `Authorization: Bearer <token>`."},
    )
    spec.components.security_scheme(
        "reportToken",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A peer's report token (`wwr_…`, made on the peer page): only for that peer's "
            "`POST /api/peers/{peer_id}/report`.",
        },
    )
    spec.components.security_scheme(
        "sessionCookie",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config.get("SESSION_COOKIE_NAME", "session"),
            "description": "A logged-in browser session. Changes (and the preflight/verify GETs) also need "
            "the page's CSRF token in the `X-CSRFToken` header.",
        },
    )
    for schema in SCHEMAS:
        if _schema_name(schema) not in spec.components.schemas:  # nested ones register with their parent
            spec.components.schema(_schema_name(schema), schema=schema)
    error_ref = {"$ref": f"#/components/schemas/{_schema_name(ErrorSchema)}"}
    for _status, (name, text) in sorted(ERRORS.items()):
        spec.components.response(name, {"description": text, "content": {"application/json": {"schema": error_ref}}})

    paths: dict[str, dict[str, Any]] = {}
    for rule in api_rules(app):
        operation = getattr(app.view_functions.get(rule.endpoint), DOC_ATTR, None)
        if operation is None:
            continue
        path, path_params = openapi_path(rule.rule)
        entry = paths.setdefault(path, {"parameters": path_params, "operations": {}})
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            op = dict(operation)
            name = rule.endpoint.split(".", 1)[-1]
            op["operationId"] = name if len(methods) == 1 else f"{name}_{method.lower()}"
            entry["operations"][method.lower()] = op
    for path, entry in paths.items():
        spec.path(path=path, parameters=entry["parameters"] or None, operations=entry["operations"])
    document = spec.to_dict()
    app.extensions["wirewan_openapi"] = document
    return document
