"""Published services: a local ip:port reachable across the overlay at shared_ip:shared_port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain import conflicts, validation
from app.domain.addressing import parse_address, parse_ipv4_address, parse_ipv6_address
from app.extensions import db
from app.models import Peer, Service
from app.services import audit, changes
from app.services.inputs import Collector, optional_text
from app.services.specs import wan_spec
from app.services.tx import lock_wan

SERVICE_FIELDS = ("name", "protocol", "local_ip", "local_port", "shared_ip", "shared_port", "local_ip6", "shared_ip6")


def add_service(peer: Peer, data: Mapping[str, Any]) -> Service:
    changes.touched(peer.wan_id)
    lock_wan(peer.wan_id)
    c = Collector()
    name = c(validation.validate_service_name, data.get("name"))
    protocol = c(validation.validate_protocol, data.get("protocol") or "tcp")
    local_ip = c(parse_address, data.get("local_ip"), "local_ip", "Local IP")
    local_port = c(validation.validate_port, data.get("local_port"), "local_port", "Local port")
    shared_ip_text = optional_text(data.get("shared_ip"))
    shared_ip = c(parse_ipv4_address, shared_ip_text, "shared_ip", "Shared IP") if shared_ip_text is not None else None
    shared_port_text = optional_text(data.get("shared_port"))
    shared_port = (
        c(validation.validate_port, shared_port_text, "shared_port", "Shared port") if shared_port_text else None
    )
    local_ip6_text = optional_text(data.get("local_ip6"))
    local_ip6 = c(parse_ipv6_address, local_ip6_text, "local_ip6", "Local IPv6") if local_ip6_text is not None else None
    shared_ip6_text = optional_text(data.get("shared_ip6"))
    shared_ip6 = (
        c(parse_ipv6_address, shared_ip6_text, "shared_ip6", "Shared IPv6") if shared_ip6_text is not None else None
    )
    c.check()
    decision = conflicts.check_service(
        wan_spec(peer.wan),
        peer.id,
        protocol,
        local_ip,
        local_port,
        shared_ip,
        shared_port,
        name=name,
        local_ip6=local_ip6,
        shared_ip6=shared_ip6,
    )
    service = Service(
        wan_id=peer.wan_id,
        peer=peer,
        name=name,
        protocol=protocol,
        local_ip=str(local_ip),
        local_port=local_port,
        shared_ip=str(decision.shared_ip),
        shared_port=decision.shared_port,
        local_ip6=str(local_ip6) if local_ip6 is not None else None,
        shared_ip6=str(decision.shared_ip6) if decision.shared_ip6 is not None else None,
    )
    db.session.add(service)
    db.session.flush()
    audit.record_network(
        "create",
        service,
        f"peer '{peer.name}' publishes {name} {protocol} {local_ip}:{local_port} "
        f"as {service.shared_ip}:{service.shared_port}"
        + (f" and [{service.shared_ip6}]:{service.shared_port}" if service.shared_ip6 else ""),
    )
    return service


def delete_service(peer: Peer, service: Service) -> None:
    changes.touched(peer.wan_id)
    audit.record_network("delete", service, f"peer '{peer.name}' stopped publishing {service.name}")
    db.session.delete(service)
