"""server.realtime.inbound: the meter that counts raw frames before parsing, on an explicit clock."""

from __future__ import annotations

import pytest
from websockets.client import ClientProtocol
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from server.realtime.inbound import InboundLimits, InboundMeter

LIMITS = InboundLimits(
    burst_frames=50,
    frames_per_sec=10.0,
    burst_bytes=64 * 1024,
    bytes_per_sec=32 * 1024,
    flood_close_secs=10.0,
)


def client_frame(text: bytes) -> bytes:
    """One text frame as a client sends it (masked: 4 more header bytes)."""
    proto = ClientProtocol(parse_uri("ws://x/"))
    proto.state = proto.state.OPEN  # type: ignore[assignment]
    proto.send_text(text)
    return b"".join(proto.data_to_send())


PING = client_frame(b'{"type":"ping"}')


def count_frames(data: bytes) -> int:
    """How many frames ``data`` holds, by websockets' own parser."""
    proto = ServerProtocol()
    proto.state = proto.state.OPEN  # type: ignore[assignment]
    proto.parser = proto.parse()  # the frame parser, past the handshake
    next(proto.parser)
    proto.receive_data(data)
    return len(proto.events_received())


def drain(meter: InboundMeter, data: bytes, now: float) -> tuple[float, float | None]:
    """Feed ``data`` as the protocol does (waiting when told), until all is admitted; return the time
    it took and when the meter first said the client was flooding (None: never)."""
    start, flooding_at = now, None
    while data:
        end, wait = meter.admit(data, now)
        data = data[end:]
        if data:
            assert wait > 0
            if flooding_at is None and meter.flooding(now):
                flooding_at = now
            now += wait
    return now - start, flooding_at


def test_frames_are_counted_from_their_headers() -> None:
    """The meter finds the same frame boundaries as websockets' parser, for every length encoding."""
    sizes = [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000]
    frames = [client_frame(b"x" * n) for n in sizes]
    limits = InboundLimits(100, 1.0, 10**9, 1.0, 10.0)
    meter = InboundMeter(limits, 0.0)
    data = b"".join(frames)
    assert meter.admit(data, 0.0) == (len(data), 0.0)
    assert meter.frame_tokens == 100 - len(sizes) == 100 - count_frames(data)
    assert meter.byte_tokens == 10**9 - len(data)


def test_a_burst_passes_then_the_rest_waits_for_the_rate() -> None:
    """60 frames at once: 50 pass, the 51st waits a tenth of a second (10 frames/s)."""
    meter = InboundMeter(LIMITS, 0.0)
    end, wait = meter.admit(PING * 60, 0.0)
    assert end == 50 * len(PING)
    assert wait == pytest.approx(0.1)
    end, wait = meter.admit(PING * 10, 0.1)
    assert (end, wait) == (len(PING), pytest.approx(0.1))


def test_a_frame_split_across_reads_is_charged_once() -> None:
    """Half a header waits for the rest (wait 0); a payload arriving in pieces is not charged again."""
    frame = client_frame(b"y" * 300)  # 2 + 2 length bytes + 4 mask bytes + 300
    meter = InboundMeter(LIMITS, 0.0)
    assert meter.admit(frame[:3], 0.0) == (0, 0.0)  # the 16-bit length is not in yet
    assert meter.admit(frame[:100], 0.0) == (100, 0.0)
    assert meter.frame_tokens == 49
    assert meter.admit(frame[100:] + PING, 0.0) == (len(frame) - 100 + len(PING), 0.0)
    assert meter.frame_tokens == 48
    assert meter.byte_tokens == 64 * 1024 - len(frame) - len(PING)


def test_bytes_are_limited_too() -> None:
    """Frames of 16 KiB (headers included): four fit the 64 KiB burst; the fifth waits for its bytes
    at 32 KiB/s."""
    big = client_frame(b"z" * (16 * 1024 - 8))
    assert len(big) == 16 * 1024
    meter = InboundMeter(LIMITS, 0.0)
    end, wait = meter.admit(big * 5, 0.0)
    assert end == 4 * len(big)
    assert wait == pytest.approx(0.5)


def test_a_frame_over_the_byte_burst_still_passes() -> None:
    """A frame bigger than the byte burst is charged the whole burst, so it waits, then goes on (to the
    parser's own size limit) instead of waiting forever."""
    limits = InboundLimits(50, 10.0, 1000, 1000.0, 10.0)
    meter = InboundMeter(limits, 0.0)
    huge = client_frame(b"h" * 5000)
    assert meter.admit(PING + huge, 0.0) == (len(PING), pytest.approx(len(PING) / 1000))
    assert meter.admit(huge, 1.0)[0] == len(huge)


def test_an_innocent_burst_after_a_stall_is_slowed_not_closed() -> None:
    """A phone back from a stall sends 140 queued frames at once: all are read within 9 s, and the
    meter never calls it flooding; a while later its next burst finds its budget again."""
    meter = InboundMeter(LIMITS, 0.0)
    took, flooding_at = drain(meter, PING * 140, 0.0)
    assert took == pytest.approx(9.0, abs=0.05)
    assert flooding_at is None
    later = 100.0
    took, flooding_at = drain(meter, PING * 140, later)
    assert flooding_at is None and meter.held_since is not None and meter.held_since >= later


def test_a_flood_is_called_so_after_the_close_delay() -> None:
    """A client that always has more to send is flooding once held back for 10 s without catching up."""
    meter = InboundMeter(LIMITS, 0.0)
    _took, flooding_at = drain(meter, PING * 1000, 0.0)
    assert flooding_at == pytest.approx(10.0, abs=0.2)


def test_big_frames_sent_too_fast_are_a_flood() -> None:
    """Few frames a second, but more bytes than allowed: held back on bytes, then flooding."""
    big = client_frame(b"z" * 16 * 1024)
    meter = InboundMeter(LIMITS, 0.0)
    _took, flooding_at = drain(meter, big * 40, 0.0)
    assert flooding_at == pytest.approx(10.0, abs=0.6)


def test_limits_must_be_positive() -> None:
    """A zero rate would never refill: refused when the settings are read."""
    with pytest.raises(ValueError, match="positive"):
        InboundLimits(50, 0.0, 1024, 1024.0, 10.0)
