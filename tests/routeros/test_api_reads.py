"""WireWAN's own sentence reader (app.routeros_api: BufferedTransport, FastApi) against librouteros's.

The reader replaced librouteros's word-by-word one for speed; what a job sees must not change: every
word length encoding (1 to 4 bytes), multi-byte characters, and the same value casts (numbers,
yes/no, "00" kept as text). Checked over TCP against the simulator, row for row with plain
librouteros on the same router.
"""

from __future__ import annotations

from typing import Any

import pytest
from librouteros.protocol import parse_word

from app.routeros_api import RouterSession, RouterTarget, api_value
from tests.routeros_sim.server import SimRouter

PASSWORD = "secret"


def _target(sim: SimRouter) -> RouterTarget:
    host, port = sim.address
    return RouterTarget(host=host, port=port, username="admin", password=PASSWORD, command_timeout=10)


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "00",
        "007",
        "-0",
        "-5",
        "12",
        "+5",
        "1_000",
        "١٢",
        " 1",
        "1.5",
        "-",
        "",
        "yes",
        "no",
        "true",
        "false",
        "Yes",
        "abc",
        "10.0.0.1/24",
        "*1A",
        "2m3s",
        "-12abc",
    ],
)
def test_values_are_cast_as_librouteros_casts_them(value: str) -> None:
    assert api_value(value) == parse_word(f"=k={value}")[1]
    assert type(api_value(value)) is type(parse_word(f"=k={value}")[1])


def test_rows_read_back_exactly_as_librouteros_reads_them() -> None:
    # Sources of 100 B, 20 KB and 3 MB take a 1-, 3- and 4-byte word length; the comment 2 bytes.
    sources = {"short": "x" * 100, "medium": ':log info "é"\n' * 1500, "long": "y" * (3 * 1024 * 1024)}
    comment = "Büro → Zürich " * 20
    with SimRouter(password=PASSWORD) as sim:
        setup = sim.connect(encoding="utf-8")
        try:
            for name, source in sources.items():
                tuple(setup("/system/script/add", name=name, source=source, comment=comment))
            theirs: list[dict[str, Any]] = list(setup("/system/script/print"))
            their_interfaces = list(setup("/interface/print"))
        finally:
            setup.close()
        with RouterSession(_target(sim)) as session:
            mine = session.print("/system/script")
            my_interfaces = session.print("/interface")
    assert mine == theirs
    assert my_interfaces == their_interfaces
    assert {row["name"]: row["source"] for row in mine} == sources
    assert {row["comment"] for row in mine} == {comment}
