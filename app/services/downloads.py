"""HTTP responses for config downloads (shared by pages and the API)."""

from __future__ import annotations

import re

from flask import Response

from app.models import Peer, Wan
from app.services.configs import PeerConfig


def _filename(name: str) -> str:
    # Names are already restricted; this keeps a header safe even for legacy rows.
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "wirewan"


def attachment(peer: Peer, config: PeerConfig) -> Response:
    """`<interface>.conf` for wg-quick (it names the interface), `<peer>.rsc` for a router."""
    filename = f"{peer.wan.interface_name}.conf" if config.kind == "wireguard" else f"{peer.name}.rsc"
    resp = Response(config.text, mimetype="text/plain")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename(filename)}"'
    resp.headers["Cache-Control"] = "no-store"  # it holds a private key
    resp.headers["X-Config-Hash"] = config.sha256
    return resp


def zip_attachment(wan: Wan, data: bytes) -> Response:
    resp = Response(data, mimetype="application/zip")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename(wan.name)}-configs.zip"'
    resp.headers["Cache-Control"] = "no-store"
    return resp


def document_attachment(wan: Wan, body: str) -> Response:
    """An exported WAN document (its secrets are passphrase-encrypted; still, never cached)."""
    resp = Response(body, mimetype="application/json")
    resp.headers["Content-Disposition"] = f'attachment; filename="{_filename(wan.name)}.wirewan.json"'
    resp.headers["Cache-Control"] = "no-store"
    return resp
