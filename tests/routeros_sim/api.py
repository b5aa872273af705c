"""One API session: login, permissions and command dispatch.

Transport-free on purpose: :class:`Session.handle` takes the words of one
sentence and returns the reply sentences, so the protocol logic can be tested
without sockets and the TCP layer (:mod:`server`) stays small.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import values as V
from .errors import RosError, unknown_parameter
from .script import ScriptError, run_script

if TYPE_CHECKING:
    from .state import RouterState

READ_VERBS = {"print", "getall"}
SESSION_COMMANDS = {"/login", "/quit", "/cancel"}
#: Flags ``print`` accepts besides ``.proplist`` and ``count-only``; they change nothing here.
PRINT_FLAGS = {"detail", "stats", "without-paging", "terse", "brief", "follow-only", "show-ids"}
LOGIN_FAILED = "invalid user name or password (6)"
#: The plain ``/login =name= =password=`` exchange exists from 6.43 on.
PLAIN_LOGIN_SINCE = (6, 43)


def classify(command: str) -> str:
    """``read``, ``write`` or ``session`` -- how a sentence is counted."""
    if command in SESSION_COMMANDS:
        return "session"
    verb = command.rsplit("/", 1)[-1]
    return "read" if verb in READ_VERBS else "write"


@dataclass
class Reply:
    sentences: list[list[str]] = field(default_factory=list)
    close: bool = False  # close the connection after sending (``!fatal``)


@dataclass
class Parsed:
    command: str
    attrs: dict[str, str]
    api_attrs: dict[str, str]
    queries: list[str]
    tag: str | None


def parse_sentence(words: list[str]) -> Parsed:
    command, rest = words[0], words[1:]
    attrs: dict[str, str] = {}
    api_attrs: dict[str, str] = {}
    queries: list[str] = []
    tag: str | None = None
    bad: str | None = None
    for word in rest:
        if word.startswith(".tag="):
            tag = word[5:]
        elif word.startswith("?"):
            queries.append(word)
        elif word.startswith("="):
            key, _, value = word[1:].partition("=")
            if key.startswith("."):
                api_attrs[key] = value
            else:
                attrs[key] = value
        elif bad is None:
            bad = word
    parsed = Parsed(command, attrs, api_attrs, queries, tag)
    if bad is not None:
        raise _BadWord(parsed, bad)
    return parsed


class _BadWord(Exception):
    def __init__(self, parsed: Parsed, word: str) -> None:
        super().__init__(word)
        self.parsed = parsed
        self.word = word


def _trap(error: RosError) -> list[list[str]]:
    out: list[list[str]] = []
    first = ["!trap"]
    if error.category is not None:
        first.append(f"=category={error.category}")
    first.append(f"=message={error.message}")
    out.append(first)
    out.extend(["!trap", f"=message={m}"] for m in error.extra)
    return out


class Session:
    """State of one API connection."""

    def __init__(self, state: RouterState, peer_ip: str) -> None:
        self.state = state
        self.peer_ip = peer_ip
        self.user: str | None = None  # the logged-in user's name (rows get replaced on set)
        self.challenge: str | None = None

    # ------------------------------------------------------------------ entry point

    def handle(self, words: list[str]) -> Reply:
        tag: str | None = None
        try:
            parsed = parse_sentence(words)
            tag = parsed.tag
            if not parsed.command.startswith("/"):
                raise RosError("no such command", 0)
            reply = self.dispatch(parsed)
        except _BadWord as exc:
            tag = exc.parsed.tag
            reply = Reply(_trap(RosError(f"unknown parameter {exc.word}")) + [["!done"]])
        except RosError as exc:
            reply = Reply(_trap(exc) + [["!done"]])
        if tag is not None:
            for sentence in reply.sentences:
                if sentence[0] != "!fatal":
                    sentence.append(f".tag={tag}")
        return reply

    def dispatch(self, p: Parsed) -> Reply:
        if p.command == "/login":
            return self.login(p)
        if p.command == "/quit":
            return Reply([["!fatal", "session terminated on request"]], close=True)
        if self.user is None:
            raise RosError("not logged in")
        if p.command == "/cancel":
            return Reply([["!done"]])
        path, _, verb = p.command.rpartition("/")
        if verb in READ_VERBS:
            return self.print(path, p)
        self.require_write(path)
        return self.write(path, verb, p)

    # ------------------------------------------------------------------ login

    def login(self, p: Parsed) -> Reply:
        version = self.state.version_tuple
        legacy = version < (7,)
        name = p.attrs.get("name")
        if legacy and "response" in p.attrs:
            return self._legacy_response(name or "", p.attrs["response"])
        if legacy and (name is None or version < PLAIN_LOGIN_SINCE):
            # Pre-6.43 routers ignore a password and answer with a challenge.
            self.challenge = os.urandom(16).hex()
            return Reply([["!done", f"=ret={self.challenge}"]])
        user = self._user(name or "")
        if user is None or user.get("_password", "") != p.attrs.get("password", ""):
            raise RosError(LOGIN_FAILED)
        self.user = user["name"]
        return Reply([["!done"]])

    def _legacy_response(self, name: str, response: str) -> Reply:
        user = self._user(name)
        if user is None or self.challenge is None:
            raise RosError("cannot log in")
        digest = hashlib.md5(  # noqa: S324 - the legacy RouterOS login really is MD5
            b"\x00" + user.get("_password", "").encode() + bytes.fromhex(self.challenge),
            usedforsecurity=False,
        ).hexdigest()
        if response != "00" + digest:
            raise RosError("cannot log in")
        self.user = user["name"]
        return Reply([["!done"]])

    def _user(self, name: str) -> dict[str, str] | None:
        """An enabled user whose allowed addresses admit this client, else ``None``.

        A disallowed source address is reported exactly like a wrong password, so
        a client cannot tell which check failed.
        """
        with self.state.lock:
            for user in self.state.table("/user"):
                if user.get("name") != name or user.get("disabled") == "true":
                    continue
                if not V.address_in_list(self.peer_ip, user.get("address", "")):
                    return None
                return user
        return None

    def policies(self) -> set[str]:
        user = next((u for u in self.state.table("/user") if u.get("name") == self.user), None)
        if user is None:
            return set()
        group = next((g for g in self.state.table("/user/group") if g["name"] == user.get("group")), None)
        if group is None:
            return set()
        return {p for p in group.get("policy", "").split(",") if p and not p.startswith("!")}

    def require_write(self, path: str) -> None:
        needed = {"write"}
        if path.startswith("/user") or path == "/system/backup":
            needed.add("policy")
        if not needed <= self.policies():
            raise RosError("not enough permissions (9)")

    # ------------------------------------------------------------------ commands

    def print(self, path: str, p: Parsed) -> Reply:
        for key in p.attrs:
            if key not in PRINT_FLAGS and key != "count-only":
                raise unknown_parameter(key)
        for key in p.api_attrs:
            if key != ".proplist":
                raise unknown_parameter(key)
        proplist = p.api_attrs[".proplist"].split(",") if ".proplist" in p.api_attrs else None
        rows = self.state.print(path, proplist=proplist, query=p.queries)
        if "count-only" in p.attrs:
            return Reply([["!done", f"=ret={len(rows)}"]])
        sentences = [["!re", *(f"={k}={v}" for k, v in row.items())] for row in rows]
        if not rows and self.state.version_tuple >= (7, 18):
            sentences.append(["!empty"])
        sentences.append(["!done"])
        return Reply(sentences)

    def _ids(self, p: Parsed) -> str | None:
        ids = p.api_attrs.get(".id")
        numbers = p.attrs.pop("numbers", None)
        return ids if ids is not None else numbers

    def write(self, path: str, verb: str, p: Parsed) -> Reply:
        state = self.state
        for key in p.api_attrs:
            if key not in (".id",):
                raise unknown_parameter(key)
        if p.queries:
            raise RosError("queries are only allowed with print")  # ⚠ wording
        if path == "" and verb == "import":
            return self._import(p.attrs)
        if verb == "add":
            if ".id" in p.api_attrs:
                raise unknown_parameter(".id")
            return Reply([["!done", f"=ret={state.add(path, p.attrs)}"]])
        if verb == "set":
            ids = self._ids(p)
            state.set(path, ids, p.attrs)
        elif verb == "remove":
            ids = self._ids(p)
            if p.attrs:
                raise unknown_parameter(next(iter(p.attrs)))
            if ids is None:
                raise RosError("missing =.id=")
            state.remove(path, ids)
        elif verb == "move":
            numbers = self._ids(p)
            destination = p.attrs.pop("destination", None)
            if p.attrs:
                raise unknown_parameter(next(iter(p.attrs)))
            if numbers is None:
                raise RosError("missing =numbers=")  # ⚠ wording
            state.move(path, numbers, destination)
        elif verb in ("enable", "disable"):
            ids = self._ids(p)
            if ids is None:
                raise RosError("missing =.id=")
            state.enable(path, ids, disabled=verb == "disable")
        elif verb == "unset":
            ids = self._ids(p)
            prop = p.attrs.pop("value-name", None)
            if prop is None:
                raise RosError("missing =value-name=")  # ⚠ wording
            state.unset(path, ids, prop)
        elif verb == "run" and path == "/system/script":
            return self._run_script(self._ids(p))
        else:
            state.menu(path)  # unknown path -> "no such command or directory"
            state.extra_command(path, verb, p.attrs)
        return Reply([["!done"]])

    def _import(self, attrs: dict[str, str]) -> Reply:
        """``/import file-name=x.rsc``: run an uploaded script (librouteros ``Config.apply``)."""
        name = attrs.get("file-name", "")
        extra = set(attrs) - {"file-name", "verbose", "dry-run"}
        if extra:
            raise unknown_parameter(sorted(extra)[0])
        row = next((f for f in self.state.table("/file") if f.get("name") == name), None)
        if row is None:
            raise RosError("no such file")  # ⚠ wording
        if attrs.get("dry-run") in ("yes", "true"):
            raise RosError("failure: dry-run is not modelled by the simulator")
        try:
            run_script(self.state, row.get("contents", ""))
        except ScriptError as exc:
            raise RosError(str(exc), 3) from None
        return Reply([["!done"]])

    def _run_script(self, ids: str | None) -> Reply:
        if ids is None:
            raise RosError("missing =.id=")
        for script_id in self.state.resolve_ids("/system/script", ids):
            row = next(r for r in self.state.table("/system/script") if r[".id"] == script_id)
            row["run-count"] = str(int(row.get("run-count", "0")) + 1)
            try:
                run_script(self.state, row.get("source", ""))
            except ScriptError as exc:
                raise RosError(str(exc), 3) from None
        return Reply([["!done"]])
