"""When the hub writes a large audience in ticks, and how long a tick is: pure arithmetic on what the
hub measured (its writing time, the loop thread's CPU and wait clocks, the loop's time), passed in.

Each write costs the same few microseconds of system time however many events it carries. While
writing takes ``busy`` of the loop's time or more (measured over windows of a second; ticks stop
below half of it), an audience of ``min_conns`` connections or more is written at most once per
``secs``: what arrives sooner waits for the tick and goes in the same write as whatever else arrives
by then; the first event after a quiet tick goes at once. At 10 events a second to 10,000 phones a
150 ms tick cuts the writes (and the phones' reads) by about a third for at most that much more
latency; a server with time to spare writes at once (docs/design.md, "Fan-out").
"""

from __future__ import annotations

# Share of a second the loop's thread spends on the CPU from which large audiences are written in
# ticks whatever the writing's own share (see TickController.end_window), and below which that stops.
SATURATED = 0.9
UNSATURATED = 0.7
# Ticks may begin this far into a measuring window, if writing took SATURATED of it so far.
EARLY_SECS = 0.25
# Starved: over a window in which writing took the busy share, the loop's thread waited for a CPU
# (runnable, the cores busy with other processes: another server, the clients) for at least this
# share of its writing time. Ticks are then the longer ``starved_secs`` until it waits less than a
# third of that.
STARVED = 0.15
# A measuring window lasts this long (loop time).
WINDOW_SECS = 1.0


def sched_wait() -> float | None:
    """Seconds the calling thread has spent runnable but waiting for a CPU, as the kernel counts them
    (Linux ``/proc/thread-self/schedstat``); None where that is not available. Unlike a comparison of
    wall and CPU time this leaves out time spent waiting for the GIL (another thread of this process
    running, which cores to spare would not help). The hub reads it and passes the value in."""
    try:
        with open("/proc/thread-self/schedstat", "rb") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


class TickController:
    """The tick's state and decisions. The hub adds its writing time to ``window_writing``, reads the
    tick with ``length()`` before a flush's writes, and hands over its clocks when a window ends
    (``end_window``) or may end early (``begins_early`` / ``begin_early``)."""

    __slots__ = (
        "busy",
        "coalescing",
        "min_conns",
        "secs",
        "starved",
        "starved_secs",
        "window_cpu",
        "window_start",
        "window_wait",
        "window_writing",
    )

    def __init__(
        self, *, secs: float = 0.0, min_conns: int = 0, busy: float = 0.0, starved_secs: float = 0.0
    ) -> None:
        # While writing fan-outs takes at least ``busy`` of the loop's time (0: always), an audience
        # of at least ``min_conns`` connections is written at most once per ``secs``.
        self.secs = secs
        self.min_conns = min_conns
        self.busy = busy
        # The tick while the loop is starved of CPU; 0 or less than ``secs``: none.
        self.starved_secs = starved_secs
        self.coalescing = busy <= 0
        self.starved = False
        self.window_start = 0.0  # loop time the current measuring window began
        self.window_writing = 0.0  # seconds spent writing during it
        self.window_cpu = 0.0  # the loop thread's CPU time when it began
        self.window_wait: float | None = None  # its wait for a CPU then (None: not known)

    def length(self) -> float:
        """Seconds between writes of an audience of ``min_conns`` or more now; 0: write at once."""
        if not self.coalescing or self.secs <= 0:
            return 0.0
        return self.starved_secs if self.starved else self.secs

    def begins_early(self, elapsed: float) -> bool:
        """Whether ticks begin ``elapsed`` seconds into a window, before it ends: writing nearly all
        the time already a quarter of the way in (a flash sale's first broadcasts to 10,000 phones),
        so ticking now rather than after a second of falling behind. (Only this clear a case: at
        5,000 phones the first broadcasts of a burst take ~60 % of the first quarter second, and
        ticking then costs them latency.)"""
        return (
            not self.coalescing
            and self.busy > 0
            and elapsed >= EARLY_SECS
            and self.window_writing >= SATURATED * elapsed
        )

    def begin_early(self, elapsed: float, cpu: float, wait: float | None) -> None:
        """Ticks begin ``elapsed`` seconds into the window (``begins_early`` said so); starved
        already (see ``end_window``): the longer tick from now on, too. ``cpu`` and ``wait`` are the
        loop thread's CPU and wait clocks now."""
        self.coalescing = True
        share = self.window_writing / elapsed
        cpu_share = (cpu - self.window_cpu) / elapsed
        self.starved = self._starving(share, self.waited(elapsed, share, cpu_share, wait))

    def end_window(self, now: float, cpu: float, wait: float | None) -> None:
        """End a measuring window at loop time ``now`` (``cpu`` and ``wait``: the loop thread's CPU
        and wait clocks): tick while writing took ``busy`` of it (half, once ticking), or while the
        loop had no time to spare (``SATURATED`` of it on the CPU; ``UNSATURATED`` to stop): during
        a reconnect storm welcomes, not writes, fill the loop, and every write saved is a welcome
        sooner.

        Ticks are longer while the loop is starved: writing took ``busy`` of the window and the
        thread waited for a CPU for at least ``STARVED`` of that time, the cores busy with other
        processes. The same writes in fewer, larger batches then leave those processes (on one
        machine, the phones' own reads) the CPU sooner. A process with cores to spare is not
        starved, so a single server keeps the short tick. Starved ticks last until the thread waits
        for a CPU less than a third of ``STARVED`` of its writing time. With ``busy`` 0 (always
        ticking) nothing is measured and ticks keep ``secs``."""
        elapsed = max(now - self.window_start, 1e-9)
        share = self.window_writing / elapsed
        loop_share = (cpu - self.window_cpu) / elapsed
        waited = self.waited(elapsed, share, loop_share, wait)
        if self.busy > 0:
            if self.coalescing:
                self.coalescing = share >= self.busy / 2 or loop_share >= UNSATURATED
            else:
                self.coalescing = share >= self.busy or loop_share >= SATURATED
            if not self.coalescing:
                self.starved = False
            elif self.starved:
                self.starved = waited >= STARVED / 3 * share
            else:
                self.starved = share >= self.busy and self._starving(share, waited)
        self.window_start, self.window_writing, self.window_cpu = now, 0.0, cpu
        self.window_wait = wait

    def _starving(self, share: float, waited: float) -> bool:
        """Whether starved ticks begin: there is a longer tick, and the thread waited for a CPU for
        ``STARVED`` of its writing time (both shares of the window so far)."""
        return self.starved_secs > self.secs and waited >= STARVED * share

    def waited(self, elapsed: float, writing: float, cpu: float, wait: float | None) -> float:
        """The share of the window so far the loop's thread waited for a CPU: the kernel's count
        where it keeps one, else the share of it spent writing (all CPU work) off the CPU. ``writing``
        and ``cpu`` are shares of the window; ``wait`` is the wait clock now."""
        if wait is not None and self.window_wait is not None:
            return (wait - self.window_wait) / elapsed
        return max(0.0, writing - cpu)
