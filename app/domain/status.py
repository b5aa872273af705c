"""Peer status: what a router or a peer's own report says, and the rules that turn it into a status.

Rules (DESIGN.md §7, API.md "PeerStatus"):

- A peer is online when its latest handshake, as seen by any router of its WAN or by its own report,
  is at most ONLINE_WINDOW (180 s) old. WireGuard renews a session's handshake about every two
  minutes while there is traffic (or a keepalive), so 180 s of silence means the tunnel is down.
- A peer's status is the freshest observation: the one with the most recent handshake. A router that
  has never seen a handshake only counts when nothing better is known.
- rx/tx are counted from the overlay's side: rx is what the overlay received from the peer (a
  router's `rx` for its entry), tx what it sent to it.
- Traffic is the sum of what every source counted. Counters restart when a router reboots or an
  interface is re-created: a counter lower than the one before is a restart, so the whole new value
  is new traffic and the total never goes backwards (never negative traffic).
- `wg show <iface> dump` from a peer is parsed strictly: a fixed number of tab-separated fields, keys
  that are WireGuard keys, numbers that are numbers, a size limit. Anything else is refused whole.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ONLINE_WINDOW = timedelta(seconds=180)
MAX_DUMP_BYTES = 256 * 1024
MAX_DUMP_PEERS = 2000
_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?")
_ENDPOINT = re.compile(r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}):[0-9]{1,5}")
_INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.=+-]{1,15}")
# Counters are 64-bit on RouterOS and Linux; stored in a signed BIGINT, so capped at its maximum.
MAX_COUNTER = 2**63 - 1


@dataclass(frozen=True)
class Observation:
    """What one source saw of one peer at one moment."""

    public_key: str
    last_handshake_at: datetime | None
    rx_bytes: int
    tx_bytes: int
    endpoint: str | None


@dataclass(frozen=True)
class Status:
    online: bool | None
    last_handshake_at: datetime | None
    endpoint: str | None
    source: str | None
    observed_at: datetime | None


def is_online(last_handshake_at: datetime | None, now: datetime) -> bool:
    """Online: a handshake at most ONLINE_WINDOW ago."""
    return last_handshake_at is not None and now - last_handshake_at <= ONLINE_WINDOW


def parse_duration(text: str) -> float | None:
    """Seconds in a RouterOS duration (`42s`, `1m2s`, `1d2h3m`, `500ms`); None if unparsable."""
    text = text.strip()
    if not text:
        return None
    if text.isdigit():
        return float(text)
    match = _DURATION.fullmatch(text)
    if match is None:
        return None
    w, d, h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    return w * 604800 + d * 86400 + h * 3600 + m * 60 + s + ms / 1000


def _counter(value: object) -> int:
    text = str(value if value is not None else "0").strip()
    if not text.isdigit():
        return 0
    return min(int(text), MAX_COUNTER)


def router_observations(rows: Iterable[Mapping[str, object]], now: datetime) -> list[Observation]:
    """A router's /interface/wireguard/peers rows as observations (one per row with a public key)."""
    out: list[Observation] = []
    for row in rows:
        key = str(row.get("public-key") or "")
        if not key:
            continue
        ago = parse_duration(str(row.get("last-handshake") or ""))
        address = str(row.get("current-endpoint-address") or "")
        port = str(row.get("current-endpoint-port") or "")
        endpoint = None
        if address and port and port != "0":
            endpoint = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
        out.append(
            Observation(
                public_key=key,
                last_handshake_at=now - timedelta(seconds=ago) if ago is not None else None,
                rx_bytes=_counter(row.get("rx")),
                tx_bytes=_counter(row.get("tx")),
                endpoint=endpoint,
            )
        )
    return out


def counter_delta(previous: int | None, current: int) -> int:
    """New traffic since the previous reading; a lower reading is a restarted counter."""
    if previous is None:
        return current
    return current - previous if current >= previous else current


@dataclass(frozen=True)
class SourceReading:
    """The latest reading one source gave of one peer."""

    source: str
    last_handshake_at: datetime | None
    endpoint: str | None
    observed_at: datetime


def freshest(readings: Iterable[SourceReading], now: datetime) -> Status:
    """The peer's status from every source's latest reading: the most recent handshake wins; with no
    handshake anywhere, the most recent reading says "offline" (never unknown: someone looked)."""
    best: SourceReading | None = None
    for r in readings:
        if best is None:
            best = r
            continue
        mine, theirs = r.last_handshake_at, best.last_handshake_at
        if (mine is not None and (theirs is None or mine > theirs)) or (
            mine is None and theirs is None and r.observed_at > best.observed_at
        ):
            best = r
    if best is None:
        return Status(None, None, None, None, None)
    return Status(
        online=is_online(best.last_handshake_at, now),
        last_handshake_at=best.last_handshake_at,
        endpoint=best.endpoint,
        source=best.source,
        observed_at=best.observed_at,
    )


def transition(before: bool | None, after: bool | None) -> str | None:
    """The event a change of online state gives: only a real change between up and down counts."""
    if before is True and after is False:
        return "peer.down"
    if before is False and after is True:
        return "peer.up"
    return None


# ---------------------------------------------------------------- `wg show <iface> dump`


class DumpError(ValueError):
    """The report is not a well-formed `wg show <iface> dump`; nothing of it is used."""


@dataclass(frozen=True)
class DumpPeer:
    public_key: str
    endpoint: str | None
    allowed_ips: tuple[str, ...]
    latest_handshake: int  # epoch seconds, 0 = never
    rx_bytes: int
    tx_bytes: int


@dataclass(frozen=True)
class Dump:
    public_key: str
    listen_port: int
    peers: tuple[DumpPeer, ...]


def _key(text: str, what: str) -> str:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DumpError(f"{what} is not a WireGuard key.") from exc
    if len(raw) != 32 or len(text) != 44:
        raise DumpError(f"{what} is not a WireGuard key.")
    return text


def _number(text: str, what: str, limit: int = MAX_COUNTER) -> int:
    if not text.isdigit() or len(text) > 20 or int(text) > limit:
        raise DumpError(f"{what} is not a number.")
    return int(text)


def parse_dump(text: str) -> Dump:
    """Parse `wg show <iface> dump` strictly (the interface line, then one line per peer).

    The interface line's private key is checked for shape and dropped at once: it is never kept.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DUMP_BYTES:
        raise DumpError(f"The report is larger than {MAX_DUMP_BYTES // 1024} KiB.")
    if any(ch not in "\t\n" and (ord(ch) < 0x20 or ord(ch) > 0x7E) for ch in text):
        raise DumpError("The report holds characters `wg show dump` never prints.")
    lines = text.rstrip("\n").split("\n") if text.strip() else []
    if not lines:
        raise DumpError("The report is empty.")
    if len(lines) - 1 > MAX_DUMP_PEERS:
        raise DumpError(f"The report lists more than {MAX_DUMP_PEERS} peers.")
    head = lines[0].split("\t")
    if len(head) != 4:
        raise DumpError("Line 1 is not an interface line (private key, public key, port, fwmark).")
    if head[0] != "(none)":
        _key(head[0], "Line 1's private key")
    public = _key(head[1], "Line 1's public key")
    port = _number(head[2], "Line 1's listen port", 65535)
    if head[3] != "off":
        _number(head[3], "Line 1's fwmark", 2**32 - 1)
    peers: list[DumpPeer] = []
    seen: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        f = line.split("\t")
        if len(f) != 8:
            raise DumpError(f"Line {number} does not have the 8 fields of a peer line.")
        key = _key(f[0], f"Line {number}'s public key")
        if key in seen:
            raise DumpError(f"Line {number} repeats a peer.")
        seen.add(key)
        if f[1] != "(none)":
            _key(f[1], f"Line {number}'s preshared key")
        endpoint = None if f[2] == "(none)" else f[2]
        if endpoint is not None and not _ENDPOINT.fullmatch(endpoint):
            raise DumpError(f"Line {number}'s endpoint is not an address:port.")
        allowed = () if f[3] == "(none)" else tuple(f[3].split(","))
        if any(not re.fullmatch(r"[0-9A-Fa-f:.]{2,45}/\d{1,3}", a) for a in allowed):
            raise DumpError(f"Line {number}'s allowed IPs are not prefixes.")
        handshake = _number(f[4], f"Line {number}'s latest handshake", 2**40)
        rx = _number(f[5], f"Line {number}'s rx")
        tx = _number(f[6], f"Line {number}'s tx")
        if f[7] != "off":
            _number(f[7], f"Line {number}'s keepalive", 65535)
        peers.append(DumpPeer(key, endpoint, allowed, handshake, rx, tx))
    return Dump(public, port, tuple(peers))


def dump_observation(dump: Dump, own_public_key: str, known_keys: Iterable[str]) -> Observation:
    """A peer's own report as an observation of itself. It may only describe its own interface and
    peers of its WAN: another public key, or a peer the WAN does not have, refuses the whole report."""
    if dump.public_key != own_public_key:
        raise DumpError("The report is of another interface (its public key is not this peer's).")
    known = set(known_keys)
    for p in dump.peers:
        if p.public_key not in known:
            raise DumpError("The report lists a peer that is not in this peer's WAN.")
    latest = max((p.latest_handshake for p in dump.peers), default=0)
    return Observation(
        public_key=own_public_key,
        last_handshake_at=datetime.fromtimestamp(latest, UTC).replace(tzinfo=None) if latest else None,
        # The overlay's side, as a router counts it: what the peer sent is what the overlay received.
        rx_bytes=sum(p.tx_bytes for p in dump.peers),
        tx_bytes=sum(p.rx_bytes for p in dump.peers),
        endpoint=None,
    )
