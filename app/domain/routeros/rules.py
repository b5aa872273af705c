"""Router rules the jobs apply around a plan: what stands in the way, what is risky, what to restore,
and how several WANs share one router (DESIGN.md §6).

A MikroTik can be a peer of several WANs, each with its own interface and listen port. Each WAN
tags its rows with its id (desired.managed_key) and plans only those; what they share — the API
user's and the API services' allowed addresses — keeps the union of what every WAN needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_network

from app.domain.model import IPAddress, IPNetwork
from app.domain.routeros.desired import (
    ADDRESS,
    ADDRESS6,
    FILTER,
    FILTER6,
    ROUTE,
    ROUTE6,
    SERVICE,
    USER,
    WG,
    DemotionIntent,
    DesiredState,
    fmt_prefixes,
)
from app.domain.routeros.plan import ActualState, Op, Plan

# Changes that can cut the path WireWAN manages the router through; a deploy containing one is
# commit-confirmed (an undo is armed on the router first and disarmed once WireWAN gets back in).
RISKY_MENUS = frozenset({USER, SERVICE, WG, FILTER, FILTER6, ADDRESS, ADDRESS6, ROUTE, ROUTE6})

INTERFACE_NAME_MAX = 15  # Linux IFNAMSIZ - 1; RouterOS refuses longer WireGuard interface names


def is_risky(op: Op) -> bool:
    if op.action == "set" and set(op.props) == {"comment"}:
        return False  # a re-tag changes nothing the router does
    return op.menu in RISKY_MENUS or op.action == "remove"


@dataclass(frozen=True)
class RouterSlot:
    """One WAN's use of a router: what must not clash with, or be taken from, another WAN's."""

    wan_id: int
    wan_name: str
    interface_name: str
    listen_port: int
    username: str
    admit: tuple[IPNetwork, ...] = ()


def sibling_conflicts(mine: RouterSlot, others: Iterable[RouterSlot]) -> list[str]:
    """Two WANs on one router cannot share a WireGuard interface name or a listen port."""
    found = []
    for other in others:
        if other.wan_id == mine.wan_id:
            continue
        if other.interface_name == mine.interface_name:
            found.append(
                f"WAN '{other.wan_name}' also manages this router with the interface name "
                f"'{mine.interface_name}'; give one of the two WANs another interface name (WAN settings)."
            )
        if other.listen_port == mine.listen_port:
            found.append(
                f"WAN '{other.wan_name}' also listens on UDP {mine.listen_port} on this router; change this "
                "peer's listen port (or that WAN's) so each WAN has its own."
            )
    return found


def also_admit(others: Iterable[RouterSlot]) -> list[IPNetwork]:
    """Ranges the other WANs need admitted on the API user and services (their union)."""
    return [net for other in others for net in other.admit]


def cleared(full: DesiredState, keep_admitted: Sequence[IPNetwork], source: IPAddress) -> DesiredState:
    """What a clear leaves of a WAN on the router: none of its own rows (old-format ones it owns
    included). When other WANs still manage the router (`keep_admitted`: what they need), the API
    user and services keep admitting exactly that and the address WireWAN connects from; otherwise
    they are left as they are."""
    keep = []
    if keep_admitted:
        nets = list(keep_admitted)
        host: IPNetwork = IPv4Network(f"{source}/32") if source.version == 4 else IPv6Network(f"{source}/128")
        if not any(host.version == n.version and host.subnet_of(n) for n in nets):  # type: ignore[arg-type]  # same version checked first
            nets.append(host)
        for res in full.resources:
            if res.menu in (USER, SERVICE):
                keep.append(replace(res, props={**res.props, "address": fmt_prefixes(nets)}, create=False))
    return replace(full, resources=tuple(keep), demotion=DemotionIntent(()), claimed_legacy=full.legacy_claims())


def port_conflicts(desired: DesiredState, actual: ActualState) -> list[str]:
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


def blocking(desired: DesiredState, actual: ActualState, p: Plan, siblings: Sequence[str] = ()) -> list[str]:
    """Why this plan cannot be deployed (empty: it can)."""
    return [*p.conflicts, *port_conflicts(desired, actual), *siblings]


def router_conflicts(
    desired: DesiredState, actual: ActualState, p: Plan, username: str, siblings: Sequence[str] = ()
) -> list[str]:
    """What on the router stands in the way or will be changed behind the operator's back."""
    found = blocking(desired, actual, p, siblings)
    tunnel = next((r for r in desired.resources if r.menu == ADDRESS), None)
    if tunnel is not None:
        mine = ip_network(tunnel.props["address"], strict=False)
        for row in actual.get(ADDRESS, ()):
            if row.get("comment", "") in (tunnel.key,) or not row.get("address"):
                continue
            if row.get("interface") == desired.interface_name:
                continue  # our own address under an old-format tag
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


def demoted_routes(p: Plan) -> list[dict[str, str]]:
    """The routes a plan demotes, with their original distance (recorded for a later clear)."""
    return [
        {"menu": op.menu, "id": op.id or "", "distance": op.previous["distance"], "reason": op.reason}
        for op in p.ops
        if op.action == "set" and op.menu in (ROUTE, ROUTE6) and op.by_id and "distance" in op.previous
    ]


def first_distances(history: Iterable[Sequence[Mapping[str, str]]]) -> dict[tuple[str, str], str]:
    """(menu, .id) → original distance, from each deployment's demoted routes, oldest first.

    The first record holds the original distance; later deploys see 11 and record nothing."""
    recorded: dict[tuple[str, str], str] = {}
    for routes in history:
        for route in routes or ():
            recorded.setdefault((route["menu"], route["id"]), route["distance"])
    return recorded


def restore_ops(recorded: Mapping[tuple[str, str], str], actual: ActualState) -> list[Op]:
    """Set each route WireWAN demoted back to the distance it had, if it is still demoted."""
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


def default_interface_name(wan_name: str, taken: Iterable[str] = ()) -> str:
    """`wg-<slug of the WAN name>`, within RouterOS's 15 characters and unlike every name in `taken`."""
    slug = re.sub(r"[^a-z0-9]+", "-", wan_name.lower()).strip("-") or "wan"
    used = set(taken)
    base = f"wg-{slug}"[:INTERFACE_NAME_MAX].rstrip("-")
    if base not in used:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        name = base[: INTERFACE_NAME_MAX - len(suffix)].rstrip("-") + suffix
        if name not in used:
            return name
        n += 1
