"""The undo of a plan, as a RouterOS script (issue 16 §5): commit-confirmed without a reboot.

Before a risky deploy WireWAN uploads this script and schedules it; unless WireWAN gets back in and
removes both, it runs and puts back exactly what the plan changed: it removes what the plan added,
restores what it set, re-adds what it removed (in its place in ordered menus) and moves moved rules
back. Nothing else on the router is touched — no backup load, no reboot, no dropped tunnels of other
services. Every value is rendered through escape.render_value (user text is quoted and escaped).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.domain.routeros.desired import FILTER, NAT, RESET_DEFAULTS, WG, is_managed_comment
from app.domain.routeros.escape import quote, render_value
from app.domain.routeros.plan import FORCE_QUOTE, ActualState, Op, Plan, Row, cli_menu, parse_actual

# Menus whose row order matters (a rule re-added must go back to its place).
ORDERED_MENUS = frozenset({FILTER, NAT, "/ip/firewall/mangle", "/ip/firewall/raw"})
# Values the router computes; never written back.
READ_ONLY = frozenset(
    {
        ".id",
        "dynamic",
        "invalid",
        "running",
        "actual-mtu",
        "actual-interface",
        "rx",
        "tx",
        "last-handshake",
        "current-endpoint-address",
        "current-endpoint-port",
        "bytes",
        "packets",
        "active",
        "inactive",
        "static",
        "connect",
        "immediate-gw",
        "network",
        "builtin",
        "default-name",
        "mac-address",
        "ecmp",
        "dhcp",
    }
)
READ_ONLY_IN: Mapping[str, frozenset[str]] = {WG: frozenset({"public-key"})}


class UndoUnavailable(ValueError):
    """The plan cannot be undone by a script (a value RouterOS cannot take back, or no longer known)."""


def _words(props: Mapping[str, str]) -> str:
    return " ".join(f"{k}={render_value(v, force_quote=k in FORCE_QUOTE)}" for k, v in props.items())


def _by_id(rid: str | None) -> str:
    if not rid or not rid.startswith("*") or not rid[1:].isalnum():
        raise UndoUnavailable(f"row id {rid!r} cannot be named in a script")
    return rid


def _added_selector(op: Op) -> str:
    if is_managed_comment(op.key):
        return f"[find comment={quote(op.key)}]"
    name = op.props.get("name")
    if name is None:
        raise UndoUnavailable(f"the row {op.key} added by the plan cannot be found again")
    return f"[find name={quote(name)}]"


def _restore_props(op: Op) -> dict[str, str]:
    out = {}
    for prop in op.props:
        if prop in op.previous:
            out[prop] = op.previous[prop]
        elif prop in RESET_DEFAULTS.get(op.menu, {}):
            out[prop] = RESET_DEFAULTS[op.menu][prop]
        elif prop == "password":
            continue  # unreadable: the old password cannot be put back (the login still works with the new one)
        elif prop == "comment":
            out[prop] = ""
        else:
            raise UndoUnavailable(f"the old value of {prop} on {op.key} is not known")
    return out


def undo_lines(plan: Plan, actual: ActualState) -> list[str]:
    """RouterOS script lines that turn the router after `plan` back into `actual` (the rows the plan
    was made from). Raises UndoUnavailable when that cannot be done exactly."""
    rows = parse_actual(actual)
    removed = {(op.menu, op.id) for op in plan.ops if op.action == "remove"}
    lines: list[str] = []
    # Re-added rows of ordered menus are named by a variable, so the rows before them can be placed.
    variables: dict[tuple[str, str], str] = {}

    def next_anchor(menu: str, rid: str | None) -> str | None:
        table: Sequence[Row] = rows.get(menu, ())
        index = next((i for i, r in enumerate(table) if r.get(".id") == rid), None)
        if index is None:
            return None
        for row in table[index + 1 :]:
            key = (menu, row.get(".id", ""))
            if key in variables:
                return f"${variables[key]}"
            if (menu, row.get(".id")) not in removed:
                return _by_id(row.get(".id"))
        return None

    # Removes come last in a plan; undo them first, in ordered menus from the bottom up.
    removes = [op for op in plan.ops if op.action == "remove"]

    def position(op: Op) -> int:
        table = rows.get(op.menu, ())
        return next((i for i, r in enumerate(table) if r.get(".id") == op.id), -1)

    for op in sorted(removes, key=lambda o: (o.menu, -position(o))):
        row = next((r for r in rows.get(op.menu, ()) if r.get(".id") == op.id), None)
        if row is None:
            raise UndoUnavailable(f"the row {op.id} the plan removes is not in the rows it was planned from")
        skip = READ_ONLY | READ_ONLY_IN.get(op.menu, frozenset())
        props = {k: v for k, v in row.items() if k not in skip}
        line = f"{cli_menu(op.menu)} add {_words(props)}"
        if op.menu in ORDERED_MENUS:
            anchor = next_anchor(op.menu, op.id)
            var = f"r{len(variables) + 1}"
            variables[(op.menu, str(op.id))] = var
            line = f":local {var} [{line}{f' place-before={anchor}' if anchor else ''}]"
        lines.append(line)
    for op in reversed([o for o in plan.ops if o.action != "remove"]):
        menu = cli_menu(op.menu)
        if op.action == "add":
            lines.append(f"{menu} remove {_added_selector(op)}")
        elif op.action == "set":
            props = _restore_props(op)
            if props:
                lines.append(f"{menu} set {_by_id(op.id)} {_words(props)}")
        elif op.action == "move":
            anchor = next_anchor(op.menu, op.id)
            if anchor is None:
                raise UndoUnavailable(f"the place {op.key} was moved from cannot be named")
            lines.append(f"{menu} move {_by_id(op.id)} destination={anchor}")
    return lines


def undo_script(plan: Plan, actual: ActualState, name: str) -> str:
    """The undo as one script that also removes its own scheduler entry and itself (it runs once)."""
    body = undo_lines(plan, actual)
    tail = [
        f"/system scheduler remove [find name={quote(name)}]",
        f":log warning {quote('WireWAN rollback ran: the last deploy was undone (WireWAN did not confirm it)')}",
        f"/system script remove [find name={quote(name)}]",
    ]
    return "\n".join(["{", *body, *tail, "}"]) + "\n"
