"""Token bucket, pure: the caller passes the clock."""

from __future__ import annotations


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; ``take`` says whether one was available."""

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False
