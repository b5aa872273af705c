"""Framing: every length form, sentence boundaries, and malformed input over a socket."""

from __future__ import annotations

import io
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st
from librouteros import protocol as lr

from . import codec, testing
from .errors import ConnectionDropped, ProtocolViolation
from .server import SimRouter
from .testing import PASSWORD, RawClient

# Shared fixtures (no conftest on purpose; see testing.py).
sim = testing.sim

BOUNDARIES = [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, 0x1FFFFF, 0x200000, 0xFFFFFFF]


def reader_of(data: bytes) -> codec.SentenceReader:
    return codec.SentenceReader(io.BytesIO(data).read, max_word=1 << 32)


@pytest.mark.parametrize("length", BOUNDARIES)
def test_length_boundaries_match_librouteros(length: int) -> None:
    """Our encoder must produce exactly what librouteros decodes (and vice versa)."""
    encoded = codec.encode_length(length)
    assert encoded == lr.encode_length(length)
    assert codec.decode_length(encoded) == length
    assert lr.decode_length(encoded) == length
    assert len(encoded) == 1 + (length >= 0x80) + (length >= 0x4000) + (length >= 0x200000)


def test_five_byte_form_is_decoded_but_never_sent() -> None:
    assert codec.decode_length(b"\xf0\x10\x00\x00\x00") == 0x10000000
    with pytest.raises(ValueError):
        codec.encode_length(0x10000000)


@given(st.integers(min_value=0, max_value=0x7F), st.sampled_from([1, 2, 3, 4, 5]))
def test_every_form_including_non_minimal_decodes(length: int, form: int) -> None:
    word = b"x" * length
    data = codec.encode_length_any(2, form) + b"/a" + codec.encode_length_any(length, form) + word + b"\x00"
    # A zero-length word ends the sentence, so an empty word is the terminator itself.
    assert reader_of(data).read_sentence() == (["/a", "x" * length] if length else ["/a"])


@given(st.lists(st.text(min_size=1, max_size=300), min_size=1, max_size=8))
def test_sentence_round_trip(words: list[str]) -> None:
    data = codec.encode_sentence(words)
    assert reader_of(data).read_sentence() == words


def test_big_word_round_trip_three_and_four_byte_forms() -> None:
    for size in (0x4000, 0x200000):
        words = ["=contents=" + "a" * size]
        assert reader_of(codec.encode_sentence(words)).read_sentence() == words


def test_non_utf8_bytes_survive_round_trip() -> None:
    raw = bytes([3]) + b"\xff\xfe\x00" + b"\x00"
    word = codec.SentenceReader(io.BytesIO(raw).read).read_sentence()
    assert word is not None
    assert word == ["\udcff\udcfe\x00"]
    assert codec.encode_sentence(word) == raw


def test_empty_sentences_are_skipped_and_eof_between_sentences_is_clean() -> None:
    r = reader_of(b"\x00\x00" + codec.encode_sentence(["/quit"]))
    assert r.read_sentence() == ["/quit"]
    assert r.read_sentence() is None


def test_eof_inside_sentence_and_bad_prefix() -> None:
    with pytest.raises(ConnectionDropped):
        reader_of(b"\x05abc").read_sentence()
    with pytest.raises(ProtocolViolation):
        reader_of(b"\xf8abc").read_sentence()
    with pytest.raises(ProtocolViolation):
        codec.SentenceReader(io.BytesIO(b"\xe0\x80\x00\x00").read, max_word=1024).read_sentence()


def test_server_decodes_five_byte_form_of_small_length(sim: SimRouter) -> None:
    """A 5-byte length prefix is legal on the wire even for a short word."""
    word = b"/login"
    with RawClient(sim) as c:
        c.send_bytes(
            codec.encode_length_any(len(word), 5)
            + word
            + codec.encode_sentence(["=name=admin", f"=password={PASSWORD}"])
        )
        assert c.read() == ["!done"]


@pytest.mark.parametrize("garbage", [b"\xf8", b"\xff\x00", b"\xf0\xff\xff\xff\xff"])
def test_malformed_input_gets_fatal_and_server_keeps_serving(sim: SimRouter, garbage: bytes) -> None:
    with RawClient(sim) as bad, RawClient(sim) as good:
        assert good.login() == [["!done"]]
        bad.send_bytes(garbage)
        reply = bad.read()
        assert reply is not None and reply[0] == "!fatal" and "malformed" in reply[1]
        assert bad.read() is None  # and the connection is closed
        # The other connection, and new ones, are unaffected.
        assert good.call("/system/identity/print")[0] == ["!re", "=name=MikroTik"]
    with RawClient(sim) as again:
        assert again.login() == [["!done"]]
    assert sim.counters.fatals == 1


def test_client_vanishing_mid_sentence_does_not_hurt_server(sim: SimRouter) -> None:
    s = socket.create_connection(sim.address)
    s.sendall(b"\x10/log")
    s.close()
    with RawClient(sim) as c:
        assert c.login() == [["!done"]]
