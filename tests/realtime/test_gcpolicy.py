"""The GC policy freezes once a wave of connections has settled, and collects and freezes again when
most of them have gone."""

from __future__ import annotations

import gc

from server.realtime.gcpolicy import CLOSED_SHARE, MIN_NEW, SETTLED, GcPolicy


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
