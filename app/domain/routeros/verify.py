"""Compare a router's live rows with the desired state (drift report, no writes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from app.domain.routeros.desired import SECRET_PROPS, DesiredState
from app.domain.routeros.plan import (
    MASK,
    RowIndex,
    anchor_word,
    demotion_candidates,
    diff_props,
    misplaced,
    parse_actual,
    secrets_visible,
    stale_rows,
    with_shadowed_routes,
)

DriftKind = Literal["missing", "changed", "extra", "demotion-undone"]


@dataclass(frozen=True)
class Drift:
    kind: DriftKind
    menu: str
    key: str
    details: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "menu": self.menu, "key": self.key, "details": self.details}


def _show(prop: str, value: str | None) -> str:
    if value is None:
        return "(unset)"
    return MASK if prop in SECRET_PROPS else value


def verify(desired: DesiredState, actual: Mapping[str, Iterable[Mapping[str, object]]]) -> list[Drift]:
    """Every difference between the router and the desired state; empty when in sync.

    missing: a desired row is absent · changed: a desired row differs (properties, placement, or a
    read-only property such as the interface's public key) · extra: a tagged row that is not desired
    (or a duplicate) · demotion-undone: an unmanaged static route shadows a managed one again (a new
    one inside a managed route also shows the exact managed route over it as missing).
    """
    rows_by_menu = parse_actual(actual)
    # The same state plan() deploys: exact routes over unmanaged routes inside WireWAN's are desired.
    desired = with_shadowed_routes(desired, rows_by_menu)
    index = RowIndex(rows_by_menu)
    shown = secrets_visible(rows_by_menu)
    out: list[Drift] = []
    for res in desired.resources:
        rows = rows_by_menu.get(res.menu, [])
        found = index.find(res)
        if not found:
            out.append(Drift("missing", res.menu, res.key, f"{res.title or res.key} is not on the router"))
            continue
        row = found[0]
        want, _have, _skipped = diff_props(res, row, secrets_shown=shown)
        details = [f"{p}: {_show(p, row.get(p))} -> {_show(p, v)}" for p, v in want.items()]
        if res.tagged and row.get("comment") != res.key:
            details.append(f"tag: {row.get('comment')} -> {res.key} (old format; the next deploy re-tags it)")
        details += [f"{p}: {row[p]} (expected {v})" for p, v in res.expect.items() if p in row and row[p] != v]
        hit = misplaced(res, row, rows)
        if hit is not None:
            details.append(f"placed after {anchor_word(res.placement)} ({hit[1]})")
        if details:
            out.append(Drift("changed", res.menu, res.key, "; ".join(details)))
        for dup in found[1:]:
            out.append(Drift("extra", res.menu, res.key, f"duplicate row {dup.get('.id')}"))
    for menu, row in stale_rows(desired, rows_by_menu):
        out.append(Drift("extra", menu, row["comment"], f"tagged row {row.get('.id')} is not desired"))
    for menu, row in demotion_candidates(desired, rows_by_menu):
        out.append(
            Drift(
                "demotion-undone",
                menu,
                row.get("dst-address", ""),
                f"unmanaged static route {row.get('.id')} to {row.get('dst-address')} has distance "
                f"{row.get('distance', '1')} (< {desired.demotion.below}) and shadows WireWAN's route",
            )
        )
    return out
