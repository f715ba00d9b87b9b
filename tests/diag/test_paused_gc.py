"""`paused_gc` moves what a pause built into the oldest generation (at most twice between two full
collections) and never leaves anything frozen: garbage built in a pause, reference cycles
included, is still collected, and loading again and again does not grow the heap."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest

from diag.model.loader import load_text, paused_gc

REPO = Path(__file__).resolve().parents[2]
SE = (
    '{"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": "a", '
    '"namespace": "apps"}, "spec": {"hosts": ["a.example.com"], "ports": [{"number": 443, "name": "tls"}]}}'
)


class Node:
    """A weak-referenceable object to build reference cycles with."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(autouse=True)
def nothing_frozen() -> None:
    """Each test starts with no frozen objects (else paused_gc leaves them alone and moves nothing)."""
    gc.unfreeze()


def generation_of(obj: object) -> int | None:
    """The generation holding `obj` (None: frozen or untracked), read with the collector off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        for generation in range(3):
            if any(o is obj for o in gc.get_objects(generation=generation)):
                return generation
        return None
    finally:
        if enabled:
            gc.enable()


def test_nothing_stays_frozen_after_a_load() -> None:
    gc.collect()  # a full collection: the next pause moves its objects
    result = load_text(SE)
    assert result.objects and gc.get_freeze_count() == 0
    assert generation_of(result.objects[0]) == 2


def test_a_cycle_built_in_a_pause_is_collected() -> None:
    gc.collect()
    with paused_gc():
        node = Node()
        ref = weakref.ref(node)
        del node
    assert ref() is not None and generation_of(ref()) == 2  # moved, not collected yet
    gc.collect()
    assert ref() is None


def test_objects_are_moved_at_most_twice_between_full_collections() -> None:
    gc.collect()
    with paused_gc():
        first = Node()
    with paused_gc():
        second = Node()
    with paused_gc():
        third = Node()
    assert generation_of(first) == 2 and generation_of(second) == 2  # a load and its snapshot
    assert generation_of(third) == 0  # left to the young collections, as without the move
    gc.collect()
    with paused_gc():
        fourth = Node()
    assert generation_of(fourth) == 2


def test_a_pause_inside_a_pause_moves_nothing_early() -> None:
    gc.collect()
    with paused_gc():
        with paused_gc():
            inner = Node()
        assert not gc.isenabled() and generation_of(inner) == 0
    assert gc.isenabled() and generation_of(inner) == 2


CHILD = textwrap.dedent(
    """
    import gc, json, sys
    sys.path.insert(0, sys.argv[1])
    from diag.model.loader import load_text

    class Holder:  # what a snapshot does: its objects, and a cache pointing back at it
        alive = 0

        def __init__(self, objects):
            self.objects = objects
            self.cache = {"self": self}
            Holder.alive += 1

        def __del__(self):
            Holder.alive -= 1

    text = '{"apiVersion": "v1", "kind": "List", "items": [' + ",".join([sys.argv[2]] * 200) + ']}'
    rounds = []
    for _ in range(300):
        holder = Holder(load_text(text, "mesh.json").objects)
        rounds.append([Holder.alive, len(gc.get_objects()) + gc.get_freeze_count()])
    print(json.dumps(rounds))
    """
)


def test_repeated_loads_do_not_grow_the_heap() -> None:
    # Each round drops the previous round's objects, held in a reference cycle: only the
    # collector frees them. Were they left frozen, or moved out of the collector's count every
    # round, the heap would grow by a round's objects (about 2k) each time.
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), SE], capture_output=True, text=True, check=True, timeout=120
    )
    alive, sizes = zip(*json.loads(done.stdout), strict=True)
    per_round = sizes[1] - sizes[0]
    assert per_round > 1000  # the objects of one round, held until the next
    assert max(alive[200:]) <= max(alive[50:100]) + 5  # rounds already dropped are freed
    assert max(sizes[200:]) < max(sizes[50:100]) + 5 * per_round
