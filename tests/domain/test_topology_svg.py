"""The topology drawing: deterministic, escaped, role-based layout that stays legible at 200+ peers."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from ipaddress import IPv4Network

import pytest

from app.domain.model import PeerKind, PeerSpec, WanSpec
from app.domain.topology import build_topology
from app.domain.topology_svg import (
    CELL_WIDTH,
    CLUSTER_ABOVE,
    MAX_RELAYED_DRAWN,
    NAME_FONT,
    SMALL_FONT,
    TopologyDrawing,
    layout,
    plan,
    render_svg,
    route_clearance,
)
from tests.domain.test_topology import peer, subnet, wan_of

SVG = "{http://www.w3.org/2000/svg}"


def draw(wan: WanSpec, stale: set[int] | None = None, *, every_peer: bool = False) -> TopologyDrawing:
    return render_svg(
        wan,
        build_topology(wan),
        stale_ids=stale or set(),
        href=lambda i: f"/peers/{i}",
        cluster_href=lambda kind: f"/wans/1?kind={kind}",
        cluster_above=None if every_peer else CLUSTER_ABOVE,
    )


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 — our own output, parsed to prove it is well-formed


def sample() -> WanSpec:
    return wan_of(
        peer(1, "hub", hub=True),
        peer(2, "vps", subnets=(subnet(1, "10.20.0.0/16"),)),
        peer(3, "office", kind="mikrotik", subnets=(subnet(2, "192.168.88.0/24"),)),
        peer(4, "laptop", kind="client", endpoint=False),
        peer(5, "branch", endpoint=False, subnets=(subnet(3, "192.168.88.0/24", nat="172.16.0.0/24"),)),
        topology="hybrid",
    )


def big(n: int = 200, topology: str = "hybrid") -> WanSpec:
    peers = [peer(1, "hub-main", hub=True), peer(2, "hub-backup", hub=True)]
    for i in range(3, n + 1):
        ip = f"10.0.{i // 250}.{i % 250 + 1}"
        if i % 7 == 0:
            peers.append(
                peer(
                    i, f"router-{i:03d}", kind="mikrotik", ip=ip, subnets=(subnet(i, f"10.{i % 250}.{i // 250}.0/24"),)
                )
            )
        elif i % 5 == 0:
            peers.append(peer(i, f"server-{i:03d}", ip=ip))
        elif i % 11 == 0:
            peers.append(
                peer(
                    i,
                    f"cgnat-router-with-a-long-name-{i:03d}",
                    kind="mikrotik",
                    ip=ip,
                    endpoint=False,
                    subnets=(subnet(1000 + i, "192.168.1.0/24", nat=f"172.{16 + i // 250}.{i % 250}.0/24"),),
                )
            )
        else:
            peers.append(peer(i, f"laptop-{i:03d}", kind="client", ip=ip, endpoint=False))
    wan = wan_of(*peers, topology=topology)  # type: ignore[arg-type]
    return replace(wan, tunnel_cidr=IPv4Network("10.0.0.0/22"))


def nodes(root: ET.Element) -> list[ET.Element]:
    return [el for el in root.iter() if "topo-node" in (el.get("class") or "").split()]


# --- determinism ---------------------------------------------------------------------------------


def test_same_wan_same_bytes_whatever_the_peer_order() -> None:
    wan = sample()
    first = draw(wan, {2}).svg
    assert draw(wan, {2}).svg == first
    assert draw(replace(wan, peers=tuple(reversed(wan.peers))), {2}).svg == first


# --- escaping ------------------------------------------------------------------------------------


def test_hostile_names_are_escaped_and_the_svg_stays_well_formed() -> None:
    evil = '<script>alert("x")</script>&\'"'
    wan = replace(
        wan_of(
            peer(1, "hub", hub=True), peer(2, evil, kind="client", endpoint=False), peer(3, "b\x01<i>", endpoint=False)
        ),
        name='wan"><img src=x onerror=alert(1)>',
        topology="hybrid",
    )
    svg = draw(wan).svg
    assert "<script" not in svg and "<img" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg and "&quot;" in svg
    root = parse(svg)  # well-formed, control character dropped
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == 'Topology of WAN wan"><img src=x onerror=alert(1)>'
    # The relay's name in a via-label is escaped too.
    relayed = replace(wan, peers=(replace(wan.peers[0], name="<b>hub</b>"), *wan.peers[1:]))
    assert "via &lt;b&gt;hub&lt;/b&gt;" in draw(relayed).svg


def test_long_names_are_truncated_with_the_full_name_in_the_tooltip() -> None:
    name = "a-very-long-peer-name-that-goes-on-and-on-x48"
    root = parse(draw(wan_of(peer(1, "hub", hub=True), peer(2, name))).svg)
    texts = [t.text or "" for t in root.iter(f"{SVG}text") if t.get("class") == "topo-name"]
    short = [t for t in texts if t.startswith("a-very")]
    assert len(short) == 1 and short[0].endswith("…") and len(short[0]) < len(name)
    assert len(short[0]) * NAME_FONT * 0.5 <= CELL_WIDTH
    tooltips = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert any(t.startswith(name + " — Server") for t in tooltips)


# --- content -------------------------------------------------------------------------------------


def test_relayed_paths_are_dashed_and_labelled_with_the_relay() -> None:
    wan = sample()
    root = parse(draw(wan).svg)
    relayed = [el for el in root.iter(f"{SVG}path") if "topo-relayed" in (el.get("class") or "")]
    # laptop and branch are both CGNAT: only the hub can carry traffic between them.
    assert [(el.get("data-a"), el.get("data-b"), el.get("data-via")) for el in relayed] == [("4", "5", "1")]
    assert relayed[0].get("stroke-dasharray")
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "topo-via"]
    assert labels == ["via hub"]
    direct = [
        el
        for el in root.iter()
        if "topo-edge" in (el.get("class") or "").split() and "topo-relayed" not in (el.get("class") or "")
    ]
    assert all(el.get("stroke-dasharray") is None for el in direct)
    assert len(direct) == len([e for e in build_topology(wan).edges if e.via is None])


def test_every_node_links_to_its_peer_with_badges_and_nat_translation() -> None:
    root = parse(draw(sample(), stale={3}).svg)
    links = {el.get("data-peer-id"): el.get("href") for el in nodes(root)}
    assert links == {str(i): f"/peers/{i}" for i in range(1, 6)}
    by_id = {el.get("data-peer-id"): el for el in nodes(root)}

    def badge_texts(pid: str) -> list[str]:
        return [
            t.text or ""
            for g in by_id[pid].iter(f"{SVG}g")
            if "topo-badge" in (g.get("class") or "")
            for t in g.iter(f"{SVG}text")
        ]

    assert badge_texts("3") == ["MikroTik", "stale"]
    assert badge_texts("4") == ["CGNAT"]
    assert badge_texts("2") == []
    nat = [t.text for t in by_id["5"].iter(f"{SVG}text") if t.get("class") == "topo-nat"]
    assert nat == ["192.168.88.0/24", "as 172.16.0.0/24"]
    # Hubs are marked in the glyph.
    assert any(t.text == "HUB" for t in by_id["1"].iter(f"{SVG}text"))


def test_without_href_nodes_are_plain_groups() -> None:
    wan = sample()
    svg = render_svg(wan, build_topology(wan)).svg
    assert "href" not in svg and svg.count('<g class="topo-node ') == 5


def test_empty_wan_renders() -> None:
    drawing = draw(wan_of())
    assert parse(drawing.svg).tag == f"{SVG}svg" and drawing.peers == 0


# --- layout by role --------------------------------------------------------------------------------


def test_hub_in_the_centre_servers_inside_clients_outside() -> None:
    wan = sample()
    cells = layout(wan, relay_id=1).cells
    hub = cells[1]
    xs = [c.x for c in cells.values()]
    ys = [c.y for c in cells.values()]
    # The hub is the rings' centre: nearer the middle of the drawing than any other peer.
    mid = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
    assert min(cells, key=lambda pid: math.dist((cells[pid].x, cells[pid].y), mid)) == 1

    def dist(pid: int) -> float:
        return math.hypot(cells[pid].x - hub.x, cells[pid].y - hub.y)

    assert max(dist(2), dist(3)) < min(dist(4), dist(5))  # vps, office inside; laptop, branch (CGNAT) out


def _overlapping(drawing_cells: dict[int, object]) -> list[tuple[int, int]]:
    boxes = sorted((c.box, pid) for pid, c in drawing_cells.items())  # type: ignore[attr-defined]
    bad = []
    for i, ((_, t1, r1, b1), p1) in enumerate(boxes):
        for (l2, t2, _, b2), p2 in boxes[i + 1 :]:
            if l2 >= r1:
                break  # sorted by left edge: nothing further right can overlap
            if t1 < b2 and t2 < b1:
                bad.append((p1, p2))
    return bad


def test_200_peers_stay_legible() -> None:
    wan = big(200)
    stale = {p.id for p in wan.peers if p.id % 3 == 0}
    lay = layout(wan, stale, relay_id=1)
    assert len(lay.cells) == 200
    # No two cells (glyph, name, badges, NAT lines) overlap.
    assert _overlapping(lay.cells) == []
    # Every cell lies on the canvas.
    for c in lay.cells.values():
        left, top, right, bottom = c.box
        assert left >= 0 and top >= 0 and right <= lay.width and bottom <= lay.height
    # Text stays readable at 100 %, and the canvas stays a size one scrolls around in ("Draw every
    # peer": by default its 157 clients and servers would be clusters).
    drawing = draw(wan, stale, every_peer=True)
    assert min(NAME_FONT, SMALL_FONT) >= 9
    assert drawing.width <= 3200 and drawing.height <= 3200
    # The hairball is not drawn: hub edges are, the rest is counted and explained.
    assert drawing.direct_drawn < 600 and drawing.relayed_drawn <= MAX_RELAYED_DRAWN
    assert drawing.direct_total > drawing.direct_drawn and drawing.notes
    root = parse(drawing.svg)
    assert len(nodes(root)) == 200
    # Core peers (servers, routers with an endpoint) sit inside the CGNAT/client rings.
    hub_x = (lay.cells[1].x + lay.cells[2].x) / 2
    hub_y = (lay.cells[1].y + lay.cells[2].y) / 2

    def dist(pid: int) -> float:
        return math.hypot(lay.cells[pid].x - hub_x, lay.cells[pid].y - hub_y)

    core = [p.id for p in wan.peers if not p.is_hub and not p.cgnat]
    edge = [p.id for p in wan.peers if p.cgnat]
    assert max(map(dist, core)) < min(map(dist, edge))


def test_400_peer_mesh_without_hub_still_has_no_overlap() -> None:
    wan = big(400, "mesh")
    wan = replace(wan, peers=tuple(replace(p, is_hub=False) for p in wan.peers))
    lay = layout(wan, relay_id=None)
    assert _overlapping(lay.cells) == []
    assert len(draw(wan).notes) >= 1


def test_small_wans_draw_every_edge() -> None:
    peers: list[PeerSpec] = [peer(i, f"p{i}") for i in range(1, 9)]
    drawing = draw(wan_of(*peers))
    assert drawing.direct_drawn == drawing.direct_total == 28 and drawing.notes == ()


# --- geometry on generated WANs --------------------------------------------------------------------
# The drawing must read: no two nodes (with their labels) overlap, no edge runs within a node's
# radius of a node it does not join, no two labels overlap and everything lies in the view box.

KINDS: tuple[PeerKind, ...] = ("server", "mikrotik", "client")


def generated(topology: str, n: int, *, hubs: int = 0, cgnat_every: int = 0) -> WanSpec:
    peers = []
    for i in range(1, n + 1):
        kind = KINDS[i % 3] if i > hubs else "server"
        cgnat = i > hubs and (kind == "client" or (cgnat_every and i % cgnat_every == 0))
        subnets = (subnet(i, f"10.{100 + i // 250}.{i % 250}.0/24"),) if kind == "mikrotik" else ()
        peers.append(
            peer(
                i,
                f"{'hub' if i <= hubs else kind}-{i}",
                kind=kind,
                ip=f"10.0.{i // 250}.{i % 250 + 1}",
                endpoint=not cgnat,
                hub=i <= hubs,
                subnets=subnets,
            )
        )
    wan = wan_of(*peers, topology=topology)  # type: ignore[arg-type]
    return replace(wan, tunnel_cidr=IPv4Network("10.0.0.0/22"))


GENERATED = {
    "mesh-3": lambda: generated("mesh", 3),
    "mesh-4": lambda: generated("mesh", 4),
    "mesh-4-servers": lambda: wan_of(*(peer(i, f"p{i}") for i in range(1, 5))),
    "mesh-10": lambda: generated("mesh", 10),
    "mesh-30": lambda: generated("mesh", 30),
    "hub-spoke-3": lambda: generated("hub_spoke", 3, hubs=1),
    "hub-spoke-50": lambda: generated("hub_spoke", 50, hubs=1),
    "hub-spoke-200": lambda: generated("hub_spoke", 200, hubs=1),
    "hybrid-cgnat-8": lambda: generated("hybrid", 8, hubs=1, cgnat_every=4),
    "hybrid-cgnat-20": lambda: generated("hybrid", 20, hubs=1, cgnat_every=3),
    "hybrid-2-hubs-40": lambda: generated("hybrid", 40, hubs=2, cgnat_every=5),
    # Beyond CLUSTER_ABOVE spokes: clustered by default.
    "hub-spoke-62": lambda: generated("hub_spoke", 62, hubs=1),
    "hybrid-cgnat-150": lambda: generated("hybrid", 150, hubs=2, cgnat_every=4),
    "mesh-90": lambda: generated("mesh", 90),
    "issue-hub-spoke": lambda: wan_of(
        peer(1, "hq", hub=True),
        peer(2, "homeb", kind="mikrotik", subnets=(subnet(2, "192.168.2.0/24"),)),
        peer(3, "alice-phone", kind="client", endpoint=False),
        topology="hub_spoke",
    ),
    # The demo WAN as ./run.sh demo seeds it: a mesh whose relay (office) takes the centre.
    "demo-mesh": lambda: wan_of(
        peer(1, "office", kind="mikrotik", subnets=(subnet(1, "192.168.88.0/24"),)),
        peer(2, "branch", kind="mikrotik", subnets=(subnet(2, "192.168.88.0/24", nat="172.16.0.0/24"),)),
        peer(3, "vps"),
        peer(4, "laptop", kind="client", endpoint=False),
    ),
    "demo": lambda: wan_of(
        peer(1, "vps", hub=True),
        peer(2, "office", kind="mikrotik", subnets=(subnet(2, "192.168.88.0/24"),)),
        peer(
            3, "branch", kind="mikrotik", endpoint=False, subnets=(subnet(3, "192.168.88.0/24", nat="172.16.0.0/24"),)
        ),
        peer(4, "laptop", kind="client", endpoint=False),
        topology="hybrid",
    ),
}


def boxes_overlap(p: tuple[float, float, float, float], q: tuple[float, float, float, float]) -> bool:
    return p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]


@pytest.mark.parametrize("every_peer", [False, True], ids=["default", "every-peer"])
@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_wans_draw_readably(name: str, every_peer: bool) -> None:
    wan = GENERATED[name]()
    drawn, _, _, _ = plan(wan, build_topology(wan), cluster_above=None if every_peer else CLUSTER_ABOVE)
    cells = drawn.layout.cells
    # Every peer is drawn, as its own node or counted in exactly one cluster.
    in_clusters = [m for c in drawn.clusters for m in c.members]
    assert sorted([pid for pid in cells if pid > 0] + in_clusters) == sorted(p.id for p in wan.peers)
    assert len(cells) == len(wan.peers) - len(in_clusters) + len(drawn.clusters)
    # No two nodes (glyph and labels) overlap; no two glyphs even come close.
    assert _overlapping(cells) == []
    glyphs = list(cells.values())
    for i, a in enumerate(glyphs):
        for b in glyphs[i + 1 :]:
            assert math.hypot(a.gx - b.gx, a.gy - b.gy) > a.r + b.r, (a.peer_id, b.peer_id)
    # No edge passes within a node's radius of a node it does not join.
    routes = (*drawn.direct, *drawn.relayed)
    for route in routes:
        assert route_clearance(route, glyphs) >= 0, (name, route.edge)
    # No two labels overlap: node labels (the cells) and the relayed paths' "via" labels.
    label_boxes = [c.box for c in glyphs] + [lb.box for lb in drawn.labels]
    if drawn.caption is not None:
        label_boxes.append(drawn.caption.box)
    for i, p in enumerate(label_boxes):
        for q in label_boxes[i + 1 :]:
            assert not boxes_overlap(p, q)
    # Everything fits the view box.
    width, height = drawn.layout.width, drawn.layout.height
    for left, top, right, bottom in label_boxes:
        assert left >= 0 and top >= 0 and right <= width and bottom <= height
    for route in routes:
        for x, y in route.polyline():
            assert 0 <= x <= width and 0 <= y <= height
    # The SVG says the same and stays well-formed.
    root = parse(draw(wan, every_peer=every_peer).svg)
    assert root.get("viewBox") == f"0 0 {int(width)} {int(height)}"


def test_four_peers_do_not_stand_on_one_line() -> None:
    for name in ("mesh-4", "mesh-4-servers", "demo", "demo-mesh"):
        cells = layout(GENERATED[name]()).cells
        xs = {round(c.gx) for c in cells.values()}
        ys = {round(c.gy) for c in cells.values()}
        assert len(xs) > 1 and len(ys) > 1, name
        # Not even three of them on one line.
        glyphs = [(c.gx, c.gy) for c in cells.values()]
        for i, a in enumerate(glyphs):
            for j, b in enumerate(glyphs[i + 1 :], i + 1):
                for c in glyphs[j + 1 :]:
                    area = abs((b[0] - a[0]) * (c[1] - a[1]) - (c[0] - a[0]) * (b[1] - a[1])) / 2
                    side = max(math.dist(a, b), math.dist(a, c), math.dist(b, c))
                    assert 2 * area / side > 30, (name, a, b, c)  # the triangle is more than a sliver


def test_a_hub_tunnel_never_runs_through_another_peer() -> None:
    # The picture: hq–alice-phone drawn straight through homeb.
    wan = GENERATED["issue-hub-spoke"]()
    drawn, _, _, _ = plan(wan, build_topology(wan))
    phone = [r for r in drawn.direct if {r.edge.a, r.edge.b} == {1, 3}]
    assert len(phone) == 1
    assert route_clearance(phone[0], drawn.layout.cells.values()) >= 0


# --- clusters beyond CLUSTER_ABOVE spokes -------------------------------------------------------------


def test_up_to_sixty_spokes_every_peer_is_its_own_node() -> None:
    drawing = draw(generated("hub_spoke", CLUSTER_ABOVE + 1, hubs=1))  # the hub and 60 spokes
    assert drawing.clusters == () and len(nodes(parse(drawing.svg))) == CLUSTER_ABOVE + 1
    assert "topo-caption" not in drawing.svg


def test_two_hundred_spokes_become_one_node_per_kind_with_its_count() -> None:
    wan = GENERATED["hub-spoke-200"]()
    drawing = draw(wan)
    root = parse(drawing.svg)
    drawn = nodes(root)
    # The hub stays itself; the 199 spokes are three clusters, each counted.
    assert [el.get("data-peer-id") for el in drawn if el.get("data-peer-id")] == ["1"]
    clusters = {el.get("data-cluster"): el for el in drawn if el.get("data-cluster")}
    assert drawing.clusters == (("client", "67 clients"), ("mikrotik", "66 routers"), ("server", "66 servers"))
    names = {k: [t.text for t in el.iter(f"{SVG}text") if t.get("class") == "topo-name"] for k, el in clusters.items()}
    assert names == {"client": ["67 clients"], "mikrotik": ["66 routers"], "server": ["66 servers"]}
    # Each cluster links to the WAN's peer list of its kind and says so in its tooltip.
    assert clusters["client"].get("href") == "/wans/1?kind=client"
    tooltip = clusters["client"].find(f"{SVG}title")
    assert tooltip is not None and "every peer is listed on the WAN page" in (tooltip.text or "")
    # The picture itself says that spokes are clustered and where the full list is.
    caption = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "topo-caption"]
    assert caption == ["199 spokes clustered by kind · the WAN page lists every peer"]
    desc = root.find(f"{SVG}desc")
    assert desc is not None and "199 spokes clustered by kind" in (desc.text or "")
    # The totals are still the WAN's: 199 hub tunnels, and every spoke pair relayed.
    assert drawing.direct_total == 199 and drawing.relayed_total == 199 * 198 // 2
    # One line per cluster and hub, not 199 of them.
    assert drawing.direct_drawn == 3
    assert drawing.width <= 800 and drawing.height <= 800


def test_small_groups_hubs_and_the_relay_stay_readable_nodes() -> None:
    wan = GENERATED["hybrid-cgnat-150"]()
    drawn, _, _, _ = plan(wan, build_topology(wan))
    clustered = {m for c in drawn.clusters for m in c.members}
    hubs = {p.id for p in wan.peers if p.is_hub}
    assert hubs and not hubs & clustered
    # The largest groups went first, and only until at most CLUSTER_ABOVE spokes are drawn one by one.
    singles = [pid for pid in drawn.layout.cells if pid > 0 and pid not in hubs]
    assert 0 < len(singles) <= CLUSTER_ABOVE
    sizes = [len(c.members) for c in drawn.clusters]
    assert sizes == sorted(sizes, reverse=True)
    groups: dict[tuple[str, bool], int] = {}
    for p in wan.peers:
        if p.id in singles:
            groups[(p.kind, p.cgnat)] = groups.get((p.kind, p.cgnat), 0) + 1
    assert max(groups.values()) <= min(sizes)
    # A cluster never mixes kinds, nor CGNAT peers with reachable ones.
    by_id = {p.id: p for p in wan.peers}
    for c in drawn.clusters:
        assert {(by_id[m].kind, by_id[m].cgnat) for m in c.members} == {(c.kind, c.cgnat)}


def test_clustered_drawing_is_deterministic_and_counts_stale_members() -> None:
    wan = GENERATED["hub-spoke-200"]()
    stale = {p.id for p in wan.peers if p.kind == "client" and p.id % 2}
    first = draw(wan, stale).svg
    assert draw(replace(wan, peers=tuple(reversed(wan.peers))), stale).svg == first
    assert f"{len(stale)} of them not applied or stale" in first


def test_every_peer_can_still_be_drawn() -> None:
    wan = GENERATED["hub-spoke-200"]()
    drawing = draw(wan, every_peer=True)
    assert drawing.clusters == () and len(nodes(parse(drawing.svg))) == 200
