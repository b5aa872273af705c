"""Login, allowed source addresses, groups and the API service's address list."""

from __future__ import annotations

from typing import Any

import librouteros
import pytest
from librouteros.exceptions import ConnectionClosed, FatalError, MultiTrapError, TrapError
from librouteros.login import token

from . import testing
from .server import SimRouter
from .testing import PASSWORD, RawClient

# Shared fixtures (no conftest on purpose; see testing.py).
api = testing.api
sim = testing.sim


def test_login_ok_and_wrong_password(sim: SimRouter) -> None:
    conn = sim.connect()
    assert next(iter(conn.path("system", "identity")))["name"] == "MikroTik"
    conn.close()
    with pytest.raises(TrapError, match=r"invalid user name or password \(6\)"):
        sim.connect(password="nope")
    with pytest.raises(TrapError, match=r"invalid user name or password \(6\)"):
        sim.connect(username="ghost")


def test_disallowed_source_address_looks_like_wrong_password(sim: SimRouter, api: Any) -> None:
    users = api.path("user")
    admin_id = next(u[".id"] for u in users if u["name"] == "admin")
    users.add(name="ops", password="pw", group="full", address="10.0.0.0/8")
    with pytest.raises(TrapError, match=r"invalid user name or password \(6\)"):
        sim.connect(username="ops", password="pw")
    users.update(**{".id": "ops", "address": "10.0.0.0/8,127.0.0.0/8"})
    sim.connect(username="ops", password="pw").close()
    # Locking the admin itself out: the live session continues, new logins fail.
    users.update(**{".id": admin_id, "address": "192.168.88.0/24"})
    with pytest.raises(TrapError):
        sim.connect()
    assert [u["name"] for u in api.path("user")] == ["admin", "ops"]


def test_password_is_write_only(api: Any) -> None:
    row = next(iter(api.path("user")))
    assert "password" not in row and row["group"] == "full"


def test_read_group_cannot_write(sim: SimRouter, api: Any) -> None:
    api.path("user").add(name="viewer", password="v", group="read")
    viewer = sim.connect(username="viewer", password="v")
    try:
        assert len(list(viewer.path("ip", "route"))) == 3  # reading works
        with pytest.raises(TrapError, match=r"not enough permissions \(9\)"):
            viewer.path("ip", "route").add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge"})
        with pytest.raises(TrapError, match=r"not enough permissions \(9\)"):
            tuple(viewer("/system/identity/set", name="x"))
    finally:
        viewer.close()
    assert len(list(api.path("ip", "route"))) == 3
    assert next(iter(api.path("system", "identity")))["name"] == "MikroTik"


def test_write_group_cannot_manage_users(sim: SimRouter, api: Any) -> None:
    api.path("user").add(name="w", password="w", group="write")
    w = sim.connect(username="w", password="w")
    try:
        w.path("ip", "route").add(**{"dst-address": "10.1.0.0/16", "gateway": "bridge"})
        with pytest.raises(TrapError, match="not enough permissions"):
            w.path("user").add(name="evil", password="e", group="full")
    finally:
        w.close()


def test_commands_before_login_refused(sim: SimRouter) -> None:
    with RawClient(sim) as c:
        reply = c.call("/ip/route/print")
        assert reply == [["!trap", "=message=not logged in"], ["!done"]]
        assert c.login() == [["!done"]]
        assert c.call("/ip/route/print")[-1] == ["!done"]


def test_quit_is_fatal(sim: SimRouter) -> None:
    with RawClient(sim) as c:
        c.login()
        assert c.call("/quit") == [["!fatal", "session terminated on request"]]
        assert c.read() is None


def test_legacy_challenge_login_on_v6() -> None:
    with SimRouter(password=PASSWORD, version="6.42.1") as sim:
        conn = librouteros.connect("127.0.0.1", "admin", PASSWORD, port=sim.port, login_method=token)
        assert next(iter(conn.path("system", "resource")))["version"] == "6.42.1 (stable)"
        conn.close()
        with pytest.raises(TrapError, match="cannot log in"):
            librouteros.connect("127.0.0.1", "admin", "bad", port=sim.port, login_method=token)
        # Pre-6.43 ignores a plain password: "login" succeeds, the session is not logged in.
        plain = librouteros.connect("127.0.0.1", "admin", PASSWORD, port=sim.port)
        with pytest.raises(TrapError, match="not logged in"):
            list(plain.path("ip", "route"))
        plain.close()


def test_api_service_address_and_disable_refuse_connections(sim: SimRouter, api: Any) -> None:
    services = api.path("ip", "service")
    services.update(**{".id": "api", "address": "10.0.0.0/8"})
    with pytest.raises((ConnectionClosed, FatalError, OSError)):
        sim.connect().close()
    services.update(**{".id": "api", "address": "10.0.0.0/8,127.0.0.1/32"})
    sim.connect().close()
    assert sim.counters.refused == 1


def test_service_rows_can_only_be_set(api: Any) -> None:
    services = api.path("ip", "service")
    ports = {r["name"]: r["port"] for r in services}
    assert ports["api"] == 8728 and ports["api-ssl"] == 8729
    # Like an unknown path, an absent command draws two traps (librouteros: MultiTrapError).
    with pytest.raises(MultiTrapError, match="no such command or directory \\(add\\), no such command prefix"):
        services.add(name="x", port=1)
    with pytest.raises(MultiTrapError, match="no such command"):
        services.remove("api")
    with pytest.raises(TrapError, match="unknown parameter name"):
        services.update(**{".id": "api", "name": "apix"})
