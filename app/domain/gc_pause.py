"""Pausing the cyclic garbage collector around whole-WAN builds.

Building a 10,000-peer WAN's topology, configs and findings allocates millions of small objects
that hold no reference cycles (tuples, prefixes, frozen dataclasses, strings): reference counting
frees every one of them. The cyclic collector, triggered by the allocations alone, would walk the
growing heap again and again and free nothing: about half the time of such a build.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """The cyclic collector off for the block, back on after it unless it was off already.

    Nested or concurrent blocks leave it on when any of them found it on (one that found it off
    does not turn it back on), so a web process is never left without it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
