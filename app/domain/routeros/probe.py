"""After a deploy: which tunnels are up, judged as WireGuard behaves (issue 16 §2).

WireGuard handshakes at once for a new entry or a new key, so those must show a handshake newer than
the change. Any other `set` (endpoint, allowed addresses, keepalive) keeps the established session —
WireGuard roams without a new handshake and re-keys only about every two minutes under traffic — so
such an entry, like every untouched one, is up when its last handshake is at most 180 s old.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from app.domain.routeros.desired import WG, WG_PEERS, DesiredState
from app.domain.routeros.plan import Op, parse_duration

# A live session re-keys every REKEY_AFTER_TIME (120 s) under traffic; keepalives keep it so when idle.
ALIVE_SECONDS = 180
# Router and WireWAN clocks, and the router's rounding of durations: a handshake this much "older"
# than the change still counts as newer.
CLOCK_SLACK = 5

State = Literal["up", "waiting", "down", "offline"]

# All `assess` reads of a peer row: a probe asks the router for these alone (`.proplist`), not for
# every property of every entry, each time it looks.
PROBED_PROPERTIES = ("comment", "last-handshake")


@dataclass(frozen=True)
class Expectation:
    key: str  # the entry's tag
    name: str  # the remote peer as the user named it
    endpoint: str  # host:port, or "" for a roaming / CGNAT peer
    fresh: bool  # created or re-keyed: needs a handshake newer than the change
    touched: bool  # changed by this deploy (the probe waits for touched entries only)
    endpoint_changed: bool = False


@dataclass(frozen=True)
class PeerState:
    expectation: Expectation
    state: State
    ago: int | None  # seconds since the last handshake, None: never

    @property
    def name(self) -> str:
        return self.expectation.name

    def text(self) -> str:
        """`12 s ago`, `none`; with ` (down)` or ` (offline)` unless the tunnel is up."""
        seen = f"{self.ago} s ago" if self.ago is not None else "none"
        return seen if self.state == "up" else f"{seen} ({'offline' if self.state == 'offline' else 'down'})"


@dataclass(frozen=True)
class Verdict:
    peers: tuple[PeerState, ...]
    done: bool  # nothing more to wait for

    def logs(self) -> list[str]:
        out = [f"handshake {p.name}: {p.text()}" for p in self.peers]
        for p in self.peers:
            if p.expectation.endpoint_changed and p.state == "up" and not p.expectation.fresh:
                out.append(
                    f"'{p.name}' has a new endpoint {p.expectation.endpoint}: its session carries on, and the "
                    "next rekey (about two minutes) confirms the endpoint — the status poll will show it."
                )
            if p.state == "offline":
                out.append(
                    f"'{p.name}' is offline: it has no endpoint (roaming or behind CGNAT), so it connects "
                    "when it comes online."
                )
        return out

    def warnings(self, waited: float) -> list[str]:
        out = []
        for p in self.peers:
            if p.state not in ("down", "waiting"):
                continue
            e = p.expectation
            when = f"since the change (waited {int(waited)} s)" if e.fresh else f"in the last {ALIVE_SECONDS} s"
            host, _, port = e.endpoint.rpartition(":")
            out.append(
                f"'{e.name}' has not completed a handshake {when}. Check that {e.name} is running, that its "
                f"endpoint {e.endpoint} is right, and that UDP {port} reaches {host} through any firewall or "
                "port forward in between."
            )
        return out


def expectations(desired: DesiredState, ops: Sequence[Op] = ()) -> list[Expectation]:
    """What to expect of each peer entry of `desired` after applying `ops`."""
    by_key: dict[str, list[Op]] = {}
    for op in ops:
        if op.menu == WG_PEERS:
            by_key.setdefault(op.key, []).append(op)
    # A new interface, or a new private key on ours: every session starts again.
    everyone = any(op.menu == WG and (op.action == "add" or "private-key" in op.props) for op in ops)
    out = []
    for res in desired.in_menu(WG_PEERS):
        host, port = res.props.get("endpoint-address", ""), res.props.get("endpoint-port", "0")
        endpoint = f"{host}:{port}" if host else ""
        mine = by_key.get(res.key, [])
        fresh = everyone or any(op.action == "add" or "public-key" in op.props for op in mine)
        moved = any(
            op.action == "set" and ("endpoint-address" in op.props or "endpoint-port" in op.props) for op in mine
        )
        out.append(
            Expectation(
                key=res.key,
                name=res.name or res.title or res.key,
                endpoint=endpoint,
                fresh=fresh,
                touched=bool(mine) or everyone,
                endpoint_changed=moved,
            )
        )
    return out


def assess(
    expected: Iterable[Expectation], rows: Iterable[Mapping[str, object]], elapsed: float, *, final: bool
) -> Verdict:
    """The state of every expected entry, from the router's peer rows, `elapsed` s after the change.

    Done when every touched entry with an endpoint is up (the rest are judged as they are), or when
    `final` (the wait is over)."""
    by_comment = {str(r.get("comment")): r for r in rows if r.get("comment")}
    peers = []
    for e in expected:
        row = by_comment.get(e.key)
        if row is None:
            continue
        raw = row.get("last-handshake")
        ago = parse_duration(str(raw)) if raw not in (None, "") else None
        limit = elapsed + CLOCK_SLACK if e.fresh else ALIVE_SECONDS
        up = ago is not None and ago <= limit
        if up:
            state: State = "up"
        elif not e.endpoint:
            state = "offline"
        elif e.touched and not final:
            state = "waiting"
        else:
            state = "down"
        peers.append(PeerState(e, state, ago))
    done = final or not any(p.state == "waiting" for p in peers)
    return Verdict(tuple(peers), done)
