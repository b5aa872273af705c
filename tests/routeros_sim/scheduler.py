"""``/system/scheduler`` driven by the virtual clock.

The deployer arms a scheduler entry as a commit-confirmed rollback ("if I do not
come back and remove you within N seconds, undo"), so tests need the entry to
actually fire.  Time is virtual: nothing happens until a test calls
``sim.advance(seconds)``; the CLI demo router advances it once a second.

Model (kept deliberately simple):

* an entry with ``interval > 0`` first fires ``interval`` after it was added (or
  after its interval was changed), then every ``interval``;
* ``start-time``/``start-date`` are stored but ignored; ``interval=0`` entries never fire;
* ``on-event`` naming a ``/system/script`` runs that script's ``source``,
  otherwise ``on-event`` itself is run as ``.rsc`` source by the executor;
* failures are appended to ``state.logs`` as ``("error", ...)`` and never raise;
* firing increments ``run-count``; the entry may remove itself.
"""

from __future__ import annotations

from . import values as V
from .script import ScriptError, run_script
from .state import RouterState


def advance(state: RouterState, seconds: float) -> list[str]:
    """Move the clock forward, firing due entries in time order; returns their output."""
    if seconds < 0:
        raise ValueError("time only moves forward")
    output: list[str] = []
    with state.lock:
        target = state.clock + seconds
        while True:
            due = [
                r
                for r in state.table("/system/scheduler")
                if "_next" in r and r.get("disabled") != "true" and float(r["_next"]) <= target
            ]
            if not due:
                break
            row = min(due, key=lambda r: float(r["_next"]))
            fire_at = float(row["_next"])
            state.clock = max(state.clock, fire_at)
            interval = V.parse_duration_ms(row.get("interval", "0s")) / 1000
            row["_next"] = repr(fire_at + interval)
            row["run-count"] = str(int(row.get("run-count", "0")) + 1)
            output.extend(_fire(state, row))
        state.clock = target
    return output


def _fire(state: RouterState, row: dict[str, str]) -> list[str]:
    event = row.get("on-event", "")
    script = next((s for s in state.table("/system/script") if s.get("name") == event), None)
    source = script.get("source", "") if script is not None else event
    if script is not None:
        script["run-count"] = str(int(script.get("run-count", "0")) + 1)
    try:
        return run_script(state, source)
    except ScriptError as exc:
        state.logs.append(("error", f"scheduler {row.get('name')}: {exc}"))
        return exc.output
