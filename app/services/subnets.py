"""LANs a peer hosts: strict parsing, conflict rules (DESIGN.md §4), Auto-NAT."""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from typing import Any

from app.domain import conflicts
from app.domain.addressing import parse_network_strict
from app.domain.conflicts import SubnetDecision
from app.domain.errors import ConflictError
from app.domain.model import IPNetwork
from app.extensions import db
from app.models import Peer, Subnet
from app.services import audit, changes
from app.services.inputs import as_bool
from app.services.specs import Neighbourhood, nat_pool_taken, subnet_neighbourhood
from app.services.tx import lock_wan


def _near(peer: Peer, cidr: IPNetwork, exclude_subnet_id: int | None = None) -> Neighbourhood:
    """The part of the peer's WAN the conflict rules look at for `cidr` (indexed reads: the work
    does not grow with the WAN)."""
    near = subnet_neighbourhood(peer.wan_id, peer.id, cidr, exclude_subnet_id)
    assert near is not None
    return near


def _describe(subnet: Subnet) -> str:
    nat = f" as {subnet.nat_cidr}" if subnet.nat_cidr else ""
    return f"{subnet.cidr}{nat} ({'routed' if subnet.routed else 'not routed'})"


@dataclass(frozen=True)
class SubnetCheck:
    cidr: IPNetwork
    routed: bool
    decision: SubnetDecision


def check(peer: Peer, cidr_text: Any, routed: Any = True, auto_nat: Any = False) -> SubnetCheck:
    """Parse and check without saving (also the live check under the form field)."""
    cidr = parse_network_strict(cidr_text)
    routed_b = as_bool(routed, "routed")
    auto_nat_b = as_bool(auto_nat, "auto_nat")
    # What a NAT block must avoid is read only when one may be needed.
    pool_taken = nat_pool_taken(peer.wan_id) if routed_b and auto_nat_b else None
    near = _near(peer, cidr)
    decision = conflicts.check_subnet(
        near.spec, peer.id, cidr, routed_b, auto_nat_b, pool_taken=pool_taken, more_clashes=near.more_clashes
    )
    return SubnetCheck(cidr, routed_b, decision)


def add_subnet(peer: Peer, cidr_text: Any, routed: Any = True, auto_nat: Any = False) -> Subnet:
    changes.touched(peer.wan_id)
    lock_wan(peer.wan_id)
    checked = check(peer, cidr_text, routed, auto_nat)
    nat = checked.decision.nat_cidr
    subnet = Subnet(
        wan_id=peer.wan_id,
        peer=peer,
        cidr=str(checked.cidr),
        routed=checked.routed,
        nat_cidr=str(nat) if nat else None,
    )
    db.session.add(subnet)
    db.session.flush()
    audit.record_network(
        "create",
        subnet,
        f"peer '{peer.name}' hosts {_describe(subnet)}",
        {"after": {"cidr": subnet.cidr, "routed": subnet.routed, "nat_cidr": subnet.nat_cidr}},
    )
    return subnet


def update_subnet(peer: Peer, subnet: Subnet, *, routed: Any = None, nat: Any = None, auto_nat: Any = False) -> Subnet:
    """Auto-NAT on an existing subnet, NAT off, or routed on/off; each re-checked against the WAN."""
    changes.touched(peer.wan_id)
    lock_wan(peer.wan_id)
    before = _describe(subnet)
    cidr = ip_network(subnet.cidr)
    new_routed = subnet.routed if routed is None else as_bool(routed, "routed")
    nat_cidr = subnet.nat_cidr
    near = _near(peer, cidr, exclude_subnet_id=subnet.id)
    if as_bool(auto_nat, "auto_nat"):
        pool_taken = nat_pool_taken(peer.wan_id, exclude_subnet_id=subnet.id)
        nat_cidr = str(conflicts.auto_nat_existing(near.spec, peer.id, subnet.id, pool_taken=pool_taken))
    elif nat is not None and not as_bool(nat, "nat"):
        nat_cidr = None
    if nat_cidr is None:
        conflicts.check_subnet(
            near.spec, peer.id, cidr, new_routed, False, exclude_subnet_id=subnet.id, more_clashes=near.more_clashes
        )
    subnet.routed, subnet.nat_cidr = new_routed, nat_cidr
    after = _describe(subnet)
    if before != after:
        audit.record_network("update", subnet, f"peer '{peer.name}': {before} → {after}")
    return subnet


def delete_subnet(peer: Peer, subnet: Subnet) -> None:
    changes.touched(peer.wan_id)
    used_by = [s.name for s in peer.services if _inside(s.local_ip, subnet.cidr)]
    if used_by and not any(_inside_other(s.local_ip, peer, subnet) for s in peer.services if s.name in used_by):
        raise ConflictError(
            f"{subnet.cidr} holds the local address of published service(s) {', '.join(sorted(used_by))}; "
            "delete those services first.",
            "cidr",
        )
    audit.record_network("delete", subnet, f"peer '{peer.name}' no longer hosts {_describe(subnet)}")
    db.session.delete(subnet)


def _inside(ip: str, cidr: str) -> bool:
    addr, net = ip_address(ip), ip_network(cidr)
    return addr.version == net.version and addr in net


def _inside_other(ip: str, peer: Peer, subnet: Subnet) -> bool:
    return ip == peer.tunnel_ip or any(_inside(ip, s.cidr) for s in peer.subnets if s.id != subnet.id)
