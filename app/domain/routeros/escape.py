"""RouterOS quoting: the only way user text reaches a generated `.rsc` script or CLI line.

Inside a RouterOS double-quoted string an unescaped `"` ends the string, `$var`, `$(expr)` and
`$[command]` are evaluated, a trailing backslash escapes the closing quote and a raw newline ends the
command (routeros-reference.md §4). `quote()` escapes all of those; everything else that is written
unquoted must pass `check_name()` or `is_bare()`.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9._-]+")
# Values that may be written without quotes: names, numbers, durations, addresses, prefixes and
# comma-separated lists of them. No space, quote, `$`, `[`, `;`, `#`, `{`, `\` or `=` can appear.
_BARE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:,-]*")

_SIMPLE = {"\\": "\\\\", '"': '\\"', "$": "\\$"}
# Printable ASCII that stays as it is inside quotes: most values (keys, addresses, tags) are only this.
_PLAIN = re.compile(r"[ !#%&'()*+,\-./0-9:;<=>@A-Z\[\]^_`a-z{|}~]*")


def _escape_char(ch: str, *, allow_non_ascii: bool) -> str:
    if ch in _SIMPLE:
        return _SIMPLE[ch]
    code = ord(ch)
    if ch == "?" or code < 0x20 or code == 0x7F:
        return f"\\{code:02X}"
    if code > 0x7F:
        if not allow_non_ascii:
            raise ValueError(f"non-ASCII character {ch!r} cannot be sent to RouterOS")
        return "".join(f"\\{b:02X}" for b in ch.encode("utf-8"))
    return ch


def escape(value: str, *, allow_non_ascii: bool = False) -> str:
    """The inside of a RouterOS double-quoted string for `value` (without the quotes)."""
    if _PLAIN.fullmatch(value):
        return value
    return "".join(_escape_char(ch, allow_non_ascii=allow_non_ascii) for ch in value)


def quote(value: str, *, allow_non_ascii: bool = False) -> str:
    """`value` as a RouterOS double-quoted string.

    Escapes `\\ " $` and `?` (the latter as `\\3F`, v6 treated `?` as help) and every control byte as
    `\\XX` (uppercase hex), so the result is always one line and can never end the string early.

    :param allow_non_ascii: hex-encode the UTF-8 bytes of non-ASCII characters instead of raising
        ValueError (only for text shown to humans, e.g. names in script comments).
    """
    return f'"{escape(value, allow_non_ascii=allow_non_ascii)}"'


def check_name(value: str) -> str:
    """Return `value` if it is a token safe to write unquoted (`[A-Za-z0-9._-]+`), else ValueError."""
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a RouterOS name (allowed: letters, digits, '.', '_', '-')")
    return value


def is_bare(value: str) -> bool:
    """True when `value` can be written unquoted as a property value."""
    return bool(_BARE.fullmatch(value))


def render_value(text: str, *, force_quote: bool = False) -> str:
    """A property value for a script or CLI line: bare when provably safe, quoted otherwise."""
    if not force_quote and is_bare(text):
        return text
    return quote(text)
