"""A protocol-level MikroTik RouterOS simulator for WireWAN's tests and demo.

librouteros talks to it unchanged over TCP.  Typical use::

    from tests.routeros_sim import SimRouter

    with SimRouter(password="secret", version="7.16.2") as sim:
        api = sim.connect()               # librouteros.connect(...) to this router
        ...
        api.close()
        assert sim.counters.writes == 0
        sim.run_script(text)              # the .rsc executor on the same state

See ``README`` sections in the module docstrings: :mod:`.server` (SimRouter,
counters), :mod:`.faults`, :mod:`.script` (supported .rsc), :mod:`.scheduler`,
:mod:`.state` (dump/normalized_dump), :mod:`.defconf` (start states).
"""

from .errors import ProtocolViolation, RosError
from .faults import CommandFault, Faults
from .script import ScriptError
from .server import CommandRecord, Counters, SimRouter, running_router
from .state import RouterState

__all__ = [
    "CommandFault",
    "CommandRecord",
    "Counters",
    "Faults",
    "ProtocolViolation",
    "RosError",
    "RouterState",
    "ScriptError",
    "SimRouter",
    "running_router",
]
