from __future__ import annotations

from typing import Any, cast

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.blueprints.lookups import peer_or_404
from app.blueprints.ops.routes import peer_status_context
from app.blueprints.peers.forms import PeerForm, ServiceForm, SubnetForm
from app.domain.errors import DomainError
from app.extensions import db
from app.forms import form_data, show_errors
from app.htmx import hx_redirect, is_htmx
from app.models import Peer, Service, Subnet, Wan
from app.permissions import editor_required
from app.security import no_store
from app.services import configs, published, queries, subnets
from app.services import peers as peer_service
from app.services.downloads import attachment
from app.services.specs import load_wan
from app.services.tx import commit, commit_with_retry

bp = Blueprint("peers", __name__)


def _child_or_404(model: type[Subnet] | type[Service], peer: Peer, child_id: int) -> Any:
    # get() on a union of model classes is typed `object`: say which rows it returns.
    row = cast("Subnet | Service | None", db.session.get(model, child_id))
    if row is None or row.peer_id != peer.id:
        abort(404)
    return row


@bp.route("/wans/<int:wan_id>/peers/new", methods=["GET", "POST"])
@editor_required
def create_peer(wan_id: int) -> Any:
    wan = load_wan(wan_id) or abort(404)
    form = PeerForm()
    if request.method == "GET":
        form.listen_port.data = str(wan.listen_port)
        if request.args.get("kind") in {"server", "mikrotik", "client"}:
            form.kind.data = request.args["kind"]
        return render_template("peers/form.html", form=form, wan=wan, peer=None)
    if form.validate_on_submit():
        data = {**form_data(form, peer_service.PEER_FIELDS), "enabled": not form.disabled.data}

        def work() -> Peer:
            peer = peer_service.create_peer(load_wan(wan_id) or abort(404), data)
            if (form.subnet.data or "").strip():
                subnets.add_subnet(peer, form.subnet.data, form.subnet_routed.data, form.subnet_auto_nat.data)
            return peer

        try:
            peer = commit_with_retry(work)
        except DomainError as exc:
            show_errors(form, exc, aliases={"cidr": "subnet", "routed": "subnet_routed"})
        else:
            flash(f"Peer '{peer.name}' added at {peer.tunnel_ip}.", "success")
            return redirect(url_for("peers.detail", peer_id=peer.id), code=303)
    return render_template("peers/form.html", form=form, wan=wan, peer=None), 422


@bp.get("/wans/<int:wan_id>/peers/kind-help")
@login_required
def kind_help(wan_id: int) -> Any:
    """The callout under the Type field, swapped in by htmx when the type changes."""
    wan = db.session.get(Wan, wan_id) or abort(404)
    return render_template("peers/_kind_help.html", kind=request.args.get("kind", ""), wan=wan)


@bp.get("/peers/<int:peer_id>")
@login_required
def detail(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    config = configs.peer_config(peer)
    stale = configs.is_stale(peer, config.sha256)
    return render_template(
        "peers/detail.html",
        stale=stale,
        changes=configs.changes_since_applied(peer, config) if stale else "",
        preview=configs.masked(config.text),
        **peer_page_context(peer),
        **_router_context(peer, stale),
    )


@bp.get("/peers/<int:peer_id>/state")
@login_required
def state(peer_id: int) -> Any:
    """The header's state badges, and the stale banner out of band: refreshed after a download."""
    peer = peer_or_404(peer_id)
    config = configs.peer_config(peer)
    stale = configs.is_stale(peer, config.sha256)
    return render_template(
        "peers/_state_oob.html",
        stale=stale,
        changes=configs.changes_since_applied(peer, config) if stale else "",
        oob=True,
        **peer_page_context(peer),
    )


def _router_context(peer: Peer, stale: bool | None = None) -> dict[str, Any]:
    """The Router section's data: the page shows the section for MikroTik peers only."""
    return {"router": queries.router_panel(peer, stale)} if peer.kind == "mikrotik" else {}


def peer_page_context(
    peer: Peer, subnet_form: SubnetForm | None = None, service_form: ServiceForm | None = None
) -> dict[str, Any]:
    return {
        "peer": peer,
        "wan": peer.wan,
        "subnet_form": subnet_form or SubnetForm(),
        "service_form": service_form or ServiceForm(),
        "can_edit": current_user.can_edit,
        **peer_status_context(peer),
    }


# --- configs: POST because each download hands out a private key, is audited and marks applied ----


@bp.post("/peers/<int:peer_id>/config")
@editor_required
def download_config(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    config = configs.peer_config(peer, "mikrotik-script" if peer.kind == "mikrotik" else "wireguard")
    configs.mark_applied(peer, config, "download-config")
    commit()
    resp = attachment(peer, config)
    # The page's copy of the peer's state refreshes itself on this event (see peers/_state.html).
    resp.headers["HX-Trigger"] = "config-applied"
    return resp


@bp.post("/peers/<int:peer_id>/qr")
@editor_required
def show_qr(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    if peer.kind == "mikrotik":
        abort(404)
    config = configs.peer_config(peer, "wireguard")
    # Render first, commit after: a config that does not fit a QR code must not count as applied.
    try:
        svg = configs.qr_svg(config.text)
    except configs.ConfigTooLargeForQr as exc:
        db.session.rollback()
        return render_template("errors/error.html", code=422, title="Too large for a QR code", message=str(exc)), 422
    page = render_template("peers/qr.html", peer=peer, svg=svg, config_text=config.text)
    configs.mark_applied(peer, config, "show-qr")
    commit()
    return no_store(make_response(page))


@bp.post("/peers/<int:peer_id>/mark-applied")
@editor_required
def mark_applied(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    configs.mark_applied(peer, configs.peer_config(peer), "mark-applied")
    commit()
    flash(f"'{peer.name}' is marked as running its current config.", "success")
    return redirect(url_for("peers.detail", peer_id=peer_id), code=303)


@bp.route("/peers/<int:peer_id>/edit", methods=["GET", "POST"])
@editor_required
def edit_peer(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    if request.method == "GET":
        values = peer_service.current_values(peer)
        form = PeerForm(data={**values, "disabled": not values["enabled"], "expires_at": values["expires_at"] or ""})
        return render_template("peers/form.html", form=form, wan=peer.wan, peer=peer)
    form = PeerForm()
    if form.validate_on_submit():
        data = {**form_data(form, peer_service.PEER_FIELDS), "enabled": not form.disabled.data}
        try:
            commit_with_retry(lambda: peer_service.update_peer(peer_or_404(peer_id), data))
        except DomainError as exc:
            show_errors(form, exc)
        else:
            flash("Peer saved.", "success")
            return redirect(url_for("peers.detail", peer_id=peer_id), code=303)
    return render_template("peers/form.html", form=form, wan=peer.wan, peer=peer), 422


@bp.post("/peers/<int:peer_id>/delete")
@editor_required
def delete_peer(peer_id: int) -> Any:
    peer = peer_or_404(peer_id)
    wan_id, name = peer.wan_id, peer.name
    commit_with_retry(lambda: peer_service.delete_peer(peer_or_404(peer_id)))
    flash(f"Peer '{name}' deleted.", "info")
    target = url_for("wans.detail", wan_id=wan_id)
    return hx_redirect(target) if is_htmx() else redirect(target, code=303)


@bp.post("/peers/<int:peer_id>/rotate-keys")
@editor_required
def rotate_keys(peer_id: int) -> Any:
    commit_with_retry(lambda: peer_service.regenerate_keys(peer_or_404(peer_id)))
    flash("New key pair generated. Every peer's config now needs the new public key.", "success")
    return redirect(url_for("peers.detail", peer_id=peer_id), code=303)


# --- subnets and services: htmx swaps the section, plain posts redirect ---------------------------


def _section(peer_id: int, template: str, status: int = 200, **forms: Any) -> Any:
    db.session.expire_all()
    peer = peer_or_404(peer_id)
    if is_htmx():
        # The section plus the flash messages, swapped out of band into the page's message area.
        body = render_template(template, **peer_page_context(peer, **forms)) + render_template("_flashes_oob.html")
        return body, status
    if status >= 400:
        page = render_template("peers/detail.html", **peer_page_context(peer, **forms), **_router_context(peer))
        return page, status
    return redirect(url_for("peers.detail", peer_id=peer_id), code=303)


@bp.post("/peers/<int:peer_id>/subnets")
@editor_required
def add_subnet(peer_id: int) -> Any:
    form = SubnetForm()
    if form.validate_on_submit():
        try:
            subnet = commit_with_retry(
                lambda: subnets.add_subnet(peer_or_404(peer_id), form.cidr.data, form.routed.data, form.auto_nat.data)
            )
        except DomainError as exc:
            show_errors(form, exc)
        else:
            note = f" — other peers reach it as {subnet.nat_cidr} (Auto-NAT)" if subnet.nat_cidr else ""
            flash(f"{subnet.cidr} added{note}.", "success")
            return _section(peer_id, "peers/_subnets.html")
    return _section(peer_id, "peers/_subnets.html", 422, subnet_form=form)


@bp.post("/peers/<int:peer_id>/subnets/<int:subnet_id>/<any('auto-nat', 'nat-off', 'routed', 'not-routed'):action>")
@editor_required
def update_subnet(peer_id: int, subnet_id: int, action: str) -> Any:
    options = {
        "auto-nat": {"auto_nat": True},
        "nat-off": {"nat": False},
        "routed": {"routed": True},
        "not-routed": {"routed": False},
    }[action]

    def work() -> Subnet:
        peer = peer_or_404(peer_id)
        return subnets.update_subnet(peer, _child_or_404(Subnet, peer, subnet_id), **options)

    try:
        commit_with_retry(work)
    except DomainError as exc:
        flash(exc.message, "error")
    return _section(peer_id, "peers/_subnets.html")


@bp.post("/peers/<int:peer_id>/subnets/<int:subnet_id>/delete")
@editor_required
def delete_subnet(peer_id: int, subnet_id: int) -> Any:
    def work() -> None:
        peer = peer_or_404(peer_id)
        subnets.delete_subnet(peer, _child_or_404(Subnet, peer, subnet_id))

    try:
        commit_with_retry(work)
    except DomainError as exc:
        flash(exc.message, "error")
    return _section(peer_id, "peers/_subnets.html")


@bp.post("/peers/<int:peer_id>/services")
@editor_required
def add_service(peer_id: int) -> Any:
    form = ServiceForm()
    if form.validate_on_submit():
        try:
            service = commit_with_retry(
                lambda: published.add_service(peer_or_404(peer_id), form_data(form, published.SERVICE_FIELDS))
            )
        except DomainError as exc:
            show_errors(form, exc)
        else:
            flash(f"{service.name} published at {service.shared_ip}:{service.shared_port}.", "success")
            return _section(peer_id, "peers/_services.html")
    return _section(peer_id, "peers/_services.html", 422, service_form=form)


@bp.post("/peers/<int:peer_id>/services/<int:service_id>/delete")
@editor_required
def delete_service(peer_id: int, service_id: int) -> Any:
    def work() -> None:
        peer = peer_or_404(peer_id)
        published.delete_service(peer, _child_or_404(Service, peer, service_id))

    commit_with_retry(work)
    return _section(peer_id, "peers/_services.html")
