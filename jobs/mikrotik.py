"""MikroTik jobs: test connection, preflight, deploy, verify, revert, clear, handshake probe.

Each takes a Job id, reloads everything, and reconciles: read the router, plan the difference against
the one desired state, apply only that (DESIGN.md §6). Nothing is replayed from an earlier run, so a
deploy cut off at any point is finished by the next one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from ipaddress import ip_address, ip_network

from flask import current_app
from sqlalchemy import select

from app import crypto
from app.domain.model import DEFAULT_API_PORT, DEFAULT_API_USERNAME
from app.domain.routeros.desired import (
    FILTER,
    NAT,
    ROUTE,
    ROUTE6,
    SERVICE,
    USER,
    WG,
    WG_PEERS,
    DemotionIntent,
    DesiredState,
    Resource,
    build_desired,
)
from app.domain.routeros.plan import Op, Plan, parse_actual, parse_duration, plan, plan_hash
from app.domain.routeros.verify import verify
from app.domain.topology import build_topology
from app.extensions import db
from app.models import Deployment, Job, Peer
from app.models.jobs import CHANGING_KINDS
from app.routeros_api import RouterError, RouterSession, RouterTarget
from app.services import configs
from app.services import jobs as job_service
from app.services.specs import load_wan, wan_spec
from app.services.tx import commit
from jobs.runtime import JobContext, JobFailed, router_lock, tracked

PROBE_INTERVAL = 2.0
ROLLBACK_NAME = "wirewan-rollback"


def setting(name: str, default: float) -> float:
    """Job timings from the app config (tests shorten them), else the environment, else the default."""
    return float(current_app.config.get(name) or os.environ.get(name) or default)


def probe_seconds() -> float:
    return setting("WIREWAN_PROBE_SECONDS", 35)


def rollback_seconds() -> int:
    return int(setting("WIREWAN_ROLLBACK_SECONDS", 120))


# Changes that can cut the path WireWAN manages the router through; a deploy containing one is
# commit-confirmed (a rollback is armed on the router first and disarmed once WireWAN gets back in).
RISKY_MENUS = frozenset({USER, SERVICE, WG, FILTER, "/ip/address", ROUTE, ROUTE6})
BASE_MENUS: tuple[str, ...] = (USER, SERVICE, WG, WG_PEERS, "/ip/address", ROUTE, FILTER, NAT)


# ---------------------------------------------------------------- shared steps


def router_target(peer: Peer) -> RouterTarget:
    if peer.kind != "mikrotik":
        raise JobFailed(f"'{peer.name}' is not a MikroTik peer.")
    if not peer.mt_host:
        raise JobFailed(f"'{peer.name}' has no management host: set it on the peer's edit page.")
    if not peer.mt_password_enc:
        raise JobFailed(f"'{peer.name}' has no API password stored: set it on the peer's edit page.")
    return RouterTarget(
        host=peer.mt_host,
        port=peer.mt_port or DEFAULT_API_PORT,
        use_tls=peer.mt_use_tls,
        verify_cert=peer.mt_verify_cert,
        username=peer.mt_username or DEFAULT_API_USERNAME,
        password=crypto.decrypt(peer.mt_password_enc),
        connect_timeout=setting("WIREWAN_ROUTER_CONNECT_TIMEOUT", 10),
        command_timeout=setting("WIREWAN_ROUTER_COMMAND_TIMEOUT", 30),
    )


def menus_for(desired: DesiredState) -> tuple[str, ...]:
    extra = (
        [ROUTE6]
        if any(r.menu == ROUTE6 for r in desired.resources)
        or any(p.version == 6 for p in desired.demotion.dst_prefixes)
        else []
    )
    return (*BASE_MENUS, *extra)


def desired_for(peer: Peer, session: RouterSession) -> tuple[DesiredState, configs.PeerConfig]:
    """The desired state (admitting the address this session comes from), and the bootstrap script
    of the same snapshot: its hash is what the peer counts as applied once the deploy lands."""
    spec = wan_spec(load_wan(peer.wan_id), secrets_for={peer.id})  # type: ignore[arg-type]  # a peer's WAN exists (FK)
    topology = build_topology(spec, [peer.id])  # this router's view only
    source = ip_address(session.local_address())
    desired = build_desired(spec, peer.id, topology, management_source=source)
    return desired, configs.script_config(spec, peer.id, topology, peer.name)


def check_version(session: RouterSession, ctx: JobContext) -> str:
    version = str(session.system_resource().get("version", ""))
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 7:
        raise JobFailed(f"RouterOS {version} is too old: WireGuard needs RouterOS 7 or newer.")
    ctx.log(f"RouterOS {version or 'unknown version'}")
    return version


def read_router(session: RouterSession, desired: DesiredState) -> dict[str, list[dict[str, str]]]:
    return parse_actual(session.read_state(menus_for(desired)))


def port_conflicts(desired: DesiredState, actual: Mapping[str, Sequence[Mapping[str, str]]]) -> list[str]:
    """Another WireGuard interface already listening on our UDP port. Blocking: RouterOS refuses the
    interface ("already have wireguard interface with such listen-port"), so a deploy would stop
    half-way after Step 0 — refuse before writing anything instead."""
    ours = next((r for r in desired.resources if r.menu == WG), None)
    port = str(ours.props.get("listen-port")) if ours else None
    return [
        f"WireGuard interface '{row.get('name')}' already listens on UDP {port}."
        for row in actual.get(WG, ())
        if port is not None and str(row.get("listen-port")) == port and row.get("name") != desired.interface_name
    ]


def router_conflicts(
    desired: DesiredState, actual: Mapping[str, Sequence[Mapping[str, str]]], p: Plan, username: str
) -> list[str]:
    """What on the router stands in the way or will be changed behind the operator's back."""
    found = [*p.conflicts, *port_conflicts(desired, actual)]
    tunnel = next((r for r in desired.resources if r.menu == "/ip/address"), None)
    if tunnel is not None:
        mine = ip_network(tunnel.props["address"], strict=False)
        for row in actual.get("/ip/address", ()):
            if row.get("comment", "") == tunnel.key or not row.get("address"):
                continue
            other = ip_network(row["address"], strict=False)
            if other.overlaps(mine):
                found.append(
                    f"Address {row['address']} on {row.get('interface')} overlaps the tunnel address "
                    f"{tunnel.props['address']}."
                )
    for op in p.ops:
        if op.action == "set" and op.menu in (ROUTE, ROUTE6) and op.previous.get("distance"):
            found.append(f"note: {op.reason}")
    users = [r for r in actual.get(USER, ()) if r.get("name") == username]
    if users and users[0].get("group") not in ("full", "write", None):
        found.append(f"note: user '{username}' is in group '{users[0].get('group')}'; it needs the api policy.")
    return found


def is_risky(op: Op) -> bool:
    return op.menu in RISKY_MENUS or op.action == "remove"


def arm_rollback(session: RouterSession, ctx: JobContext) -> None:
    """Commit-confirmed: a backup of the current state and a scheduler entry that restores it unless
    WireWAN disarms it after getting back in (a deploy that locks WireWAN out undoes itself)."""
    for row in session.call("/system/scheduler/print"):
        if row.get("name") == ROLLBACK_NAME:
            session.call("/system/scheduler/remove", **{".id": str(row[".id"])})
    session.call("/system/backup/save", name=ROLLBACK_NAME, **{"dont-encrypt": "yes"})
    session.call(
        "/system/scheduler/add",
        name=ROLLBACK_NAME,
        interval=f"{rollback_seconds()}s",
        **{
            "on-event": f'/system backup load name={ROLLBACK_NAME}.backup password=""',
            "comment": "WireWAN rollback",
        },
    )
    ctx.log(
        f"rollback armed on the router: it restores the previous config in {rollback_seconds()} s "
        "unless WireWAN confirms"
    )


def disarm_rollback(session: RouterSession, ctx: JobContext) -> None:
    for row in session.call("/system/scheduler/print"):
        if row.get("name") == ROLLBACK_NAME:
            session.call("/system/scheduler/remove", **{".id": str(row[".id"])})
    for row in session.call("/file/print"):
        if str(row.get("name", "")).startswith(ROLLBACK_NAME):
            session.call("/file/remove", **{".id": str(row[".id"])})
    ctx.log("rollback disarmed: WireWAN reached the router after the change")


def apply_plan(session: RouterSession, p: Plan, ctx: JobContext, start: int, end: int, *, armed: bool = False) -> None:
    total = max(1, len(p.ops))

    def report(index: int, op: Op) -> None:
        ctx.job.progress = start + (end - start) * (index + 1) // total
        ctx.job.step = f"applying {index + 1}/{total}"
        ctx.log(op.cli())

    try:
        session.apply(p, on_op=report)
    except RouterError as exc:
        if not armed:
            raise
        # The plan stopped half-way with the rollback armed: say what the router will do next
        # (left alone it restores the configuration it had before this job).
        raise JobFailed(
            f"{exc.message} The rollback armed before the change restores the previous configuration "
            f"within {rollback_seconds()} s."
        ) from exc


def rollback_may_be_armed(ctx: JobContext, peer: Peer) -> bool:
    """Did the last router-changing job before this one end without disarming its rollback?

    A deploy cut off after arming (connection lost, worker killed, confirm failed) leaves the
    scheduler entry on the router; if the next deploy has nothing risky to do it never re-arms or
    disarms, and the stale entry would later restore a months-old backup. Looked up in the Job
    history so that a no-change redeploy after a clean one still reads nothing extra.
    """
    last = db.session.scalar(
        select(Job)
        .where(
            Job.peer_id == peer.id,
            Job.id != ctx.job.id,
            Job.kind.in_(CHANGING_KINDS),
            Job.status.in_(("succeeded", "failed", "abandoned")),
        )
        .order_by(Job.id.desc())
        .limit(1)
    )
    return last is not None and last.status != "succeeded"


def disarm_leftover_rollback(session: RouterSession, ctx: JobContext, peer: Peer) -> None:
    """Remove a rollback an unfinished earlier job left armed (only called when this job armed none)."""
    if not rollback_may_be_armed(ctx, peer):
        return
    leftovers = [r for r in session.call("/system/scheduler/print") if r.get("name") == ROLLBACK_NAME]
    for row in leftovers:
        session.call("/system/scheduler/remove", **{".id": str(row[".id"])})
    for row in session.call("/file/print"):
        if str(row.get("name", "")).startswith(ROLLBACK_NAME):
            session.call("/file/remove", **{".id": str(row[".id"])})
    if leftovers:
        ctx.log("removed a rollback left armed by an earlier job that did not finish")


def demoted_routes(p: Plan) -> list[dict[str, str]]:
    return [
        {"menu": op.menu, "id": op.id or "", "distance": op.previous["distance"], "reason": op.reason}
        for op in p.ops
        if op.action == "set" and op.menu in (ROUTE, ROUTE6) and op.by_id and "distance" in op.previous
    ]


def desired_to_json(desired: DesiredState) -> str:
    return json.dumps(
        {
            "peer_id": desired.peer_id,
            "interface_name": desired.interface_name,
            "notes": list(desired.notes),
            "demotion": [str(p) for p in desired.demotion.dst_prefixes],
            "resources": [
                {
                    "menu": r.menu,
                    "key": r.key,
                    "props": dict(r.props),
                    "placement": r.placement,
                    "match": dict(r.match),
                    "write_only": sorted(r.write_only),
                    "expect": dict(r.expect),
                    "create": r.create,
                    "title": r.title,
                }
                for r in desired.resources
            ],
        }
    )


def desired_from_json(text: str) -> DesiredState:
    data = json.loads(text)
    return DesiredState(
        peer_id=data["peer_id"],
        interface_name=data["interface_name"],
        notes=tuple(data["notes"]),
        demotion=DemotionIntent(tuple(ip_network(p) for p in data["demotion"])),
        resources=tuple(
            Resource(
                menu=r["menu"],
                key=r["key"],
                props=r["props"],
                placement=r["placement"],
                match=r["match"],
                write_only=frozenset(r["write_only"]),
                expect=r["expect"],
                create=r["create"],
                title=r["title"],
            )
            for r in data["resources"]
        ),
    )


def record_deployment(
    ctx: JobContext,
    peer: Peer,
    kind: str,
    desired: DesiredState | None,
    p: Plan,
    session: RouterSession,
    config_hash: str | None,
) -> Deployment:
    deployment = Deployment(
        peer_id=peer.id,
        job_id=ctx.job.id,
        kind=kind,
        desired_enc=crypto.encrypt(desired_to_json(desired)) if desired is not None else None,
        plan_lines=p.cli_lines(),
        plan_hash=plan_hash(p),
        config_hash=config_hash,
        demoted_routes=demoted_routes(p),
        writes=session.writes,
        reads=session.reads,
    )
    db.session.add(deployment)
    return deployment


def converge(
    ctx: JobContext, peer: Peer, session: RouterSession, desired: DesiredState, *, approved_hash: str | None = None
) -> tuple[Plan, bool]:
    """Read, plan, refuse on conflicts or a changed router, apply (commit-confirmed when risky)."""
    ctx.progress(25, "reading the router")
    actual = read_router(session, desired)
    p = plan(desired, actual)
    blocking = [*p.conflicts, *port_conflicts(desired, actual)]
    if blocking:
        raise JobFailed("The router has things in the way: " + " · ".join(blocking))
    if approved_hash is not None and plan_hash(p) != approved_hash:
        raise JobFailed(
            "The router changed since the preflight you approved (the plan is different now). "
            "Run Preflight again and approve the new plan."
        )
    for warning in p.warnings:
        ctx.warn(warning)
    if p.empty:
        ctx.progress(80, "the router already matches: nothing to change")
        disarm_leftover_rollback(session, ctx, peer)
        return p, False
    risky = any(is_risky(op) for op in p.ops)
    ctx.progress(35, f"applying {len(p.ops)} change(s)")
    if risky:
        arm_rollback(session, ctx)
    apply_plan(session, p, ctx, 40, 75, armed=risky)
    if not risky:
        disarm_leftover_rollback(session, ctx, peer)
    return p, risky


def confirm_access(peer: Peer, target: RouterTarget, ctx: JobContext) -> tuple[int, int]:
    """A fresh connection proves the change left WireWAN a way in; only then the rollback is disarmed.
    Returns that session's (writes, reads)."""
    ctx.progress(80, "checking that WireWAN still reaches the router")
    try:
        with RouterSession(target, audit=ctx.audit_router_call) as check:
            disarm_rollback(check, ctx)
            return check.writes, check.reads
    except RouterError as exc:
        raise JobFailed(
            f"After the change WireWAN cannot reach the router any more ({exc.message}). The rollback armed "
            f"before the change restores the previous configuration within {rollback_seconds()} s."
        ) from exc


def probe_handshakes(
    session: RouterSession, desired: DesiredState, ctx: JobContext, since: float, wait: float | None = None
) -> dict[str, str]:
    """Wait up to `wait` s for at least one managed peer to show a handshake newer than the change."""
    wait = probe_seconds() if wait is None else wait
    titles = {r.key: (r.title or r.key) for r in desired.resources if r.menu == WG_PEERS}
    deadline = time.monotonic() + wait
    while True:
        rows = [r for r in session.call(f"{WG_PEERS}/print") if r.get("comment") in titles]
        elapsed = time.monotonic() - since
        fresh: dict[str, str] = {}
        for row in rows:
            ago = parse_duration(str(row.get("last-handshake", ""))) if row.get("last-handshake") else None
            fresh[str(row["comment"])] = f"{ago} s ago" if ago is not None and ago <= elapsed + 5 else "none"
        if any(v != "none" for v in fresh.values()) or time.monotonic() >= deadline or not rows:
            break
        waited = wait - max(0.0, deadline - time.monotonic())
        ctx.step(f"waiting for handshakes · {int(waited)} s of up to {int(wait)} s")
        time.sleep(max(0.0, min(PROBE_INTERVAL, deadline - time.monotonic())))
    for key, state in sorted(fresh.items()):
        ctx.log(f"handshake {titles.get(key, key)}: {state}")
    if rows and all(v == "none" for v in fresh.values()):
        for key in sorted(fresh):
            ctx.warn(
                f"Peer '{titles.get(key, key)}' has no recent handshake after {int(wait)}s post-deploy. Check "
                "the other side's endpoint/port and the in-between firewall — config deployed but the tunnel "
                "isn't establishing."
            )
    return {titles.get(k, k): v for k, v in fresh.items()}


# ---------------------------------------------------------------- the jobs


def run_test_connection(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        ctx.progress(20, f"connecting to {target.label}")
        with RouterSession(target, audit=ctx.audit_router_call) as s:
            version = check_version(s, ctx)
            identity = s.call("/system/identity/print")
            name = str(identity[0].get("name", "")) if identity else ""
            ctx.result = {
                "version": version,
                "identity": name,
                "local_address": s.local_address(),
                "reads": s.reads,
                "writes": s.writes,
            }
            ctx.log(f"connected: router '{name}', WireWAN connects from {s.local_address()}")


def run_preflight(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        ctx.progress(10, f"connecting to {target.label}")
        with router_lock(peer.id, ctx), RouterSession(target, audit=ctx.audit_router_call) as s:
            check_version(s, ctx)
            desired, _ = desired_for(peer, s)
            ctx.progress(40, "reading the router")
            actual = read_router(s, desired)
            p = plan(desired, actual)
            found = router_conflicts(desired, actual, p, target.username)
            for line in p.cli_lines() or ["(nothing to change)"]:
                ctx.log(line)
            ctx.result = {
                "plan": [op.to_dict() for op in p.ops],
                "plan_lines": p.cli_lines(),
                "plan_hash": plan_hash(p),
                "conflicts": found,
                "blocking": [*p.conflicts, *port_conflicts(desired, actual)],
                "warnings": list(p.warnings) + list(desired.notes),
                "reads": s.reads,
                "writes": s.writes,
            }


def run_deploy(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        if ctx.params.get("auto"):
            # From here on a new change must queue a new deploy: this one may have read too early.
            job_service.release_pending(peer.id)
        target = router_target(peer)
        approved = ctx.params.get("plan_hash")
        ctx.progress(10, f"connecting to {target.label}")
        with router_lock(peer.id, ctx):
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                check_version(s, ctx)
                desired, config = desired_for(peer, s)
                p, risky = converge(ctx, peer, s, desired, approved_hash=approved)
                started = time.monotonic()
                deployment = record_deployment(ctx, peer, "deploy", desired, p, s, config.sha256)
                configs.mark_applied(peer, config, "deploy")
                commit()
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx)
                writes, reads = writes + more_writes, reads + more_reads
            handshakes: dict[str, str] = {}
            if not p.empty:
                ctx.progress(85, "waiting for handshakes")
                try:
                    with RouterSession(target, audit=ctx.audit_router_call) as s2:
                        handshakes = probe_handshakes(s2, desired, ctx, started)
                        reads += s2.reads
                except RouterError as exc:
                    # The change is applied, recorded and confirmed: failing the job here would
                    # tell the operator the deploy did not happen. The probe is advice, so warn.
                    ctx.warn(
                        "The change is deployed and confirmed, but the handshake probe could not read "
                        f"the router: {exc.message}"
                    )
            ctx.result = {
                "writes": writes,
                "reads": reads,
                "plan_writes": len(p.ops),
                "plan_hash": deployment.plan_hash,
                "operations": len(p.ops),
                "handshakes": handshakes,
                "deployment_id": deployment.id,
                "rollback_armed": risky,
            }


def run_verify(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        ctx.progress(20, f"connecting to {target.label}")
        with router_lock(peer.id, ctx), RouterSession(target, audit=ctx.audit_router_call) as s:
            desired, _ = desired_for(peer, s)
            ctx.progress(50, "comparing the router with the desired state")
            drift = verify(desired, read_router(s, desired))
            for d in drift:
                ctx.log(f"{d.kind}: {d.menu} {d.key} — {d.details}")
            ctx.log("in sync" if not drift else f"{len(drift)} difference(s)")
            ctx.result = {
                "in_sync": not drift,
                "drift": [d.to_dict() for d in drift],
                "reads": s.reads,
                "writes": s.writes,
            }


def run_revert(job_id: int) -> None:
    """Re-apply the desired state of the deployment before the latest one."""
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        history = (
            db.session.query(Deployment)
            .filter(Deployment.peer_id == peer.id, Deployment.desired_enc.is_not(None))
            .order_by(Deployment.id.desc())
            .limit(2)
            .all()
        )
        if len(history) < 2:
            raise JobFailed("There is no earlier deployment to revert to.")
        previous = history[1]
        desired = desired_from_json(crypto.decrypt(previous.desired_enc))  # type: ignore[arg-type]  # the query keeps only rows with one
        target = router_target(peer)
        with router_lock(peer.id, ctx):
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                ctx.log(f"reverting to deployment #{previous.id} of {previous.created_at:%Y-%m-%d %H:%M} UTC")
                p, risky = converge(ctx, peer, s, desired)
                deployment = record_deployment(ctx, peer, "revert", desired, p, s, previous.config_hash)
                # The router now runs an older config: the peer is stale until deployed again.
                peer.applied_config_hash = previous.config_hash
                commit()
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx)
                writes, reads = writes + more_writes, reads + more_reads
            ctx.result = {"writes": writes, "reads": reads, "reverted_to": previous.id, "deployment_id": deployment.id}


def run_clear(job_id: int) -> None:
    """Remove every WireWAN-tagged resource and put demoted routes back at their recorded distance."""
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        with router_lock(peer.id, ctx):
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                iface = peer.wan.interface_name
                empty = DesiredState(peer.id, iface, (), DemotionIntent(()))
                ctx.progress(25, "reading the router")
                actual = parse_actual(s.read_state(BASE_MENUS))
                p = plan(empty, actual)
                restore = restore_ops(peer, actual)
                full = Plan(tuple(restore) + p.ops, p.warnings, ())
                risky = bool(full.ops)
                if risky:
                    arm_rollback(s, ctx)
                else:
                    disarm_leftover_rollback(s, ctx, peer)
                apply_plan(s, full, ctx, 35, 75, armed=risky)
                record_deployment(ctx, peer, "clear", None, full, s, None)
                peer.applied_config_hash = None
                commit()
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx)
                writes, reads = writes + more_writes, reads + more_reads
            ctx.result = {
                "writes": writes,
                "reads": reads,
                "removed": sum(op.action == "remove" for op in p.ops),
                "restored_routes": len(restore),
            }


def restore_ops(peer: Peer, actual: Mapping[str, Sequence[Mapping[str, str]]]) -> list[Op]:
    """Set each route WireWAN demoted back to the distance it had, if it is still demoted."""
    recorded: dict[tuple[str, str], str] = {}
    for dep in db.session.query(Deployment).filter(Deployment.peer_id == peer.id).order_by(Deployment.id):
        for route in dep.demoted_routes or []:
            # The first record holds the original distance; later deploys see 11 and record nothing.
            recorded.setdefault((route["menu"], route["id"]), route["distance"])
    ops = []
    for (menu, rid), distance in recorded.items():
        row = next((r for r in actual.get(menu, ()) if r.get(".id") == rid), None)
        if row is not None and row.get("distance") == "11":
            ops.append(
                Op(
                    "set",
                    menu,
                    rid,
                    {"distance": distance},
                    row.get("comment", ""),
                    reason=f"restore route to {row.get('dst-address')} to distance {distance}",
                    previous={"distance": "11"},
                    by_id=True,
                )
            )
    return ops


def run_probe(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        with RouterSession(target, audit=ctx.audit_router_call) as s:
            desired, _ = desired_for(peer, s)
            ctx.progress(30, "reading handshakes")
            wait = float(ctx.params.get("wait", probe_seconds()))
            ctx.result = {"handshakes": probe_handshakes(s, desired, ctx, time.monotonic() - 180, wait)}
