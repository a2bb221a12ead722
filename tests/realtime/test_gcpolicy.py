"""The GC policy freezes once a wave of connections has settled, collects and freezes again when most
of them have gone, and holds full collections back while a wave arrives."""

from __future__ import annotations

import gc
import itertools

from server.realtime.gcpolicy import CLOSED_SHARE, HELD_THRESHOLD, HOLD_MAX_SECS, MIN_NEW, SETTLED, GcPolicy


def test_freezes_a_settled_wave_only() -> None:
    policy = GcPolicy()
    assert policy.decide(opened=10, closed=0) is None  # a few connections: nothing to gain
    assert policy.decide(opened=MIN_NEW + 500, closed=0) is None  # still arriving
    assert policy.decide(opened=MIN_NEW + 500 + SETTLED, closed=0) == "freeze"  # settled
    assert policy.frozen_conns == MIN_NEW + 500 + SETTLED
    assert policy.decide(opened=MIN_NEW + 500 + SETTLED, closed=0) is None  # done once
    # A second wave as large as MIN_NEW freezes again once it settles.
    opened = 2 * MIN_NEW + 600
    assert policy.decide(opened=opened, closed=0) is None
    assert policy.decide(opened=opened, closed=0) == "freeze"
    assert policy.freezes == 2


def test_refreezes_when_most_frozen_connections_have_closed() -> None:
    policy = GcPolicy()
    policy.decide(opened=4000, closed=0)
    assert policy.decide(opened=4000, closed=0) == "freeze"
    some = int(4000 * CLOSED_SHARE) - 1
    assert policy.decide(opened=4000, closed=some) is None
    assert policy.decide(opened=4000, closed=some + 1) == "refreeze"
    assert policy.frozen_conns == 4000 - some - 1
    assert policy.decide(opened=4000, closed=some + 1) is None
    assert policy.refreezes == 1


def test_look_freezes_and_refreezes() -> None:
    policy = GcPolicy()
    try:
        policy.look(opened=MIN_NEW, closed=0)  # arriving
        assert policy.freezes == 0
        policy.look(opened=MIN_NEW, closed=0)  # settled
        assert policy.freezes == 1 and gc.get_freeze_count() > 0
        policy.look(opened=MIN_NEW, closed=MIN_NEW)  # everyone left
        assert policy.refreezes == 1
    finally:
        gc.unfreeze()


def test_holds_full_collections_while_a_wave_arrives() -> None:
    policy = GcPolicy()
    assert policy.decide(opened=SETTLED, closed=0, now=0.0) is None
    assert policy.holding_since is None  # a trickle is no wave
    policy.decide(opened=SETTLED + 600, closed=0, now=1.0)
    assert policy.holding_since == 1.0
    policy.decide(opened=SETTLED + 1200, closed=0, now=2.0)
    assert policy.holding_since == 1.0  # still arriving: still holding
    assert policy.decide(opened=SETTLED + 1200, closed=0, now=3.0) == "freeze"
    assert policy.holding_since is None  # settled: frozen, collections run again


def test_a_wave_that_never_settles_lets_collections_through_now_and_then() -> None:
    policy = GcPolicy()
    opened, now = 0, 0.0
    held: list[bool] = []
    while now <= 2 * HOLD_MAX_SECS + 4:
        opened += 10 * SETTLED
        policy.decide(opened=opened, closed=0, now=now)
        held.append(policy.holding_since is not None)
        now += 1.0
    free = [i for i, h in enumerate(held) if not h]
    assert free and len(free) <= 3  # one look in every HOLD_MAX_SECS
    assert all(b - a > HOLD_MAX_SECS for a, b in itertools.pairwise(free))


def test_look_sets_and_restores_the_threshold() -> None:
    before = gc.get_threshold()
    policy = GcPolicy()
    try:
        policy.look(opened=0, closed=0)
        policy.look(opened=10 * SETTLED, closed=0)  # a wave
        assert gc.get_threshold() == (before[0], before[1], HELD_THRESHOLD)
        policy.look(opened=10 * SETTLED, closed=0)  # settled (too small to freeze)
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_release_restores_only_what_the_hold_changed() -> None:
    before = gc.get_threshold()
    policy = GcPolicy()
    try:
        policy.look(opened=0, closed=0)
        policy.look(opened=10 * SETTLED, closed=0)  # a wave: held
        assert gc.get_threshold()[2] == HELD_THRESHOLD
        policy.release()  # the loop is cancelled mid-wave (shutdown)
        assert gc.get_threshold() == before and policy.holding_since is None
        policy.look(opened=20 * SETTLED, closed=0)  # held again...
        gc.set_threshold(before[0], before[1], 7)  # ...and someone else sets their own threshold
        policy.release()
        assert gc.get_threshold()[2] == 7  # theirs is kept
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
