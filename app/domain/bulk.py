"""Bulk peer import from CSV (`name,kind,endpoint,lans`, LANs `;`-separated): all or nothing.

:func:`plan_import` checks every row with the same validators and conflict rules as the peer form
and the subnet form (without Auto-NAT: an overlap is refused), against the WAN and against the rows
above it, and answers the peers to create with their tunnel IPs. The first problem raises
:class:`CsvError`, naming the line (as an editor counts them, the header being line 1) and the field.
Checks are O(n log n) over the rows and the WAN, so a 10,000-row table is planned in about a second.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import Any, ClassVar

from app.domain import conflicts, validation
from app.domain.addressing import parse_network_strict, usable_bounds
from app.domain.errors import DomainError
from app.domain.model import IPNetwork, PeerKind, PeerSpec, SubnetSpec, WanSpec

HEADER = ("name", "kind", "endpoint", "lans")
MAX_ROWS = 10_000
MAX_BYTES = 4 * 1024 * 1024
MAX_LANS = 64


class CsvError(DomainError):
    """A row (or the table) cannot be imported; nothing is (HTTP 422 with the line)."""

    default_code: ClassVar[str] = "invalid"

    def __init__(self, message: str, field: str | None, line: int, code: str | None = None) -> None:
        super().__init__(f"Line {line}: {message}" if line else message, field, code=code)
        self.line = line

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "line": self.line}


@dataclass(frozen=True)
class PlannedPeer:
    line: int
    name: str
    kind: PeerKind
    tunnel_ip: IPv4Address
    endpoint: tuple[str, int] | None
    lans: tuple[IPNetwork, ...]


@dataclass(frozen=True)
class _Row:
    line: int
    name: str
    kind: PeerKind
    endpoint: tuple[str, int] | None
    lans: tuple[IPNetwork, ...]


def _at(line: int, exc: DomainError) -> CsvError:
    return CsvError(exc.message, exc.field, line, code=exc.code)


def parse_rows(text: str, listen_port: int) -> list[_Row]:
    """The rows, each field checked on its own (the form's validators)."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise CsvError(f"The table is larger than {MAX_BYTES // (1024 * 1024)} MiB; split it.", None, 0)
    if "\x00" in text:
        raise CsvError("The table contains a NUL byte; it is not a text CSV file.", None, 0)
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    rows: list[_Row] = []
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip().lower() for h in header) != HEADER:
            raise CsvError(f"The first line must be the header {','.join(HEADER)}.", None, 1)
        end = reader.line_num
        for record in reader:
            # A quoted field may span lines: a record's line is the one it starts on.
            line, end = end + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue  # blank lines are allowed (a trailing newline, spacing)
            if len(rows) >= MAX_ROWS:
                raise CsvError(f"More than {MAX_ROWS} peers; split the table.", None, line)
            if len(record) != len(HEADER):
                raise CsvError(
                    f"expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(record)}; quote a field "
                    "that contains a comma.",
                    None,
                    line,
                )
            name_text, kind_text, endpoint_text, lans_text = record
            try:
                name = validation.validate_peer_name(name_text.strip())
                kind = validation.validate_kind(kind_text.strip().lower())
                endpoint = validation.parse_endpoint(endpoint_text, listen_port)
                if endpoint is not None:
                    validation.check_endpoint_port(endpoint[1], listen_port, False)
                parts = [p.strip() for p in lans_text.split(";") if p.strip()]
                if len(parts) > MAX_LANS:
                    raise CsvError(f"more than {MAX_LANS} LANs on one peer.", "lans", line)
                lans = tuple(parse_network_strict(p, "lans", "LAN") for p in parts)
            except CsvError:
                raise
            except DomainError as exc:
                raise _at(line, exc) from None
            rows.append(_Row(line, name, kind, endpoint, lans))
    except csv.Error as exc:
        raise CsvError(f"the CSV cannot be read ({exc}).", None, reader.line_num or 1) from None
    if not rows:
        raise CsvError("The table has no peers below its header.", None, 0)
    return rows


def plan_import(wan: WanSpec, text: str) -> list[PlannedPeer]:
    """Every row checked against the WAN and the rows above it; the peers to create, in order."""
    rows = parse_rows(text, wan.listen_port)

    # Names: unique within the table and the WAN.
    taken = {p.name: p for p in wan.peers}
    seen: dict[str, int] = {}
    for row in rows:
        if row.name in taken:
            raise CsvError(f"WAN '{wan.name}' already has a peer named '{row.name}'.", "name", row.line, "conflict")
        if row.name in seen:
            raise CsvError(f"'{row.name}' is also on line {seen[row.name]}.", "name", row.line, "conflict")
        seen[row.name] = row.line

    # LANs: the subnet form's rules. Against the WAN ranges and within a row, as the form checks them.
    base = WanSpec(
        id=wan.id, name=wan.name, tunnel_cidr=wan.tunnel_cidr, services_cidr=wan.services_cidr,
        nat_pool_cidr=wan.nat_pool_cidr,
    )  # fmt: skip
    for row in rows:
        probe = _probe(row, ())
        for i, lan in enumerate(row.lans):
            try:
                conflicts.check_subnet(replace(base, peers=(probe,)), probe.id, lan, True, False, field="lans")
            except DomainError as exc:
                raise _at(row.line, exc) from None
            probe = replace(probe, subnets=(*probe.subnets, SubnetSpec(id=-i - 1, cidr=lan)))
    # Routed overlaps with other peers (their real prefixes and NAT translations) and other rows: one
    # sweep; the first offending line is reported with the form's message.
    prefixes: list[IPNetwork] = []
    owners: list[int] = []  # a line number, or 0 for the WAN's existing peers
    for p in wan.peers:
        for s in p.subnets:
            if s.routed:
                prefixes.append(s.cidr)
                owners.append(0)
                if s.nat_cidr is not None:
                    prefixes.append(s.nat_cidr)
                    owners.append(0)
    for row in rows:
        for lan in row.lans:
            prefixes.append(lan)
            owners.append(row.line)
    bad_lines = [
        max(owners[i], owners[j]) for i, j in conflicts.overlapping_pairs(prefixes) if (owners[i] or owners[j])
    ]
    bad_lines = [line for line in bad_lines if line]
    if bad_lines:
        _explain_overlap(wan, rows, min(bad_lines))

    # Tunnel IPs: the lowest free addresses, in table order.
    first, last = usable_bounds(wan.tunnel_cidr)
    used = {int(p.tunnel_ip) for p in wan.peers}
    out: list[PlannedPeer] = []
    candidate = first
    for row in rows:
        while candidate in used:
            candidate += 1
        if candidate > last:
            raise CsvError(
                f"the tunnel range {wan.tunnel_cidr} has no free address left for '{row.name}'; widen it in the "
                "WAN settings or import fewer peers.",
                "name",
                row.line,
                "range_full",
            )
        out.append(PlannedPeer(row.line, row.name, row.kind, IPv4Address(candidate), row.endpoint, row.lans))
        candidate += 1
    return out


def _probe(row: _Row, subnets: tuple[SubnetSpec, ...]) -> PeerSpec:
    """A row as a peer of the WAN, for the conflict rules (negative id: not a stored peer)."""
    return PeerSpec(
        id=-row.line, uuid="", name=row.name, kind=row.kind, tunnel_ip=IPv4Address(0), listen_port=0, public_key="",
        subnets=subnets,
    )  # fmt: skip


def _explain_overlap(wan: WanSpec, rows: list[_Row], line: int) -> None:
    """Raise the subnet form's own refusal for the first overlapping LAN of `line`."""
    earlier = [
        _probe(r, tuple(SubnetSpec(id=-(r.line * 1000 + i), cidr=lan) for i, lan in enumerate(r.lans)))
        for r in rows
        if r.line < line
    ]
    row = next(r for r in rows if r.line == line)
    spec = WanSpec(
        id=wan.id, name=wan.name, tunnel_cidr=wan.tunnel_cidr, services_cidr=wan.services_cidr,
        nat_pool_cidr=wan.nat_pool_cidr, peers=(*wan.peers, *earlier),
    )  # fmt: skip
    for lan in row.lans:
        try:
            conflicts.check_subnet(spec, -line, lan, True, False, field="lans")
        except DomainError as exc:
            raise _at(line, exc) from None
    raise CsvError("a LAN overlaps another peer's routed LAN.", "lans", line, "conflict")  # pragma: no cover
