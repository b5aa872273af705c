"""Loading a row named in the URL, or answering 404: shared by the web pages and the API."""

from __future__ import annotations

from app.extensions import db
from app.models import Peer


def peer_or_404(peer_id: int) -> Peer:
    # The API shows the description; the HTML error page has its own wording.
    return db.get_or_404(Peer, peer_id, description="No such peer.")
