from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import login_required

from app.blueprints.ops.routes import source_names
from app.blueprints.wans.forms import WanForm
from app.domain import conflicts as conflict_rules
from app.domain import topology_svg, validation
from app.domain.addressing import parse_network_strict
from app.domain.errors import DomainError
from app.domain.model import PEER_KINDS
from app.extensions import db
from app.forms import form_data, show_errors
from app.htmx import hx_redirect, is_htmx, page_or_partial
from app.models import Wan
from app.permissions import editor_required
from app.services import audit as audit_service
from app.services import configs, queries, transfer, wans
from app.services import peers as peer_service
from app.services import status as status_service
from app.services.downloads import document_attachment, zip_attachment
from app.services.inputs import as_bool
from app.services.specs import load_wan, wan_spec
from app.services.tx import commit, commit_with_retry

bp = Blueprint("wans", __name__, url_prefix="/wans")


def _wan_or_404(wan_id: int) -> Wan:
    return load_wan(wan_id) or abort(404)


@bp.get("/")
@login_required
def list_wans() -> Any:
    return render_template("wans/list.html", rows=queries.wans_with_peer_counts())


@bp.route("/new", methods=["GET", "POST"])
@editor_required
def create_wan() -> Any:
    form = WanForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                wan = commit_with_retry(lambda: wans.create_wan(form_data(form, wans.WAN_FIELDS)))
            except DomainError as exc:
                show_errors(form, exc)
            else:
                flash(f"WAN '{wan.name}' created. Add its first peers.", "success")
                return redirect(url_for("wans.detail", wan_id=wan.id), code=303)
        return render_template(
            "wans/form.html", form=form, wan=None, suggested_cidr6=wans.suggested_tunnel_cidr6()
        ), 422
    return render_template("wans/form.html", form=form, wan=None, suggested_cidr6=wans.suggested_tunnel_cidr6())


@bp.get("/<int:wan_id>")
@login_required
def detail(wan_id: int) -> Any:
    wan = db.session.get(Wan, wan_id) or abort(404)
    context = wan_page_context(wan)
    return page_or_partial("wans/detail.html", "wans/_peers_table.html", **context)


def page_query(args: Any) -> queries.PeerQuery:
    """The peer table's search, filters, order and page from the URL; odd values fall back to the
    defaults (a bookmarked URL never errors)."""

    def number(name: str, default: int, high: int) -> int:
        value = args.get(name, "")
        return int(value) if value.isdigit() and 1 <= int(value) <= high else default

    def flag(name: str) -> bool | None:
        return {"true": True, "false": False}.get(args.get(name, ""))

    sort = args.get("sort", "tunnel_ip")
    return queries.PeerQuery(
        q=args.get("q", "").strip()[:100],
        kind=args.get("kind") if args.get("kind") in PEER_KINDS else None,
        stale=flag("stale"),
        online=flag("online"),
        sort=sort.removeprefix("-") if sort.removeprefix("-") in queries.PEER_SORTS else "tunnel_ip",
        descending=sort.startswith("-"),
        page=number("page", 1, 1_000_000),
        per_page=queries.PER_PAGE,
    )


def wan_page_context(wan: Wan) -> dict[str, Any]:
    """What the WAN page shows: one page of peers (with badges and live status) and the conflicts
    panel; the whole WAN is never loaded while the cached hashes and findings are current.
    `?live=up|down|unreachable|drifted` (the dashboard's links) lists only those peers."""
    live = request.args.get("live")
    live = live if live in status_service.LIVE_FILTERS else None
    query = page_query(request.args)
    if live:
        query = replace(query, only_ids=frozenset(status_service.live_filter_ids(wan.id, live)))
    page = queries.peer_page(wan, query, count_stale=True)
    statuses = status_service.statuses_for([p.id for p in page.peers])
    return {
        "wan": wan,
        "live_filter": live,
        "peers": page.peers,
        "listing": page,
        # Unfiltered, the page's own count is the WAN's.
        "peer_count": page.total if query.unfiltered and not live else queries.peer_count(wan),
        "findings": configs.shown_findings(wan),
        "stale_ids": page.stale_ids,
        "stale_total": page.stale_total,
        # Live status (issue 12): the table refreshes itself every poll interval.
        "statuses": statuses,
        "source_names": source_names(wan.id, {s.source for s in statuses.values() if s.source}),
    }


# Drawings up to this width start fitted to the page; larger ones at 100 % (scrolled), where their
# text stays readable.
FIT_MAX_WIDTH = 1600


@bp.get("/<int:wan_id>/topology")
@login_required
def topology(wan_id: int) -> Any:
    """The WAN drawn by role (hubs, then servers and routers, then clients and CGNAT peers)."""
    wan = _wan_or_404(wan_id)
    rendered = configs.wan_configs(wan)
    # ?all=1: every peer its own node however many (large, scrolled); by default spokes beyond
    # CLUSTER_ABOVE are clustered by kind.
    every_peer = request.args.get("all") == "1"
    drawing = topology_svg.render_svg(
        wan_spec(wan),
        rendered.topology,
        stale_ids=rendered.stale_ids(wan.peers),
        not_applied_ids={p.id for p in wan.peers if p.applied_config_hash is None},
        href=lambda peer_id: url_for("peers.detail", peer_id=peer_id),
        cluster_href=lambda kind: url_for("wans.detail", wan_id=wan_id, kind=kind),
        cluster_above=None if every_peer else topology_svg.CLUSTER_ABOVE,
    )
    return render_template(
        "wans/topology.html",
        wan=wan,
        drawing=drawing,
        fit=drawing.width <= FIT_MAX_WIDTH,
        every_peer=every_peer,
        cluster_above=topology_svg.CLUSTER_ABOVE,
    )


@bp.route("/<int:wan_id>/edit", methods=["GET", "POST"])
@editor_required
def edit_wan(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    form = WanForm(obj=wan) if request.method == "GET" else WanForm()
    if request.method == "GET":
        form.mgmt_cidrs.data = "\n".join(wan.mgmt_cidrs or [])
        form.dns.data = ", ".join(wan.dns or [])
        return render_template("wans/form.html", form=form, wan=wan, suggested_cidr6=wans.suggested_tunnel_cidr6())
    if form.validate_on_submit():
        try:
            commit_with_retry(lambda: wans.update_wan(_wan_or_404(wan_id), form_data(form, wans.WAN_FIELDS)))
        except DomainError as exc:
            show_errors(form, exc)
        else:
            flash("WAN settings saved.", "success")
            return redirect(url_for("wans.detail", wan_id=wan_id), code=303)
    return render_template("wans/form.html", form=form, wan=wan, suggested_cidr6=wans.suggested_tunnel_cidr6()), 422


@bp.post("/<int:wan_id>/delete")
@editor_required
def delete_wan(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    name = wan.name
    commit_with_retry(lambda: wans.delete_wan(_wan_or_404(wan_id)))
    flash(f"WAN '{name}' deleted. Resources already deployed on routers stay until you clear them.", "info")
    target = url_for("wans.list_wans")
    return hx_redirect(target) if is_htmx() else redirect(target, code=303)


@bp.post("/<int:wan_id>/configs.zip")
@editor_required
def configs_zip(wan_id: int) -> Any:
    """Every peer's config in one zip. POST although it marks nothing applied: it hands out every
    private key of the WAN and is audited, so a cross-site link must not trigger it."""
    wan = db.session.get(Wan, wan_id) or abort(404)  # the peers come with the spec the zip is rendered from
    data = configs.configs_zip(wan)
    commit()
    return zip_attachment(wan, data)


@bp.post("/<int:wan_id>/mark-applied")
@editor_required
def mark_all_applied(wan_id: int) -> Any:
    count = commit_with_retry(lambda: configs.mark_all_applied(_wan_or_404(wan_id)))
    flash(f"{count} peer{'s' if count != 1 else ''} marked as running the current config.", "success")
    return redirect(url_for("wans.detail", wan_id=wan_id), code=303)


@bp.get("/<int:wan_id>/audit")
@login_required
def audit(wan_id: int) -> Any:
    """The WAN's log in two tabs: what people did ("action") and the calls made to routers ("router")."""
    wan = _wan_or_404(wan_id)
    kind = request.args.get("kind", "action")
    if kind not in audit_service.AUDIT_KINDS:
        kind = "action"
    per_page = audit_service.PER_PAGE_DEFAULT
    page = max(1, request.args.get("page", 1, type=int) or 1)
    entries, total = audit_service.wan_entries(wan_id, kind, page, per_page)
    pages = max(1, -(-total // per_page))
    if page > pages:
        page = pages
        entries, total = audit_service.wan_entries(wan_id, kind, page, per_page)
    other = "router" if kind == "action" else "action"
    _, other_total = audit_service.wan_entries(wan_id, other, 1, 1)
    counts = {kind: total, other: other_total}
    peer_names = {p.id: p.name for p in wan.peers}
    return render_template(
        "wans/audit.html",
        wan=wan,
        entries=entries,
        kind=kind,
        page=page,
        pages=pages,
        total=total,
        counts=counts,
        per_page=per_page,
        peer_names=peer_names,
    )


# --- live checks: small fragments rendered under a field while the user types ----------------------


def _messages(errors: list[str] | None = None, notes: list[str] | None = None, ok: str | None = None) -> str:
    return render_template("_field_messages.html", errors=errors or [], notes=notes or [], ok=ok)


@bp.get("/<int:wan_id>/check/cidr")
@login_required
def check_cidr(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    text = request.args.get("cidr") or request.args.get("subnet") or ""
    if not text.strip():
        return _messages()
    peer_id = request.args.get("peer_id", type=int) or -1
    routed = request.args.get("routed") or request.args.get("subnet_routed")
    auto_nat = request.args.get("auto_nat") or request.args.get("subnet_auto_nat")
    try:
        cidr = parse_network_strict(text)
        decision = conflict_rules.check_subnet(
            wan_spec(wan), peer_id, cidr, as_bool(routed, "routed"), as_bool(auto_nat, "auto_nat")
        )
    except DomainError as exc:
        return _messages([exc.message])
    if decision.notes:
        return _messages(notes=list(decision.notes))
    return _messages(ok=f"{cidr} does not conflict with anything in this WAN.")


@bp.get("/<int:wan_id>/check/endpoint")
@login_required
def check_endpoint(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    try:
        listen_port = validation.validate_port(request.args.get("listen_port") or wan.listen_port)
        endpoint = validation.parse_endpoint(request.args.get("endpoint"), listen_port)
        if endpoint is None:
            return _messages(
                notes=[
                    "No endpoint: this peer is behind CGNAT. It calls out to peers that have "
                    "one, and its config keeps the tunnel alive with PersistentKeepalive."
                ]
            )
        validation.check_endpoint_port(endpoint[1], listen_port, as_bool(request.args.get("has_port_forward"), "x"))
    except DomainError as exc:
        return _messages([exc.message])
    host = f"[{endpoint[0]}]" if ":" in endpoint[0] else endpoint[0]
    return _messages(ok=f"Other peers will connect to {host}:{endpoint[1]}.")


@bp.get("/<int:wan_id>/check/mgmt-host")
@login_required
def check_mgmt_host(wan_id: int) -> Any:
    wan = _wan_or_404(wan_id)
    text = request.args.get("mikrotik_host") or ""
    if not text.strip():
        return _messages()
    try:
        host = validation.validate_host(text)
        tunnel_ip = request.args.get("tunnel_ip") or ""
        tunnel = IPv4Network(wan.tunnel_cidr)
        own = IPv4Address(tunnel_ip) if _is_ipv4(tunnel_ip) else tunnel.network_address
        validation.check_management_host(host, own, tunnel)
    except DomainError as exc:
        return _messages([exc.message])
    return _messages(ok=f"WireWAN will reach the router's API at {host}.")


def _is_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


# --- lifecycle: export/import of a WAN, CSV import of peers ----------------------------------------


@bp.post("/<int:wan_id>/export")
@editor_required
def export_wan(wan_id: int) -> Any:
    """The WAN document as a download (the passphrase protects its secrets)."""
    wan = db.session.get(Wan, wan_id) or abort(404)
    try:
        document = transfer.export_wan(wan.id, request.form.get("passphrase", ""))
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("wans.edit_wan", wan_id=wan_id), code=303)
    commit()
    return document_attachment(wan, json.dumps(document, indent=1))


@bp.route("/import", methods=["GET", "POST"])
@editor_required
def import_wan() -> Any:
    error = None
    if request.method == "POST":
        upload = request.files.get("document")
        try:
            document = json.loads(upload.read().decode("utf-8")) if upload else None
        except (UnicodeDecodeError, ValueError):
            document = None
        name = request.form.get("name", "").strip() or None
        try:
            if document is None:
                raise DomainError("Choose the .wirewan.json file an export gave you.", "document")
            wan = commit_with_retry(lambda: transfer.import_wan(document, request.form.get("passphrase", ""), name))
        except DomainError as exc:
            db.session.rollback()
            error = exc.message
        else:
            flash(f"WAN '{wan.name}' imported. Verify each router before relying on it.", "success")
            return redirect(url_for("wans.detail", wan_id=wan.id), code=303)
    return render_template("wans/import.html", error=error), 422 if error else 200


@bp.route("/<int:wan_id>/import-peers", methods=["GET", "POST"])
@editor_required
def import_peers(wan_id: int) -> Any:
    """Paste or upload a CSV table; the first POST previews, the confirming one creates."""
    wan = db.session.get(Wan, wan_id) or abort(404)
    text = request.form.get("csv", "")
    upload = request.files.get("file")
    if upload and upload.filename:
        text = upload.read().decode("utf-8", "replace")
    planned, error = None, None
    if request.method == "POST":
        try:
            if request.form.get("confirm"):
                created = commit_with_retry(
                    lambda: peer_service.import_csv(db.session.get(Wan, wan_id) or abort(404), text)
                )
                flash(f"{len(created)} peers imported.", "success")
                return redirect(url_for("wans.detail", wan_id=wan_id), code=303)
            planned = peer_service.preview_csv(wan, text)
        except DomainError as exc:
            db.session.rollback()
            error = exc
    status = 422 if error else 200
    return render_template("wans/import_peers.html", wan=wan, csv=text, planned=planned, error=error), status
