"""Pausing the cyclic garbage collector around whole-WAN builds.

Building a 10,000-peer WAN's topology, configs and findings allocates millions of small objects
that hold no reference cycles (tuples, prefixes, frozen dataclasses, strings): reference counting
frees every one of them. The cyclic collector, triggered by the allocations alone, would walk the
growing heap again and again and free nothing: about half the time of such a build.

Pausing alone only postpones that walk: the objects that outlive the block (the topology kept in a
cache, the spec and hashes being stored) are all in the youngest generation when it ends, so the
next allocations scan them there, then again in the middle generation: 0.35-1.0 s at 10,000 peers.
A block building a large WAN therefore hands its survivors straight to the oldest generation,
which is scanned only by the full collections that already walk every long-lived object. A small
one leaves them where they are: whatever cyclic garbage is young then is freed as soon as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# From this many peers a WAN's build is large enough to have its survivors promoted: a 2,000-peer
# build leaves about a million objects, whose two young walks take ~0.1 s.
LARGE_WAN_PEERS = 2000


@dataclass
class Pause:
    """What the block decides while it runs: whether what it built is large (see the module)."""

    promote_survivors: bool = False


@contextmanager
def cycle_collection_paused(*, promote_survivors: bool = False) -> Iterator[Pause]:
    """The cyclic collector off for the block, back on after it unless it was off already.

    Nested or concurrent blocks leave it on when any of them found it on (one that found it off
    does not turn it back on), so a web process is never left without it. The block may set
    `promote_survivors` on what it gets once it knows how much it builds.
    """
    pause = Pause(promote_survivors)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield pause
    finally:
        if was_enabled:
            if pause.promote_survivors:
                promote_young_objects()
            gc.enable()


def promote_young_objects() -> None:
    """Move every object of the young generations into the oldest one without scanning them.

    `gc.freeze()` moves all tracked objects to the permanent generation and `gc.unfreeze()` moves
    that into the oldest one: two list splices, whatever the number of objects. Nothing leaks: a
    cycle among them is freed by the next full collection instead of a young one. Skipped when the
    process froze its heap on purpose (the RQ worker does before forking its work horses), as
    unfreezing would hand that heap back to the collector.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
