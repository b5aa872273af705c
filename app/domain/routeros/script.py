"""Render the desired state as the idempotent RouterOS bootstrap script (seed steps 0–10).

Every tagged resource is found by `find where comment="<tag>"` (never a regex on user text) and then
added or set; the API user and the API services are found by name. Accept rules are added with a
guarded `place-before=[:pick $<chain>Drop 0]`. The whole script is one `{ }` block so `:local`
variables live across lines. Pasting it twice changes nothing and creates no duplicates. Removal of
stale resources is left to the API deploy (plan.py), which sees the whole router.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.domain.model import MANAGED_COMMENT_PREFIX, IPAddress, IPNetwork
from app.domain.routeros.desired import (
    ADDRESS,
    ADDRESS6,
    FILTER,
    FILTER6,
    NAT,
    ROUTE,
    ROUTE6,
    SERVICE,
    USER,
    WG,
    WG_PEERS,
    DesiredState,
    Resource,
    legacy_key,
    managed_key,
)
from app.domain.routeros.escape import quote, render_value
from app.domain.routeros.plan import BOOL_PROPS, FORCE_QUOTE, endpoint_hosts

INDENT = "    "

STEP_TITLES: Mapping[int, str] = {
    0: "Step 0: API user and API service admit the tunnel range, management CIDRs and WireWAN",
    1: "Step 1: WireGuard interface",
    2: "Steps 2-3: WireGuard peer entries (one per visible remote peer, updated in place)",
    4: "Step 4: tunnel address",
    5: "Step 5: routes to remote prefixes at distance 10",
    6: (
        "Step 6: demote unmanaged static routes that would shadow them (distance < 10 -> 11), each one"
        " inside them after a WireWAN route to its exact destination"
    ),
    7: "Step 7: firewall input accepts, before the first input drop rule",
    8: "Step 8: firewall forward accepts, before the first forward drop rule",
    9: "Step 9: NAT: netmap for NAT'd subnets, no masquerade towards the overlay",
    10: "Step 10: NAT: published services",
}


def _step(res: Resource) -> int:
    if res.menu in (USER, SERVICE):
        return 0
    if res.menu == WG:
        return 1
    if res.menu == WG_PEERS:
        return 2
    if res.menu in (ADDRESS, ADDRESS6):
        return 4
    if res.menu in (ROUTE, ROUTE6):
        return 5
    if res.menu in (FILTER, FILTER6):
        return 7 if res.props.get("chain") == "input" else 8
    if res.menu == NAT:
        return 10 if "service-" in res.key else 9
    return 11


def _word(prop: str, value: str) -> str:
    if prop in BOOL_PROPS and value in ("true", "false"):
        return f"{prop}={'yes' if value == 'true' else 'no'}"
    return f"{prop}={render_value(value, force_quote=prop in FORCE_QUOTE)}"


def _words(props: Mapping[str, str]) -> str:
    return " ".join(_word(k, v) for k, v in props.items())


def _where(res: Resource) -> str:
    if res.tagged:
        old = legacy_key(res.key)
        if old != res.key:  # a row tagged before tags named their WAN is the same row (re-tagged by set)
            return f"find where (comment={quote(res.key)} or comment={quote(old)})"
        return f"find where comment={quote(res.key)}"
    return "find where " + " ".join(f"{k}={quote(v)}" for k, v in res.match.items())


def _var(placement: str, menu: str) -> tuple[str, str]:
    """(variable name, find expression) for a placement like `before-first-drop:input`."""
    kind, _, chain = placement.partition(":")
    if kind == "before-first-drop":
        family = "6" if menu == FILTER6 else ""
        return f"{chain}Drop{family}", f"find where chain={chain} action=drop dynamic=no"
    if kind == "before-first-masquerade":
        return f"{chain}Masq", f"find where chain={chain} action=masquerade dynamic=no"
    if kind == "top":
        return f"{chain}Top", f"find where chain={chain} dynamic=no"
    raise ValueError(f"unknown placement {placement!r}")


def _set_props(res: Resource) -> dict[str, str]:
    """What the `set` branch writes: every managed property (defaults included) and write-only ones."""
    props = res.compared_props()
    props.update({k: v for k, v in res.props.items() if k in res.write_only})
    if res.tagged:
        props["comment"] = res.key
    return props


def _resource_lines(res: Resource, declared: set[str]) -> list[str]:
    where = _where(res)
    lines: list[str] = []
    set_line = f"set [{where}] {_words(_set_props(res))}"
    if not res.create:
        return [f":if ([:len [{where}]] > 0) do={{", INDENT + set_line, "}"]
    add_line = f"add {_words(res.add_props())}"
    if res.placement:
        var, expr = _var(res.placement, res.menu)
        if var not in declared:
            lines.append(f":local {var} [{expr}]")
            declared.add(var)
        add_block = [
            f"{INDENT}:if ([:len ${var}] > 0) do={{",
            f"{INDENT * 2}{add_line} place-before=[:pick ${var} 0]",
            f"{INDENT}}} else={{",
            f"{INDENT * 2}{add_line}",
            f"{INDENT}}}",
        ]
    else:
        add_block = [INDENT + add_line]
    lines.append(f":if ([:len [{where}]] = 0) do={{")
    lines += add_block
    lines.append("} else={")
    lines.append(INDENT + set_line)
    lines.append("}")
    return lines


def _demotion_lines(desired: DesiredState) -> list[str]:
    lines: list[str] = []
    menu = None
    managed = quote("^" + MANAGED_COMMENT_PREFIX)
    hosts = endpoint_hosts(desired)  # once: a router with 250 LAN routes asks for them 250 times
    covering_routes = {
        (menu_name, res.props.get("dst-address")): res
        for menu_name in {desired.demotion.menu_of(p) for p in desired.demotion.dst_prefixes}
        for res in desired.in_menu(menu_name)
    }
    for prefix in desired.demotion.dst_prefixes:
        m = desired.demotion.menu_of(prefix)
        if m != menu:
            lines.append(m)
            menu = m
        lines.append(
            f":foreach r in=[find where dst-address={prefix} dynamic=no "
            f"distance<{desired.demotion.below} !(comment~{managed})] do={{ "
            f"set $r distance={desired.demotion.to} }}"
        )
        lines += _shadowed_lines(desired, prefix, covering_routes.get((m, str(prefix))), hosts)
    return lines


def _shadowed_lines(
    desired: DesiredState, prefix: IPNetwork, covering: Resource | None, hosts: list[IPAddress]
) -> list[str]:
    """plan.shadowed_routes in RouterOS script: a static route strictly inside `prefix` wins by prefix
    length whatever its distance, so the script adds a tagged route to exactly its destination (the
    covering route's gateway and distance) and then demotes it like the exact matches above."""
    if covering is None:
        return []
    managed = quote("^" + MANAGED_COMMENT_PREFIX)
    # The tag is a constant, quoted, with the destination read from the router interpolated at its end.
    tag_prefix = quote(managed_key("route", "", desired.wan_id))
    props = {k: v for k, v in covering.props.items() if k != "dst-address"}
    add = f"add dst-address=$shadowDst {_words(props)} comment=$shadowTag"
    body = [
        f":if ([:len [find where comment=$shadowTag]] = 0) do={{ {add} }}",
        f":if ([get $r distance] < {desired.demotion.below}) do={{ set $r distance={desired.demotion.to} }}",
    ]
    # A route to a remote peer's endpoint keeps the tunnel's own packets off the tunnel: left alone.
    inside = [host for host in hosts if host in prefix]
    if inside:
        keep = " && ".join(f"!({host} in $shadowDst)" for host in inside)
        body = [f":if ({keep}) do={{", *(INDENT + line for line in body), "}"]
    return [
        f":foreach r in=[find where dst-address in {prefix} dst-address!={prefix} dynamic=no "
        f"routing-table=main !(comment~{managed})] do={{",
        f"{INDENT}:local shadowDst [get $r dst-address]",
        f'{INDENT}:local shadowTag {tag_prefix[:-1]}$shadowDst"',
        *(INDENT + line for line in body),
        "}",
    ]


def render_script(desired: DesiredState, wan_name: str, peer_name: str) -> str:
    """The bootstrap `.rsc` for one MikroTik peer. It holds the private key and the API password."""
    wan_q = quote(wan_name, allow_non_ascii=True)
    peer_q = quote(peer_name, allow_non_ascii=True)
    out = [
        "# WireWAN bootstrap script for RouterOS 7",
        f"# WAN {wan_q}, peer {peer_q}",
        "# Idempotent: every resource is found by its WAN-Overlay-Manager comment (the API user and",
        "# services by name) and added or updated; pasting it twice changes nothing.",
        "# SECRET: contains the WireGuard private key and the API password.",
    ]
    for note in desired.notes:
        out.append(f"# Note: {quote(note, allow_non_ascii=True)}")
    out.append("{")
    declared: set[str] = set()
    step_done: set[int] = set()
    menu: str | None = None

    def header(step: int) -> None:
        nonlocal menu
        out.append(f"# {STEP_TITLES[step]}")
        step_done.add(step)
        menu = None

    def emit_demotion() -> None:
        nonlocal menu
        header(6)
        out.extend(_demotion_lines(desired))
        menu = None

    for res in desired.resources:
        step = _step(res)
        if step > 6 and 6 not in step_done:
            emit_demotion()
        if step not in step_done:
            header(step)
        if res.menu != menu:
            out.append(res.menu)
            menu = res.menu
        out.extend(_resource_lines(res, declared))
    if 6 not in step_done:
        emit_demotion()
    out.append(f":log info {quote('WireWAN bootstrap applied for peer ' + peer_name, allow_non_ascii=True)}")
    out.append(f":put {quote('WireWAN bootstrap applied for peer ' + peer_name, allow_non_ascii=True)}")
    out.append("}")
    return "\n".join(out) + "\n"
