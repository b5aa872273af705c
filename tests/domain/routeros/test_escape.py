"""RouterOS quoting: user text can never end a string, run a command or start a new line."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.routeros.escape import check_name, escape, is_bare, quote, render_value


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("plain", '"plain"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("trailing\\", '"trailing\\\\"'),
        ("$[/system reset]", '"\\$[/system reset]"'),
        ("$(1+1) $var", '"\\$(1+1) \\$var"'),
        ("line\nbreak", '"line\\0Abreak"'),
        ("cr\rtab\t", '"cr\\0Dtab\\09"'),
        ("nul\x00bell\x07del\x7f", '"nul\\00bell\\07del\\7F"'),
        ("what?", '"what\\3F"'),
        ('"; /system reset', '"\\"; /system reset"'),
        ("", '""'),
    ],
)
def test_quote(raw: str, quoted: str) -> None:
    assert quote(raw) == quoted


def test_quote_rejects_non_ascii() -> None:
    with pytest.raises(ValueError, match="non-ASCII"):
        quote("café")


def test_quote_hex_encodes_non_ascii_when_allowed() -> None:
    assert quote("café", allow_non_ascii=True) == '"caf\\C3\\A9"'


@pytest.mark.parametrize("name", ["wg-wan-overlay", "wg0", "a.b_c-d", "X"])
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "wg wan", "wg;", 'wg"', "wg$x", "wg\n", "wgé", "a/b", "a=b"])
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


@pytest.mark.parametrize(
    ("text", "bare"),
    [
        ("10.0.0.0/24,192.168.0.0/16", True),
        ("fd00::/64", True),
        ("25s", True),
        ("wg-wan-overlay", True),
        ("", False),
        ("-x", False),
        ("a b", False),
        ("a;b", False),
        ("a=b", False),
        ("a+b", False),
        ('a"', False),
        ("$a", False),
        ("[a]", False),
    ],
)
def test_is_bare(text: str, bare: bool) -> None:
    assert is_bare(text) is bare


def test_render_value_forces_quotes() -> None:
    assert render_value("abc") == "abc"
    assert render_value("abc", force_quote=True) == '"abc"'
    assert render_value("a b") == '"a b"'


_STRING = re.compile(r'"(?:[^"\\]|\\(?:[0-9A-F]{2}|[\\"$]))*"')


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_quote_is_one_closed_string(raw: str) -> None:
    out = quote(raw)
    # Exactly one string token, one line, no live `$`, and it decodes back to the input.
    assert _STRING.fullmatch(out)
    assert "\n" not in out and "\r" not in out
    assert re.search(r"(?<!\\)\$", out) is None

    def unescape(s: str) -> str:
        return re.sub(r"\\([0-9A-F]{2}|.)", lambda m: chr(int(m[1], 16)) if len(m[1]) == 2 else m[1], s)

    assert unescape(escape(raw)) == raw
