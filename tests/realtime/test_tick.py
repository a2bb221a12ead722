"""The hub's tick controller (server/realtime/tick.py): fed measurements, it decides whether large
audiences are written in ticks and how long a tick is. No clock is read here: numbers in, decisions out."""

from __future__ import annotations

import sys

import pytest

from server.realtime.tick import EARLY_SECS, SATURATED, TickController, sched_wait


def _ticks(busy: float = 0.6, starved_secs: float = 0.0) -> TickController:
    """Ticks of 150 ms for audiences of 3 or more, once writing takes ``busy`` of the loop's time."""
    return TickController(secs=0.15, min_conns=3, busy=busy, starved_secs=starved_secs)


def test_ticks_begin_when_writing_takes_the_busy_share_and_stop_below_half_of_it() -> None:
    ticks = _ticks()
    seen = []
    now = 0.0
    for share in (0.5, 0.7, 0.4, 0.31, 0.29, 0.5, 0.6):
        now += 1.0
        ticks.window_writing = share
        ticks.end_window(now, 0.0, None)  # the loop otherwise idle
        seen.append(ticks.coalescing)
    assert seen == [False, True, True, True, False, False, True]
    assert ticks.window_writing == 0.0 and ticks.window_start == now


def test_ticks_also_while_the_loop_is_saturated_by_other_work() -> None:
    """A reconnect storm: welcomes fill the loop, writing alone stays under the busy share."""
    ticks = _ticks()
    cpu = 0.0
    seen = []
    now = 0.0
    for loop_share in (0.8, 0.95, 0.75, 0.65, 0.85, 0.95):
        now += 1.0
        cpu += loop_share
        ticks.window_writing = 0.2
        ticks.end_window(now, cpu, None)
        seen.append(ticks.coalescing)
    assert seen == [False, True, True, False, False, True]


def test_ticks_are_longer_while_the_loop_is_starved_of_cpu() -> None:
    """Two servers and the phones' clients on two cores: writing takes most of the wall clock but the
    loop's thread gets the CPU for only part of it. Then ticks are the longer starved length, until
    the thread gets the CPU for (nearly) all of its writing again; a server with the cores to itself
    (its CPU share above its writing share) keeps the short tick. This is the measure where the
    kernel does not count the thread's waits for a CPU."""
    ticks = _ticks(starved_secs=0.2)
    cpu = 0.0
    seen = []
    now = 0.0
    windows = [(0.7, 0.8), (0.8, 0.5), (0.5, 0.46), (0.5, 0.55)]
    windows += [(0.8, 0.7), (0.8, 0.5), (0.2, 0.1), (0.5, 0.3)]
    for writing, loop_share in windows:
        now += 1.0
        cpu += loop_share
        ticks.window_writing = writing
        ticks.end_window(now, cpu, None)
        seen.append((ticks.coalescing, ticks.starved))
    assert seen == [
        (True, False),  # busy, and the loop had the CPU for more than its writing
        (True, True),  # on the CPU for 0.5 of 0.8 s of writing
        (True, True),  # still short of its writing (0.46 < 0.5): stays
        (True, False),  # the CPU for all of its writing again
        (True, False),  # 0.7 of 0.8: not short enough (waited 0.1 < STARVED 0.15 of 0.8) to begin
        (True, True),
        (False, False),  # quiet: no ticks at all
        (False, False),  # writing under the busy share: starting needs ticks first
    ]
    # Without a longer starved tick configured, nothing changes.
    ticks.starved_secs = 0.0
    ticks.coalescing = True
    now += 1.0
    cpu += 0.3
    ticks.window_writing = 0.8
    ticks.end_window(now, cpu, None)
    assert (ticks.coalescing, ticks.starved) == (True, False)


def test_starved_by_the_kernel_s_count_of_waits_for_a_cpu() -> None:
    """Where the kernel counts the loop thread's waits for a CPU (schedstat), they decide: a thread
    that was off the CPU while writing because another thread of the process held the GIL did not
    wait for a CPU, and is not starved."""
    ticks = _ticks(starved_secs=0.2)
    cpu = wait = 0.0
    ticks.window_wait = 0.0
    seen = []
    now = 0.0
    # (writing share, loop CPU share, share of the window waiting for a CPU)
    windows = [(0.8, 0.5, 0.119), (0.8, 0.5, 0.121), (0.6, 0.5, 0.031), (0.6, 0.6, 0.029)]
    windows += [(0.3, 0.3, 0.2)]
    for writing, loop_share, waited in windows:
        now += 1.0
        cpu += loop_share
        wait += waited
        ticks.window_writing = writing
        ticks.end_window(now, cpu, wait)
        seen.append((ticks.coalescing, ticks.starved))
    assert seen == [
        (True, False),  # off the CPU 0.3 s of 0.8 s of writing, waiting for one only 0.119: the GIL
        (True, True),  # waited 0.121 >= 0.15 * 0.8
        (True, True),  # waited 0.031 >= 0.05 * 0.6: stays
        (True, False),  # waited 0.029 < 0.05 * 0.6: leaves
        (True, False),  # under the busy share: does not begin again
    ]
    assert ticks.window_wait == wait


def test_the_kernel_s_count_of_waits_for_a_cpu_is_read_on_linux() -> None:
    first = sched_wait()
    if not sys.platform.startswith("linux"):
        assert first is None
        return
    assert first is not None and first >= 0.0
    second = sched_wait()
    assert second is not None and second >= first


def test_the_tick_length_is_zero_until_ticking_then_short_or_starved() -> None:
    """``length()``: 0 (write at once) while not ticking or with no tick configured; the short tick
    while ticking; the starved one while starved."""
    ticks = _ticks(starved_secs=0.2)
    assert not ticks.coalescing and ticks.length() == 0.0
    ticks.coalescing = True
    assert ticks.length() == 0.15
    ticks.starved = True
    assert ticks.length() == 0.2
    assert TickController(secs=0.0, busy=0.0).length() == 0.0  # ticking always, but no tick


def test_with_no_busy_share_it_always_ticks_and_measures_nothing() -> None:
    """``busy`` 0: ticking from the start, and no window, however idle or starved, changes that."""
    ticks = _ticks(busy=0.0, starved_secs=0.3)
    assert ticks.coalescing and ticks.length() == 0.15
    for writing, cpu in ((0.0, 0.0), (0.9, 0.1), (0.0, 1.0)):
        ticks.window_writing = writing
        ticks.end_window(ticks.window_start + 1.0, ticks.window_cpu + cpu, None)
        assert (ticks.coalescing, ticks.starved) == (True, False)
        assert not ticks.begins_early(0.5)


def test_ticks_begin_early_only_when_writing_took_nearly_all_of_a_quarter_second() -> None:
    """Early begins need: not ticking yet, a busy share configured, at least ``EARLY_SECS`` into the
    window, and writing ``SATURATED`` of it so far (the boundary included)."""
    ticks = _ticks()
    ticks.window_writing = SATURATED * EARLY_SECS
    assert ticks.begins_early(EARLY_SECS)
    assert not ticks.begins_early(EARLY_SECS - 0.01)  # too soon
    ticks.window_writing = SATURATED * EARLY_SECS - 0.001
    assert not ticks.begins_early(EARLY_SECS)  # not busy enough
    ticks.window_writing = 0.3
    ticks.coalescing = True
    assert not ticks.begins_early(0.3)  # already ticking


@pytest.mark.parametrize(
    ("starved_secs", "cpu", "wait", "starved"),
    [
        (0.2, 0.29, None, False),  # on the CPU for all its writing
        (0.2, 0.15, None, True),  # off it for half its writing (no kernel count: the difference)
        (0.2, 0.15, 0.01, False),  # the kernel's count decides: the thread barely waited
        (0.2, 0.15, 0.1, True),
        (0.1, 0.0, 0.2, False),  # no starved tick longer than the short one: never starved
    ],
)
def test_early_ticks_are_starved_ticks_when_the_thread_waited_for_a_cpu(
    starved_secs: float, cpu: float, wait: float | None, starved: bool
) -> None:
    """0.29 s of writing 0.3 s into the window: ticks begin, starved or not by what the clocks say."""
    ticks = _ticks(starved_secs=starved_secs)
    ticks.window_writing, ticks.window_cpu = 0.29, 0.0
    ticks.window_wait = 0.0 if wait is not None else None
    assert ticks.begins_early(0.3)
    ticks.begin_early(0.3, cpu, wait)
    assert (ticks.coalescing, ticks.starved) == (True, starved)
    assert ticks.window_writing == 0.29  # the window goes on


def test_a_window_of_no_length_divides_by_nothing() -> None:
    """Two ends of a window at the same loop time: decided as a busy instant, without dividing by 0."""
    ticks = _ticks()
    ticks.window_writing = 0.001
    ticks.end_window(0.0, 0.0, None)
    assert ticks.coalescing and ticks.window_start == 0.0


def test_the_fallback_wait_is_writing_off_the_cpu_and_never_negative() -> None:
    """Without the kernel's count, the wait is the writing share spent off the CPU, floored at 0."""
    ticks = _ticks()
    assert ticks.waited(1.0, 0.8, 0.5, None) == pytest.approx(0.3)
    assert ticks.waited(1.0, 0.5, 0.8, None) == 0.0
    ticks.window_wait = 2.0
    assert ticks.waited(0.5, 0.8, 0.5, 2.1) == pytest.approx(0.2)  # the kernel's count, as a share
    assert ticks.waited(0.5, 0.8, 0.5, None) == pytest.approx(0.3)  # not read now: the fallback
