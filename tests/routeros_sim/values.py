"""Value parsing and formatting shared by menus, queries and the script executor.

Everything is stored as the string RouterOS would print, so a property reads back
exactly the way a real router returns it: booleans as ``true``/``false`` (whatever
was written: ``yes``, ``no``, ``true``, ``false``), durations in RouterOS's
``1w2d3h4m5s300ms`` shape (``25`` -> ``25s``, ``123`` -> ``2m3s``).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re

TRUE_WORDS = {"yes", "true"}
FALSE_WORDS = {"no", "false"}


def parse_version(text: str) -> tuple[int, ...]:
    """``"7.16.2"`` -> ``(7, 16, 2)``; ``"7.18rc1"`` -> ``(7, 18)``."""
    parts: list[int] = []
    for piece in text.split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
        if m.end() != len(piece):
            break
    if not parts:
        raise ValueError(f"bad version {text!r}")
    return tuple(parts)


def norm_bool(value: str) -> str:
    low = value.lower()
    if low in TRUE_WORDS:
        return "true"
    if low in FALSE_WORDS:
        return "false"
    raise ValueError(value)


def bool_equal(a: str, b: str) -> bool:
    """Equality that treats yes/true and no/false as the same value.

    librouteros sends Python booleans as ``yes``/``no`` while rows store
    ``true``/``false``; a query ``?disabled=no`` must match ``disabled=false``.
    """
    if a == b:
        return True
    try:
        return norm_bool(a) == norm_bool(b)
    except ValueError:
        return False


_UNITS_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_DURATION_RE = re.compile(r"(\d+)(ms|w|d|h|m|s)")


def parse_duration_ms(text: str) -> int:
    """Parse ``25``, ``25s``, ``2m3s``, ``1d2h``, ``300ms``, ``00:01:05`` into milliseconds."""
    t = text.strip()
    if t.isdigit():
        return int(t) * 1000
    m = re.fullmatch(r"(?:(\d+)d)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?", t)
    if m:
        days, hh, mm, ss, frac = m.groups()
        ms = ((int(days or 0) * 24 + int(hh)) * 3600 + int(mm) * 60 + int(ss)) * 1000
        return ms + (int(frac.ljust(3, "0")) if frac else 0)
    pos = 0
    total = 0
    seen = False
    for unit in _DURATION_RE.finditer(t):
        if unit.start() != pos:
            raise ValueError(text)
        total += int(unit.group(1)) * _UNITS_MS[unit.group(2)]
        pos = unit.end()
        seen = True
    if not seen or pos != len(t):
        raise ValueError(text)
    return total


def format_duration_ms(ms: int) -> str:
    """Format milliseconds the way RouterOS prints durations (``0s`` for zero)."""
    if ms <= 0:
        return "0s"
    out = []
    for unit in ("w", "d", "h", "m", "s", "ms"):
        size = _UNITS_MS[unit]
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


def norm_duration(value: str) -> str:
    return format_duration_ms(parse_duration_ms(value))


def norm_int(value: str, lo: int | None = None, hi: int | None = None) -> str:
    if not re.fullmatch(r"\d+", value.strip()):
        raise ValueError(value)
    n = int(value)
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise ValueError(value)
    return str(n)


def norm_ipv4(value: str) -> str:
    return str(ipaddress.IPv4Address(value))


def norm_ip(value: str) -> str:
    return str(ipaddress.ip_address(value))


def norm_prefix(value: str) -> str:
    """A destination prefix, host bits cleared (``10.1.2.3/8`` -> ``10.0.0.0/8``)."""
    if "/" not in value:
        value += "/128" if ":" in value else "/32"
    return str(ipaddress.ip_network(value, strict=False))


def norm_interface_address(value: str) -> str:
    """An interface address keeps its host bits (``192.168.88.1/24``); bare IP -> /32."""
    if "/" not in value:
        value += "/128" if ":" in value else "/32"
    return str(ipaddress.ip_interface(value))


def norm_prefix_list(value: str) -> str:
    """Comma list of prefixes, kept in order (allowed-address, user address)."""
    if value.strip() == "":
        return ""
    return ",".join(norm_prefix_keep_host(p) for p in value.split(","))


def norm_prefix_keep_host(value: str) -> str:
    """A prefix as written, validated; a bare address gets /32 (or /128)."""
    p = value.strip()
    if "/" not in p:
        p += "/128" if ":" in p else "/32"
    ipaddress.ip_network(p, strict=False)
    addr, _, plen = p.partition("/")
    return f"{ipaddress.ip_address(addr)}/{int(plen)}"


def address_in_list(address: str, prefixes: str) -> bool:
    """True if ``address`` lies in any prefix of a comma list; an empty list admits all."""
    items = [p for p in prefixes.split(",") if p.strip()]
    if not items:
        return True
    ip = ipaddress.ip_address(address)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for item in items:
        net = ipaddress.ip_network(item.strip(), strict=False)
        if ip.version == net.version and ip in net:
            return True
    return False


def norm_wg_key(value: str) -> str:
    """A WireGuard key: base64 of exactly 32 bytes."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(value) from exc
    if len(raw) != 32:
        raise ValueError(value)
    return base64.b64encode(raw).decode("ascii")


def ros_number(value: str) -> int | None:
    """A value as an integer when it is one (used by ``<``/``>`` comparisons)."""
    v = value.strip()
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    return None


def compare_values(a: str, b: str) -> int:
    """Three-way compare used by ``?<``/``?>`` and script ``<``/``>``.

    Integers compare numerically, durations by length, IP addresses by address,
    anything else as strings.
    """
    na, nb = ros_number(a), ros_number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    for parse in (parse_duration_ms, lambda s: int(ipaddress.ip_address(s))):
        try:
            pa, pb = parse(a), parse(b)
        except ValueError:
            continue
        return (pa > pb) - (pa < pb)
    return (a > b) - (a < b)
