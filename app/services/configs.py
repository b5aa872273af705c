"""Configs as users get them: rendering, staleness by hash (DESIGN.md §5), downloads, zip, QR.

A peer's config is a pure function of the WAN. Its hash is compared with the hash of the config
the peer last downloaded (or, for MikroTik, had deployed): they differ → the peer is stale. A change
that leaves a peer's config as it was therefore never stales it.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from ipaddress import ip_network
from typing import Any

import segno
from sqlalchemy import Integer, Text, bindparam, cast, delete, event, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.domain.conflicts import Conflict, wan_conflicts
from app.domain.gc_pause import LARGE_WAN_PEERS, cycle_collection_paused
from app.domain.model import WanSpec
from app.domain.routeros.desired import RouterHasher, build_desired
from app.domain.routeros.script import render_script
from app.domain.topology import TopologyResult, Unreachable, build_topology
from app.domain.wireguard import RenderedConfig, config_diff, render_all, render_config
from app.extensions import db
from app.models import Peer, Wan, WanFindings
from app.models.base import utcnow
from app.services import audit
from app.services.specs import load_spec, wan_spec

# Set on a session once it flushed in the current transaction (it may hold SQLite's write lock).
FLUSHED = "wirewan_flushed"


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context: Any) -> None:
    session.info[FLUSHED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_flush(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(FLUSHED, None)


PRIVATE_LINE_PREFIXES = ("PrivateKey", "PresharedKey")


@dataclass(frozen=True)
class PeerConfig:
    peer_id: int
    kind: str  # "wireguard" or "mikrotik-script"
    text: str
    sha256: str


class WanConfigs:
    """Every peer's current config hash of one WAN (DESIGN.md §5), with the topology, the rendered
    configs and the WAN's conflicts available on demand.

    The hashes usually come from the cache in the database (``Peer.current_hash``, valid at
    ``Wan.revision``); the topology and the configs are computed only when asked for.
    """

    def __init__(
        self,
        wan: Wan,
        hashes: dict[int, str],
        *,
        topology: TopologyResult | None = None,
        configs: dict[int, PeerConfig] | None = None,
        derived: dict[str, Any] | None = None,
    ) -> None:
        self.wan = wan
        self.hashes = hashes
        self._topology = topology
        self._configs = configs
        self._derived = derived

    @property
    def topology(self) -> TopologyResult:
        if self._topology is None:
            self._topology = wan_topology(self._spec())
        return self._topology

    @property
    def configs(self) -> dict[int, PeerConfig]:
        """Every peer's config, rendered (texts hold private keys)."""
        if self._configs is None:
            self._configs = _render(self._spec(all_secrets=True), self.topology)
        return self._configs

    @property
    def unreachable(self) -> tuple[Unreachable, ...]:
        """Every prefix some peer cannot reach (the topology's), from the cache when it is current."""
        if self._derived is not None:
            return tuple(Unreachable(u[0], u[1], u[2], ip_network(u[3]), u[4]) for u in self._derived["unreachable"])
        return self.topology.unreachable

    @property
    def conflicts(self) -> list[Conflict]:
        """`conflicts.wan_conflicts` of the WAN, from the cache when it is current."""
        if self._derived is not None:
            return [Conflict(**c) for c in self._derived["conflicts"]]
        return wan_conflicts(self._spec())

    def _spec(self, *, all_secrets: bool = False) -> WanSpec:
        spec = load_spec(self.wan.id, all_secrets=all_secrets)
        assert spec is not None
        return spec

    def stale_ids(self, peers: Iterable[Peer]) -> set[int]:
        # A peer missing here was added after these hashes were read: it cannot have been applied.
        return {p.id for p in peers if p.id not in self.hashes or is_stale(p, self.hashes[p.id])}


# The topology of the most recently used WANs (the whole WAN's, as the zip, the WAN page and the
# staleness hashes use it), with the secret-free spec it was built from.
TOPOLOGY_CACHE_SIZE = 16
_topologies: OrderedDict[int, tuple[WanSpec, TopologyResult]] = OrderedDict()
_topologies_lock = threading.Lock()


def wan_topology(spec: WanSpec) -> TopologyResult:
    """`build_topology(spec)`, reused while the WAN's routing is unchanged.

    A topology is a pure function of the spec's routing inputs (`WanSpec.routing_inputs`), so an
    entry is reused only when those equal the ones it was built from: any change to the WAN's
    routing, committed or not, made by this process or another, builds anew; a change that leaves it
    alone (a key rotation, the MTU, DNS, PSKs, router settings) does not. Nothing depends on
    revisions being read in the same snapshot as the rows, and a WAN id reused after a delete cannot
    hit the old WAN's entry. The entries hold no secret. Each caller gets its own result over the
    shared, immutable views, so what it computes on demand (the edges of a 2,000-spoke WAN) is not
    kept here.
    """
    routing = spec.routing_inputs()
    with _topologies_lock:
        entry = _topologies.get(spec.id)
        if entry is not None and entry[0] == routing:
            _topologies.move_to_end(spec.id)
            return replace(entry[1])
    topology = build_topology(routing)
    with _topologies_lock:
        _topologies[spec.id] = (routing, topology)
        _topologies.move_to_end(spec.id)
        while len(_topologies) > TOPOLOGY_CACHE_SIZE:
            _topologies.popitem(last=False)
    return replace(topology)


def is_stale(peer: Peer, current_hash: str) -> bool:
    """Needs (re)applying: never applied, or applied a config that is no longer current."""
    return peer.applied_config_hash != current_hash


def script_config(
    spec: WanSpec,
    peer_id: int,
    topology: TopologyResult,
    peer_name: str,
    hasher: RouterHasher | None = None,
    known_hash: str | None = None,
) -> PeerConfig:
    """A router's bootstrap script, and its staleness hash: :func:`router_hash` of the same spec.

    The hash stands for the desired state (what the script and a deploy put on the router), built
    without a management source so it does not depend on where WireWAN connects from. Deploys store
    this value, and `wan_configs` computes the same one, so a deployed router is not stale.
    `known_hash`: that hash, when the caller already has it for this spec and topology.
    """
    if hasher is None:
        hasher = RouterHasher(spec, topology)
    desired = build_desired(spec, peer_id, hasher=hasher)
    sha256 = known_hash or hasher.hash(peer_id)
    return PeerConfig(peer_id, "mikrotik-script", render_script(desired, spec.name, peer_name), sha256)


def script_text(spec: WanSpec, peer_id: int, topology: TopologyResult, peer_name: str) -> str:
    """A router's bootstrap script alone (its staleness hash is a second pass over the WAN)."""
    return render_script(build_desired(spec, peer_id, topology), spec.name, peer_name)


def _render(spec: WanSpec, topology: TopologyResult) -> dict[int, PeerConfig]:
    # Every config of the WAN: many acyclic objects (domain.gc_pause).
    with cycle_collection_paused(promote_survivors=len(spec.peers) >= LARGE_WAN_PEERS):
        wg_ids = [p.id for p in spec.peers if p.kind != "mikrotik"]
        out = {
            peer_id: PeerConfig(peer_id, "wireguard", r.text, r.sha256)
            for peer_id, r in render_all(spec, topology, wg_ids).items()
        }
        hasher = RouterHasher(spec, topology)  # one for every router: they share prefixes and texts
        for peer in spec.peers:
            if peer.kind == "mikrotik":
                out[peer.id] = script_config(spec, peer.id, topology, peer.name, hasher)
        return out


def current_hashes(spec: WanSpec, topology: TopologyResult, peer_ids: Iterable[int] | None = None) -> dict[int, str]:
    """The current config hash of every peer (or of `peer_ids`): what `mark_applied` stores when the
    peer gets its config. wg-quick peers hash their rendered file, routers their desired state."""
    wanted = None if peer_ids is None else set(peer_ids)
    peers = [p for p in spec.peers if wanted is None or p.id in wanted]
    out = {
        peer_id: r.sha256
        for peer_id, r in render_all(spec, topology, [p.id for p in peers if p.kind != "mikrotik"]).items()
    }
    routers = [p.id for p in peers if p.kind == "mikrotik"]
    if routers:
        hasher = RouterHasher(spec, topology)
        out.update((peer_id, hasher.hash(peer_id)) for peer_id in routers)
    return out


def hashes_current(wan: Wan) -> bool:
    """The peers' stored current hashes and the WAN's findings were computed at its revision (they
    are stored together, by `_compute_and_store`)."""
    return wan.derived_revision is not None and wan.derived_revision == wan.revision


def _stored_hashes(wan_id: int, peer_ids: Collection[int] | None = None) -> dict[int, str]:
    """The stored current hashes of the WAN's peers (or of `peer_ids`) when they are current.

    Read in one statement with the WAN's marker: a peer row read earlier in the request (the
    session keeps it) may hold an older hash than a marker read later, after another process
    stored new ones. Empty when not current; a peer without a hash is left out."""
    query = (
        select(Peer.id, Peer.current_hash)
        .join(Wan, Wan.id == Peer.wan_id)
        .where(Peer.wan_id == wan_id, Wan.derived_revision == Wan.revision, Peer.current_hash.is_not(None))
    )
    if peer_ids is not None:
        query = query.where(Peer.id.in_(sorted(peer_ids)))
    return {pid: h for pid, h in db.session.execute(query) if h is not None}


def _cached_hashes(wan: Wan) -> dict[int, str] | None:
    if not hashes_current(wan):
        return None
    hashes = _stored_hashes(wan.id)
    # Every change bumps the revision, so all are there; a missing one is only a safeguard.
    return hashes if len(hashes) == len(wan.peers) else None


def _cached_derived(wan: Wan) -> dict[str, Any] | None:
    if not hashes_current(wan):
        return None
    found: dict[str, Any] | None = db.session.scalar(select(WanFindings.findings).where(WanFindings.wan_id == wan.id))
    return found


# The WAN page lists this many conflicts and unreachable prefixes (critical conflicts first) and
# counts the rest; GET /api/wan/{id}/conflicts and /topology list them all.
SHOWN_FINDINGS = 50


def derived_findings(unreachable: Iterable[Unreachable], found: list[Conflict]) -> dict[str, Any]:
    """What `WanFindings` stores: every finding, and the page's part of them under "shown" (stored
    in a column of its own: the page reads only that, a long WAN has thousands of findings)."""
    rows = [[u.from_peer_id, u.peer_id, u.subnet_id, str(u.prefix), u.message] for u in unreachable]
    conflicts = [c.to_dict() for c in found]
    return {
        "unreachable": rows,
        "conflicts": conflicts,
        "shown": {
            "unreachable": rows[:SHOWN_FINDINGS],
            "unreachable_count": len(rows),
            "conflicts": conflicts[:SHOWN_FINDINGS],
            "conflict_count": len(conflicts),
        },
    }


@dataclass(frozen=True)
class ShownFindings:
    """What the WAN page's conflicts panel shows: the first findings and how many there are."""

    conflicts: list[Conflict]
    conflict_count: int
    unreachable: tuple[Unreachable, ...]
    unreachable_count: int

    @property
    def critical(self) -> bool:
        # Critical conflicts sort first, so the first one tells.
        return bool(self.conflicts) and self.conflicts[0].severity == "critical"


def shown_findings(wan: Wan) -> ShownFindings:
    """The conflicts panel's part of the WAN's findings: read from the cache's "shown" key alone
    when the cache is current, otherwise :func:`findings` (computed once and cached) cut short."""
    shown = None
    if hashes_current(wan):
        shown = db.session.scalar(select(WanFindings.shown).where(WanFindings.wan_id == wan.id))
    if not shown:  # not current
        found, unreachable = findings(wan)
        return ShownFindings(found[:SHOWN_FINDINGS], len(found), unreachable[:SHOWN_FINDINGS], len(unreachable))
    return ShownFindings(
        [Conflict(**c) for c in shown["conflicts"]],
        shown["conflict_count"],
        tuple(Unreachable(u[0], u[1], u[2], ip_network(u[3]), u[4]) for u in shown["unreachable"]),
        shown["unreachable_count"],
    )


def findings(wan: Wan) -> tuple[list[Conflict], tuple[Unreachable, ...]]:
    """The WAN's conflicts and unreachable prefixes, from the cache when it is current (no peer
    row loaded); otherwise computed once over the whole WAN (and cached)."""
    derived = _cached_derived(wan)
    if derived is None:
        from app.services.specs import load_wan

        loaded = load_wan(wan.id)
        assert loaded is not None
        rendered = wan_configs(loaded)
        return rendered.conflicts, rendered.unreachable
    return (
        [Conflict(**c) for c in derived["conflicts"]],
        tuple(Unreachable(u[0], u[1], u[2], ip_network(u[3]), u[4]) for u in derived["unreachable"]),
    )


def cached_conflicts(wan: Wan) -> list[Conflict]:
    """`conflicts.wan_conflicts` of the WAN from the cache when it is current, rendering no config."""
    derived = _cached_derived(wan)
    if derived is None:
        return wan_conflicts(wan_spec(wan))
    return [Conflict(**c) for c in derived["conflicts"]]


def _session_clean() -> bool:
    """Nothing of this transaction is pending or flushed: a separate session may write meanwhile
    (it would otherwise wait for our own write lock on SQLite)."""
    session = db.session()
    return not (session.new or session.dirty or session.deleted or session.info.get(FLUSHED))


def wan_configs(wan: Wan) -> WanConfigs:
    """Every peer's current config hash; cached in the database per WAN revision.

    When the cache is not current, everything is computed once (one topology build, every key
    decrypted in memory) and stored for the next request.
    """
    hashes = _cached_hashes(wan)
    if hashes is not None:
        return WanConfigs(wan, hashes, derived=_cached_derived(wan))
    if _session_clean():
        computed = _compute_and_store(wan.id)
        # Read the marker again when next asked: what was just stored is then used in this request
        # too (stored hashes are only ever read together with the marker, see _stored_hashes).
        db.session.expire(wan, ["derived_revision"])
        if computed is not None:
            hashes, topology, derived = computed
            return WanConfigs(wan, hashes, topology=topology, derived=derived)
    # Inside a transaction that changed something: compute from what it sees, store nothing in the
    # database (the topology cache may keep it: it is keyed by content, not by revision).
    spec = load_spec(wan.id, all_secrets=True)
    assert spec is not None
    topology = wan_topology(spec)
    rendered = _render(spec, topology)
    return WanConfigs(wan, {i: c.sha256 for i, c in rendered.items()}, topology=topology, configs=rendered)


def _compute_and_store(wan_id: int) -> tuple[dict[int, str], TopologyResult, dict[str, Any]] | None:
    """Compute every hash of the WAN as committed, in a session of its own, and store them if no
    change committed meanwhile (the revision read before the rows is still the current one)."""
    with Session(db.engine) as session:
        revision = session.scalar(select(Wan.revision).where(Wan.id == wan_id))
        with cycle_collection_paused() as pause:  # the whole WAN, millions of acyclic objects (domain.gc_pause)
            spec = load_spec(wan_id, all_secrets=True, session=session)
            if revision is None or spec is None:
                return None
            pause.promote_survivors = len(spec.peers) >= LARGE_WAN_PEERS
            # Through the cache: the zip and the WAN page that follow a change then find it built.
            topology = wan_topology(spec)
            hashes = current_hashes(spec, topology)
            derived = derived_findings(topology.unreachable, wan_conflicts(spec))
        try:
            # Claim the revision first. The WAN row is then locked until the commit: a change
            # committing meanwhile waits for it (and invalidates what is stored), one committed
            # since the rows were read leaves nothing claimed, and nothing is stored.
            wan = Wan.__table__
            claimed = session.execute(
                update(wan).where(wan.c.id == wan_id, wan.c.revision == revision).values(derived_revision=revision)
            )
            if getattr(claimed, "rowcount", 0) == 1:
                _store_hashes(session, wan_id, hashes)
                store_findings(session, wan_id, derived)
                session.commit()
            else:
                session.rollback()
        except OperationalError:  # a writer holds the database: a later request stores them
            session.rollback()
    return hashes, topology, derived


def _store_hashes(session: Session, wan_id: int, hashes: dict[int, str]) -> None:
    """Store the peers' current hashes, writing only the rows whose hash changed: a change to one
    peer of 10,000 rewrites a few rows, not all (0.35 s on PostgreSQL, with the peer's indexes)."""
    if not hashes:  # a WAN without peers
        return
    peer = Peer.__table__
    if session.get_bind().dialect.name == "postgresql":
        # One statement over two arrays: executemany would send one UPDATE per peer.
        computed = (
            func.unnest(cast(list(hashes), ARRAY(Integer)), cast(list(hashes.values()), ARRAY(Text)))
            .table_valued("peer_id", "hash")
            .render_derived(name="computed")
        )
        session.execute(
            update(peer)
            .where(
                peer.c.id == computed.c.peer_id,
                peer.c.wan_id == wan_id,
                peer.c.current_hash.is_distinct_from(computed.c.hash),
            )
            .values(current_hash=computed.c.hash)
        )
        return
    session.execute(
        update(peer)
        .where(
            peer.c.id == bindparam("peer_id"),
            peer.c.wan_id == wan_id,
            peer.c.current_hash.is_distinct_from(bindparam("hash")),
        )
        .values(current_hash=bindparam("hash")),
        [{"peer_id": pid, "hash": h} for pid, h in hashes.items()],
    )


def store_findings(session: Session, wan_id: int, findings: dict[str, Any]) -> None:
    """Replace the WAN's cached findings (the caller sets `Wan.derived_revision` and commits)."""
    table = WanFindings.__table__
    session.execute(delete(table).where(table.c.wan_id == wan_id))
    session.execute(insert(table).values(wan_id=wan_id, findings=findings, shown=findings["shown"]))


def hashes_for(wan: Wan, peers: Iterable[Peer]) -> dict[int, str]:
    """The current config hashes of some peers of `wan`: the cached ones when current, the others
    computed from their own views only."""
    wanted = [p.id for p in peers]
    out = _stored_hashes(wan.id, wanted) if wanted else {}
    missing = [pid for pid in wanted if pid not in out]
    if missing:
        spec = load_spec(wan.id, secrets_for=set(missing))
        assert spec is not None
        out.update(current_hashes(spec, build_topology(spec, missing), missing))
    return out


def peer_stale(peer: Peer) -> bool:
    """Whether the peer needs its config (re)applied, computed as cheaply as possible: a peer
    never applied is stale without rendering anything; otherwise the cached hash is used when
    current, else only this peer's config is computed."""
    if peer.applied_config_hash is None:
        return True
    return is_stale(peer, peer_hash(peer))


def peer_hash(peer: Peer) -> str:
    """The peer's current config hash (the cached one when it is current)."""
    stored = _stored_hashes(peer.wan_id, [peer.id])
    if stored:
        return stored[peer.id]
    spec = load_spec(peer.wan_id, secrets_for={peer.id})
    assert spec is not None
    return current_hashes(spec, build_topology(spec, [peer.id]), [peer.id])[peer.id]


def peer_config(peer: Peer, config_type: str | None = None) -> PeerConfig:
    """One peer's config: its wg-quick file, or for MikroTik peers the RouterOS bootstrap script.
    Only this peer's view of the topology is built."""
    kind = config_type or ("mikrotik-script" if peer.kind == "mikrotik" else "wireguard")
    if kind == "mikrotik-script" and peer.kind != "mikrotik":
        raise ValueError("Only MikroTik peers have a RouterOS script.")
    spec = load_spec(peer.wan_id, secrets_for={peer.id})
    assert spec is not None
    topology = build_topology(spec, [peer.id])
    if kind == "mikrotik-script":
        return script_config(spec, peer.id, topology, peer.name)
    rendered: RenderedConfig = render_config(spec, peer.id, topology)
    return PeerConfig(peer.id, "wireguard", rendered.text, rendered.sha256)


def masked(text: str) -> str:
    """The config without its secrets, kept to show what changed since it was applied."""
    out = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in PRIVATE_LINE_PREFIXES:
            line = f"{key} = <hidden>"
        elif "password=" in line:
            line = line.split("password=", 1)[0] + "password=<hidden>"
        else:
            # RouterOS: private-key= and preshared-key= values, quoted or not.
            line = _SCRIPT_SECRET.sub(r"\1=<hidden>", line)
        out.append(line)
    return "\n".join(out) + "\n"


_SCRIPT_SECRET = re.compile(r'\b(private-key|preshared-key)=(?:"(?:[^"\\]|\\.)*"|\S+)')


def mark_applied(peer: Peer, config: PeerConfig, how: str) -> None:
    """Record that the device now holds `config` (download, QR scan, deploy or 'Mark applied')."""
    was_stale = is_stale(peer, config.sha256)
    peer.applied_config_hash = config.sha256
    peer.applied_config_masked = masked(config.text)
    peer.applied_at = utcnow()
    audit.record(
        how,
        "peer",
        peer.id,
        wan_id=peer.wan_id,
        summary=f"peer '{peer.name}': {config.kind} config {how.replace('-', ' ')}"
        + (" (was stale)" if was_stale else ""),
        details={"config_hash": config.sha256},
    )


def changes_since_applied(peer: Peer, config: PeerConfig) -> str:
    """Unified diff from the applied config to the current one, secrets masked on both sides."""
    if not peer.applied_config_masked:
        return ""
    # Masked again: rows stored before masked() knew every secret must not show one in the diff.
    return config_diff(masked(peer.applied_config_masked), masked(config.text))


def configs_zip(wan: Wan) -> bytes:
    """Every peer's config in one zip: `<peer name>.conf` (wg-quick) or, for a MikroTik, its bootstrap
    script `<peer name>.rsc`. Marks nothing applied (a zip is often fetched for a backup, and a
    download is no proof that any device runs it); the download itself is audited."""
    spec = load_spec(wan.id, all_secrets=True)
    assert spec is not None
    data = write_zip(zip_files(spec, wan_topology(spec)))
    audit.record(
        "download-zip",
        "wan",
        wan.id,
        wan_id=wan.id,
        summary=f"configs of WAN '{wan.name}' downloaded ({len(spec.peers)} peers)",
    )
    return data


def zip_files(spec: WanSpec, topology: TopologyResult) -> dict[str, str]:
    """The zip's files, name → text, in name order. No router's staleness hash is computed: the zip
    marks nothing applied, and the wg-quick files carry theirs in their header anyway."""
    wireguard = render_all(spec, topology, [p.id for p in spec.peers if p.kind != "mikrotik"])
    return {
        f"{peer.name}.rsc" if peer.kind == "mikrotik" else f"{peer.name}.conf": (
            script_text(spec, peer.id, topology, peer.name) if peer.kind == "mikrotik" else wireguard[peer.id].text
        )
        for peer in sorted(spec.peers, key=lambda p: p.name)
    }


# How the zip's entries are compressed. Deflate level 1 makes a 200-peer mesh's 6.1 MB a 1.9 MB
# download for ~24 ms of CPU: a win on any link slower than ~1.4 Gbit/s, which is every link but
# loopback; level 6 saves 3% more for twice the time (docs/benchmarks.md, issue 15).
ZIP_COMPRESSION = zipfile.ZIP_DEFLATED
ZIP_LEVEL = 1


def write_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16  # private keys: owner-only when unpacked
            zf.writestr(info, text, compress_type=ZIP_COMPRESSION, compresslevel=ZIP_LEVEL)
    return buf.getvalue()


def mark_all_applied(wan: Wan) -> int:
    """'Mark all applied': every stale peer of the WAN counts as running its current config."""
    rendered = wan_configs(wan)
    stale = rendered.stale_ids(wan.peers)
    peers = [p for p in wan.peers if p.id in stale]
    if not peers:
        return 0
    spec = load_spec(wan.id, secrets_for={p.id for p in peers})
    assert spec is not None
    current = _render(spec, wan_topology(spec))
    for peer in peers:
        mark_applied(peer, current[peer.id], "mark-applied")
    return len(peers)


class ConfigTooLargeForQr(Exception):
    """The config holds more than a QR code can (a large mesh: one section per peer)."""


def qr_svg(text: str) -> str:
    """The config as an SVG QR code (the WireGuard mobile apps scan it)."""
    out = io.BytesIO()
    try:
        code = segno.make(text, error="l")
    except segno.DataOverflowError as exc:
        raise ConfigTooLargeForQr(
            f"This config is {len(text.encode())} bytes, more than a QR code holds (about 2,900). "
            "Download the config file instead and import it into the WireGuard app."
        ) from exc
    code.save(out, kind="svg", scale=4, border=2, xmldecl=False, svgns=True)
    return out.getvalue().decode()
