"""`flask --app wsgi demo seed --router1-port P1 --router2-port P2`: the sample WAN of `./run.sh demo`.

A demo admin, and a WAN "demo" with two MikroTik peers managed through the two RouterOS simulators
`./run.sh demo` starts on loopback, a public server and a CGNAT laptop. Running it again changes
nothing but the simulators' ports (they are picked afresh each time) and, since fresh simulators
start from the default configuration, marks both routers as not deployed yet.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app import crypto
from app.extensions import db
from app.models import Peer, User, Wan
from app.services import accounts, subnets, wans
from app.services import peers as peer_service
from app.services.tx import commit_with_retry

DEMO_EMAIL = "demo@wirewan.example"
DEMO_PASSWORD = "wirewan-demo"
DEMO_WAN = "demo"
ROUTER_USER = "admin"
ROUTER_PASSWORD = "demo-router"

# name, fields, subnets as (cidr, auto_nat)
PeerSeed = tuple[str, dict[str, Any], list[tuple[str, bool]]]
ROUTERS: tuple[PeerSeed, ...] = (
    ("office", {"endpoint": "198.51.100.7:51820", "mikrotik_auto_deploy": False}, [("192.168.88.0/24", False)]),
    # The same default LAN as the office: Auto-NAT gives it a free range the others reach it as.
    ("branch", {"endpoint": "198.51.100.8:51820", "mikrotik_auto_deploy": True}, [("192.168.88.0/24", True)]),
)
OTHERS: tuple[PeerSeed, ...] = (
    ("vps", {"kind": "server", "endpoint": "203.0.113.10:51820"}, [("10.20.0.0/16", False)]),
    ("laptop", {"kind": "client"}, []),
)

demo_cli = AppGroup("demo", help="The sample WAN wired to the simulated routers of ./run.sh demo.")


def _ensure_admin() -> User:
    email = accounts.normalize_email(DEMO_EMAIL)
    user: User | None = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        created: User = accounts.create_user(email, DEMO_PASSWORD, "admin")
        return created
    # The console says which password to use: make it true even if someone changed it.
    user.set_password(DEMO_PASSWORD)
    user.role, user.active = "admin", True
    return user


def _differs(peer: Peer, fields: dict[str, Any]) -> bool:
    current = peer_service.current_values(peer)
    password = fields.get("mikrotik_password")
    if password is not None and (not peer.mt_password_enc or crypto.decrypt(peer.mt_password_enc) != password):
        return True
    return any(str(current.get(k)) != str(v) for k, v in fields.items() if k != "mikrotik_password")


def _ensure_peer(wan: Wan, name: str, fields: dict[str, Any], lans: list[tuple[str, bool]]) -> Peer:
    peer = next((p for p in wan.peers if p.name == name), None)
    if peer is None:
        peer = peer_service.create_peer(wan, {"name": name, **fields})
    elif _differs(peer, fields):
        peer = peer_service.update_peer(peer, fields)
    for cidr, auto_nat in lans:
        if not any(s.cidr == cidr for s in peer.subnets):
            subnets.add_subnet(peer, cidr, True, auto_nat)
    return peer


def seed(router_ports: tuple[int, int]) -> dict[str, Any]:
    """Create or update the demo data; returns what the console should say."""

    def work() -> dict[str, Any]:
        user = _ensure_admin()
        wan = db.session.scalar(select(Wan).where(Wan.name == DEMO_WAN)) or wans.create_wan({"name": DEMO_WAN})
        routers = []
        for (name, fields, lans), port in zip(ROUTERS, router_ports, strict=True):
            peer = _ensure_peer(
                wan,
                name,
                {
                    "kind": "mikrotik",
                    **fields,
                    "mikrotik_host": "127.0.0.1",
                    "mikrotik_port": port,
                    "mikrotik_username": ROUTER_USER,
                    "mikrotik_password": ROUTER_PASSWORD,
                },
                lans,
            )
            # The simulators start from the default configuration on every run: nothing is deployed.
            peer.applied_config_hash = peer.applied_config_masked = peer.applied_at = None
            routers.append(peer)
        for name, fields, lans in OTHERS:
            _ensure_peer(wan, name, fields, lans)
        db.session.flush()
        return {
            "email": user.email,
            "wan_id": wan.id,
            "routers": [(p.id, p.name, p.mt_port) for p in routers],
        }

    return commit_with_retry(work)


@demo_cli.command("seed")
@click.option("--router1-port", type=int, required=True, help="API port of the first simulated router")
@click.option("--router2-port", type=int, required=True, help="API port of the second simulated router")
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="where the app is served")
def seed_command(router1_port: int, router2_port: int, url: str) -> None:
    """Create (or refresh) the demo admin and the WAN 'demo' wired to two simulated MikroTiks."""
    done = seed((router1_port, router2_port))
    url = url.rstrip("/")
    first_id, first_name, _ = done["routers"][0]
    click.echo(f"Demo WAN '{DEMO_WAN}': {url}/wans/{done['wan_id']}")
    for peer_id, name, port in done["routers"]:
        click.echo(f"  MikroTik '{name}' → simulated router on 127.0.0.1:{port} ({url}/peers/{peer_id})")
    click.echo("")
    click.echo(f"Open {url}, log in as {done['email']} / {DEMO_PASSWORD},")
    click.echo(f"open peer '{first_name}' ({url}/peers/{first_id}) and click Preflight → Deploy approved plan.")
