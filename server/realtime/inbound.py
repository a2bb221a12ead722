"""Inbound limits per WebSocket connection, applied to raw frames before anything parses them.

Pure (the caller passes the bytes as they come off the wire, and the clock). Each frame costs one
frame token and its size in byte tokens, charged as soon as its header is in; the payload is not
looked at. When the tokens for the next frame are not there, the meter says how long until they are,
and the caller stops reading the socket for that long: a client over its limits is read more slowly,
never refused. A client that stays held back for ``flood_close_secs`` without ever catching up is
flooding, and is closed (docs/protocol.md, close 4029).

The frame header layout is RFC 6455 section 5.2: two bytes, then a 16- or 64-bit length when the
7-bit one is 126 or 127, then a 4-byte mask when the mask bit is set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InboundLimits:
    """Token buckets for frames and bytes, and how long a held-back client may stay behind."""

    burst_frames: int
    frames_per_sec: float
    burst_bytes: int
    bytes_per_sec: float
    flood_close_secs: float

    def __post_init__(self) -> None:
        if min(self.burst_frames, self.frames_per_sec, self.burst_bytes, self.bytes_per_sec) <= 0:
            raise ValueError("inbound limits must be positive (LIVEWALL_INBOUND_*)")


class InboundMeter:
    """One connection's budget. ``admit`` says how much of the bytes received may be parsed now."""

    __slots__ = ("byte_tokens", "frame_tokens", "held_since", "limits", "owed", "updated", "waiting")

    def __init__(self, limits: InboundLimits, now: float) -> None:
        self.limits = limits
        self.frame_tokens = float(limits.burst_frames)
        self.byte_tokens = float(limits.burst_bytes)
        self.updated = now
        self.owed = 0  # bytes still to come of a frame already admitted (and paid for)
        self.waiting = False  # the last call left a frame waiting for its tokens
        self.held_since: float | None = None  # held back since, without catching up in between

    def admit(self, data: bytes, now: float) -> tuple[int, float]:
        """``(end, wait)``: ``data[:end]`` may go to the parser now (``data`` starts where the last
        admitted bytes ended). When ``end < len(data)``, the frame at ``end`` waits ``wait`` seconds
        for its tokens, or, when ``wait`` is 0, for the rest of its header."""
        limits = self.limits
        elapsed = now - self.updated
        if elapsed > 0:
            self.frame_tokens = min(limits.burst_frames, self.frame_tokens + elapsed * limits.frames_per_sec)
            self.byte_tokens = min(limits.burst_bytes, self.byte_tokens + elapsed * limits.bytes_per_sec)
            self.updated = now
        first = not self.waiting
        size = len(data)
        pos = 0
        while True:
            if self.owed:
                take = min(self.owed, size - pos)
                pos += take
                self.owed -= take
                if self.owed:
                    break
            if size - pos < 2:
                break
            n = data[pos + 1] & 0x7F
            head = 2 + (4 if data[pos + 1] & 0x80 else 0) + (2 if n == 126 else 8 if n == 127 else 0)
            if size - pos < head:
                break
            if n == 126:
                n = int.from_bytes(data[pos + 2 : pos + 4], "big")
            elif n == 127:
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
            # A frame over the byte burst could never pass: it is charged the whole burst instead (one
            # over the frame size limit reaches the WebSocket parser, which closes with 1009).
            cost = min(head + n, limits.burst_bytes)
            if self.frame_tokens < 1 or self.byte_tokens < cost:
                self.waiting = True
                if self.held_since is None:
                    self.held_since = now
                wait = max(
                    (1 - self.frame_tokens) / limits.frames_per_sec,
                    (cost - self.byte_tokens) / limits.bytes_per_sec,
                )
                return pos, max(wait, 1e-3)
            if first:
                # This client's next frame found its budget waiting for it: it has caught up.
                self.held_since = None
                first = False
            self.frame_tokens -= 1
            self.byte_tokens -= cost
            self.owed = head + n
        self.waiting = False
        return pos, 0.0

    def flooding(self, now: float) -> bool:
        """Held back for ``flood_close_secs`` without catching up once."""
        return self.held_since is not None and now - self.held_since >= self.limits.flood_close_secs
