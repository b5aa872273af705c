"""MikroTik jobs: test connection, preflight, deploy, verify, revert, clear, handshake probe.

Each takes a Job id, reloads everything, and reconciles: read the router, plan the difference against
the one desired state, apply only that (DESIGN.md §6). Nothing is replayed from an earlier run, so a
deploy cut off at any point is finished by the next one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from functools import cached_property
from ipaddress import ip_address

from flask import current_app
from sqlalchemy import select

from app import crypto
from app.domain.model import DEFAULT_API_PORT, DEFAULT_API_USERNAME, WanSpec
from app.domain.routeros.desired import (
    FILTER,
    IPV6_MENUS,
    NAT,
    ROUTE,
    SERVICE,
    USER,
    WG,
    WG_PEERS,
    DesiredState,
    build_desired,
    router_hash,
)
from app.domain.routeros.plan import ActualState, Op, Plan, parse_actual, plan, plan_hash
from app.domain.routeros.probe import PROBED_PROPERTIES, assess, expectations
from app.domain.routeros.rules import (
    also_admit,
    blocking,
    cleared,
    demoted_routes,
    first_distances,
    is_risky,
    restore_ops,
    router_conflicts,
    sibling_conflicts,
)
from app.domain.routeros.undo import UndoUnavailable, undo_script
from app.domain.routeros.verify import verify
from app.domain.topology import TopologyResult, build_topology
from app.extensions import db
from app.models import Deployment, Job, Peer
from app.models.jobs import CHANGING_KINDS
from app.routeros_api import RouterError, RouterSession, RouterTarget
from app.services import configs
from app.services import jobs as job_service
from app.services import status as status_service
from app.services.mikrotik import revert_target, router_key, router_slot, router_slots, same_router_peers
from app.services.specs import load_spec
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


def undo_max_bytes() -> int:
    """Largest undo script WireWAN uploads (RouterOS's limit on a script's source is not documented
    here; larger undos fall back to a backup load)."""
    return int(setting("WIREWAN_UNDO_MAX_BYTES", 60000))


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
        admit=",".join(str(n) for n in router_slot(peer).admit),
        connect_timeout=setting("WIREWAN_ROUTER_CONNECT_TIMEOUT", 10),
        command_timeout=setting("WIREWAN_ROUTER_COMMAND_TIMEOUT", 30),
    )


def menus_for(desired: DesiredState) -> tuple[str, ...]:
    """The menus a deploy reads: the IPv6 ones only when the router needs IPv6 (a dual-stack WAN or
    an IPv6 LAN), so a router without IPv6 is never asked about it."""
    wants6 = any(r.menu in IPV6_MENUS for r in desired.resources) or any(
        p.version == 6 for p in desired.demotion.dst_prefixes
    )
    return (*BASE_MENUS, *IPV6_MENUS) if wants6 else BASE_MENUS


class Snapshot:
    """The WAN as one job read it: the desired state is built from it, and so is what the peer
    counts as applied once a deploy lands (rendered only when it must be recorded)."""

    def __init__(self, spec: WanSpec, topology: TopologyResult, peer_id: int, peer_name: str) -> None:
        self.spec = spec
        self.topology = topology
        self.peer_id = peer_id
        self.peer_name = peer_name

    @cached_property
    def config_hash(self) -> str:
        # Asked for by the applied-config check and the Deployment row: one hash of the facts.
        return router_hash(self.spec, self.peer_id, self.topology)

    def config(self) -> configs.PeerConfig:
        return configs.script_config(
            self.spec, self.peer_id, self.topology, self.peer_name, known_hash=self.config_hash
        )


def mark_deployed(peer: Peer, snap: Snapshot) -> None:
    """The router now holds this snapshot's config; recorded only when that is news."""
    if peer.applied_config_hash != snap.config_hash:
        configs.mark_applied(peer, snap.config(), "deploy")


def desired_for(peer: Peer, session: RouterSession) -> tuple[DesiredState, Snapshot]:
    """The desired state (admitting the address this session comes from), and the snapshot of the
    WAN it was built from."""
    spec = load_spec(peer.wan_id, secrets_for={peer.id})
    assert spec is not None, "the peer's WAN exists: the job holds the peer"
    topology = build_topology(spec, [peer.id])  # this router's view only
    source = ip_address(session.local_address())
    _, others = router_slots(peer, deployed_only=True)
    desired = build_desired(spec, peer.id, topology, management_source=source, also_admit=also_admit(others))
    return desired, Snapshot(spec, topology, peer.id, peer.name)


def siblings(peer: Peer) -> list[str]:
    """Blocking clashes with the other WANs this router serves (interface name, listen port)."""
    mine, others = router_slots(peer)
    return sibling_conflicts(mine, others)


def check_version(session: RouterSession, ctx: JobContext) -> str:
    version = str(session.system_resource().get("version", ""))
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 7:
        raise JobFailed(f"RouterOS {version} is too old: WireGuard needs RouterOS 7 or newer.")
    ctx.log(f"RouterOS {version or 'unknown version'}")
    return version


def read_router(session: RouterSession, desired: DesiredState) -> dict[str, list[dict[str, str]]]:
    return parse_actual(session.read_state(menus_for(desired)))


def arm_rollback(session: RouterSession, ctx: JobContext, p: Plan, actual: ActualState) -> None:
    """Commit-confirmed: the undo of this plan, uploaded as a script and scheduled, runs unless WireWAN
    disarms it after getting back in (a deploy that locks WireWAN out undoes itself — without a
    reboot: only what the plan changed is put back)."""
    session.remove_rollback(ROLLBACK_NAME)
    try:
        source: str | None = undo_script(p, actual, ROLLBACK_NAME)
    except UndoUnavailable as exc:
        source = None
        ctx.log(f"this plan cannot be undone by a script ({exc}); arming a backup load instead (it reboots)")
    if source is not None and len(source.encode()) <= undo_max_bytes():
        session.arm_undo(ROLLBACK_NAME, source, rollback_seconds())
        ctx.log(
            f"rollback armed on the router: an undo of these changes runs in {rollback_seconds()} s "
            "unless WireWAN confirms (no reboot)"
        )
        return
    if source is not None:
        ctx.log(f"the undo script is larger than {undo_max_bytes()} bytes; arming a backup load instead (it reboots)")
    session.arm_backup_load(ROLLBACK_NAME, rollback_seconds())
    ctx.log(
        f"rollback armed on the router: it restores the previous config in {rollback_seconds()} s "
        "unless WireWAN confirms"
    )


def disarm_rollback(session: RouterSession, ctx: JobContext) -> None:
    session.remove_rollback(ROLLBACK_NAME)
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
            Job.peer_id.in_([p.id for p in same_router_peers(peer)]),
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
    if session.remove_rollback(ROLLBACK_NAME):
        ctx.log("removed a rollback left armed by an earlier job that did not finish")


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
        desired_enc=crypto.encrypt(desired.to_json()) if desired is not None else None,
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
    found = blocking(desired, actual, p, siblings(peer))
    if found:
        raise JobFailed("The router has things in the way: " + " · ".join(found))
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
        arm_rollback(session, ctx, p, actual)
    apply_plan(session, p, ctx, 40, 75, armed=risky)
    if not risky:
        disarm_leftover_rollback(session, ctx, peer)
    return p, risky


def confirm_access(
    peer: Peer, target: RouterTarget, ctx: JobContext, then: Callable[[RouterSession], None] | None = None
) -> tuple[int, int]:
    """A fresh connection proves the change left WireWAN a way in; only then the rollback is disarmed.
    `then` runs on the same connection afterwards (the handshake probe). Returns its (writes, reads)."""
    ctx.progress(80, "checking that WireWAN still reaches the router")
    try:
        with RouterSession(target, audit=ctx.audit_router_call) as check:
            disarm_rollback(check, ctx)
            if then is not None:
                then(check)
            return check.writes, check.reads
    except RouterError as exc:
        raise JobFailed(
            f"After the change WireWAN cannot reach the router any more ({exc.message}). The rollback armed "
            f"before the change restores the previous configuration within {rollback_seconds()} s."
        ) from exc


def probe_handshakes(
    session: RouterSession,
    desired: DesiredState,
    ctx: JobContext,
    since: float,
    ops: Sequence[Op] = (),
    wait: float | None = None,
) -> dict[str, str]:
    """Read the peer entries until the verdict is known (probe.assess) or `wait` s have passed."""
    wait = probe_seconds() if wait is None else wait
    expected = expectations(desired, ops)
    deadline = time.monotonic() + wait
    while True:
        rows = session.call(f"{WG_PEERS}/print", **{".proplist": ",".join(PROBED_PROPERTIES)})
        final = time.monotonic() >= deadline
        verdict = assess(expected, rows, time.monotonic() - since, final=final)
        if verdict.done:
            break
        waited = wait - max(0.0, deadline - time.monotonic())
        ctx.step(f"waiting for handshakes · {int(waited)} s of up to {int(wait)} s")
        time.sleep(max(0.0, min(PROBE_INTERVAL, deadline - time.monotonic())))
    for line in verdict.logs():
        ctx.log(line)
    for warning in verdict.warnings(time.monotonic() - since):
        ctx.warn(warning)
    return {p.name: p.text() for p in verdict.peers}


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
        with router_lock(router_key(peer), ctx), RouterSession(target, audit=ctx.audit_router_call) as s:
            check_version(s, ctx)
            desired, _ = desired_for(peer, s)
            ctx.progress(40, "reading the router")
            actual = read_router(s, desired)
            p = plan(desired, actual)
            clashes = siblings(peer)
            found = router_conflicts(desired, actual, p, target.username, clashes)
            for line in p.cli_lines() or ["(nothing to change)"]:
                ctx.log(line)
            ctx.result = {
                "plan": [op.to_dict() for op in p.ops],
                "plan_lines": p.cli_lines(),
                "plan_hash": plan_hash(p),
                "conflicts": found,
                "blocking": blocking(desired, actual, p, clashes),
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
        with router_lock(router_key(peer), ctx):
            handshakes: dict[str, str] = {}
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                check_version(s, ctx)
                desired, snap = desired_for(peer, s)
                started = time.monotonic()
                p, risky = converge(ctx, peer, s, desired, approved_hash=approved)
                # A deploy that changed nothing leaves no history entry (nothing to revert to).
                deployment = None
                if not p.empty:
                    deployment = record_deployment(ctx, peer, "deploy", desired, p, s, snap.config_hash)
                mark_deployed(peer, snap)
                # Committed by the next progress step, the probe's or the confirm's, before either
                # waits on the router; a deploy that changed nothing ends now, its end commits it.

                def probe(session: RouterSession) -> None:
                    ctx.progress(85, "waiting for handshakes")
                    try:
                        handshakes.update(probe_handshakes(session, desired, ctx, started, p.ops))
                    except RouterError as exc:
                        # The change is applied, recorded and confirmed: failing the job here would
                        # tell the operator the deploy did not happen. The probe is advice, so warn.
                        ctx.warn(
                            "The change is deployed and confirmed, but the handshake probe could not read "
                            f"the router: {exc.message}"
                        )

                if not p.empty and not risky:
                    probe(s)  # on the same connection: nothing it changed could lock WireWAN out
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx, then=probe)
                writes, reads = writes + more_writes, reads + more_reads
            ctx.result = {
                "writes": writes,
                "reads": reads,
                "plan_writes": len(p.ops),
                "plan_hash": plan_hash(p),
                "operations": len(p.ops),
                "handshakes": handshakes,
                "deployment_id": deployment.id if deployment is not None else None,
                "rollback_armed": risky,
            }


def run_verify(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        ctx.progress(20, f"connecting to {target.label}")
        with router_lock(router_key(peer), ctx), RouterSession(target, audit=ctx.audit_router_call) as s:
            desired, _ = desired_for(peer, s)
            ctx.progress(50, "comparing the router with the desired state")
            drift = verify(desired, read_router(s, desired))
            for d in drift:
                ctx.log(f"{d.kind}: {d.menu} {d.key} — {d.details}")
            ctx.log("in sync" if not drift else f"{len(drift)} difference(s)")
            summary = "; ".join(f"{d.kind} {d.menu} {d.key}" for d in drift[:5])
            status_service.record_verify(peer, not drift, len(drift), summary)
            ctx.result = {
                "in_sync": not drift,
                "drift": [d.to_dict() for d in drift],
                "reads": s.reads,
                "writes": s.writes,
            }


def run_revert(job_id: int) -> None:
    """Re-apply the overlay of the last deployment that differs from the latest one (the API access
    rows stay as every WAN on the router needs them now)."""
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        previous = revert_target(peer)
        if previous is None:
            raise JobFailed("There is no earlier deployment that differs from the current one to revert to.")
        stored = DesiredState.from_json(crypto.decrypt(previous.desired_enc))  # type: ignore[arg-type]  # revert_target keeps only rows with one
        target = router_target(peer)
        with router_lock(router_key(peer), ctx):
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                ctx.log(f"reverting to deployment #{previous.id} of {previous.created_at:%Y-%m-%d %H:%M} UTC")
                current, _ = desired_for(peer, s)
                desired = stored.with_wan(peer.wan_id).with_access_of(current)
                p, risky = converge(ctx, peer, s, desired)
                deployment = record_deployment(ctx, peer, "revert", desired, p, s, previous.config_hash)
                # The router now runs an older config: the peer is stale until deployed again.
                peer.applied_config_hash = previous.config_hash
                commit()
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx)
                writes, reads = writes + more_writes, reads + more_reads
            ctx.result = {
                "writes": writes,
                "reads": reads,
                "operations": len(p.ops),
                "reverted_to": previous.id,
                "deployment_id": deployment.id,
            }


def run_clear(job_id: int) -> None:
    """Remove this WAN's tagged resources and put demoted routes back at their recorded distance.

    Other WANs on the same router keep their rows, and the API user and services keep admitting
    what they need."""
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        with router_lock(router_key(peer), ctx):
            with RouterSession(target, audit=ctx.audit_router_call) as s:
                full, _ = desired_for(peer, s)
                _, others = router_slots(peer, deployed_only=True)
                empty = cleared(full, also_admit(others), ip_address(s.local_address()))
                ctx.progress(25, "reading the router")
                actual = parse_actual(s.read_state(menus_for(full)))
                p = plan(empty, actual)
                history = db.session.scalars(
                    select(Deployment.demoted_routes).where(Deployment.peer_id == peer.id).order_by(Deployment.id)
                )
                restore = restore_ops(first_distances(history), actual)
                full_plan = Plan(tuple(restore) + p.ops, p.warnings, ())
                risky = bool(full_plan.ops)
                if risky:
                    arm_rollback(s, ctx, full_plan, actual)
                else:
                    disarm_leftover_rollback(s, ctx, peer)
                apply_plan(s, full_plan, ctx, 35, 75, armed=risky)
                record_deployment(ctx, peer, "clear", None, full_plan, s, None)
                peer.applied_config_hash = None
                commit()
                writes, reads = s.writes, s.reads
            if risky:
                more_writes, more_reads = confirm_access(peer, target, ctx)
                writes, reads = writes + more_writes, reads + more_reads
            ctx.result = {
                "writes": writes,
                "reads": reads,
                "operations": len(full_plan.ops),
                "removed": sum(op.action == "remove" for op in p.ops),
                "restored_routes": len(restore),
            }


def run_probe(job_id: int) -> None:
    with tracked(job_id) as ctx:
        peer = ctx.peer()
        target = router_target(peer)
        with RouterSession(target, audit=ctx.audit_router_call) as s:
            desired, _ = desired_for(peer, s)
            ctx.progress(30, "reading handshakes")
            wait = float(ctx.params.get("wait", probe_seconds()))
            ctx.result = {"handshakes": probe_handshakes(s, desired, ctx, time.monotonic(), (), wait)}
