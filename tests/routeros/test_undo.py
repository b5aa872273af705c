"""The undo script of a plan (commit-confirmed without a reboot): run by the simulator's script
executor after the plan was applied over the API, it returns the router exactly to its dump from
before — for a first deploy, a change with sets and removes, and moved rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.domain.routeros.plan import plan
from app.domain.routeros.undo import undo_script
from tests.domain.routeros.fixtures import mesh_wan, remote_a
from tests.routeros.test_script_and_plan_agree import MENUS, PASSWORD, desired_x, session, wan_routing_the_existing_lan
from tests.routeros_sim.server import SimRouter


def apply_and_undo(sim: SimRouter, desired) -> tuple[int, list[str]]:
    with session(sim) as s:
        actual = s.read_state(MENUS)
        p = plan(desired, actual)
        script = undo_script(p, actual, "wirewan-rollback")
        s.apply(p)
    return len(p.ops), sim.run_script(script)


@pytest.mark.parametrize("preset", ["defconf", "existing"])
def test_the_undo_of_a_first_deploy_restores_the_dump(preset: str) -> None:
    with SimRouter(password=PASSWORD, preset=preset) as sim:
        before = sim.normalized_dump()
        wan = wan_routing_the_existing_lan() if preset == "existing" else None
        ops, _ = apply_and_undo(sim, desired_x(wan))
        assert ops > 10
        assert sim.normalized_dump() == before
        assert sim.state.reboots == 0


def test_the_undo_of_a_change_puts_back_sets_removes_and_moves() -> None:
    with SimRouter(password=PASSWORD, preset="defconf") as sim:
        with session(sim) as s:
            s.apply(plan(desired_x(), s.read_state(MENUS)))
        # Someone moved our accept rule below the drop and disabled another; the WAN changes too:
        # a remote peer is gone (removes), another moved (set).
        rules = sim.rows("/ip/firewall/filter")
        ours = next(r for r in rules if str(r.get("comment", "")).endswith("allow-input-1"))
        last = rules[-1][".id"]
        with session(sim) as s:
            s.call("/ip/firewall/filter/move", numbers=ours[".id"], destination=last)
        before = sim.normalized_dump()
        wan = mesh_wan()
        changed = replace(wan, peers=(wan.peers[0], replace(remote_a(), endpoint_host="203.0.113.99")))
        ops, _ = apply_and_undo(sim, desired_x(changed))
        assert ops >= 3
        assert sim.normalized_dump() == before
