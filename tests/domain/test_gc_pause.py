"""Whole-WAN builds pause the cyclic collector and hand what they built to its oldest generation:
fast (a 10,000-peer build's survivors are not walked by young collections), without leaking."""

from __future__ import annotations

import gc
import weakref

from app.domain.gc_pause import cycle_collection_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_a_large_build_leaves_goes_to_the_oldest_generation_unscanned() -> None:
    assert gc.isenabled()
    with cycle_collection_paused(promote_survivors=True):
        assert not gc.isenabled()
        survivor = [Node() for _ in range(1000)]
    assert gc.isenabled()
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(node) in oldest for node in survivor)
    assert not any(node is survivor[0] for node in gc.get_objects(generation=0))


def test_a_small_build_leaves_its_objects_young() -> None:
    # Young cyclic garbage (another request's, say) is then collected as soon as without the block.
    gc.collect()  # fresh counters: an older collection debt must not promote `survivor` on its own
    with cycle_collection_paused():
        survivor = [Node() for _ in range(100)]
    assert gc.isenabled()
    assert not any(o is survivor[0] for o in gc.get_objects(generation=2))


def test_cycles_made_in_a_large_build_are_still_collected() -> None:
    with cycle_collection_paused() as pause:
        pause.promote_survivors = True  # decided inside, as a build does once it knows its size
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # a cycle: reference counting alone never frees it
    gc.collect()
    assert gone() is None


def test_a_heap_frozen_on_purpose_stays_frozen() -> None:
    # The RQ worker freezes its heap before forking work horses; a job's build must not thaw it.
    kept = Node()
    gc.freeze()
    try:
        with cycle_collection_paused(promote_survivors=True):
            [Node() for _ in range(100)]
        # Frozen objects are in no generation the collector walks.
        assert gc.get_freeze_count() > 0
        assert all(o is not kept for o in gc.get_objects())
    finally:
        gc.unfreeze()
