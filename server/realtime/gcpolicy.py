"""Garbage collection for a process that holds thousands of long-lived connections.

Each connection keeps ~90 objects that the cycle collector tracks (10,000 viewers: ~0.9 M). A full
(oldest-generation) collection walks all of them, 0.5-1.3 s on this class of machine, with the event
loop standing still: a claim rush or a broadcast that sets one off waits that long. Objects that live
as long as their connection need not be walked again and again, so once a wave of connections has
settled the policy moves everything alive into the permanent generation (``gc.freeze()``, the trick
Instagram published for forked servers). Reference counting still frees frozen objects as usual;
only cycles among them wait, until enough of the frozen connections have closed: then the policy
gives everything back to the collector, collects once and freezes what is still alive (typically
at the end of a stream, when the audience leaves).

While a wave is still arriving (a join or reconnect storm) nothing is frozen yet, and CPython's rule
(a full collection whenever the objects promoted since the last one reach a quarter of those it kept)
sets off a full collection every second or so, each longer than the one before: 11 of them, 40 to
520 ms, 2.4 s in all, while 10,000 phones reconnected (``BENCH_GC_LOG``). So while connections keep
opening, full collections wait (the young generations are still collected, and most cycles die
young); when the wave settles it is frozen as above. A wave that never settles (a large audience
with steady churn) lets one look's worth of full collections through every ``HOLD_MAX_SECS``.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass

log = logging.getLogger("livewall.gc")

# The policy looks this often.
GC_LOOK_SECS = 1.0
# Freeze when at least this many connections opened since the last freeze...
MIN_NEW = 1000
# ...and no more than this many opened in the last look (the wave has settled).
SETTLED = 50
# Collect and freeze again once this share of the connections frozen has closed since.
CLOSED_SHARE = 0.5
# Full collections wait at most this long in a row while a wave arrives.
HOLD_MAX_SECS = 30.0
# The oldest generation's threshold while they wait: never reached.
HELD_THRESHOLD = 1 << 30


@dataclass
class GcPolicy:
    """Decides from connection counts; ``look`` is called about once a second."""

    opened_at_freeze: int = 0
    closed_at_freeze: int = 0
    frozen_conns: int = 0
    last_opened: int = 0
    freezes: int = 0
    refreezes: int = 0
    # monotonic time since which full collections wait (a wave is arriving); None: they run
    holding_since: float | None = None
    _saved: tuple[int, int, int] | None = None  # thresholds to restore after a hold

    def decide(self, opened: int, closed: int, now: float = 0.0) -> str | None:
        """``opened``/``closed``: connections opened and closed since start; ``now``: monotonic time.
        Returns "freeze", "refreeze" or None, and sets ``holding_since`` while a wave arrives."""
        recent = opened - self.last_opened
        self.last_opened = opened
        if recent <= SETTLED:
            self.holding_since = None
        elif self.holding_since is None:
            self.holding_since = now
        elif now - self.holding_since >= HOLD_MAX_SECS:
            self.holding_since = None  # until the next look
        if self.frozen_conns and closed - self.closed_at_freeze >= max(1, self.frozen_conns * CLOSED_SHARE):
            self.frozen_conns = opened - closed
            self.opened_at_freeze, self.closed_at_freeze = opened, closed
            self.refreezes += 1
            return "refreeze"
        if opened - self.opened_at_freeze >= MIN_NEW and recent <= SETTLED:
            self.frozen_conns = opened - closed
            self.opened_at_freeze, self.closed_at_freeze = opened, closed
            self.freezes += 1
            return "freeze"
        return None

    def look(self, opened: int, closed: int) -> None:
        what = self.decide(opened, closed, time.monotonic())
        if what == "freeze":
            gc.freeze()
            log.info("froze %d objects (%d connections open)", gc.get_freeze_count(), self.frozen_conns)
        elif what == "refreeze":
            t = time.perf_counter()
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            log.info(
                "collected what closed connections left in %.0f ms; froze %d objects (%d connections open)",
                (time.perf_counter() - t) * 1000,
                gc.get_freeze_count(),
                self.frozen_conns,
            )
        self._hold(self.holding_since is not None)

    def _hold(self, hold: bool) -> None:
        """Make full collections wait (``hold``) or run again."""
        if hold and self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], HELD_THRESHOLD)
        elif not hold and self._saved is not None:
            now = gc.get_threshold()
            if now[2] == HELD_THRESHOLD:  # not changed by someone else meanwhile
                gc.set_threshold(now[0], now[1], self._saved[2])
            self._saved = None

    def release(self) -> None:
        """Let full collections run again (the policy stops looking: shutting down)."""
        self.holding_since = None
        self._hold(False)
