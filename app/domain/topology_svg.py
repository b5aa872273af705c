"""The topology drawing: a WAN as server-rendered SVG (no script, no CDN).

Layout by role, deterministic (same WAN → same bytes):

- hubs in the centre (one hub exactly at the centre, several on a small ring); without a hub the
  relay takes the centre;
- the relay, servers and MikroTik routers with an endpoint on the inner ring(s);
- clients and every CGNAT peer on the outer ring(s).

Each peer is a *cell*: its glyph, its name (truncated, the full name in the tooltip), badges (CGNAT,
MikroTik, stale) and its NAT'd LANs with their translation. Every ring is placed so that any two
cell centres are at least the cells' diagonal apart, which makes overlapping cells impossible: at
200+ peers the drawing grows (more and wider rings) instead of piling up. Each ring is turned so
that lines from the centre pass between the cells of the inner rings, and every edge is routed:
straight when it clears every glyph it does not join, else the gentlest bend (a quadratic curve
to either side) that does. Relayed paths' labels go where they touch no cell and no other label,
and the canvas grows to hold every curve and label. Edges: solid for direct
tunnels, dashed and labelled "via <relay>" for paths through a relay. When one kind of edge is too
numerous to read (a 200-peer mesh has ~20,000 tunnels) it is left out and the drawing says so; edges
touching a hub or the relay are always drawn.

Beyond CLUSTER_ABOVE spokes (peers that are neither hub nor relay) the largest groups of spokes of
one kind (clients, servers, routers; CGNAT or not) are drawn as one *cluster* node each ("142
clients"), largest first, until at most CLUSTER_ABOVE spokes are left to draw one by one: the hubs,
the relay and the smaller groups stay readable nodes. A cluster's edges stand for its members' (one
line per cluster and peer); a caption in the picture says which spokes are clustered and that the
WAN page lists them. `cluster_above=None` draws every peer (the page's "Draw every peer").
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from html import escape

from app.domain.model import PeerSpec, WanSpec
from app.domain.topology import Edge, TopologyResult, relay_peer_id

# Sizes in SVG user units (px at 100 %). Text widths are estimated (no font metrics here) with
# generous per-character widths, so real text is narrower than its reserved space.
CELL_WIDTH = 112.0
NAME_FONT = 12.0
SMALL_FONT = 9.5
CHAR_EM = 0.62  # estimated average character width, in em (system-ui is ~0.5, monospace 0.6)
GLYPH_R = 11.0
HUB_R = 16.0
BADGE_H = 13.0
BADGE_GAP = 3.0
LINE_GAP = 2.0
CELL_MARGIN = 10.0  # extra room between any two cells
GROUP_GAP = 34.0  # extra room between the hub, inner and outer groups
CANVAS_PAD = 16.0
NAT_SHOWN = 2  # NAT'd LANs written under a peer; more are counted
# Beyond these counts a category of edges is not drawn (and the drawing says so).
MAX_RELAYED_DRAWN = 60
MAX_OTHER_DIRECT_DRAWN = 400
CLUSTER_ABOVE = 60  # spokes drawn one by one at most; beyond, groups of one kind become clusters
CLUSTER_NOUNS = {"client": "clients", "server": "servers", "mikrotik": "routers"}

ROLE_HUB, ROLE_CORE, ROLE_EDGE = "hub", "core", "edge"

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Escaped for XML text and attribute values; characters XML 1.0 cannot hold are dropped."""
    return escape(_XML_BAD.sub("", str(value)), quote=True)


def truncate(text: str, width: float, font: float) -> str:
    """`text` cut with an ellipsis so that it fits `width` at `font` size (estimated)."""
    limit = max(1, int(width / (font * CHAR_EM)))
    text = _XML_BAD.sub("", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def text_width(text: str, font: float) -> float:
    return len(text) * font * CHAR_EM


@dataclass(frozen=True)
class Cell:
    """One peer's place: the cell's centre (x, y), its size, and its glyph's centre."""

    peer_id: int
    role: str
    ring: int
    x: float
    y: float
    w: float
    h: float
    gx: float
    gy: float
    r: float
    # Labels above the glyph (cells in the upper half): edges leave the glyph towards the centre,
    # so they never run through the cell's own labels.
    above: bool = False

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(left, top, right, bottom)."""
        return (self.x - self.w / 2, self.y - self.h / 2, self.x + self.w / 2, self.y + self.h / 2)


@dataclass(frozen=True)
class Layout:
    cells: dict[int, Cell]
    width: float
    height: float


@dataclass(frozen=True)
class TopologyDrawing:
    """The SVG and what it leaves out, for the page to say."""

    svg: str
    width: int
    height: int
    peers: int
    direct_total: int
    direct_drawn: int
    relayed_total: int
    relayed_drawn: int
    notes: tuple[str, ...]
    clusters: tuple[tuple[str, str], ...] = ()  # (kind, label) of each cluster drawn


def role(peer: PeerSpec, relay_id: int | None) -> str:
    if peer.is_hub:
        return ROLE_HUB
    if peer.id == relay_id or (peer.kind != "client" and not peer.cgnat):
        return ROLE_CORE
    return ROLE_EDGE


NOT_APPLIED, STALE = "not applied", "stale"


def config_state(peer_id: int, stale_ids: Collection[int], not_applied_ids: Collection[int]) -> str | None:
    """The peer's badge in the words of the rest of the UI: never applied, applied but out of date,
    or None (applied). `stale_ids` may hold the never-applied peers too."""
    if peer_id in not_applied_ids:
        return NOT_APPLIED
    return STALE if peer_id in stale_ids else None


def badges(peer: PeerSpec, state: str | None) -> list[str]:
    out = []
    if peer.kind == "mikrotik":
        out.append("MikroTik")
    if peer.cgnat:
        out.append("CGNAT")
    if state is not None:
        out.append(state)
    return out


def badge_width(label: str) -> float:
    return text_width(label, SMALL_FONT) + 8


def badge_rows(labels: list[str]) -> list[list[str]]:
    """Badges wrapped into rows that fit the cell width."""
    rows: list[list[str]] = []
    width = 0.0
    for label in labels:
        w = badge_width(label)
        if rows and width + BADGE_GAP + w <= CELL_WIDTH:
            rows[-1].append(label)
            width += BADGE_GAP + w
        else:
            rows.append([label])
            width = w
    return rows


def nat_lines(peer: PeerSpec) -> list[tuple[str, str]]:
    """(text, full text) lines for the peer's NAT'd LANs: 'LAN' then 'as TRANSLATION'."""
    natted = [s for s in peer.subnets if s.nat_cidr is not None and s.routed]
    lines: list[tuple[str, str]] = []
    for s in natted[:NAT_SHOWN]:
        full = f"{s.cidr} as {s.nat_cidr}"
        lines.append((truncate(str(s.cidr), CELL_WIDTH, SMALL_FONT), full))
        lines.append((truncate(f"as {s.nat_cidr}", CELL_WIDTH, SMALL_FONT), full))
    if len(natted) > NAT_SHOWN:
        extra = len(natted) - NAT_SHOWN
        lines.append((f"+{extra} more NAT'd", f"{extra} more NAT'd LANs: see the peer's page"))
    return lines


def glyph_radius(r: str) -> float:
    return HUB_R if r == ROLE_HUB else GLYPH_R


def cell_height(peer: PeerSpec, r: str, state: str | None) -> float:
    rows = len(badge_rows(badges(peer, state)))
    return (
        2 * glyph_radius(r)
        + 4
        + NAME_FONT
        + LINE_GAP
        + rows * (BADGE_H + LINE_GAP)
        + len(nat_lines(peer)) * (SMALL_FONT + LINE_GAP)
        + 2
    )


def _diag(w: float, h: float) -> float:
    return math.hypot(w, h) + CELL_MARGIN


def _capacity(radius: float, spacing: float) -> int:
    """How many cells fit on a ring of `radius` with neighbours (chord) at least `spacing` apart."""
    if radius <= 0:
        return 1
    half = spacing / (2 * radius)
    if half >= 1:
        return 1
    return max(1, int(math.pi / math.asin(half) + 1e-9))


def _radius_for(n: int, spacing: float) -> float:
    """The smallest ring radius holding `n` cells `spacing` apart."""
    if n <= 1:
        return 0.0
    return spacing / (2 * math.sin(math.pi / n))


OFFSET_STEPS = 24  # rotations of a ring tried, within one slot
OFFSET_ENOUGH = 60.0  # a radial line this far from every inner cell is clear enough
OFFSET_WINDOW = 0.7  # radians either side of a line within which inner cells are looked at


def _best_offset(n: int, ring_r: float, inner: list[tuple[float, float]]) -> float:
    """The ring's rotation (within one slot) that keeps its radial lines farthest from inner cells.

    `inner` holds (radius, angle) of the glyphs already placed. A line from the centre at angle θ
    passes an inner glyph at (R, φ) at the distance R·|sin(θ − φ)|; only glyphs within
    OFFSET_WINDOW of θ can come nearer than OFFSET_ENOUGH, and only they are looked at.
    """
    if n == 0 or ring_r == 0 or not inner:
        return 0.0
    # Angles in [0, 2π), sorted, with a copy either side so that a window may wrap around.
    base = sorted(((phi % (2 * math.pi)), radius) for radius, phi in inner)
    ring = [(a - 2 * math.pi, r) for a, r in base] + base + [(a + 2 * math.pi, r) for a, r in base]
    angles = [a for a, _ in ring]
    slot = 2 * math.pi / n
    best, best_score = 0.0, -1.0
    for step in range(OFFSET_STEPS):
        offset = slot * step / OFFSET_STEPS
        score = OFFSET_ENOUGH
        for i in range(n):
            theta = (-math.pi / 2 + offset + slot * i) % (2 * math.pi)
            lo = bisect_left(angles, theta - OFFSET_WINDOW)
            hi = bisect_right(angles, theta + OFFSET_WINDOW)
            for phi, radius in ring[lo:hi]:
                score = min(score, radius * abs(math.sin(theta - phi)))
            if score <= best_score:
                break
        if score > best_score + 1e-6:
            best, best_score = offset, score
        if best_score >= OFFSET_ENOUGH:
            break
    return best


def _sort_key(p: PeerSpec) -> tuple[int, int, int]:
    # Within a group: routers, then servers, then clients; then tunnel IP.
    kind_order = {"mikrotik": 0, "server": 1, "client": 2}[p.kind]
    return (kind_order, int(p.tunnel_ip), p.id)


def layout(
    wan: WanSpec, stale_ids: Collection[int] = (), relay_id: int | None = None, not_applied_ids: Collection[int] = ()
) -> Layout:
    """Cells for every peer, by role, on concentric rings; deterministic."""
    groups: dict[str, list[PeerSpec]] = {ROLE_HUB: [], ROLE_CORE: [], ROLE_EDGE: []}
    for p in wan.peers:
        groups[role(p, relay_id)].append(p)
    for g in groups.values():
        g.sort(key=_sort_key)
    # The relay (when not a hub) takes the centre when there is no hub (it has a tunnel to every
    # peer, so they all run outwards), else it leads the inner ring.
    if relay_id is not None:
        core = groups[ROLE_CORE]
        for i, p in enumerate(core):
            if p.id == relay_id:
                (groups[ROLE_CORE] if groups[ROLE_HUB] else groups[ROLE_HUB]).insert(0, core.pop(i))
                break

    heights = {
        p.id: cell_height(p, role(p, relay_id), config_state(p.id, stale_ids, not_applied_ids)) for p in wan.peers
    }
    placed: list[tuple[PeerSpec, str, int, float, float, float]] = []  # peer, role, ring, x, y, h
    radius = -1.0  # radius of the last ring; -1: none yet
    prev_h = 0.0
    ring_no = 0
    for name in (ROLE_HUB, ROLE_CORE, ROLE_EDGE):
        members = groups[name]
        if not members:
            continue
        h = max(heights[p.id] for p in members)
        spacing = _diag(CELL_WIDTH, h)
        # The first group starts at the centre; the next ones clear the previous ring by a cell.
        min_radius = 0.0 if radius < 0 else radius + _diag(CELL_WIDTH, (h + prev_h) / 2) + GROUP_GAP
        remaining = members
        first = True
        while remaining:
            if not first:
                min_radius = radius + spacing
            first = False
            cap = _capacity(min_radius, spacing)
            if cap >= len(remaining):
                # The last ring of the group: as small as it may be, the cells spread evenly.
                ring_r = max(min_radius, _radius_for(len(remaining), spacing))
                take = len(remaining)
            else:
                ring_r = min_radius
                take = cap
            ring, remaining = remaining[:take], remaining[take:]
            # Turned so that a straight line from the centre to any of its cells clears every cell
            # placed nearer the centre: a hub's tunnel never runs through another peer.
            inner = [
                (math.hypot(x, gy), math.atan2(gy, x))
                for _, r_, _, x, y, h_ in placed
                if x or y
                for gy in (y + (h_ / 2 - glyph_radius(r_) - 1) * (1 if y < 0 else -1),)
            ]
            offset = _best_offset(len(ring), ring_r, inner)
            step = 2 * math.pi / len(ring)
            if len(ring) == 2 and placed:
                # Two peers around a centre would stand on one line with it: spread them on an arc
                # of 120° instead, so that the tunnel between them passes beside the centre, on the
                # side away from the peers already placed (balancing the drawing).
                step = 2 * math.pi / 3
                sx = sum(math.cos(phi) for _, phi in inner)
                sy = sum(math.sin(phi) for _, phi in inner)
                towards = math.atan2(-sy, -sx) if math.hypot(sx, sy) > 1e-6 else -math.pi / 2
                offset = towards + math.pi / 2 - step / 2
                ring_r = max(ring_r, spacing / (2 * math.sin(step / 2)))
            for i, p in enumerate(ring):
                if ring_r == 0:
                    x, y = 0.0, 0.0
                else:
                    angle = -math.pi / 2 + offset + step * i
                    x, y = ring_r * math.cos(angle), ring_r * math.sin(angle)
                placed.append((p, role(p, relay_id), ring_no, x, y, heights[p.id]))
            radius = ring_r
            ring_no += 1
        prev_h = h

    if not placed:
        return Layout({}, 2 * CANVAS_PAD + CELL_WIDTH, 2 * CANVAS_PAD + 40)
    left = min(x - CELL_WIDTH / 2 for _, _, _, x, _, _ in placed)
    top = min(y - h / 2 for _, _, _, _, y, h in placed)
    right = max(x + CELL_WIDTH / 2 for _, _, _, x, _, _ in placed)
    bottom = max(y + h / 2 for _, _, _, _, y, h in placed)
    dx, dy = CANVAS_PAD - left, CANVAS_PAD - top
    cells: dict[int, Cell] = {}
    for p, name, ring_index, x, y, h in placed:
        cx, cy = round(x + dx, 1), round(y + dy, 1)
        r = glyph_radius(name)
        above = y < -1e-6
        gy = cy + h / 2 - r - 1 if above else cy - h / 2 + r + 1
        cells[p.id] = Cell(p.id, name, ring_index, cx, cy, CELL_WIDTH, h, cx, round(gy, 1), r, above)
    width = math.ceil(right - left + 2 * CANVAS_PAD)
    height = math.ceil(bottom - top + 2 * CANVAS_PAD)
    return Layout(cells, width, height)


@dataclass(frozen=True)
class Cluster:
    """Spokes of one kind drawn as one node; `node` is that node as a pseudo-peer (negative id)."""

    node: PeerSpec
    kind: str
    cgnat: bool
    members: tuple[int, ...]
    stale: int  # members whose config is not applied or stale

    @property
    def label(self) -> str:
        return f"{len(self.members)} {CLUSTER_NOUNS[self.kind]}"


def clusters_for(wan: WanSpec, relay_id: int | None, stale_ids: Collection[int], above: int | None) -> list[Cluster]:
    """The clusters to draw: none up to `above` spokes; else the largest groups of one kind (and
    CGNAT or not), largest first, until at most `above` spokes remain drawn one by one."""
    spokes = [p for p in wan.peers if not p.is_hub and p.id != relay_id]
    if above is None or len(spokes) <= above:
        return []
    groups: dict[tuple[str, bool], list[PeerSpec]] = {}
    for p in sorted(spokes, key=_sort_key):
        groups.setdefault((p.kind, p.cgnat), []).append(p)
    # Largest first; ties in a fixed order of kinds so that the same WAN gives the same drawing.
    order = sorted(groups, key=lambda k: (-len(groups[k]), _sort_key(groups[k][0])[0], k[1]))
    left = len(spokes)
    out: list[Cluster] = []
    for key in order:
        if left <= above:
            break
        members = groups[key]
        if len(members) < 2:
            break  # a cluster of one says nothing more than the peer itself
        kind, cgnat = key
        first = members[0]
        node = PeerSpec(
            id=-(len(out) + 1),
            uuid="",
            name=f"{len(members)} {CLUSTER_NOUNS[kind]}",
            kind=first.kind,
            tunnel_ip=first.tunnel_ip,
            listen_port=first.listen_port,
            public_key="",
            endpoint_host=None if cgnat else "cluster",
        )
        stale = sum(1 for p in members if p.id in stale_ids)
        out.append(Cluster(node, kind, cgnat, tuple(p.id for p in members), stale))
        left -= len(members)
    return out


def clustered_edges(edges: Iterable[Edge], cluster_of: dict[int, int]) -> list[Edge]:
    """The edges between drawn nodes: a member's edge becomes its cluster's, edges inside a cluster
    are dropped, and each pair of nodes keeps one direct tunnel and one relayed path at most."""
    seen: set[tuple[int, int, bool]] = set()
    out: list[Edge] = []
    for e in edges:
        a, b = cluster_of.get(e.a, e.a), cluster_of.get(e.b, e.b)
        if a == b:
            continue
        a, b = min(a, b), max(a, b)
        key = (a, b, e.via is not None)
        if key in seen:
            continue
        seen.add(key)
        out.append(Edge(a, b, None if e.via is None else cluster_of.get(e.via, e.via)))
    return out


def select_edges(edges: Iterable[Edge], anchors: Collection[int]) -> tuple[list[Edge], list[Edge], list[str], int, int]:
    """The edges to draw: (direct, relayed, notes, direct total, relayed total).

    Direct tunnels touching a hub or the relay (`anchors`) are always drawn; the other direct
    tunnels and the relayed paths each only while they are few enough to read.
    """
    anchored: list[Edge] = []
    other: list[Edge] = []
    relayed: list[Edge] = []
    for e in edges:
        if e.via is not None:
            relayed.append(e)
        elif e.a in anchors or e.b in anchors:
            anchored.append(e)
        else:
            other.append(e)
    notes: list[str] = []
    direct = anchored
    if len(other) <= MAX_OTHER_DIRECT_DRAWN:
        direct = anchored + other
    else:
        notes.append(
            f"{len(other):,} direct tunnels between peers that are neither hub nor relay are not drawn "
            "(too many to read); each peer's page lists its own."
        )
    drawn_relayed = relayed
    if len(relayed) > MAX_RELAYED_DRAWN:
        drawn_relayed = []
        notes.append(
            f"{len(relayed):,} relayed paths are not drawn (too many to read): every CGNAT or spoke peer "
            "reaches the peers it has no tunnel to through the relay it is connected to."
        )
    return direct, drawn_relayed, notes, len(anchored) + len(other), len(relayed)


def _f(v: float) -> str:
    """Coordinates with one decimal, no trailing '.0' noise: deterministic and short."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _centre(cells: dict[int, Cell]) -> tuple[float, float]:
    """The centre of the rings (the middle of the cells' extent)."""
    if not cells:
        return (0.0, 0.0)
    xs = [c.x for c in cells.values()]
    ys = [c.y for c in cells.values()]
    return ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)


def _shifted(lay: Layout, left: int, top: int, right: int, bottom: int) -> Layout:
    """The layout on a canvas grown by the given margins (cells moved by left, top)."""
    cells = {
        pid: Cell(c.peer_id, c.role, c.ring, c.x + left, c.y + top, c.w, c.h, c.gx + left, c.gy + top, c.r, c.above)
        for pid, c in lay.cells.items()
    }
    return Layout(cells, lay.width + left + right, lay.height + top + bottom)


EDGE_CLEARANCE = 3.0  # room kept between an edge and a glyph it does not join
CURVE_SAMPLES = 20
# Bends tried for a tunnel (0 = straight) and a relayed path (always bowed), as a fraction of the
# chord's length; positive bows away from the drawing's centre.
DIRECT_BENDS = (0.0, 0.06, -0.06, 0.12, -0.12, 0.18, -0.18, 0.25, -0.25, 0.32, -0.32, 0.4, -0.4, 0.55, -0.55)
RELAYED_BENDS = (0.22, -0.22, 0.35, -0.35, 0.5, -0.5, 0.7, -0.7, 0.9, -0.9)
LABEL_TS = (0.5, 0.42, 0.58, 0.34, 0.66, 0.26, 0.74)
LABEL_H = SMALL_FONT + 4


@dataclass(frozen=True)
class Route:
    """An edge as drawn: a quadratic curve from (x1, y1) to (x2, y2) with control (qx, qy).

    A straight tunnel has its control point on the chord's midpoint.
    """

    edge: Edge
    x1: float
    y1: float
    qx: float
    qy: float
    x2: float
    y2: float
    straight: bool

    def point(self, t: float) -> tuple[float, float]:
        u = 1 - t
        return (
            u * u * self.x1 + 2 * u * t * self.qx + t * t * self.x2,
            u * u * self.y1 + 2 * u * t * self.qy + t * t * self.y2,
        )

    def polyline(self) -> list[tuple[float, float]]:
        if self.straight:
            return [(self.x1, self.y1), (self.x2, self.y2)]
        return [self.point(i / CURVE_SAMPLES) for i in range(CURVE_SAMPLES + 1)]

    def moved(self, dx: float, dy: float) -> Route:
        return Route(
            self.edge, self.x1 + dx, self.y1 + dy, self.qx + dx, self.qy + dy, self.x2 + dx, self.y2 + dy, self.straight
        )


@dataclass(frozen=True)
class Label:
    """A relayed path's "via <relay>" text: its anchor (middle, baseline) and its box."""

    edge: Edge
    text: str
    x: float
    y: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        half = text_width(self.text, SMALL_FONT) / 2 + 3
        return (self.x - half, self.y - SMALL_FONT, self.x + half, self.y + 4)


@dataclass(frozen=True)
class Caption:
    """A line of text in the picture itself, left-aligned at (x, baseline y)."""

    text: str
    x: float
    y: float
    font: float = SMALL_FONT + 1.5

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.x, self.y - self.font, self.x + text_width(self.text, self.font), self.y + 4)


@dataclass(frozen=True)
class Plan:
    """Everything placed: cells, routed edges and labels, on a canvas that holds them all.

    `peers` are the nodes drawn (clusters as pseudo-peers with negative ids); `caption` says in the
    picture that spokes are clustered.
    """

    layout: Layout
    direct: tuple[Route, ...]
    relayed: tuple[Route, ...]
    labels: tuple[Label, ...]
    peers: dict[int, PeerSpec] = field(default_factory=dict)
    clusters: tuple[Cluster, ...] = ()
    caption: Caption | None = None


def segment_distance(px: float, py: float, x1: float, y1: float, x2: float, y2: float) -> float:
    """The distance from point (px, py) to the segment (x1, y1)–(x2, y2)."""
    dx, dy = x2 - x1, y2 - y1
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / length2))
    return math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def route_clearance(route: Route, cells: Iterable[Cell], stop_below: float = -math.inf) -> float:
    """How far the route keeps from the glyphs it does not join, beyond their radius (may be < 0).

    Stops early with a value below `stop_below` once the route is known to come that close.
    """
    pts = route.polyline()
    xs = [x for x, _ in pts]
    ys = [y for _, y in pts]
    left, right, top, bottom = min(xs), max(xs), min(ys), max(ys)
    best = math.inf
    for c in cells:
        if c.peer_id in (route.edge.a, route.edge.b):
            continue
        reach = c.r + EDGE_CLEARANCE + 40
        if c.gx < left - reach or c.gx > right + reach or c.gy < top - reach or c.gy > bottom + reach:
            continue
        for (x1, y1), (x2, y2) in zip(pts, pts[1:], strict=False):
            best = min(best, segment_distance(c.gx, c.gy, x1, y1, x2, y2) - c.r)
        if best < stop_below:
            return best
    return best


def _route(edge: Edge, cells: dict[int, Cell], centre: tuple[float, float], bends: tuple[float, ...]) -> Route:
    """The first bend of `bends` that keeps the edge clear of every other glyph (else the best one)."""
    a, b = cells[edge.a], cells[edge.b]
    x1, y1, x2, y2 = a.gx, a.gy, b.gx, b.gy
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    # Unit normal of the chord, turned to point away from the drawing's centre.
    nx, ny = -(y2 - y1) / length, (x2 - x1) / length
    if (mx - centre[0]) * nx + (my - centre[1]) * ny < 0:
        nx, ny = -nx, -ny
    candidates = []
    for bend in bends:
        # The control point sits at twice the wanted bulge: the curve's midpoint is halfway to it.
        q = 2 * bend * length
        route = Route(edge, x1, y1, mx + nx * q, my + ny * q, x2, y2, bend == 0)
        if route_clearance(route, cells.values(), stop_below=EDGE_CLEARANCE) >= EDGE_CLEARANCE:
            return route
        candidates.append(route)
    # None is clear (not seen on any generated WAN): the one that keeps farthest away.
    return max(candidates, key=lambda r: route_clearance(r, cells.values()))


def _overlap(p: tuple[float, float, float, float], q: tuple[float, float, float, float]) -> bool:
    return p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]


def _place_label(route: Route, text: str, taken: list[tuple[float, float, float, float]]) -> Label | None:
    """A spot along the route where the label touches no cell and no other label; None if none."""
    for t in LABEL_TS:
        x, y = route.point(t)
        label = Label(route.edge, text, x, y + SMALL_FONT / 3)
        if not any(_overlap(label.box, box) for box in taken):
            return label
    return None


def plan(
    wan: WanSpec,
    topology: TopologyResult,
    stale_ids: Collection[int] = (),
    cluster_above: int | None = CLUSTER_ABOVE,
    not_applied_ids: Collection[int] = (),
) -> tuple[Plan, list[str], int, int]:
    """Cells, routed edges and labels on a canvas holding them all: (plan, notes, direct, relayed totals)."""
    relay_id = relay_peer_id(wan)
    clusters = clusters_for(wan, relay_id, frozenset(stale_ids), cluster_above)
    cluster_of = {member: c.node.id for c in clusters for member in c.members}
    drawn_wan = replace(wan, peers=(*(p for p in wan.peers if p.id not in cluster_of), *(c.node for c in clusters)))
    lay = layout(drawn_wan, frozenset(stale_ids), relay_id, frozenset(not_applied_ids))
    peers = {p.id: p for p in drawn_wan.peers}
    anchors = {p.id for p in wan.peers if p.is_hub}
    if relay_id is not None:
        anchors.add(relay_id)
    edges = clustered_edges(topology.edges, cluster_of) if clusters else topology.edges
    direct, relayed, notes, direct_total, relayed_total = select_edges(edges, anchors)
    caption: Caption | None = None
    if clusters:
        # The totals are the WAN's, not the lines standing for them.
        direct_total = sum(1 for e in topology.edges if e.via is None)
        relayed_total = len(topology.edges) - direct_total
        members = sum(len(c.members) for c in clusters)
        caption = Caption(f"{members} spokes clustered by kind · the WAN page lists every peer", 0.0, 0.0)
    cells = lay.cells
    centre = _centre(cells)
    direct_routes = [_route(e, cells, centre, DIRECT_BENDS) for e in direct]
    relayed_routes = [_route(e, cells, centre, RELAYED_BENDS) for e in relayed]
    taken = [c.box for c in cells.values()]
    labels: list[Label] = []
    unlabelled = 0
    for route in relayed_routes:
        via = peers[route.edge.via or 0].name
        label = _place_label(route, truncate(f"via {via}", CELL_WIDTH, SMALL_FONT), taken)
        if label is None:
            unlabelled += 1
            continue
        labels.append(label)
        taken.append(label.box)
    if unlabelled:
        notes.append(f"{unlabelled} relayed path(s) carry no label (no free room); hover a path for its relay.")

    # Grow the canvas so that curves and labels fit.
    left, top, right, bottom = 0.0, 0.0, float(lay.width), float(lay.height)
    for route in (*direct_routes, *relayed_routes):
        for x, y in route.polyline() if route.straight else (*route.polyline(), route.point(0.5)):
            left, top = min(left, x - CANVAS_PAD), min(top, y - CANVAS_PAD)
            right, bottom = max(right, x + CANVAS_PAD), max(bottom, y + CANVAS_PAD)
    for label in labels:
        l_, t_, r_, b_ = label.box
        left, top = min(left, l_ - CANVAS_PAD), min(top, t_ - CANVAS_PAD)
        right, bottom = max(right, r_ + CANVAS_PAD), max(bottom, b_ + CANVAS_PAD)
    dx, dy = math.ceil(-left), math.ceil(-top)
    if dx or dy or right > lay.width or bottom > lay.height:
        lay = _shifted(lay, dx, dy, math.ceil(right - lay.width), math.ceil(bottom - lay.height))
        direct_routes = [r.moved(dx, dy) for r in direct_routes]
        relayed_routes = [r.moved(dx, dy) for r in relayed_routes]
        labels = [Label(lb.edge, lb.text, lb.x + dx, lb.y + dy) for lb in labels]
    if caption is not None:
        # Under everything else, the canvas widened if the line is longer than the drawing.
        caption = Caption(caption.text, CANVAS_PAD, lay.height + caption.font, caption.font)
        right = max(lay.width, math.ceil(caption.box[2] + CANVAS_PAD))
        lay = Layout(lay.cells, right, math.ceil(caption.box[3] + CANVAS_PAD))
    return (
        Plan(lay, tuple(direct_routes), tuple(relayed_routes), tuple(labels), peers, tuple(clusters), caption),
        notes,
        direct_total,
        relayed_total,
    )


def _d(route: Route) -> str:
    if route.straight:
        return f"M{_f(route.x1)},{_f(route.y1)} L{_f(route.x2)},{_f(route.y2)}"
    return f"M{_f(route.x1)},{_f(route.y1)} Q{_f(route.qx)},{_f(route.qy)} {_f(route.x2)},{_f(route.y2)}"


def render_svg(
    wan: WanSpec,
    topology: TopologyResult,
    *,
    stale_ids: Collection[int] = (),
    href: Callable[[int], str] | None = None,
    cluster_href: Callable[[str], str] | None = None,
    cluster_above: int | None = CLUSTER_ABOVE,
    not_applied_ids: Collection[int] = (),
) -> TopologyDrawing:
    """The WAN's topology as SVG text. `href(peer_id)` gives each node's link and `cluster_href(kind)`
    each cluster's (none when omitted); `cluster_above=None` draws every peer, however many.

    Every user-supplied string (WAN, peer and relay names) is XML-escaped.
    """
    relay_id = relay_peer_id(wan)
    stale = frozenset(stale_ids)
    not_applied = frozenset(not_applied_ids)
    drawn, notes, direct_total, relayed_total = plan(wan, topology, stale, cluster_above, not_applied)
    lay = drawn.layout
    cells = lay.cells
    peers = drawn.peers
    clusters = {c.node.id: c for c in drawn.clusters}
    anchors = {p.id for p in wan.peers if p.is_hub}
    if relay_id is not None:
        anchors.add(relay_id)
    if topology.unreachable:
        n = len(topology.unreachable)
        notes.append(f"{n} prefix{'es are' if n != 1 else ' is'} unreachable; the WAN page lists them with the fix.")
    width, height = int(lay.width), int(lay.height)
    out: list[str] = []
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="topo" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="topo-title topo-desc" '
        f'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif">'
    )
    out.append(f'<title id="topo-title">Topology of WAN {xml_text(wan.name)}</title>')
    clustered = f" {drawn.caption.text}." if drawn.caption is not None else ""
    out.append(
        f'<desc id="topo-desc">{len(wan.peers)} peers, {wan.topology.replace("_", "-")}: '
        f"{direct_total} direct tunnels, {relayed_total} relayed paths.{clustered}</desc>"
    )

    out.append('<g class="topo-edges">')
    for route in drawn.direct:
        e = route.edge
        cls = "topo-edge topo-edge-hub" if (e.a in anchors or e.b in anchors) else "topo-edge"
        title = f"<title>{xml_text(peers[e.a].name)} ↔ {xml_text(peers[e.b].name)}: direct tunnel</title>"
        if route.straight:
            out.append(
                f'<line class="{cls}" data-a="{e.a}" data-b="{e.b}" x1="{_f(route.x1)}" y1="{_f(route.y1)}" '
                f'x2="{_f(route.x2)}" y2="{_f(route.y2)}">{title}</line>'
            )
        else:
            out.append(
                f'<path class="{cls} topo-bent" data-a="{e.a}" data-b="{e.b}" d="{_d(route)}" fill="none">'
                f"{title}</path>"
            )
    for route in drawn.relayed:
        e = route.edge
        assert e.via is not None
        via = peers[e.via].name
        title = f"{xml_text(peers[e.a].name)} ↔ {xml_text(peers[e.b].name)}: relayed through {xml_text(via)}"
        out.append(
            f'<path class="topo-edge topo-relayed" data-a="{e.a}" data-b="{e.b}" data-via="{e.via}" '
            f'd="{_d(route)}" fill="none" stroke-dasharray="6 4"><title>{title}</title></path>'
        )
    out.append("</g>")

    out.append('<g class="topo-nodes">')
    for pid in sorted(cells, key=lambda i: (cells[i].ring, i)):
        if pid in clusters:
            out.append(_cluster_node(clusters[pid], cells[pid], cluster_href))
        else:
            state = config_state(pid, stale, not_applied)
            out.append(_node(peers[pid], cells[pid], state, pid == relay_id, href))
    out.append("</g>")
    if drawn.labels:
        out.append(
            '<g class="topo-labels">'
            + "".join(
                f'<text class="topo-via" x="{_f(lb.x)}" y="{_f(lb.y)}" text-anchor="middle" '
                f'font-size="{_f(SMALL_FONT)}">{xml_text(lb.text)}</text>'
                for lb in drawn.labels
            )
            + "</g>"
        )
    if drawn.caption is not None:
        cap = drawn.caption
        out.append(
            f'<text class="topo-caption" x="{_f(cap.x)}" y="{_f(cap.y)}" font-size="{_f(cap.font)}">'
            f"{xml_text(cap.text)}</text>"
        )
    out.append("</svg>")
    return TopologyDrawing(
        svg="\n".join(out),
        width=width,
        height=height,
        peers=len(wan.peers),
        direct_total=direct_total,
        direct_drawn=len(drawn.direct),
        relayed_total=relayed_total,
        relayed_drawn=len(drawn.relayed),
        notes=tuple(notes),
        clusters=tuple((c.kind, c.label) for c in drawn.clusters),
    )


def _cluster_node(cluster: Cluster, c: Cell, href: Callable[[str], str] | None) -> str:
    """A cluster: its kind's glyph with a ring, its count as the name, its kind's badges."""
    p = cluster.node
    facts = [f"{cluster.label}{' (CGNAT)' if cluster.cgnat else ''}, drawn as one node"]
    if cluster.stale:
        facts.append(f"{cluster.stale} of them not applied or stale")
    facts.append("every peer is listed on the WAN page")
    body = _node(p, c, None, False, None)
    # The node's own tooltip is replaced by the cluster's; a ring inside the glyph marks it as many
    # peers (inside, so that edges keep clear of it as of any glyph).
    body = body[body.index("</title>") + len("</title>") : body.rindex("</g>")]
    ring = f'<circle class="topo-cluster-ring" cx="{_f(c.gx)}" cy="{_f(c.gy)}" r="{_f(c.r * 0.55)}" fill="none"/>'
    inner = f"<title>{xml_text(chr(10).join(facts))}</title>{body}{ring}"
    attrs = (
        f'class="topo-node topo-cluster topo-role-{c.role} topo-kind-{p.kind}" data-cluster="{xml_text(cluster.kind)}"'
    )
    if href is not None:
        return f'<a {attrs} href="{xml_text(href(cluster.kind))}">{inner}</a>'
    return f"<g {attrs}>{inner}</g>"


def _node(p: PeerSpec, c: Cell, state: str | None, is_relay: bool, href: Callable[[int], str] | None) -> str:
    kind = {"mikrotik": "MikroTik", "server": "Server", "client": "Client"}[p.kind]
    facts = [f"{p.name} — {kind}{' hub' if p.is_hub else ''}", f"tunnel {p.tunnel_ip}"]
    if p.tunnel_ip6 is not None:
        facts.append(f"tunnel {p.tunnel_ip6}")
    facts.append(f"endpoint {p.endpoint}" if p.endpoint else "no endpoint (CGNAT)")
    if is_relay:
        facts.append("relays for peers without a direct tunnel")
    for lan in p.subnets:
        nat = f" as {lan.nat_cidr}" if lan.nat_cidr else ""
        facts.append(f"LAN {lan.cidr}{nat}" + ("" if lan.routed else " (not routed)"))
    if state is not None:
        facts.append(f"config {state}")
    classes = f"topo-node topo-role-{c.role} topo-kind-{p.kind}" + (f" topo-{state.replace(' ', '-')}" if state else "")
    parts = [f"<title>{xml_text(chr(10).join(facts))}</title>"]
    if p.kind == "mikrotik":
        half = c.r * 0.9
        parts.append(
            f'<rect class="topo-glyph" x="{_f(c.gx - half)}" y="{_f(c.gy - half)}" width="{_f(2 * half)}" '
            f'height="{_f(2 * half)}" rx="3"/>'
        )
    else:
        parts.append(f'<circle class="topo-glyph" cx="{_f(c.gx)}" cy="{_f(c.gy)}" r="{_f(c.r)}"/>')
    if p.is_hub:
        parts.append(
            f'<text class="topo-glyph-text" x="{_f(c.gx)}" y="{_f(c.gy + 3.5)}" text-anchor="middle" '
            f'font-size="{_f(SMALL_FONT)}">HUB</text>'
        )
    # The stack of lines next to the glyph, nearest first: name, badge rows, NAT'd LANs.
    # Above the glyph the blocks come in reverse order (the name still nearest), each block as is.
    name = truncate(p.name, CELL_WIDTH, NAME_FONT)
    rows = badge_rows(badges(p, state))
    nats = nat_lines(p)
    blocks: list[list[tuple[float, str]]] = [
        [(NAME_FONT, "name")],
        [(BADGE_H, f"badges:{i}") for i in range(len(rows))],
        [(SMALL_FONT, f"nat:{i}") for i in range(len(nats))],
    ]
    if c.above:
        blocks.reverse()
    stack = [item for block in blocks for item in block]
    if c.above:
        total = sum(h for h, _ in stack) + LINE_GAP * (len(stack) - 1)
        top = c.gy - c.r - 4 - total
    else:
        top = c.gy + c.r + 4
    for h, item in stack:
        base = top + h - 0.22 * h  # text baseline: descenders stay inside the line
        if item == "name":
            parts.append(
                f'<text class="topo-name" x="{_f(c.x)}" y="{_f(base)}" text-anchor="middle" '
                f'font-size="{_f(NAME_FONT)}">{xml_text(name)}</text>'
            )
        elif item.startswith("badges:"):
            row = rows[int(item.split(":")[1])]
            row_w = sum(badge_width(b) for b in row) + BADGE_GAP * (len(row) - 1)
            bx = c.x - row_w / 2
            for b in row:
                w = badge_width(b)
                parts.append(
                    f'<g class="topo-badge topo-badge-{b.lower().replace(" ", "-")}"><rect x="{_f(bx)}" y="{_f(top)}" '
                    f'width="{_f(w)}" height="{_f(BADGE_H)}" rx="6.5"/><text x="{_f(bx + w / 2)}" '
                    f'y="{_f(top + BADGE_H - 3.5)}" text-anchor="middle" font-size="{_f(SMALL_FONT)}">'
                    f"{xml_text(b)}</text></g>"
                )
                bx += w + BADGE_GAP
        else:
            text = nats[int(item.split(":")[1])][0]  # the full text is in the node's tooltip
            parts.append(
                f'<text class="topo-nat" x="{_f(c.x)}" y="{_f(base)}" text-anchor="middle" '
                f'font-size="{_f(SMALL_FONT)}">{xml_text(text)}</text>'
            )
        top += h + LINE_GAP
    body = "".join(parts)
    attrs = f'class="{classes}" data-peer-id="{p.id}"'
    if href is not None:
        return f'<a {attrs} href="{xml_text(href(p.id))}">{body}</a>'
    return f"<g {attrs}>{body}</g>"


__all__ = [
    "CLUSTER_ABOVE",
    "Caption",
    "Cell",
    "Cluster",
    "Label",
    "Layout",
    "Plan",
    "Route",
    "TopologyDrawing",
    "layout",
    "plan",
    "render_svg",
    "route_clearance",
    "select_edges",
    "truncate",
    "xml_text",
]
