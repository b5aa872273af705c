"""A router that misbehaves: cut connections at every point of a deploy, refused logins, silence,
traps mid-plan, and a change that locks WireWAN out (commit-confirmed rollback).

Every deploy here runs in-process (`run_direct`): what matters is the job function against a real TCP
simulator, not the queue. A failed job must show the router's problem in words, and the next deploy
must converge: in sync, no duplicate or orphaned tagged rows, no rollback left armed.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any

import pytest

from tests.jobs.conftest import rollback_leftovers, tagged_rows
from tests.routeros_sim.faults import Faults
from tests.routeros_sim.server import SimRouter

AUTO = {"auto": True}  # an auto-deploy needs no approved plan: the fault tests are about the router


def assert_clear_failure(job: dict[str, Any], *needles: str) -> None:
    assert job["status"] == "failed", job
    error = job["error"] or ""
    assert "Traceback" not in error and "Internal error" not in error, error
    for needle in needles:
        assert needle in error, (needle, error)


def assert_converged(run_direct: Any, sim: SimRouter, router: int, reference: dict[str, Any]) -> None:
    verify = run_direct("verify", router)
    assert verify["status"] == "succeeded" and verify["result"]["in_sync"], verify
    tags = tagged_rows(sim)
    assert [t for t, n in Counter(tags).items() if n > 1] == [], "duplicate tagged rows"
    assert set(tags) == set(reference["tags"]), "orphaned or missing tagged rows"
    assert rollback_leftovers(sim) == []
    assert sim.normalized_dump() == reference["dump"]


def first_deploy(run_direct: Any, sim: SimRouter, router: int) -> dict[str, Any]:
    """Deploy once on the pristine router and remember what every sentence was and where it went."""
    sim.reset_counters()
    done = run_direct("deploy", router, AUTO)
    assert done["status"] == "succeeded", done
    return {
        "commands": [(c.connection, c.command) for c in sim.commands],
        "tags": tagged_rows(sim),
        "dump": sim.normalized_dump(),
    }


def test_a_deploy_cut_after_any_sentence_fails_clearly_and_the_next_converges(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: dict[str, Any]
) -> None:
    router = router_wan["router"]["id"]
    pristine = sim.dump()
    reference = first_deploy(run_direct, sim, router)
    sent = reference["commands"]
    connections = [n for n, _ in Counter(c for c, _ in sent).items()]
    # The deploy's own session, then the confirm session: it disarms the rollback, then probes.
    assert len(connections) == 2 and sent[0][1] == "/login"
    assert sent[-1] == (2, "/interface/wireguard/peers/print")
    assert len(sent) >= 25, sent

    started = time.monotonic()
    # k = how many sentences the router answers before it cuts the connection that carries
    # sentence k+1 (sent in order across the two sessions; cutting "after" the last one cuts nothing).
    for k in range(1, len(sent)):
        sim.load(pristine)
        sim.reset_counters()
        connection, command = sent[k]
        local = sum(1 for c, _ in sent[:k] if c == connection)  # sentences that connection answers
        for _ in range(connection - 1):
            sim.queue_connection_faults(Faults())
        sim.queue_connection_faults(Faults(close_after_sentences=local))

        cut = run_direct("deploy", router, AUTO)
        assert [(c.connection, c.command) for c in sim.commands] == sent[:k], f"k={k}: not the reference deploy"
        assert sim.counters.connections == connection, f"k={k}: a queued fault was not used"
        if connection == 2 and command == "/interface/wireguard/peers/print":
            # The probe is advice: the change is applied and confirmed, so the job succeeds and warns.
            assert cut["status"] == "succeeded", (k, cut)
            assert any("handshake probe could not read the router" in w for w in cut["warnings"]), cut
        elif connection == 2:
            assert_clear_failure(
                cut, "cannot reach the router any more", "restores the previous configuration within 60 s"
            )
        elif command == "/login":
            raise AssertionError("the deploy's own login is sentence 1; k starts at 1")
        else:
            assert_clear_failure(cut, f"was lost during {command}", "closed the connection")
            armed = any(cmd == "/system/scheduler/add" for _, cmd in sent[:k])
            assert ("restores the previous configuration" in cut["error"]) == armed, (k, cut["error"])

        again = run_direct("deploy", router, AUTO)
        assert again["status"] == "succeeded", (k, again)
        assert_converged(run_direct, sim, router, reference)
    elapsed = time.monotonic() - started
    print(f"\nfirst deploy: {len(sent)} sentences over {len(connections)} connections; k-loop {elapsed:.1f} s")


def test_wrong_password_gives_the_seed_two_causes(api: Any, run_direct: Any, sim: SimRouter, router_wan: Any) -> None:
    router = router_wan["router"]["id"]
    assert api.patch(f"/api/peers/{router}", json={"mikrotik": {"password": "not-it"}}).status_code == 200
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, "invalid user name or password", "does not match", "allowed-address")
    assert sim.counters.writes == 0


def test_a_disallowed_source_address_gives_the_same_message(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    router = router_wan["router"]["id"]
    with sim.state.lock:
        user = next(u for u in sim.state.table("/user") if u["name"] == "admin")
        user["address"] = "10.99.0.0/24"  # the right password, the wrong place to come from
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, "invalid user name or password", "does not match", "allowed-address")
    assert sim.counters.writes == 0 and sim.counters.connections == 1


def test_connection_refused(api: Any, run_direct: Any, sim: SimRouter, router_wan: Any) -> None:
    router = router_wan["router"]["id"]
    # A bound socket that does not listen: the kernel refuses connections to its port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        assert api.patch(f"/api/peers/{router}", json={"mikrotik": {"port": port}}).status_code == 200
        done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, f"refused the connection on port {port}", "api service")


def test_the_router_closing_the_api_connection_at_once(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    router = router_wan["router"]["id"]
    sim.queue_connection_faults(Faults(refuse_connections=True))
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, f"127.0.0.1:{sim.port}", "closed the connection")
    assert sim.counters.refused == 1 and sim.counters.sentences == 0


def test_a_router_that_stops_answering_times_out(
    app: Any, api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    router = router_wan["router"]["id"]
    app.config["WIREWAN_ROUTER_COMMAND_TIMEOUT"] = 1
    sim.faults.delay_on("/ip/route/print", 1.6, times=1)
    done = run_direct("deploy", router, AUTO)  # (without the 1 s timeout it would succeed after 1.6 s)
    assert_clear_failure(done, "stopped answering during /ip/route/print", "no reply in 1 s")
    assert sim.counters.writes == 0
    again = run_direct("deploy", router, AUTO)
    assert again["status"] == "succeeded", again


@pytest.mark.parametrize(
    "command", ["/interface/wireguard/add", "/interface/wireguard/peers/add", "/ip/firewall/filter/add"]
)
def test_a_write_the_router_did_but_never_confirmed_is_not_duplicated(
    app: Any, api: Any, run_direct: Any, sim: SimRouter, router_wan: Any, command: str
) -> None:
    """The worst cut: the router executes the add, but its answer never arrives (WireWAN timed out
    and hung up first). The next deploy must find the row by its tag, not add a second one."""
    router = router_wan["router"]["id"]
    pristine = sim.dump()
    reference = first_deploy(run_direct, sim, router)
    sim.load(pristine)

    app.config["WIREWAN_ROUTER_COMMAND_TIMEOUT"] = 1
    sim.faults.delay_on(command, 1.4, times=1)
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, f"stopped answering during {command}")
    deadline = time.monotonic() + 5
    while sim.active_connections and time.monotonic() < deadline:  # the router finishes the add
        time.sleep(0.02)
    menu = command.rsplit("/", 1)[0]
    assert sum(1 for m, _ in tagged_rows(sim) if m == menu) == 1, "the add did happen on the router"

    again = run_direct("deploy", router, AUTO)
    assert again["status"] == "succeeded", again
    assert_converged(run_direct, sim, router, reference)


def test_a_login_that_never_answers_times_out(
    app: Any, api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    router = router_wan["router"]["id"]
    app.config["WIREWAN_ROUTER_CONNECT_TIMEOUT"] = 1
    sim.queue_connection_faults(Faults(reply_delay=1.6))
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, "timed out after 1 s", "management host")


def test_a_trap_mid_plan_names_the_command_and_the_next_deploy_converges(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    router = router_wan["router"]["id"]
    pristine = sim.dump()
    reference = first_deploy(run_direct, sim, router)
    sim.load(pristine)

    sim.faults.trap_on("/ip/route/add", "failure: gateway unreachable", times=1)
    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(
        done, "/ip/route/add", "failure: gateway unreachable", "restores the previous configuration within 60 s"
    )
    # What came before the trap stayed (the rollback is armed); nothing after it was sent.
    assert any(menu == "/interface/wireguard" for menu, _ in tagged_rows(sim))
    assert not any(menu == "/ip/firewall/filter" for menu, _ in tagged_rows(sim))
    assert rollback_leftovers(sim)

    again = run_direct("deploy", router, AUTO)
    assert again["status"] == "succeeded", again
    assert_converged(run_direct, sim, router, reference)


# ---------------------------------------------------------------- commit-confirmed


@pytest.mark.parametrize("lockout", ["refused", "login-cut", "disarm-trap"])
def test_a_deploy_that_locks_wirewan_out_rolls_itself_back(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: Any, lockout: str
) -> None:
    router = router_wan["router"]["id"]
    before = sim.normalized_dump()
    sim.queue_connection_faults(Faults())  # the deploy's own session works
    if lockout == "refused":  # after the change the api service turns WireWAN away
        sim.queue_connection_faults(Faults(refuse_connections=True))
    elif lockout == "login-cut":  # ... or the connection dies at the login
        sim.queue_connection_faults(Faults(close_after_sentences=0))
    else:  # ... or WireWAN gets in but cannot remove the rollback
        sim.queue_connection_faults(Faults().trap_on("/system/scheduler/remove", "not enough permissions (9)"))

    done = run_direct("deploy", router, AUTO)
    assert_clear_failure(done, "cannot reach the router any more", "rollback armed before the change", "within 60 s")
    applied = sim.normalized_dump()
    assert applied != before and tagged_rows(sim)
    assert rollback_leftovers(sim) == ["scheduler wirewan-rollback", "script wirewan-rollback"]
    assert any("an undo of these changes runs in 60 s" in line and "no reboot" in line for line in done["log"])

    sim.advance(59)
    assert sim.normalized_dump() == applied, "the rollback fired early"
    sim.advance(1)
    # The undo script ran: exactly the pre-deploy router, no reboot, nothing of the rollback left.
    assert sim.state.reboots == 0
    assert sim.normalized_dump() == before
    assert rollback_leftovers(sim) == []
    assert ("warning", "WireWAN rollback ran: the last deploy was undone (WireWAN did not confirm it)") in sim.logs

    again = run_direct("deploy", router, AUTO)
    assert again["status"] == "succeeded", again
    assert rollback_leftovers(sim) == []
    assert run_direct("verify", router)["result"]["in_sync"] is True


def test_a_leftover_rollback_is_disarmed_even_when_nothing_is_left_to_change(
    api: Any, run_direct: Any, sim: SimRouter, router_wan: Any
) -> None:
    """The confirm session fails after a complete apply: the router already matches, so the next
    deploy has nothing to write — but it must still remove the armed rollback, or the router
    restores its pre-WireWAN configuration a minute later."""
    router = router_wan["router"]["id"]
    sim.queue_connection_faults(Faults())
    sim.queue_connection_faults(Faults(refuse_connections=True))
    assert run_direct("deploy", router, AUTO)["status"] == "failed"
    assert rollback_leftovers(sim)
    applied = sim.normalized_dump()

    again = run_direct("deploy", router, AUTO)
    assert again["status"] == "succeeded" and again["result"]["plan_writes"] == 0, again
    assert rollback_leftovers(sim) == []
    assert any("left armed by an earlier job" in line for line in again["log"])
    sim.advance(3600)
    assert sim.state.reboots == 0
    gone = ("/system/script", "/system/scheduler")  # the only things the redeploy removed
    assert {m: r for m, r in sim.normalized_dump().items() if m not in gone} == {
        m: r for m, r in applied.items() if m not in gone
    }

    # Once a deploy finished cleanly, a no-change redeploy reads nothing extra.
    sim.reset_counters()
    assert run_direct("deploy", router, AUTO)["status"] == "succeeded"
    assert sim.counters.writes == 0 and "/system/scheduler/print" not in [c.command for c in sim.commands]
