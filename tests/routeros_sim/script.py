"""An executor for the subset of RouterOS ``.rsc`` syntax WireWAN's generator emits.

Why a real parser: the generated bootstrap script is pasted into a terminal or
imported on a customer's router, so it must be right the first time.  Running it
against the same :class:`~.state.RouterState` the API uses lets tests check that
the script and the API deployer reach the same configuration, that a second run
changes nothing, and that hostile values (quotes, ``$[...]``, backslashes)
cannot escape their strings.

Like RouterOS's ``/import``, the whole text is parsed first -- a syntax error
changes nothing -- then executed until the first failing command; commands that
already ran stay applied.  Errors read ``<message> (line N column M)``.

Supported (anything else is an error, never silently ignored):

* statements end at a newline or ``;``; ``#`` comments; ``\\`` + newline joins lines;
  ``{ ... }`` blocks.  Each top-level statement is its own scope (as on a real
  router), hence scripts wrap everything in ``{ }`` so ``:local`` variables live.
* menu context lines (``/interface wireguard``, ``/ip/firewall/filter``), also
  relative (``firewall filter`` inside ``/ip``), and inline paths
  (``/ip route set $r distance=11``).  Context is lexical: a change inside a
  block does not leak out of it.
* menu verbs: ``add`` (incl. ``place-before=``), ``set``, ``remove``, ``enable``,
  ``disable``, ``move``, ``get <item> <prop>``, ``find [where <cond>] | find k=v ...``,
  ``print [count-only] [where <cond>]``.  An empty item list (``set [find ...]``
  matching nothing) is a no-op.
* ``where`` conditions: ``prop=value``, ``!=``, ``<``, ``>``, ``<=``, ``>=``,
  ``~`` (regex), ``in`` (address in prefix), a bare ``prop`` (is true),
  ``!cond``, ``(cond)``, ``and``/``or``/``&&``/``||``, juxtaposition = and.
* builtins: ``:local``, ``:global``, ``:set``, ``:put``, ``:log <topic>``, ``:if (c) do={} else={}``,
  ``:foreach i in=<list> do={}``, ``:do {} on-error={}``, ``:len``, ``:pick``, ``:error``,
  ``:tostr``, ``:tonum``.
* expressions in ``( )``: ``=``, ``!=``, ``<``, ``>``, ``<=``, ``>=``, ``~``, ``!``,
  ``and``/``or``/``&&``/``||``, ``[command]``, ``$var``, strings, numbers.
* strings: escapes ``\\" \\\\ \\n \\r \\t \\$ \\_ \\a \\b \\f \\v \\?`` and ``\\XX``
  (uppercase hex); ``$var``, ``$(expr)`` and ``$[command]`` are evaluated inside
  strings (which is exactly why generated strings must escape ``$``).

Static checks done at parse time (so nothing is applied): unknown menu or verb
(``bad command name x``), unknown/read-only parameter for the simulated version
(``expected end of command``), unknown property in ``where`` and use of an
undeclared variable (``syntax error``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import values as V
from .errors import RosError
from .state import RouterState

Value = Any  # str | int | bool | list[Value] | None


class ScriptError(Exception):
    """A parse or runtime error, formatted like RouterOS: ``message (line N column M)``."""

    def __init__(self, message: str, line: int, column: int, output: list[str] | None = None) -> None:
        super().__init__(f"{message} (line {line} column {column})")
        self.message = message
        self.line = line
        self.column = column
        self.output: list[str] = output if output is not None else []


VERBS = {"add", "set", "remove", "find", "print", "move", "get", "enable", "disable"}
NAME_CHARS = re.compile(r"[A-Za-z0-9_]")
PROP_CHARS = re.compile(r"[A-Za-z0-9.\-]")
ESCAPES = {
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "$": "$",
    "_": " ",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "?": "?",
}
HEX = "0123456789ABCDEF"


# --------------------------------------------------------------------------- AST


@dataclass
class Node:
    pos: int


@dataclass
class Lit(Node):
    text: str


@dataclass
class Str(Node):
    parts: list[str | Node]


@dataclass
class Var(Node):
    name: str


@dataclass
class Op(Node):
    op: str
    args: list[Node]


@dataclass
class Block(Node):
    body: list[Node]


@dataclass
class Builtin(Node):
    name: str
    args: list[Node] = field(default_factory=list)
    named: dict[str, Node] = field(default_factory=dict)
    target: str = ""  # variable name for :local/:set/:global/:foreach, topic for :log


@dataclass
class MenuCmd(Node):
    path: str
    verb: str
    items: list[Node] = field(default_factory=list)  # positional values
    named: dict[str, Node] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    where: Node | None = None


@dataclass
class Cond(Node):
    """A ``where`` comparison on a row property."""

    prop: str
    op: str  # '=', '!=', '<', '>', '<=', '>=', '~', 'in', 'bool'
    value: Node | None


# --------------------------------------------------------------------------- parser


class Parser:
    """Recursive descent over characters; context-sensitive like RouterOS's own."""

    def __init__(self, text: str, state: RouterState) -> None:
        self.text = text.replace("\r\n", "\n")
        self.i = 0
        self.state = state
        self.prefixes = self._menu_prefixes(state)
        self.scopes: list[set[str]] = [set()]
        self.globals: set[str] = set(state.script_globals)
        # ``[find ...]`` inherits the menu of the statement it sits in, and a ``where``
        # condition checks property names against its own command's menu.
        self.context_path = ""
        self.where_path = ""

    @staticmethod
    def _menu_prefixes(state: RouterState) -> set[str]:
        out = {""}
        for path in state.menus:
            parts = path.strip("/").split("/")
            for n in range(1, len(parts) + 1):
                out.add("/" + "/".join(parts[:n]))
        return out

    # -- positions and errors

    def where_is(self, pos: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return line, col

    def error(self, message: str, pos: int | None = None) -> ScriptError:
        line, col = self.where_is(self.i if pos is None else pos)
        return ScriptError(message, line, col)

    # -- low level

    def peek(self, n: int = 0) -> str:
        j = self.i + n
        return self.text[j] if j < len(self.text) else ""

    def at_end(self) -> bool:
        return self.i >= len(self.text)

    def skip_ws(self, newlines: bool = False) -> None:
        while not self.at_end():
            ch = self.peek()
            if ch in " \t" or (newlines and ch in "\n\r"):
                self.i += 1
            elif ch == "\\" and self.peek(1) == "\n":
                self.i += 2  # line continuation
            elif ch == "\r":
                self.i += 1
            else:
                break

    def expect(self, s: str) -> None:
        if not self.text.startswith(s, self.i):
            raise self.error("syntax error")
        self.i += len(s)

    def at_stmt_end(self) -> bool:
        return self.at_end() or self.peek() in "\n;}]"

    # -- scopes

    def push(self) -> None:
        self.scopes.append(set())

    def pop(self) -> None:
        self.scopes.pop()

    def declare(self, name: str) -> None:
        self.scopes[-1].add(name)

    def check_var(self, name: str, pos: int) -> None:
        if name in self.globals or any(name in s for s in self.scopes):
            return
        raise self.error("syntax error", pos)

    # -- program structure

    def parse_program(self) -> list[Node]:
        body: list[Node] = []
        path = ""
        while True:
            self.skip_ws(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip_ws(newlines=True)
            if self.at_end():
                return body
            if self.peek() in "}]":
                raise self.error("syntax error")
            # Every top-level statement is its own scope, as on a real router.
            self.push()
            node, path = self.statement(path)
            self.pop()
            if node is not None:
                body.append(node)
            self.end_statement()

    def end_statement(self) -> None:
        self.skip_ws()
        if self.at_end() or self.peek() in "\n;":
            if not self.at_end():
                self.i += 1
            return
        if self.peek() in "}]":
            return
        raise self.error("expected end of command")

    def block_body(self, path: str) -> list[Node]:
        """Statements up to the matching ``}`` (consumed)."""
        body: list[Node] = []
        self.push()
        while True:
            self.skip_ws(newlines=True)
            while self.peek() == ";":
                self.i += 1
                self.skip_ws(newlines=True)
            if self.at_end():
                raise self.error("syntax error")
            if self.peek() == "}":
                self.i += 1
                self.pop()
                return body
            node, path = self.statement(path)
            if node is not None:
                body.append(node)
            self.end_statement()

    def braced(self, path: str) -> Block:
        self.skip_ws()
        pos = self.i
        if self.peek() != "{":
            raise self.error("syntax error")
        self.i += 1
        return Block(pos, self.block_body(path))

    def statement(self, path: str) -> tuple[Node | None, str]:
        """One statement; returns it and the (possibly changed) menu context."""
        saved, self.context_path = self.context_path, path
        try:
            return self._statement(path)
        finally:
            self.context_path = saved

    def _statement(self, path: str) -> tuple[Node | None, str]:
        self.skip_ws()
        ch = self.peek()
        pos = self.i
        if ch == "#":
            while not self.at_end() and self.peek() != "\n":
                self.i += 1
            return None, path
        if ch == "{":
            self.i += 1
            return Block(pos, self.block_body(path)), path
        if ch == ":":
            return self.builtin(path), path
        if ch == "/" or PROP_CHARS.match(ch or " "):
            return self.menu_statement(path)
        raise self.error("syntax error")

    # -- menu commands

    def read_name(self) -> str:
        start = self.i
        while not self.at_end() and PROP_CHARS.match(self.peek()):
            self.i += 1
        return self.text[start : self.i]

    def menu_statement(self, path: str) -> tuple[Node | None, str]:
        start = self.i
        current = path
        if self.peek() == "/":
            self.i += 1
            current = ""
        verb = ""
        while True:
            self.skip_ws()
            word_pos = self.i
            word = self.read_name()
            if word == "":
                break
            if self.peek() == "=":
                self.i = word_pos  # an argument: the command word is missing
                break
            candidate = f"{current}/{word}"
            if candidate in self.prefixes and word not in VERBS:
                current = candidate
            elif word in VERBS or self._extra_verb(current, word):
                verb = word
                break
            else:
                raise self.error(f"bad command name {word}", word_pos)
            if self.peek() == "/":
                self.i += 1
        if not verb:
            self.skip_ws()
            if not self.at_stmt_end():
                raise self.error("bad command name", self.i)
            if current not in self.prefixes:
                raise self.error("bad command name", start)
            return None, current  # a context line: later commands inherit it
        if current not in self.state.menus:
            raise self.error(f"bad command name {verb}", self.i - len(verb))
        return self.menu_command(start, current, verb), path

    def _extra_verb(self, path: str, word: str) -> bool:
        menu = self.state.menus.get(path)
        if menu is None or word not in menu.extra_commands:
            return False
        return self.state.version_tuple >= menu.extra_commands[word]

    def menu_command(self, pos: int, path: str, verb: str) -> MenuCmd:
        # ``[find]`` inside an inline-path command (``/ip route set [find ...]``) uses that path.
        saved = (self.where_path, self.context_path)
        self.where_path = self.context_path = path
        try:
            return self._menu_command(pos, path, verb)
        finally:
            self.where_path, self.context_path = saved

    def _menu_command(self, pos: int, path: str, verb: str) -> MenuCmd:
        cmd = MenuCmd(pos, path, verb)
        menu = self.state.menus[path]
        while True:
            self.skip_ws()
            if self.at_stmt_end() or self.peek() == ")":
                break
            arg_pos = self.i
            if self.peek() in '[$("':
                cmd.items.append(self.value())
                continue
            word = self.read_name() if PROP_CHARS.match(self.peek()) else ""
            if word and self.peek() == "=":
                self.i += 1
                allowed = verb in ("add", "set", "find", "move")
                ok = self.state.field_available(menu, word) and (verb == "find" or not menu.fields[word].read_only)
                if word in menu.command_params.get(verb, ()):
                    allowed = ok = True
                if word == "place-before" and verb == "add" and menu.ordered:
                    ok = True
                if word == "destination" and verb == "move":
                    ok = True
                if not (allowed and ok):
                    raise self.error("expected end of command", arg_pos)
                cmd.named[word] = self.value()
                continue
            if word == "where" and verb in ("find", "print"):
                cmd.where = self.condition()
                continue
            if word in ("count-only", "detail", "terse") and verb == "print":
                cmd.flags.append(word)
                continue
            if verb == "get" and word and len(cmd.items) == (0 if menu.singleton else 1):
                if not self.state.field_available(menu, word):
                    raise self.error("expected end of command", arg_pos)
                cmd.items.append(Lit(arg_pos, word))
                continue
            self.i = arg_pos
            cmd.items.append(self.value())
        if verb == "get" and len(cmd.items) != (1 if menu.singleton else 2):
            raise self.error("syntax error", pos)
        return cmd

    # -- values

    def value(self) -> Node:
        """An argument value: string, $var, [command], (expression) or bare word."""
        ch = self.peek()
        pos = self.i
        if ch == '"':
            return self.string()
        if ch == "$":
            return self.variable()
        if ch == "[":
            return self.subcommand()
        if ch == "(":
            self.i += 1
            node = self.expression()
            self.skip_ws(newlines=True)
            self.expect(")")
            return node
        start = self.i
        while not self.at_end() and self.peek() not in ' \t\n;[]{}()"$\\':
            self.i += 1
        if self.i == start:
            raise self.error("syntax error")
        return Lit(pos, self.text[start : self.i])

    def variable(self) -> Node:
        pos = self.i
        self.i += 1  # '$'
        if self.peek() == "[":
            return self.subcommand()
        if self.peek() == "(":
            self.i += 1
            node = self.expression()
            self.skip_ws(newlines=True)
            self.expect(")")
            return node
        start = self.i
        while not self.at_end() and NAME_CHARS.match(self.peek()):
            self.i += 1
        name = self.text[start : self.i]
        if not name:
            raise self.error("syntax error", pos)
        self.check_var(name, pos)
        return Var(pos, name)

    def subcommand(self, path: str | None = None) -> Node:
        pos = self.i
        self.expect("[")
        ctx = self.context_path if path is None else path
        node, _ = self.statement(ctx)
        self.skip_ws(newlines=True)
        if self.peek() != "]":
            raise self.error("syntax error")
        self.i += 1
        if node is None:
            raise self.error("syntax error", pos)
        return node

    def string(self) -> Node:
        pos = self.i
        self.i += 1
        parts: list[str | Node] = []
        buf: list[str] = []
        while True:
            if self.at_end():
                raise self.error("syntax error", pos)
            ch = self.peek()
            if ch == '"':
                self.i += 1
                break
            if ch == "\n":
                raise self.error("syntax error")
            if ch == "\\":
                nxt = self.peek(1)
                if nxt == "\n":
                    self.i += 2
                    continue
                if nxt in ESCAPES:
                    buf.append(ESCAPES[nxt])
                    self.i += 2
                    continue
                pair = self.text[self.i + 1 : self.i + 3]
                if len(pair) == 2 and all(c in HEX for c in pair):
                    buf.append(chr(int(pair, 16)))
                    self.i += 3
                    continue
                raise self.error("syntax error")
            if ch == "$":
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(self.variable())
                continue
            buf.append(ch)
            self.i += 1
        if buf:
            parts.append("".join(buf))
        return Str(pos, parts)

    # -- expressions ( ... )

    def expression(self) -> Node:
        return self._or()

    def _keyword(self, *words: str) -> str | None:
        self.skip_ws(newlines=True)
        for w in words:
            if self.text.startswith(w, self.i):
                after = self.text[self.i + len(w) : self.i + len(w) + 1]
                if w.isalpha() and after and (PROP_CHARS.match(after) or after == "="):
                    continue
                self.i += len(w)
                return w
        return None

    def _or(self) -> Node:
        left = self._and()
        while True:
            pos = self.i
            if self._keyword("||", "or") is None:
                return left
            left = Op(pos, "or", [left, self._and()])

    def _and(self) -> Node:
        left = self._not()
        while True:
            pos = self.i
            if self._keyword("&&", "and") is None:
                return left
            left = Op(pos, "and", [left, self._not()])

    def _not(self) -> Node:
        self.skip_ws(newlines=True)
        if self.peek() == "!" and self.peek(1) != "=":
            pos = self.i
            self.i += 1
            return Op(pos, "not", [self._not()])
        return self._cmp()

    def _cmp(self) -> Node:
        left = self._primary()
        pos = self.i
        op = self._keyword("!=", "<=", ">=", "=", "<", ">", "~", "in")
        if op is None:
            return left
        return Op(pos, op, [left, self._primary()])

    def _primary(self) -> Node:
        self.skip_ws(newlines=True)
        ch = self.peek()
        pos = self.i
        if ch == "(":
            self.i += 1
            node = self.expression()
            self.skip_ws(newlines=True)
            self.expect(")")
            return node
        if ch in '"$[':
            return self.value()
        start = self.i
        while not self.at_end() and self.peek() not in ' \t\n;[]{}()"$\\=<>!~&|':
            self.i += 1
        if self.i == start:
            raise self.error("syntax error")
        return Lit(pos, self.text[start : self.i])

    # -- where conditions

    def condition(self) -> Node:
        return self._cond_or()

    def _cond_or(self) -> Node:
        left = self._cond_and()
        while True:
            pos = self.i
            if self._cond_keyword("||", "or") is None:
                return left
            left = Op(pos, "or", [left, self._cond_and()])

    def _cond_keyword(self, *words: str) -> str | None:
        self.skip_ws()
        for w in words:
            if self.text.startswith(w, self.i):
                after = self.text[self.i + len(w) : self.i + len(w) + 1]
                if w.isalpha() and after and (PROP_CHARS.match(after) or after in "=<>~!"):
                    continue
                self.i += len(w)
                return w
        return None

    def _cond_and(self) -> Node:
        left = self._cond_not()
        while True:
            self.skip_ws()
            pos = self.i
            if self.at_stmt_end() or self.peek() == ")":
                return left
            if self._cond_keyword("||", "or") is not None:
                self.i = pos
                return left
            self._cond_keyword("&&", "and")  # optional: juxtaposition also means "and"
            left = Op(pos, "and", [left, self._cond_not()])

    def _cond_not(self) -> Node:
        self.skip_ws()
        pos = self.i
        if self.peek() == "!":
            self.i += 1
            return Op(pos, "not", [self._cond_not()])
        if self.peek() == "(":
            self.i += 1
            node = self._cond_or()
            self.skip_ws()
            self.expect(")")
            return node
        prop = self.read_name()
        known = prop == ".id" or self.state.field_available(self.state.menus[self.where_path], prop)
        if not known:
            raise self.error("syntax error", pos)
        self.skip_ws()
        for op in ("!=", "<=", ">=", "=", "<", ">", "~"):
            if self.text.startswith(op, self.i):
                self.i += len(op)
                self.skip_ws()
                return Cond(pos, prop, op, self.value())
        if self._cond_keyword("in") is not None:
            self.skip_ws()
            return Cond(pos, prop, "in", self.value())
        return Cond(pos, prop, "bool", None)

    # -- builtins

    def builtin(self, path: str) -> Node:
        pos = self.i
        self.i += 1  # ':'
        name = self.read_name()
        node = Builtin(pos, name)
        self.skip_ws()
        if name in ("local", "global", "set"):
            var_pos = self.i
            var = self.read_name()
            if not var or not NAME_CHARS.match(var[0]):
                raise self.error("syntax error", var_pos)
            node.target = var
            self.skip_ws()
            if not self.at_stmt_end():
                node.args.append(self.value())
            if name == "set":
                self.check_var(var, var_pos)
            elif name == "global":
                self.globals.add(var)
            else:
                self.declare(var)
            return node
        if name in ("put", "len", "error", "tostr", "tonum"):
            node.args.append(self.value())
            return node
        if name == "pick":
            for _ in range(3):
                self.skip_ws()
                if self.at_stmt_end():
                    break
                node.args.append(self.value())
            if len(node.args) < 2:
                raise self.error("syntax error", pos)
            return node
        if name == "log":
            topic = self.read_name()
            if topic not in ("info", "warning", "error", "debug"):
                raise self.error("syntax error")
            node.target = topic
            self.skip_ws()
            node.args.append(self.value())
            return node
        if name == "if":
            if self.peek() != "(":
                raise self.error("syntax error")
            node.args.append(self.value())
            self.skip_ws()
            self.expect("do=")
            node.named["do"] = self.braced(path)
            self.skip_ws()
            if self.text.startswith("else=", self.i):
                self.i += len("else=")
                node.named["else"] = self.braced(path)
            return node
        if name == "foreach":
            var = self.read_name()
            if not var:
                raise self.error("syntax error")
            node.target = var
            self.skip_ws()
            self.expect("in=")
            node.named["in"] = self.value()
            self.skip_ws()
            self.expect("do=")
            self.push()
            self.declare(var)
            node.named["do"] = self.braced(path)
            self.pop()
            return node
        if name == "do":
            node.named["do"] = self.braced(path)
            self.skip_ws()
            if self.text.startswith("on-error=", self.i):
                self.i += len("on-error=")
                node.named["on-error"] = self.braced(path)
            return node
        raise self.error(f"bad command name {name}", pos)


def parse(text: str, state: RouterState) -> list[Node]:
    return Parser(text, state).parse_program()


# --------------------------------------------------------------------------- runtime values


def to_str(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(to_str(v) for v in value)
    return str(value)


def literal(text: str) -> Value:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("true", "yes"):
        return True
    if text in ("false", "no"):
        return False
    return text


def truthy(value: Value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, list):
        return bool(value)
    return to_str(value) in ("true", "yes")


def values_equal(a: Value, b: Value) -> bool:
    sa, sb = to_str(a), to_str(b)
    if sa == sb or V.bool_equal(sa, sb):
        return True
    na, nb = V.ros_number(sa), V.ros_number(sb)
    if na is not None and nb is not None:
        return na == nb
    try:
        return V.parse_duration_ms(sa) == V.parse_duration_ms(sb)
    except ValueError:
        return False


def compare(op: str, a: Value, b: Value) -> bool:
    if op == "=":
        return values_equal(a, b)
    if op == "!=":
        return not values_equal(a, b)
    if op == "~":
        try:
            return re.search(to_str(b), to_str(a)) is not None
        except re.error:
            return to_str(b) in to_str(a)
    if op == "in":
        try:
            return ipaddress.ip_network(to_str(a), strict=False).subnet_of(
                ipaddress.ip_network(to_str(b), strict=False)  # type: ignore[arg-type]
            )
        except (ValueError, TypeError):
            return False
    c = V.compare_values(to_str(a), to_str(b))
    return {"<": c < 0, ">": c > 0, "<=": c <= 0, ">=": c >= 0}[op]


# --------------------------------------------------------------------------- executor


class _Abort(Exception):
    """Carries a RouterOS error raised at a node position up to the top level."""

    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


class Executor:
    """Runs parsed statements against a :class:`RouterState`."""

    def __init__(self, state: RouterState, text: str) -> None:
        self.state = state
        self.text = text.replace("\r\n", "\n")
        self.output: list[str] = []
        self.globals: dict[str, Value] = state.script_globals

    def run(self, program: list[Node]) -> list[str]:
        for node in program:
            self.exec(node, [{}], top=True)
        return self.output

    # -- scope helpers

    def lookup(self, scopes: list[dict[str, Value]], name: str, pos: int) -> Value:
        for scope in reversed(scopes):
            if name in scope:
                return scope[name]
        if name in self.globals:
            return self.globals[name]
        raise _Abort("syntax error", pos)

    def assign(self, scopes: list[dict[str, Value]], name: str, value: Value) -> None:
        for scope in reversed(scopes):
            if name in scope:
                scope[name] = value
                return
        self.globals[name] = value

    # -- statements

    def exec(self, node: Node, scopes: list[dict[str, Value]], top: bool = False) -> Value:
        if isinstance(node, Block):
            inner = [*scopes, {}]
            for stmt in node.body:
                self.exec(stmt, inner)
            return None
        if isinstance(node, MenuCmd):
            return self.menu_cmd(node, scopes, statement=True)
        if isinstance(node, Builtin):
            return self.builtin(node, scopes, statement=True)
        return self.eval(node, scopes)

    def builtin(self, node: Builtin, scopes: list[dict[str, Value]], statement: bool = False) -> Value:
        name = node.name
        if name == "local":
            scopes[-1][node.target] = self.eval(node.args[0], scopes) if node.args else None
            return None
        if name == "global":
            if node.args:
                self.globals[node.target] = self.eval(node.args[0], scopes)
            else:
                self.globals.setdefault(node.target, None)
            return None
        if name == "set":
            self.assign(scopes, node.target, self.eval(node.args[0], scopes) if node.args else None)
            return None
        if name == "put":
            self.output.append(to_str(self.eval(node.args[0], scopes)))
            return None
        if name == "log":
            self.state.logs.append((node.target, to_str(self.eval(node.args[0], scopes))))
            return None
        if name == "error":
            raise _Abort(to_str(self.eval(node.args[0], scopes)), node.pos)
        if name == "len":
            v = self.eval(node.args[0], scopes)
            return 0 if v is None else len(v) if isinstance(v, list) else len(to_str(v))
        if name == "tostr":
            return to_str(self.eval(node.args[0], scopes))
        if name == "tonum":
            n = V.ros_number(to_str(self.eval(node.args[0], scopes)))
            return n
        if name == "pick":
            seq = self.eval(node.args[0], scopes)
            start = self._int(self.eval(node.args[1], scopes), node.pos)
            end = self._int(self.eval(node.args[2], scopes), node.pos) if len(node.args) > 2 else None
            items: list[Value] | str = seq if isinstance(seq, list) else to_str(seq)
            if end is None:
                return items[start] if 0 <= start < len(items) else None
            return items[start:end]
        if name == "if":
            if truthy(self.eval(node.args[0], scopes)):
                self.exec(node.named["do"], scopes)
            elif "else" in node.named:
                self.exec(node.named["else"], scopes)
            return None
        if name == "foreach":
            seq = self.eval(node.named["in"], scopes)
            items = seq if isinstance(seq, list) else ([] if seq is None else [seq])
            for item in items:
                self.exec(node.named["do"], [*scopes, {node.target: item}])
            return None
        if name == "do":
            try:
                self.exec(node.named["do"], scopes)
            except _Abort:
                if "on-error" not in node.named:
                    raise
                self.exec(node.named["on-error"], scopes)
            return None
        raise _Abort(f"bad command name {name}", node.pos)  # pragma: no cover - parser rejects

    @staticmethod
    def _int(value: Value, pos: int) -> int:
        n = V.ros_number(to_str(value))
        if n is None:
            raise _Abort("invalid value", pos)
        return n

    # -- menu commands

    def _ids(self, path: str, values: list[Value], pos: int) -> list[str]:
        flat: list[str] = []
        for v in values:
            for item in v if isinstance(v, list) else [v]:
                text = to_str(item)
                if text:
                    flat.extend(text.split(","))
        try:
            return self.state.resolve_ids(path, flat)
        except RosError as exc:
            raise _Abort(exc.message, pos) from None

    def menu_cmd(self, node: MenuCmd, scopes: list[dict[str, Value]], statement: bool = False) -> Value:
        path, verb, state = node.path, node.verb, self.state
        try:
            if verb == "find":
                return self.find(node, scopes)
            if verb == "print":
                ids = self.find(node, scopes)
                if "count-only" in node.flags:
                    if statement:
                        self.output.append(str(len(ids)))
                    return len(ids)
                rows = [r for r in state.public_rows(path) if r.get(".id") in ids or ".id" not in r]
                if statement:
                    for r in rows:
                        self.output.append(" ".join(f"{k}={v}" for k, v in r.items()))
                return None
            named = {k: to_str(self.eval(v, scopes)) for k, v in node.named.items()}
            if verb == "add":
                if node.items:
                    raise _Abort("expected end of command", node.items[0].pos)
                if "place-before" in node.named:
                    ids = self._ids(path, [self.eval(node.named["place-before"], scopes)], node.pos)
                    if len(ids) != 1:
                        raise _Abort("no such item", node.named["place-before"].pos)
                    named["place-before"] = ids[0]
                return state.add(path, named)
            items = [self.eval(v, scopes) for v in node.items]
            if verb == "get" and state.menu(path).singleton:
                row = state.public_rows(path)[0]
                return literal(row[to_str(items[0])]) if to_str(items[0]) in row else None
            if verb == "get":
                ids = self._ids(path, items[:1], node.pos)
                if len(ids) != 1:
                    raise _Abort("no such item", node.pos)
                row = next(r for r in state.public_rows(path) if r.get(".id") == ids[0])
                return literal(row[to_str(items[1])]) if to_str(items[1]) in row else None
            menu = state.menu(path)
            if menu.singleton and verb == "set":
                state.set(path, None, named)
                return None
            if verb == "move":
                ids = self._ids(path, items[:1], node.pos)
                dest = named.get("destination") or (to_str(items[1]) if len(items) > 1 else None)
                if dest is not None and len(dest_ids := self._ids(path, [dest], node.pos)) == 1:
                    dest = dest_ids[0]
                if ids:
                    state.move(path, ids, dest)
                return None
            if verb in menu.extra_commands and verb != "run":
                state.extra_command(path, verb, named)
                return None
            ids = self._ids(path, items, node.pos)
            if not ids:
                return None  # an empty [find] result: RouterOS does nothing
            if verb == "set":
                state.set(path, ids, named)
            elif verb == "remove":
                state.remove(path, ids)
            elif verb in ("enable", "disable"):
                state.enable(path, ids, disabled=verb == "disable")
            elif verb == "run" and path == "/system/script":
                for script_id in ids:
                    row = next(r for r in state.table(path) if r[".id"] == script_id)
                    row["run-count"] = str(int(row.get("run-count", "0")) + 1)
                    self.output.extend(run_script(state, row.get("source", "")))
            else:
                raise _Abort(f"bad command name {verb}", node.pos)
            return None
        except RosError as exc:
            raise _Abort(exc.message, node.pos) from None
        except ScriptError as exc:
            raise _Abort(exc.message, node.pos) from None

    def find(self, node: MenuCmd, scopes: list[dict[str, Value]]) -> list[str]:
        rows = self.state.public_rows(node.path)
        equal = {k: self.eval(v, scopes) for k, v in node.named.items()}

        def keep(row: dict[str, str]) -> bool:
            if any(not values_equal(row.get(k, ""), v) for k, v in equal.items()):
                return False
            return node.where is None or truthy(self.cond(node.where, row, scopes))

        return [r[".id"] for r in rows if ".id" in r and keep(r)]

    def cond(self, node: Node, row: dict[str, str], scopes: list[dict[str, Value]]) -> bool:
        if isinstance(node, Op):
            if node.op == "not":
                return not self.cond(node.args[0], row, scopes)
            if node.op == "and":
                return self.cond(node.args[0], row, scopes) and self.cond(node.args[1], row, scopes)
            if node.op == "or":
                return self.cond(node.args[0], row, scopes) or self.cond(node.args[1], row, scopes)
        assert isinstance(node, Cond)
        actual = row.get(node.prop)
        if node.op == "bool":
            return actual is not None and truthy(literal(actual))
        expected = self.eval(node.value, scopes) if node.value is not None else None
        if actual is None:
            # A missing property equals only the empty value.
            return (node.op == "=" and to_str(expected) == "") or (node.op == "!=" and to_str(expected) != "")
        return compare(node.op, actual, expected)

    # -- expressions

    def eval(self, node: Node, scopes: list[dict[str, Value]]) -> Value:
        if isinstance(node, Lit):
            return literal(node.text)
        if isinstance(node, Str):
            return "".join(p if isinstance(p, str) else to_str(self.eval(p, scopes)) for p in node.parts)
        if isinstance(node, Var):
            return self.lookup(scopes, node.name, node.pos)
        if isinstance(node, MenuCmd):
            return self.menu_cmd(node, scopes)
        if isinstance(node, Builtin):
            return self.builtin(node, scopes)
        if isinstance(node, Block):
            return self.exec(node, scopes)
        if isinstance(node, Op):
            if node.op == "not":
                return not truthy(self.eval(node.args[0], scopes))
            if node.op == "and":
                return truthy(self.eval(node.args[0], scopes)) and truthy(self.eval(node.args[1], scopes))
            if node.op == "or":
                return truthy(self.eval(node.args[0], scopes)) or truthy(self.eval(node.args[1], scopes))
            return compare(node.op, self.eval(node.args[0], scopes), self.eval(node.args[1], scopes))
        raise _Abort("syntax error", node.pos)


def run_script(state: RouterState, text: str) -> list[str]:
    """Parse then run ``text``; returns ``:put`` output, raises :class:`ScriptError`.

    The parse happens before anything runs, so a syntax error leaves the router
    untouched; a runtime error stops at the failing command (earlier ones stay).
    """
    with state.lock:
        program = parse(text, state)
        executor = Executor(state, text)
        try:
            return executor.run(program)
        except _Abort as exc:
            norm = text.replace("\r\n", "\n")
            line = norm.count("\n", 0, exc.pos) + 1
            col = exc.pos - (norm.rfind("\n", 0, exc.pos) + 1) + 1
            raise ScriptError(exc.message, line, col, executor.output) from None


ScriptRunner = Callable[[RouterState, str], list[str]]
