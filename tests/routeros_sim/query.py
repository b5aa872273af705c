"""The API ``print`` query stack (``?`` words), per the RouterOS API manual.

Each query word pushes one boolean (per row) onto a stack; ``?#`` words combine
them.  The stack starts as an infinite sea of ``true`` (popping an empty stack
yields ``true``) and a row matches when no ``false`` is left on it.

``?name`` has the property, ``?-name`` lacks it, ``?name=x`` / ``?=name=x``
equals, ``?<name=x`` / ``?>name=x`` compare (missing properties compare as the
empty string, which is why ``?>comment=`` means "has a non-empty comment").
``?#`` operations, left to right: ``!`` negates the top, ``&``/``|`` pop two and
push the result, a decimal index followed by another character pushes a copy of
the value at that index (0 = top), an index at the end of the word replaces the
whole stack with that value, ``.`` after an index is a no-op separator and
otherwise pushes a copy of the top.

Equality treats ``yes``/``no`` and ``true``/``false`` alike: librouteros sends
Python booleans as ``yes``/``no`` but rows hold ``true``/``false``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from .errors import RosError
from .values import bool_equal, compare_values

Row = Mapping[str, str]
Test = Callable[[Row], bool]


class QueryError(RosError):
    pass


def _equals(key: str, value: str) -> Test:
    return lambda row: bool_equal(row.get(key, ""), value)


def _less(key: str, value: str) -> Test:
    return lambda row: compare_values(row.get(key, ""), value) < 0


def _greater(key: str, value: str) -> Test:
    return lambda row: compare_values(row.get(key, ""), value) > 0


def _has(key: str) -> Test:
    return lambda row: key in row


def _lacks(key: str) -> Test:
    return lambda row: key not in row


def _compile_word(word: str) -> Test | str:
    """Turn one ``?`` word into a row test, or return the ``?#`` operation string."""
    body = word[1:]
    if body.startswith("#"):
        return body[1:]
    if body[:1] in ("=", "<", ">"):
        op, rest = body[0], body[1:]
        key, sep, value = rest.partition("=")
        if not sep or not key:
            raise QueryError(f"invalid query word {word}")
        return {"=": _equals, "<": _less, ">": _greater}[op](key, value)
    if body.startswith("-"):
        return _lacks(body[1:])
    key, sep, value = body.partition("=")
    return _equals(key, value) if sep else _has(key)


class _Stack:
    """Stack of booleans that yields ``True`` when popped empty."""

    def __init__(self) -> None:
        self.items: list[bool] = []

    def pop(self) -> bool:
        return self.items.pop() if self.items else True

    def top(self) -> bool:
        return self.items[-1] if self.items else True

    def at(self, index: int) -> bool:
        # Index 0 is the top; past the bottom lies the infinite ``true``.
        return self.items[-1 - index] if index < len(self.items) else True


def _apply_ops(stack: _Stack, ops: str) -> None:
    i = 0
    while i < len(ops):
        ch = ops[i]
        if ch.isdigit():
            j = i
            while j < len(ops) and ops[j].isdigit():
                j += 1
            value = stack.at(int(ops[i:j]))
            if j == len(ops):
                stack.items = [value]
                return
            stack.items.append(value)
            if ops[j] == ".":
                j += 1  # '.' right after an index only terminates it
            i = j
            continue
        if ch == "!":
            stack.items.append(not stack.pop())
        elif ch == "&":
            b, a = stack.pop(), stack.pop()
            stack.items.append(a and b)
        elif ch == "|":
            b, a = stack.pop(), stack.pop()
            stack.items.append(a or b)
        elif ch == ".":
            stack.items.append(stack.top())
        else:
            raise QueryError(f"invalid query operation {ch}")
        i += 1


class Query:
    """A compiled query stack, evaluated once per row."""

    def __init__(self, words: Sequence[str]) -> None:
        self.steps: list[Test | str] = [_compile_word(w) for w in words]

    def __bool__(self) -> bool:
        return bool(self.steps)

    def matches(self, row: Row) -> bool:
        stack = _Stack()
        for step in self.steps:
            if isinstance(step, str):
                _apply_ops(stack, step)
            else:
                stack.items.append(step(row))
        return all(stack.items)


def filter_rows(rows: Sequence[Row], words: Sequence[str]) -> list[Row]:
    q = Query(words)
    return [r for r in rows if q.matches(r)]
