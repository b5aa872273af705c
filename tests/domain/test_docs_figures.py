"""The topology pictures in docs/concepts.md are drawn by app.domain.topology_svg from the WANs
below, and stay in step with it: after a change to the drawing run

    WIREWAN_WRITE_DOCS=1 .venv/bin/python -m pytest tests/domain/test_docs_figures.py"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.domain.model import WanSpec
from app.domain.topology import build_topology
from app.domain.topology_svg import render_svg
from tests.domain.test_topology import peer, subnet, wan_of

IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# The page's colours, for a picture outside the app (a docs file is not under the app's CSP).
STYLE = (
    "<style>.topo-edge{stroke:#b7c0cc;stroke-width:1.2}.topo-edge-hub{stroke:#8d9bb0;stroke-width:1.5}"
    ".topo-relayed{stroke:#b5651d;stroke-width:1.4;fill:none}.topo-via{fill:#8a4a0f;font-weight:600}"
    ".topo-glyph{stroke:#fff;stroke-width:2}.topo-role-hub .topo-glyph{fill:#15243d}"
    ".topo-kind-server .topo-glyph{fill:#3d6fb8}.topo-kind-mikrotik .topo-glyph{fill:#0e7c87}"
    ".topo-kind-client .topo-glyph{fill:#7a56b8}.topo-glyph-text{fill:#fff;font-weight:700}"
    ".topo-name{fill:#1c2430;font-weight:600}.topo-nat{fill:#5f6b7a;font-family:monospace}"
    ".topo-badge rect{fill:#e8ecf1}.topo-badge text{fill:#374151;font-weight:600}"
    ".topo-badge-cgnat rect{fill:#f1e8ff}.topo-badge-mikrotik rect{fill:#e2f3f5}"
    ".topo-cluster-ring{stroke:#fff;stroke-width:2}.topo-caption{fill:#5f6b7a;font-style:italic}</style>"
)


def figures() -> dict[str, WanSpec]:
    return {
        "topology-hybrid.svg": wan_of(
            peer(1, "vps", hub=True),
            peer(2, "office", kind="mikrotik", subnets=(subnet(2, "192.168.88.0/24", nat="172.16.1.0/24"),)),
            peer(
                3,
                "branch",
                kind="mikrotik",
                endpoint=False,
                subnets=(subnet(3, "192.168.88.0/24", nat="172.16.0.0/24"),),
            ),  # fmt: skip
            peer(4, "laptop", kind="client", endpoint=False),
            peer(5, "phone", kind="client", endpoint=False),
            topology="hybrid",
            name="demo",
        ),
        "topology-hub-spoke.svg": wan_of(
            peer(1, "hq", hub=True, subnets=(subnet(1, "10.10.0.0/16"),)),
            peer(2, "homeb", kind="mikrotik", subnets=(subnet(2, "192.168.2.0/24"),)),
            peer(3, "alice-phone", kind="client", endpoint=False),
            peer(4, "nas", subnets=(subnet(4, "192.168.50.0/24"),)),
            topology="hub_spoke",
            name="star",
        ),
        # Beyond 60 spokes: 150 phones become one counted node; hq, the sites and the servers stay.
        "topology-clustered.svg": wan_of(
            peer(1, "hq", hub=True, subnets=(subnet(1, "10.10.0.0/16"),)),
            peer(2, "homeb", kind="mikrotik", subnets=(subnet(2, "192.168.2.0/24"),)),
            peer(3, "shop", kind="mikrotik", subnets=(subnet(3, "192.168.3.0/24"),)),
            peer(4, "nas", subnets=(subnet(4, "192.168.50.0/24"),)),
            *(
                peer(i, f"phone-{i:03d}", kind="client", endpoint=False, ip=f"10.0.{i // 250}.{i % 250 + 1}")
                for i in range(5, 155)
            ),
            topology="hub_spoke",
            name="fleet",
        ),
    }


@pytest.mark.parametrize("name", sorted(figures()))
def test_docs_figures_are_the_current_drawing(name: str) -> None:
    wan = figures()[name]
    svg = render_svg(wan, build_topology(wan)).svg.replace(">", ">" + STYLE, 1)
    path = IMG / name
    if os.environ.get("WIREWAN_WRITE_DOCS") == "1":
        path.write_text(svg + "\n")
    assert path.read_text() == svg + "\n", f"{path} is out of date: see this test's docstring"
