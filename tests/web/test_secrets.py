"""Secrets at rest: encrypted in the database, readable after a key rotation, never in pages or JSON."""

from __future__ import annotations

from sqlalchemy import select, text

from app import crypto
from app.extensions import db
from app.models import Peer


def _router(api, password="r0uter-Secret"):
    wan = api.post("/api/wan", json={"name": "w"}).get_json()
    return api.post(
        f"/api/peers/wan/{wan['id']}",
        json={
            "name": "rtr",
            "kind": "mikrotik",
            "endpoint": "198.51.100.9",
            "mikrotik": {"host": "192.168.88.1", "password": password},
        },
    ).get_json()


def test_private_keys_and_passwords_are_encrypted_at_rest(app, api):
    peer = _router(api)
    with app.app_context():
        row = db.session.execute(text("SELECT private_key_enc, mt_password_enc FROM peer")).one()
        stored = db.session.get(Peer, peer["id"])
        private = crypto.decrypt(stored.private_key_enc)
        assert private not in row[0] and "r0uter-Secret" not in row[1]
        assert crypto.decrypt(row[1]) == "r0uter-Secret"
        assert len(private) == 44


def test_key_rotation_keeps_secrets_readable(make_app, app, api):
    peer = _router(api)
    with app.app_context():
        before = crypto.decrypt(db.session.get(Peer, peer["id"]).private_key_enc)
    rotated = make_app(ENCRYPTION_KEY="a-brand-new-key", ENCRYPTION_OLD_KEYS="test-encryption-key")
    result = rotated.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 2 secrets" in result.output
    only_new = make_app(ENCRYPTION_KEY="a-brand-new-key")
    with only_new.app_context():
        stored = db.session.scalar(select(Peer))
        assert crypto.decrypt(stored.private_key_enc) == before
        assert crypto.decrypt(stored.mt_password_enc) == "r0uter-Secret"


def test_rotation_with_the_wrong_old_key_changes_nothing(make_app, app, api):
    _router(api)
    with app.app_context():
        original = db.session.scalar(select(Peer.private_key_enc))
    wrong = make_app(ENCRYPTION_KEY="new", ENCRYPTION_OLD_KEYS="not-the-old-one")
    result = wrong.test_cli_runner().invoke(args=["secrets", "rotate"])
    assert result.exit_code != 0 and "nothing changed" in result.output
    with app.app_context():
        assert db.session.scalar(select(Peer.private_key_enc)) == original


def test_no_secret_in_json_or_pages(app, api, admin_browser):
    peer = _router(api)
    with app.app_context():
        private = crypto.decrypt(db.session.get(Peer, peer["id"]).private_key_enc)
    for body in (
        api.get(f"/api/peers/{peer['id']}").get_data(as_text=True),
        api.get(f"/api/peers/wan/{peer['wan_id']}").get_data(as_text=True),
        admin_browser.get(f"/peers/{peer['id']}").get_data(as_text=True),
        admin_browser.get(f"/peers/{peer['id']}/edit").get_data(as_text=True),
        admin_browser.get(f"/wans/{peer['wan_id']}").get_data(as_text=True),
        admin_browser.get(f"/wans/{peer['wan_id']}/audit").get_data(as_text=True),
    ):
        assert private not in body and "r0uter-Secret" not in body
