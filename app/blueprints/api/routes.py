from __future__ import annotations

from typing import Any

from flask import abort, jsonify, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms.validators import ValidationError as WTFValidationError

from app.blueprints.api import bp
from app.blueprints.api import openapi as oa
from app.blueprints.api.openapi import documented, job_accepted, json_response, query_param
from app.blueprints.api.schemas import job_json, peer_json, service_json, subnet_json, wan_json
from app.blueprints.lookups import peer_or_404
from app.domain import bulk
from app.domain import conflicts as conflict_rules
from app.domain.errors import DomainError
from app.domain.model import PEER_KINDS
from app.extensions import db
from app.models import Job, Peer, Service, Subnet, Wan
from app.models.jobs import JOB_STATUSES, JobKind
from app.request_auth import is_token_auth
from app.services import audit, configs, mikrotik, published, queries, subnets, transfer, wans
from app.services import peers as peer_service
from app.services import status as status_service
from app.services.downloads import attachment, zip_attachment
from app.services.inputs import as_bool, id_arg
from app.services.specs import load_wan, wan_spec
from app.services.tx import commit, commit_with_retry

PEER_BODY_FIELDS = set(peer_service.PEER_FIELDS) - {
    n for n in peer_service.PEER_FIELDS if n.startswith("mikrotik_")
} | {"mikrotik"}
MIKROTIK_BODY_FIELDS = {"host", "port", "use_tls", "verify_cert", "username", "password", "auto_deploy"}


class MalformedRequest(DomainError):
    """A body that is not a JSON object of known fields (HTTP 400)."""

    default_code = "malformed"
    default_status = 400


def _body(allowed: set[str] | tuple[str, ...], *, query_fallback: bool = False) -> dict[str, Any]:
    """The JSON object sent, refusing unknown fields (a typo must not be silently ignored)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        data: Any = request.args.to_dict() if query_fallback else {}
    else:
        try:
            data = request.get_json(silent=True)
        except RecursionError:  # absurdly nested: the decoder gives up before silent= applies
            data = None
        if data is None:
            raise MalformedRequest("The body is not valid JSON.", None)
    if not isinstance(data, dict):
        raise MalformedRequest("The body must be a JSON object.", None)
    for key in data:
        if key not in allowed:
            raise MalformedRequest(f"Unknown field '{str(key)[:40]}'.", str(key)[:40])
    return data


def _wan_or_404(wan_id: int) -> Wan:
    return db.session.get(Wan, wan_id) or abort(404, "No such WAN.")


def _created(payload: dict[str, Any], location: str) -> Any:
    resp = jsonify(payload)
    resp.status_code = 201
    resp.headers["Location"] = location
    return resp


@bp.get("/me")
@documented(
    "Who the token or session belongs to",
    tags=["Account"],
    responses={200: json_response(oa.MeSchema, "The calling user.")},
)
def me() -> Any:
    """Who the token or session belongs to: handy for checking a token in scripts."""
    return jsonify({"id": current_user.id, "email": current_user.email, "role": current_user.role})


# --- WANs --------------------------------------------------------------------------------------


@bp.get("/wan")
@documented(
    "List WANs", tags=["Networks"], responses={200: json_response(oa.WanSchema, "Every WAN, by name.", many=True)}
)
def list_wans() -> Any:
    return jsonify([wan_json(row.wan, row.peer_count) for row in queries.wans_with_peer_counts()])


@bp.post("/wan")
@documented(
    "Create a WAN",
    tags=["Networks"],
    description="Only `name` is required; the rest default to 10.0.0.0/24, 10.0.5.0/24, 172.16.0.0/12, mesh, "
    "an interface named wg-<WAN name> (unique per WAN), 51820, keepalive 25, MTU 1420.",
    body=oa.WanCreateSchema,
    responses={201: json_response(oa.WanSchema, "Created.", location=True)},
    errors=(400, 403, 409, 413, 422),
)
def create_wan() -> Any:
    data = _body(wans.WAN_FIELDS)
    wan = commit_with_retry(lambda: wans.create_wan(data))
    return _created(wan_json(wan, 0), url_for("api.get_wan", wan_id=wan.id))


@bp.get("/wan/<int:wan_id>")
@documented("One WAN", tags=["Networks"], responses={200: json_response(oa.WanSchema, "The WAN.")}, errors=(404,))
def get_wan(wan_id: int) -> Any:
    return jsonify(wan_json(_wan_or_404(wan_id)))


@bp.patch("/wan/<int:wan_id>")
@documented(
    "Change a WAN",
    tags=["Networks"],
    description="Any WAN field; the others keep their values. Range changes that would strand a peer are refused.",
    body=oa.WanUpdateSchema,
    responses={200: json_response(oa.WanSchema, "The changed WAN.")},
    errors=(400, 403, 404, 409, 413, 422),
)
def update_wan(wan_id: int) -> Any:
    data = _body(wans.WAN_FIELDS)
    wan = commit_with_retry(lambda: wans.update_wan(_wan_or_404(wan_id), data))
    return jsonify(wan_json(wan))


@bp.delete("/wan/<int:wan_id>")
@documented(
    "Delete a WAN with its peers",
    tags=["Networks"],
    responses={204: oa.NO_CONTENT},
    errors=(400, 403, 404, 409),
)
def delete_wan(wan_id: int) -> Any:
    commit_with_retry(lambda: wans.delete_wan(_wan_or_404(wan_id)))
    return "", 204


@bp.post("/wan/<int:wan_id>/export")
@documented(
    "Export a WAN as one document",
    tags=["Networks"],
    description="The WAN, its peers, subnets, services and router settings; private keys, preshared keys and "
    "router passwords encrypted with the passphrase (scrypt + AES-256-GCM). Operators and admins only.",
    body=oa.ExportSchema,
    responses={
        200: {"description": "The WAN document.", "content": {"application/json": {"schema": {"type": "object"}}}}
    },
    errors=(400, 403, 404, 413, 422),
)
def export_wan(wan_id: int) -> Any:
    data = _body({"passphrase"})
    _wan_or_404(wan_id)
    document = transfer.export_wan(wan_id, data.get("passphrase"))  # type: ignore[arg-type]  # checked inside
    commit()
    return jsonify(document)


@bp.post("/wan/import")
@documented(
    "Import a WAN document",
    tags=["Networks"],
    description="Recreates an exported WAN: every config and script byte-identical. 409 when the name is taken "
    "(give `name`); 422 for a wrong passphrase or a changed document, and then nothing is written.",
    body=oa.ImportSchema,
    responses={201: json_response(oa.WanSchema, "Imported.", location=True)},
    errors=(400, 403, 409, 413, 422),
)
def import_wan() -> Any:
    data = _body({"document", "passphrase", "name"})
    wan = commit_with_retry(lambda: transfer.import_wan(data.get("document"), data.get("passphrase"), data.get("name")))
    return _created(wan_json(wan), url_for("api.get_wan", wan_id=wan.id))


@bp.post("/wan/<int:wan_id>/rotate-psks")
@documented(
    "Replace every preshared key of a WAN",
    tags=["Networks"],
    description="Every pair of peers sharing a tunnel gets a new preshared key; they all turn stale. 422 when the "
    "WAN has no preshared keys.",
    responses={200: json_response(oa.WanSchema, "The WAN.")},
    errors=(400, 403, 404, 409, 422),
)
def rotate_psks(wan_id: int) -> Any:
    wan = commit_with_retry(lambda: wans.rotate_psks(_wan_or_404(wan_id)))
    return jsonify(wan_json(wan))


@bp.get("/wan/<int:wan_id>/conflicts")
@documented(
    "Conflicts in a WAN",
    tags=["Networks"],
    description="Overlaps and other problems in the saved data (e.g. from before a rule existed), critical first.",
    responses={200: json_response(oa.ConflictSchema, "The conflicts found.", many=True)},
    errors=(404,),
)
def wan_conflicts(wan_id: int) -> Any:
    wan = load_wan(wan_id) or abort(404, "No such WAN.")
    return jsonify([c.to_dict() for c in conflict_rules.wan_conflicts(wan_spec(wan))])


@bp.get("/wan/<int:wan_id>/topology")
@documented(
    "Tunnel topology of a WAN",
    tags=["Networks"],
    description="Peers (nodes), tunnels between them (edges, direct or relayed) and prefixes a peer cannot reach.",
    responses={200: json_response(oa.TopologySchema, "The topology.")},
    errors=(404,),
)
def wan_topology(wan_id: int) -> Any:
    wan = load_wan(wan_id) or abort(404, "No such WAN.")
    rendered = configs.wan_configs(wan)
    stale = rendered.stale_ids(wan.peers)
    nodes = [
        {
            "id": p.id,
            "name": p.name,
            "kind": p.kind,
            "is_hub": p.is_hub,
            "tunnel_ip": p.tunnel_ip,
            "tunnel_ip6": p.tunnel_ip6,
            "cgnat": p.cgnat,
            "stale": p.id in stale,
        }
        for p in wan.peers
    ]
    edges = [{"a": e.a, "b": e.b, "via": e.via} for e in rendered.topology.edges]
    unreachable = [
        {
            "from_peer_id": u.from_peer_id,
            "peer_id": u.peer_id,
            "subnet_id": u.subnet_id,
            "prefix": str(u.prefix),
            "message": u.message,
        }
        for u in rendered.topology.unreachable
    ]
    return jsonify({"nodes": nodes, "edges": edges, "unreachable": unreachable})


@bp.get("/wan/<int:wan_id>/configs.zip")
@documented(
    "Every peer's config of a WAN, zipped",
    tags=["Networks"],
    description="One `<peer name>.conf` per server/client peer and one `<peer name>.rsc` per MikroTik (they hold "
    "private keys and router passwords), so operators and admins only. Marks nothing applied: mark a peer "
    "with `POST /api/peers/{id}/config`.",
    responses={
        200: {
            "description": "The zip file, as an attachment.",
            "headers": {
                "Content-Disposition": {
                    "schema": {"type": "string"},
                    "required": True,
                    "description": 'attachment; filename="<wan>-configs.zip"',
                }
            },
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    errors=(403, 404),
)
def wan_configs_zip(wan_id: int) -> Any:
    if not current_user.can_edit:
        abort(403, "The configs hold private keys: viewers cannot download them.")
    wan = _wan_or_404(wan_id)  # the peers come with the spec the zip is rendered from
    data = configs.configs_zip(wan)
    commit()  # the audit entry of the download
    return zip_attachment(wan, data)


@bp.get("/wan/<int:wan_id>/audit")
@documented(
    "A WAN's audit log, newest first, one page at a time",
    tags=["Networks"],
    description=(
        "kind=action: what people did (changes, downloads, the jobs they asked for), each with who, when and "
        "which object; kind=router: every call made to the WAN's routers (secrets redacted). The total number "
        "of entries of that kind is in the X-Total-Count header."
    ),
    query=[
        query_param("kind", {"type": "string", "enum": list(audit.AUDIT_KINDS), "default": "action"}, "Which log."),
        query_param("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number, from 1."),
        query_param(
            "per_page",
            {"type": "integer", "minimum": 1, "maximum": audit.PER_PAGE_MAX, "default": audit.PER_PAGE_DEFAULT},
            "Entries per page.",
        ),
    ],
    responses={
        200: {
            **json_response(oa.AuditEntrySchema, "The page's entries.", many=True),
            "headers": {
                "X-Total-Count": {
                    "schema": {"type": "integer"},
                    "required": True,
                    "description": "Entries of this kind in all.",
                }
            },
        }
    },
    errors=(400, 404),
)
def wan_audit(wan_id: int) -> Any:
    _wan_or_404(wan_id)
    kind = request.args.get("kind", "action")
    if kind not in audit.AUDIT_KINDS:
        raise MalformedRequest(f"kind must be one of {', '.join(audit.AUDIT_KINDS)}.", "kind")
    page = request.args.get("page", 1, type=int) or 1
    per_page = request.args.get("per_page", audit.PER_PAGE_DEFAULT, type=int) or audit.PER_PAGE_DEFAULT
    if page < 1 or page > 10**9:
        raise MalformedRequest("page must be a whole number from 1.", "page")
    if not 1 <= per_page <= audit.PER_PAGE_MAX:
        raise MalformedRequest(f"per_page must be from 1 to {audit.PER_PAGE_MAX}.", "per_page")
    entries, total = audit.wan_entries(wan_id, kind, page, per_page)
    resp = jsonify([audit.entry_json(e) for e in entries])
    resp.headers["X-Total-Count"] = str(total)
    return resp


# --- peers -------------------------------------------------------------------------------------


def _flatten_peer_body(data: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in data.items() if k != "mikrotik"}
    mikrotik = data.get("mikrotik")
    if mikrotik is not None:
        if not isinstance(mikrotik, dict):
            raise MalformedRequest("'mikrotik' must be an object.", "mikrotik")
        for key, value in mikrotik.items():
            if key not in MIKROTIK_BODY_FIELDS:
                raise MalformedRequest(f"Unknown field 'mikrotik.{str(key)[:40]}'.", "mikrotik")
            flat[f"mikrotik_{key}"] = value
    return flat


@bp.get("/peers/wan/<int:wan_id>")
@documented(
    "List a WAN's peers",
    tags=["Peers"],
    description="Without parameters, every peer. With any of them, the matching peers and `X-Total-Count`; with "
    "`page`, one page of `per_page` (default 50, at most 500).",
    query=[
        query_param("q", {"type": "string", "maxLength": 100}, "Substring of the name, tunnel IP or a LAN."),
        query_param("kind", {"type": "string", "enum": list(PEER_KINDS)}, "Only peers of this kind."),
        query_param("stale", {"type": "boolean"}, "Only peers whose config is (not) applied."),
        query_param(
            "online", {"type": "boolean"}, "Only peers (not) online; accepted, no effect until peer status exists."
        ),
        query_param(
            "sort",
            {"type": "string", "enum": [f"{d}{k}" for k in queries.PEER_SORTS for d in ("", "-")]},
            "Order; - reverses.",
        ),
        query_param("page", {"type": "integer", "minimum": 1, "maximum": 1_000_000}, "Page number, from 1."),
        query_param("per_page", {"type": "integer", "minimum": 1, "maximum": 500}, "Peers per page (default 50)."),
    ],
    responses={
        200: {
            **json_response(oa.PeerSchema, "The peers, with subnets, services and router access.", many=True),
            "headers": {
                "X-Total-Count": {"schema": {"type": "integer"}, "description": "Matching peers (with any parameter)."}
            },
        }
    },
    errors=(400, 404),
)
def list_peers(wan_id: int) -> Any:
    params = request.args
    if not any(k in params for k in PEER_LIST_PARAMS):
        wan = load_wan(wan_id) or abort(404, "No such WAN.")
        stale = configs.wan_configs(wan).stale_ids(wan.peers)
        statuses = status_service.statuses_for([p.id for p in wan.peers])
        return jsonify([peer_json(p, p.id in stale, statuses.get(p.id)) for p in wan.peers])
    query = peer_query(params, paged="page" in params)
    result = queries.peer_page(_wan_or_404(wan_id), query)
    statuses = status_service.statuses_for([p.id for p in result.peers])
    resp = jsonify([peer_json(p, p.id in result.stale_ids, statuses.get(p.id)) for p in result.peers])
    resp.headers["X-Total-Count"] = str(result.total)
    return resp


PEER_LIST_PARAMS = ("q", "kind", "stale", "online", "page", "per_page", "sort")


def peer_query(params: Any, *, paged: bool) -> queries.PeerQuery:
    """The list parameters, checked (400 names the parameter); without `page`, one page of everything."""

    def flag(name: str) -> bool | None:
        value = params.get(name)
        if value in (None, ""):
            return None
        try:
            return as_bool(value, name)
        except DomainError:
            raise MalformedRequest(f"{name} must be true or false.", name) from None

    def number(name: str, default: int, high: int) -> int:
        value = params.get(name, "")
        if value == "":
            return default
        if not value.isdigit() or not 1 <= int(value) <= high:
            raise MalformedRequest(f"{name} must be a whole number from 1 to {high}.", name)
        return int(value)

    kind = params.get("kind") or None
    if kind is not None and kind not in PEER_KINDS:
        raise MalformedRequest(f"kind must be one of {', '.join(PEER_KINDS)}.", "kind")
    sort = params.get("sort") or "tunnel_ip"
    descending = sort.startswith("-")
    if sort.removeprefix("-") not in queries.PEER_SORTS:
        raise MalformedRequest(f"sort must be one of {', '.join(queries.PEER_SORTS)} (prefix - to reverse).", "sort")
    q = params.get("q", "")
    if len(q) > 100:
        raise MalformedRequest("q is longer than 100 characters.", "q")
    page, per_page = number("page", 1, 1_000_000), number("per_page", queries.PER_PAGE, queries.PER_PAGE_MAX)
    return queries.PeerQuery(
        q=q.strip(),
        kind=kind,
        stale=flag("stale"),
        online=flag("online"),
        sort=sort.removeprefix("-"),
        descending=descending,
        page=page if paged else 1,
        per_page=per_page if paged else MAX_UNPAGED,
    )


MAX_UNPAGED = 1_000_000


@bp.post("/peers/wan/<int:wan_id>")
@documented(
    "Add a peer to a WAN",
    tags=["Peers"],
    description="Gets the lowest free tunnel IP unless `tunnel_ip` is given, and a fresh key pair unless "
    "`public_key` is given.",
    body=oa.PeerCreateSchema,
    responses={201: json_response(oa.PeerSchema, "Created.", location=True)},
    errors=(400, 403, 404, 409, 413, 422),
)
def create_peer(wan_id: int) -> Any:
    data = _flatten_peer_body(_body(PEER_BODY_FIELDS))
    peer = commit_with_retry(lambda: peer_service.create_peer(_wan_or_404(wan_id), data))
    return _created(_peer_out(peer), url_for("api.get_peer", peer_id=peer.id))


@bp.post("/peers/wan/<int:wan_id>/import")
@documented(
    "Add many peers from a CSV table",
    tags=["Peers"],
    description="`text/csv` with the header `name,kind,endpoint,lans` (LANs `;`-separated). Every row passes the "
    "peer form's and subnet form's rules (an overlapping LAN is refused: no Auto-NAT here); all rows are created "
    "or none. Errors are 422 with `line` (the header is line 1) and `field`. At most 10,000 rows.",
    responses={
        201: json_response(oa.PeerSchema, "Every peer created, in table order.", many=True),
        422: json_response(oa.CsvErrorSchema, "A row (or the table) cannot be imported; nothing was."),
    },
    errors=(400, 403, 404, 413),
)
def import_peers_csv(wan_id: int) -> Any:
    text = request.get_data(cache=False, as_text=True)
    try:
        ids = commit_with_retry(lambda: [p.id for p in peer_service.import_csv(_wan_or_404(wan_id), text)])
    except bulk.CsvError as exc:
        db.session.rollback()
        resp = jsonify(exc.to_dict())
        resp.status_code = 422
        return resp
    # New peers were never applied: all stale. Read back in three queries, not three per peer.
    resp = jsonify([peer_json(p, True, None) for p in queries.peers_by_ids(ids)])
    resp.status_code = 201
    return resp


def _peer_out(peer: Peer) -> dict[str, Any]:
    return peer_json(peer, configs.peer_stale(peer))


@bp.get("/peers/<int:peer_id>")
@documented("One peer", tags=["Peers"], responses={200: json_response(oa.PeerSchema, "The peer.")}, errors=(404,))
def get_peer(peer_id: int) -> Any:
    return jsonify(_peer_out(peer_or_404(peer_id)))


CONFIG_RESPONSE = {
    "description": "The config text, as an attachment (`<interface>.conf` or `<peer>.rsc`).",
    "headers": {
        "Content-Disposition": {
            "schema": {"type": "string"},
            "required": True,
            "description": 'attachment; filename="…"',
        },
        "X-Config-Hash": {
            "schema": {"type": "string"},
            "required": True,
            "description": "SHA-256 of the config.",
        },
    },
    "content": {"text/plain": {"schema": {"type": "string"}}},
}
CONFIG_TYPE_PARAM = query_param(
    "config_type",
    {"type": "string", "enum": ["wireguard", "mikrotik-script"], "default": "wireguard"},
    "Which config.",
)


@bp.get("/peers/<int:peer_id>/config")
@documented(
    "Download a peer's config",
    tags=["Peers"],
    description="The wg-quick file (`wireguard`) or, for a MikroTik peer, the RouterOS script (`mikrotik-script`). "
    "It holds the private key, so viewers may not download it. Changes nothing: `POST` the same URL to also "
    "mark the peer applied.",
    query=[CONFIG_TYPE_PARAM],
    responses={200: CONFIG_RESPONSE},
    errors=(400, 403, 404),
)
def peer_config(peer_id: int) -> Any:
    """The wg-quick file or RouterOS script, as an attachment."""
    peer, config = _config_for_download(peer_id)
    audit.record(
        "download-config",
        "peer",
        peer.id,
        wan_id=peer.wan_id,
        summary=f"peer '{peer.name}': {config.kind} config downloaded",
    )
    commit()
    return attachment(peer, config)


@bp.post("/peers/<int:peer_id>/config")
@documented(
    "Download a peer's config and mark it applied",
    tags=["Peers"],
    description="The same text as `GET`; the peer then counts as running it (no longer stale). For a MikroTik "
    "peer only its own script marks it applied.",
    query=[CONFIG_TYPE_PARAM],
    responses={200: CONFIG_RESPONSE},
    errors=(400, 403, 404),
)
def peer_config_applied(peer_id: int) -> Any:
    peer, config = _config_for_download(peer_id)
    # The router config is what is deployed, so only its own kind of download marks it applied.
    if (config.kind == "mikrotik-script") == (peer.kind == "mikrotik"):
        configs.mark_applied(peer, config, "download-config")
    else:
        audit.record(
            "download-config",
            "peer",
            peer.id,
            wan_id=peer.wan_id,
            summary=f"peer '{peer.name}': {config.kind} config downloaded",
        )
    commit()
    return attachment(peer, config)


def _config_for_download(peer_id: int) -> tuple[Peer, configs.PeerConfig]:
    peer = peer_or_404(peer_id)
    if not current_user.can_edit:
        abort(403, "A config holds a private key: viewers cannot download it.")
    config_type = request.args.get("config_type", "wireguard")
    if config_type not in {"wireguard", "mikrotik-script"}:
        raise MalformedRequest("config_type must be 'wireguard' or 'mikrotik-script'.", "config_type")
    if config_type == "mikrotik-script" and peer.kind != "mikrotik":
        raise MalformedRequest("Only MikroTik peers have a RouterOS script.", "config_type")
    return peer, configs.peer_config(peer, config_type)


@bp.patch("/peers/<int:peer_id>")
@documented(
    "Change a peer",
    tags=["Peers"],
    description="Any peer field; the others keep their values. A blank router password keeps the stored one.",
    body=oa.PeerUpdateSchema,
    responses={200: json_response(oa.PeerSchema, "The changed peer.")},
    errors=(400, 403, 404, 409, 413, 422),
)
def update_peer(peer_id: int) -> Any:
    data = _flatten_peer_body(_body(PEER_BODY_FIELDS))
    peer = commit_with_retry(lambda: peer_service.update_peer(peer_or_404(peer_id), data))
    return jsonify(_peer_out(peer))


@bp.post("/peers/<int:peer_id>/rotate-key")
@documented(
    "Give a peer a new key pair",
    tags=["Peers"],
    description="WireWAN generates and keeps the new private key. Every peer listing this one turns stale; "
    "auto-deploy routers redeploy.",
    responses={200: json_response(oa.PeerSchema, "The peer with its new public key.")},
    errors=(400, 403, 404, 409),
)
def rotate_peer_key(peer_id: int) -> Any:
    peer = commit_with_retry(lambda: peer_service.regenerate_keys(peer_or_404(peer_id)))
    return jsonify(_peer_out(peer))


@bp.delete("/peers/<int:peer_id>")
@documented("Delete a peer", tags=["Peers"], responses={204: oa.NO_CONTENT}, errors=(400, 403, 404, 409))
def delete_peer(peer_id: int) -> Any:
    commit_with_retry(lambda: peer_service.delete_peer(peer_or_404(peer_id)))
    return "", 204


# --- subnets and services ------------------------------------------------------------------------


def _subnet_or_404(peer: Peer, subnet_id: int) -> Subnet:
    subnet = db.session.get(Subnet, subnet_id)
    if subnet is None or subnet.peer_id != peer.id:
        abort(404, "No such subnet on this peer.")
    return subnet


@bp.post("/peers/<int:peer_id>/subnets")
@documented(
    "Add a LAN the peer hosts",
    tags=["Peers"],
    description="The fields come as a JSON body or, when the body is empty, as query arguments. An overlap is "
    "refused (409) unless `auto_nat` is true.",
    body=oa.SubnetCreateSchema,
    body_required=False,
    query=[
        query_param("cidr", {"type": "string"}, "The LAN (used only when the body is empty)."),
        query_param("routed", {"type": "boolean"}, "Default true (used only when the body is empty)."),
        query_param("auto_nat", {"type": "boolean"}, "Default false (used only when the body is empty)."),
    ],
    responses={201: json_response(oa.SubnetSchema, "Created; Location is the peer.", location=True)},
    errors=(400, 403, 404, 409, 413, 422),
)
def add_subnet(peer_id: int) -> Any:
    data = _body({"cidr", "routed", "auto_nat"}, query_fallback=True)

    def work() -> Subnet:
        peer = peer_or_404(peer_id)
        return subnets.add_subnet(peer, data.get("cidr"), data.get("routed", True), data.get("auto_nat", False))

    subnet = commit_with_retry(work)
    return _created(subnet_json(subnet), url_for("api.get_peer", peer_id=peer_id))


@bp.put("/peers/<int:peer_id>/subnets/<int:subnet_id>")
@documented(
    "Change a LAN: Auto-NAT, NAT off, routed on/off",
    tags=["Peers"],
    description="`auto_nat=true` gives it an Auto-NAT translation; `nat: false` removes it; `routed` switches "
    "routing. Query arguments and JSON body fields combine (the body wins).",
    body=oa.SubnetUpdateSchema,
    body_required=False,
    query=[
        query_param("auto_nat", {"type": "boolean"}, "true: give the subnet an Auto-NAT translation."),
        query_param("nat", {"type": "boolean"}, "false: remove the translation."),
        query_param("routed", {"type": "boolean"}, "Route to it or not."),
    ],
    responses={200: json_response(oa.SubnetSchema, "The changed subnet.")},
    errors=(400, 403, 404, 409, 413, 422),
)
def update_subnet(peer_id: int, subnet_id: int) -> Any:
    data = {**request.args.to_dict(), **_body({"routed", "nat", "auto_nat"})}

    def work() -> Subnet:
        peer = peer_or_404(peer_id)
        return subnets.update_subnet(
            peer,
            _subnet_or_404(peer, subnet_id),
            routed=data.get("routed"),
            nat=data.get("nat"),
            auto_nat=data.get("auto_nat", False),
        )

    return jsonify(subnet_json(commit_with_retry(work)))


@bp.delete("/peers/<int:peer_id>/subnets/<int:subnet_id>")
@documented(
    "Remove a LAN",
    tags=["Peers"],
    description="Refused (409) while a published service's local address is only inside it.",
    responses={204: oa.NO_CONTENT},
    errors=(400, 403, 404, 409),
)
def delete_subnet(peer_id: int, subnet_id: int) -> Any:
    def work() -> None:
        peer = peer_or_404(peer_id)
        subnets.delete_subnet(peer, _subnet_or_404(peer, subnet_id))

    commit_with_retry(work)
    return "", 204


@bp.post("/peers/<int:peer_id>/services")
@documented(
    "Publish a service",
    tags=["Peers"],
    description="Makes local_ip:local_port reachable across the overlay at shared_ip:shared_port.",
    body=oa.ServiceCreateSchema,
    responses={201: json_response(oa.ServiceSchema, "Created; Location is the peer.", location=True)},
    errors=(400, 403, 404, 409, 413, 422),
)
def add_service(peer_id: int) -> Any:
    data = _body(published.SERVICE_FIELDS)
    service = commit_with_retry(lambda: published.add_service(peer_or_404(peer_id), data))
    return _created(service_json(service), url_for("api.get_peer", peer_id=peer_id))


@bp.delete("/peers/<int:peer_id>/services/<int:service_id>")
@documented("Stop publishing a service", tags=["Peers"], responses={204: oa.NO_CONTENT}, errors=(400, 403, 404, 409))
def delete_service(peer_id: int, service_id: int) -> Any:
    def work() -> None:
        peer = peer_or_404(peer_id)
        service = db.session.get(Service, service_id)
        if service is None or service.peer_id != peer.id:
            abort(404, "No such service on this peer.")
        published.delete_service(peer, service)

    commit_with_retry(work)
    return "", 204


# --- MikroTik jobs ---------------------------------------------------------------------------------


def _job_accepted(job: Job) -> Any:
    resp = jsonify({"job_id": job.id, "status": job.status})
    resp.status_code = 202
    resp.headers["Location"] = url_for("api.get_job", job_id=job.id)
    return resp


def _router_job(peer_id: int, kind: JobKind) -> Any:
    if not current_user.can_edit:
        abort(403, "Your role is read-only (viewer).")
    if request.method == "GET" and not is_token_auth():
        # The contract makes preflight and verify GETs, yet they queue work: a browser session
        # must prove it is not a cross-site request, as for any other state change (flask-wtf's
        # protect() only looks at unsafe methods, so the token is checked here).
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except WTFValidationError as exc:
            raise CSRFError(str(exc.args[0] if exc.args else "CSRF check failed")) from exc
    return _job_accepted(commit_with_retry(lambda: mikrotik.request_job(kind, peer_or_404(peer_id))))


@bp.post("/peers/<int:peer_id>/mikrotik/test-connection")
@documented(
    "Test the router connection",
    tags=["MikroTik"],
    description="The finished job's result has the RouterOS version, identity and WireWAN's local address.",
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 422, 503),
)
def mikrotik_test_connection(peer_id: int) -> Any:
    return _router_job(peer_id, JobKind.TEST_CONNECTION)


@bp.route("/peers/<int:peer_id>/mikrotik/preflight", methods=["GET", "POST"])
@documented(
    "Preflight: plan a deploy",
    tags=["MikroTik"],
    description="Reads the router and plans the changes. The finished job's result holds "
    "`{plan: [ops], plan_hash, conflicts: [...]}`; approve the plan with its plan_hash. GET (as in the "
    "contract) and POST do the same; a session GET needs X-CSRFToken.",
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 422, 503),
)
def mikrotik_preflight(peer_id: int) -> Any:
    return _router_job(peer_id, JobKind.PREFLIGHT)


@bp.route("/peers/<int:peer_id>/mikrotik/verify", methods=["GET", "POST"])
@documented(
    "Verify the router against the desired state",
    tags=["MikroTik"],
    description="The finished job's result holds `{in_sync: bool, drift: [...]}`. GET (as in the contract) "
    "and POST do the same; a session GET needs X-CSRFToken.",
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 422, 503),
)
def mikrotik_verify(peer_id: int) -> Any:
    return _router_job(peer_id, JobKind.VERIFY)


@bp.post("/peers/<int:peer_id>/mikrotik/revert")
@documented(
    "Revert to the previous deployment",
    tags=["MikroTik"],
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 422, 503),
)
def mikrotik_revert(peer_id: int) -> Any:
    return _router_job(peer_id, JobKind.REVERT)


@bp.post("/peers/<int:peer_id>/mikrotik/clear")
@documented(
    "Remove everything WireWAN put on the router",
    tags=["MikroTik"],
    description="Also restores routes WireWAN demoted.",
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 422, 503),
)
def mikrotik_clear(peer_id: int) -> Any:
    return _router_job(peer_id, JobKind.CLEAR)


@bp.post("/peers/<int:peer_id>/mikrotik/deploy")
@documented(
    "Deploy an approved plan",
    tags=["MikroTik"],
    description="Applies exactly the plan of the latest succeeded preflight: send `approve=true` and its "
    "`plan_hash` (JSON body or query arguments). Refused with 409 if the router or the WAN changed since.",
    body=oa.DeploySchema,
    body_required=False,
    query=[
        query_param("approve", {"type": "boolean"}, "Must be true."),
        query_param("plan_hash", {"type": "string"}, "plan_hash of the latest succeeded preflight."),
    ],
    responses={202: job_accepted()},
    errors=(400, 403, 404, 409, 413, 422, 503),
)
def mikrotik_deploy(peer_id: int) -> Any:
    data = {**request.args.to_dict(), **_body({"approve", "plan_hash"})}
    approve = as_bool(data.get("approve", False), "approve")
    plan_hash = data.get("plan_hash")
    if plan_hash is not None and not isinstance(plan_hash, str):
        raise MalformedRequest("plan_hash must be text.", "plan_hash")
    job = commit_with_retry(lambda: mikrotik.request_deploy(peer_or_404(peer_id), approve, plan_hash))
    return _job_accepted(job)


@bp.get("/jobs")
@documented(
    "List jobs, newest first",
    tags=["Jobs"],
    query=[
        query_param("wan_id", {"type": "integer"}, oa.JOB_PARAM_DOC.format("WAN")),
        query_param("peer_id", {"type": "integer"}, oa.JOB_PARAM_DOC.format("peer")),
        query_param("status", {"type": "string", "enum": list(JOB_STATUSES)}, oa.JOB_PARAM_DOC.format("status")),
        query_param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "At most this many."),
    ],
    responses={200: json_response(oa.JobSchema, "The jobs.", many=True)},
    errors=(400, 404, 422),
)
def list_jobs() -> Any:
    # 1..500: a negative LIMIT means "no limit" to SQLite and is an error (a 500) on PostgreSQL.
    limit = max(1, min(request.args.get("limit", 100, type=int) or 100, 500))
    status = request.args.get("status")
    if status and status not in JOB_STATUSES:
        raise MalformedRequest(f"status must be one of {', '.join(JOB_STATUSES)}.", "status")
    filters = queries.JobFilters(
        id_arg(request.args, "wan_id"), id_arg(request.args, "peer_id"), status, quiet_polls=True
    )
    return jsonify([job_json(j) for j in queries.list_jobs(filters, limit)])


@bp.get("/jobs/<int:job_id>")
@documented("One job", tags=["Jobs"], responses={200: json_response(oa.JobSchema, "The job.")}, errors=(404,))
def get_job(job_id: int) -> Any:
    job = db.session.get(Job, job_id) or abort(404, "No such job.")
    return jsonify(job_json(job))
