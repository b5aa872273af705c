"""Issue 13 on a (simulated) router: rotating a peer's key and turning preshared keys on make the
auto-deploy router redeploy; its peer entries then carry the new key and the pair's PSK; disabling a
peer takes its entry off the router."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.extensions import db
from app.models import Peer
from app.services import configs
from tests.jobs.test_auto_deploy import auto_router, deploys  # noqa: F401  (fixture)
from tests.routeros_sim.server import SimRouter


def wg_peers(sim: SimRouter) -> list[dict[str, Any]]:
    return [dict(r) for r in sim.rows("/interface/wireguard/peers") if str(r.get("comment", "")).startswith("WAN-")]


def test_rotation_psks_and_disabling_reach_the_auto_deploy_router(
    app: Flask,
    api: Any,
    run_jobs: Any,
    run_direct: Any,
    sim: SimRouter,
    auto_router: dict[str, Any],  # noqa: F811
) -> None:
    router, server = auto_router["router"]["id"], auto_router["server"]
    before = len(deploys(app, router))

    rotated = api.post(f"/api/peers/{server['id']}/rotate-key").get_json()
    assert len(deploys(app, router)) == before + 1  # queued by the rotation's commit
    run_jobs()
    assert rotated["public_key"] in {r.get("public-key") for r in wg_peers(sim)}
    assert api.get(f"/api/peers/{router}").get_json()["stale"] is False

    assert api.patch(f"/api/wan/{auto_router['wan']['id']}", json={"preshared_keys": True}).status_code == 200
    run_jobs()
    # The entries already on the router get their pair's PSK in place (a `set`: sessions survive);
    # the router shows this API user sensitive values, so a missing key is unset, not hidden.
    with app.app_context():
        text = configs.peer_config(db.session.get(Peer, server["id"])).text
    section = text.split("# office\n", 1)[1].split("[Peer]", 1)[0]
    server_psk = next(line.split(" = ")[1] for line in section.splitlines() if line.startswith("PresharedKey"))
    entries = {r.get("public-key"): r for r in wg_peers(sim)}
    assert entries[rotated["public_key"]].get("preshared-key") == server_psk
    assert all(r.get("preshared-key") for r in entries.values()), entries
    # A peer added now gets a new entry on the router, written with the pair's PSK.
    edge = api.post(
        f"/api/peers/wan/{auto_router['wan']['id']}",
        json={"name": "edge", "kind": "server", "endpoint": "203.0.113.20"},
    ).get_json()
    run_jobs()
    with app.app_context():
        text = configs.peer_config(db.session.get(Peer, edge["id"])).text
    office = text.split("# office\n", 1)[1].split("[Peer]", 1)[0]
    psk = next(line.split(" = ")[1] for line in office.splitlines() if line.startswith("PresharedKey"))
    entries = {r.get("public-key"): r for r in wg_peers(sim)}
    assert entries[edge["public_key"]].get("preshared-key") == psk
    assert run_direct("verify", router)["result"]["in_sync"] is True

    assert api.patch(f"/api/peers/{server['id']}", json={"enabled": False}).status_code == 200
    run_jobs()
    assert rotated["public_key"] not in {r.get("public-key") for r in wg_peers(sim)}
    assert run_direct("verify", router)["result"]["in_sync"] is True
