"""probe.assess: new or re-keyed entries need a handshake newer than the change; others ≤ 180 s."""

from __future__ import annotations

from app.domain.routeros.plan import Op
from app.domain.routeros.probe import assess, expectations

from .fixtures import desired_x

WG_PEERS = "/interface/wireguard/peers"


def keys() -> tuple[str, str]:
    a, b = (r.key for r in desired_x().in_menu(WG_PEERS))
    return a, b


def test_rekeyed_needs_a_fresh_handshake_moved_does_not() -> None:
    a, b = keys()
    ops = [
        Op("set", WG_PEERS, "*1", {"public-key": "k"}, a),
        Op("set", WG_PEERS, "*2", {"endpoint-address": "203.0.113.9"}, b),
    ]
    exp = {e.key: e for e in expectations(desired_x(), ops)}
    assert exp[a].fresh and exp[a].touched and not exp[b].fresh and exp[b].endpoint_changed
    rows = [{"comment": a, "last-handshake": "1m30s"}, {"comment": b, "last-handshake": "1m30s"}]
    v = assess(exp.values(), rows, elapsed=2, final=False)
    states = {p.expectation.key: p.state for p in v.peers}
    assert states[a] == "waiting" and states[b] == "up" and not v.done
    v = assess(exp.values(), rows, elapsed=2, final=True)
    assert v.done and [w.split(" has")[0] for w in v.warnings(2)] == ["'vps-a'"]


def test_a_new_private_key_restarts_every_session_and_roaming_peers_offline_are_no_warning() -> None:
    a, b = keys()
    ops = [Op("set", "/interface/wireguard", "*9", {"private-key": "x"}, "iface")]
    exp = expectations(desired_x(), ops)
    assert all(e.fresh for e in exp)
    no_endpoint = [e for e in exp if not e.endpoint]
    v = assess(exp, [{"comment": e.key} for e in exp], elapsed=1, final=True)
    assert {p.state for p in v.peers if not p.expectation.endpoint} <= {"offline"}
    assert len(v.warnings(1)) == len(exp) - len(no_endpoint)
