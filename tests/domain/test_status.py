"""Status rules (app/domain/status.py): the online window, freshest observation, counters that
restart, and the strict `wg show dump` parser."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.domain.keys import generate_keypair
from app.domain.status import (
    MAX_DUMP_BYTES,
    DumpError,
    SourceReading,
    counter_delta,
    dump_observation,
    freshest,
    is_online,
    parse_dump,
    router_observations,
    transition,
)

NOW = datetime(2026, 12, 6, 12, 0, 0)
PRIV, PUB = generate_keypair()
_, OTHER = generate_keypair()
_, STRANGER = generate_keypair()


def test_online_means_a_handshake_at_most_180_seconds_old() -> None:
    assert is_online(NOW - timedelta(seconds=180), NOW)
    assert not is_online(NOW - timedelta(seconds=181), NOW)
    assert not is_online(None, NOW)


def test_router_rows_become_observations_with_the_current_endpoint() -> None:
    rows = [
        {"public-key": PUB, "last-handshake": "1m2s", "rx": "10", "tx": "20",
         "current-endpoint-address": "203.0.113.5", "current-endpoint-port": "51820"},
        {"public-key": OTHER, "rx": "0", "tx": "0"},
        {"comment": "no key"},
    ]  # fmt: skip
    first, second = router_observations(rows, NOW)
    assert first.last_handshake_at == NOW - timedelta(seconds=62)
    assert (first.rx_bytes, first.tx_bytes, first.endpoint) == (10, 20, "203.0.113.5:51820")
    assert second.last_handshake_at is None and second.endpoint is None


def test_a_counter_that_goes_backwards_restarted() -> None:
    assert counter_delta(None, 500) == 500
    assert counter_delta(500, 800) == 300
    assert counter_delta(800, 100) == 100  # reboot: never negative


def test_the_most_recent_handshake_wins_whoever_saw_it() -> None:
    older = SourceReading("router:1", NOW - timedelta(seconds=300), "198.51.100.1:1", NOW)
    newer = SourceReading("router:2", NOW - timedelta(seconds=10), "198.51.100.2:2", NOW - timedelta(seconds=30))
    never = SourceReading("report", None, None, NOW)
    status = freshest([older, never, newer], NOW)
    assert (status.online, status.source, status.endpoint) == (True, "router:2", "198.51.100.2:2")
    assert freshest([never], NOW).online is False
    assert freshest([], NOW).online is None


def test_only_up_and_down_changes_are_events() -> None:
    assert transition(True, False) == "peer.down"
    assert transition(False, True) == "peer.up"
    assert [transition(a, b) for a, b in [(None, True), (None, False), (True, None), (True, True)]] == [None] * 4


def dump(*peer_lines: str, public: str = PUB) -> str:
    return "\n".join([f"{PRIV}\t{public}\t51820\toff", *peer_lines]) + "\n"


def test_a_well_formed_dump_is_the_peers_own_observation() -> None:
    text = dump(
        f"{OTHER}\t(none)\t203.0.113.9:51820\t10.0.0.2/32,192.168.1.0/24\t{int(NOW.timestamp()) - 30}\t700\t900\t25"
    )
    parsed = parse_dump(text)
    assert parsed.public_key == PUB and parsed.listen_port == 51820
    seen = dump_observation(parsed, PUB, [OTHER])
    assert (seen.rx_bytes, seen.tx_bytes) == (900, 700)  # the overlay's side: the peer's tx is our rx
    assert seen.last_handshake_at is not None
    assert PRIV not in repr(parsed)  # the private key is checked, never kept


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        dump(f"{OTHER}\t(none)\t203.0.113.9:51820\t10.0.0.2/32\t0\t1\t2"),  # 7 fields
        dump(f"{OTHER}\t(none)\t$(reboot):1\t10.0.0.2/32\t0\t1\t2\toff"),
        dump(f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t-5\t1\t2\toff"),
        dump(f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t0\t1e9\t2\toff"),
        dump("not-a-key\t(none)\t(none)\t10.0.0.2/32\t0\t1\t2\toff"),
        dump(f"{OTHER}\t(none)\t(none)\t<script>\t0\t1\t2\toff"),
        dump(f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t0\t1\t2\toff", f"{OTHER}\t(none)\t(none)\t(none)\t0\t1\t2\toff"),
        dump(f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t0\t1\t2\toff\u202e"),
        dump() + "x" * MAX_DUMP_BYTES,
        dump(f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t0\t{2**70}\t2\toff"),
    ],
)
def test_hostile_or_malformed_dumps_are_refused_whole(text: str) -> None:
    with pytest.raises(DumpError):
        parse_dump(text)


def test_a_report_may_describe_only_its_own_interface_and_its_wans_peers() -> None:
    line = f"{OTHER}\t(none)\t(none)\t10.0.0.2/32\t0\t1\t2\toff"
    with pytest.raises(DumpError, match="another interface"):
        dump_observation(parse_dump(dump(line, public=OTHER)), PUB, [OTHER])
    with pytest.raises(DumpError, match="not in this peer's WAN"):
        dump_observation(parse_dump(dump(line.replace(OTHER, STRANGER))), PUB, [OTHER])


def test_the_sparkline_draws_traffic_between_points_and_escapes_its_label() -> None:
    from app.domain.sparkline import deltas, sparkline_svg

    assert deltas([0, 100, 100, 400]) == [100, 0, 300]
    svg = sparkline_svg([0, 100, 100, 400], 'Traffic of <b>"x"</b>')
    assert svg.startswith("<svg") and "<polyline" in svg and "&lt;b&gt;" in svg and "<b>" not in svg
    points = svg.split('points="')[1].split('"')[0].split()
    assert [p.split(",")[1] for p in points] == ["26.0", "38.0", "2.0"]  # 100 (a third of the top), 0, the top (300)
    assert "<polyline" not in sparkline_svg([5, 6], "x")  # too little history: an empty frame
