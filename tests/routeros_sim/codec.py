"""RouterOS API framing: word lengths, words and sentences.

A *word* is a length prefix followed by that many bytes; a *sentence* is a run
of words terminated by a zero-length word.  The length prefix has five forms
(see reference §1).  We decode all five -- including non-minimal encodings, which
cost nothing to accept -- but :func:`encode_length` never emits the 5-byte form
because librouteros cannot read it (it raises ProtocolError on 0xF0).

Text is decoded as UTF-8 with ``surrogateescape`` so arbitrary bytes survive a
decode/encode round trip unchanged: librouteros defaults to ASCII, but a client
configured with another encoding must get back exactly the bytes it sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .errors import ConnectionDropped, ProtocolViolation

ENCODING = "utf-8"
ERRORS = "surrogateescape"

#: Largest word the server accepts.  RouterOS has limits of its own; ours exists so a
#: hostile length prefix (up to 4 GiB in the 5-byte form) cannot make us allocate it.
MAX_WORD = 8 * 1024 * 1024
#: Largest number of words in one sentence, for the same reason.
MAX_WORDS = 10_000


def encode_length(length: int) -> bytes:
    """Encode a word length using the shortest of the four forms librouteros reads."""
    if length < 0:
        raise ValueError("negative length")
    if length < 0x80:
        return bytes([length])
    if length < 0x4000:
        return (length | 0x8000).to_bytes(2, "big")
    if length < 0x200000:
        return (length | 0xC00000).to_bytes(3, "big")
    if length < 0x10000000:
        return (length | 0xE0000000).to_bytes(4, "big")
    # The 5-byte form exists on the wire but librouteros cannot decode it, so a
    # simulator that talks to librouteros must never produce it.
    raise ValueError(f"word of {length} bytes needs the 5-byte length form, which we never send")


def encode_length_any(length: int, form: int) -> bytes:
    """Encode ``length`` in a specific form (1..5 bytes), minimal or not.

    Only used by tests to exercise the decoder with every form, including the
    5-byte one and non-minimal encodings of small lengths.
    """
    if form == 1:
        if length >= 0x80:
            raise ValueError("too long for 1-byte form")
        return bytes([length])
    if form == 2:
        if length >= 0x4000:
            raise ValueError("too long for 2-byte form")
        return (length | 0x8000).to_bytes(2, "big")
    if form == 3:
        if length >= 0x200000:
            raise ValueError("too long for 3-byte form")
        return (length | 0xC00000).to_bytes(3, "big")
    if form == 4:
        if length >= 0x10000000:
            raise ValueError("too long for 4-byte form")
        return (length | 0xE0000000).to_bytes(4, "big")
    if form == 5:
        if length >= 1 << 32:
            raise ValueError("too long for 5-byte form")
        return b"\xf0" + length.to_bytes(4, "big")
    raise ValueError(f"no {form}-byte form")


def length_form(first_byte: int) -> int:
    """Total size of the length prefix, given its first byte.

    0xF8 and above are RouterOS "control bytes", never valid as a length; 0xF1-0xF7
    are unassigned.  Both are protocol violations.
    """
    if first_byte < 0x80:
        return 1
    if first_byte < 0xC0:
        return 2
    if first_byte < 0xE0:
        return 3
    if first_byte < 0xF0:
        return 4
    if first_byte == 0xF0:
        return 5
    raise ProtocolViolation(f"invalid length prefix byte 0x{first_byte:02X}")


def decode_length(prefix: bytes) -> int:
    """Decode a complete length prefix (1-5 bytes)."""
    form = length_form(prefix[0])
    if len(prefix) != form:
        raise ProtocolViolation("truncated length prefix")
    if form == 1:
        return prefix[0]
    if form == 5:
        return int.from_bytes(prefix[1:], "big")
    mask = {2: 0x8000, 3: 0xC00000, 4: 0xE0000000}[form]
    return int.from_bytes(prefix, "big") ^ mask


def encode_word(word: str) -> bytes:
    data = word.encode(ENCODING, ERRORS)
    return encode_length(len(data)) + data


def encode_sentence(words: Iterable[str]) -> bytes:
    return b"".join(encode_word(w) for w in words) + b"\x00"


class SentenceReader:
    """Incrementally read sentences from a byte source.

    ``recv(n)`` must return up to ``n`` bytes, or ``b""`` at end of stream.  A clean
    EOF between sentences returns ``None``; EOF inside a sentence raises
    :class:`ConnectionDropped`; bad framing raises :class:`ProtocolViolation`.
    """

    def __init__(self, recv: Callable[[int], bytes], *, max_word: int = MAX_WORD) -> None:
        self._recv = recv
        self._buf = bytearray()
        self._max_word = max_word

    def _fill(self, n: int, *, at_boundary: bool = False) -> bool:
        while len(self._buf) < n:
            chunk = self._recv(max(4096, n - len(self._buf)))
            if not chunk:
                if at_boundary and not self._buf:
                    return False
                raise ConnectionDropped("connection closed mid-sentence")
            self._buf += chunk
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def read_word(self, *, at_boundary: bool = False) -> str | None:
        if not self._fill(1, at_boundary=at_boundary):
            return None
        form = length_form(self._buf[0])
        self._fill(form)
        length = decode_length(self._take(form))
        if length > self._max_word:
            raise ProtocolViolation(f"word of {length} bytes exceeds limit")
        self._fill(length)
        return self._take(length).decode(ENCODING, ERRORS)

    def read_sentence(self) -> list[str] | None:
        """Return the next non-empty sentence, or ``None`` on a clean EOF.

        Empty sentences (a lone zero byte) are skipped, as RouterOS ignores them.
        """
        while True:
            words: list[str] = []
            first = self.read_word(at_boundary=True)
            if first is None:
                return None
            while first != "":
                words.append(first)
                if len(words) > MAX_WORDS:
                    raise ProtocolViolation("too many words in sentence")
                first = self.read_word()
                assert first is not None  # read_word only returns None at a boundary
            if words:
                return words
