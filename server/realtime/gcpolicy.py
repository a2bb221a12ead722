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


@dataclass
class GcPolicy:
    """Decides from connection counts; ``look`` is called about once a second."""

    opened_at_freeze: int = 0
    closed_at_freeze: int = 0
    frozen_conns: int = 0
    last_opened: int = 0
    freezes: int = 0
    refreezes: int = 0

    def decide(self, opened: int, closed: int) -> str | None:
        """``opened``/``closed``: connections opened and closed since start. "freeze", "refreeze" or None."""
        recent = opened - self.last_opened
        self.last_opened = opened
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
        what = self.decide(opened, closed)
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
