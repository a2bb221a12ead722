"""The Redis backend against a real redis-server: the shared contract, plus what several processes need."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from server.realtime.backends import backend_from_url
from server.realtime.backends import redis as redis_backend
from server.realtime.backends.base import Backend, SharedRedis
from server.realtime.backends.redis import RedisBackend
from tests.realtime.contract import ROOM, WAIT_SECS, BackendContract, Make, Recorder, append_n, envelope, item

pytestmark = pytest.mark.redis


@pytest.fixture
async def make(redis_clean: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Make]:
    """``await make(history=n, url=...)``: a started RedisBackend (one "process") with a Recorder."""
    # Reconnect quickly: the tests cut connections on purpose and should not wait half a second.
    monkeypatch.setattr(redis_backend, "RECONNECT_DELAY_SECS", 0.05)
    started: list[Backend] = []

    async def factory(history: int = 100, url: str = redis_clean) -> tuple[Backend, Recorder]:
        backend = RedisBackend(url, history=history)
        recorder = Recorder()
        backend.bind(recorder)
        await backend.start()
        started.append(backend)
        return backend, recorder

    yield factory
    for backend in started:
        await backend.stop()


@pytest.fixture
async def admin(redis_clean: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client, for poking at the server behind the backends' backs."""
    client = aioredis.Redis.from_url(redis_clean)
    yield client
    await client.aclose()


class TestRedisBackend(BackendContract):
    """The shared contract, on RedisBackend."""


class Outage:
    """A TCP proxy in front of redis-server that can drop every connection and refuse new ones."""

    def __init__(self, target: str) -> None:
        parsed = urlsplit(target)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 6379
        self.url = ""
        self.refused = 0
        self.refused_event = asyncio.Event()
        self._down = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.url = f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    def down(self) -> None:
        """Cut every open connection; refuse new ones until ``up()``."""
        self._down = True
        for writer in list(self._writers):
            writer.close()

    def up(self) -> None:
        self._down = False

    async def stop(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._down:
            self.refused += 1
            self.refused_event.set()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        for task in pumps:
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@pytest.fixture
async def outage(redis_clean: str) -> AsyncIterator[Outage]:
    proxy = Outage(redis_clean)
    await proxy.start()
    yield proxy
    await proxy.stop()


def test_redis_urls_select_the_redis_backend() -> None:
    """redis://, rediss:// and unix:// hub URLs select RedisBackend (imported lazily)."""
    for url in ("redis://127.0.0.1:1/0", "rediss://example.invalid:6380/0", "unix:///tmp/redis.sock"):
        assert isinstance(backend_from_url(url, history=10), RedisBackend)


def test_the_redis_backend_offers_its_client_as_shared_redis() -> None:
    """``SharedRedis``: the backend itself, whose client the limiter and the stock use."""
    backend = RedisBackend("redis://127.0.0.1:1/0", history=10)
    shared = backend.capability(SharedRedis)
    assert shared is backend and shared.redis is backend.redis


async def test_two_processes_share_one_gap_free_order(make: Make) -> None:
    """Concurrent appends from two instances get distinct seqs, and both deliver one identical order."""
    a, rec_a = await make()
    b, rec_b = await make()
    await asyncio.gather(a.watch(ROOM), b.watch(ROOM))

    async def burst(backend: Backend, tag: str) -> list[int]:
        seqs: list[int] = []
        for i in range(25):
            viewer_seq, screen_seq = await backend.append(
                ROOM, [item("viewer", f"{tag}{i}"), item("screen", f"{tag}{i}")]
            )
            assert viewer_seq == screen_seq  # one script call sequences both audiences atomically
            seqs.append(viewer_seq)
        return seqs

    from_a, from_b = await asyncio.gather(burst(a, "a"), burst(b, "b"))
    assert sorted(from_a + from_b) == list(range(1, 51))
    for audience in ("viewer", "screen"):
        assert await rec_a.wait_seq(50, audience) == list(range(1, 51))
        assert await rec_b.wait_seq(50, audience) == list(range(1, 51))
        assert rec_a.seen(audience) == rec_b.seen(audience)
    # Each event keeps the same seq in both audiences' streams here, since every append hit both.
    assert [e for _s, e in rec_a.seen("viewer")] == [e for _s, e in rec_a.seen("screen")]


async def test_replay_sees_events_appended_by_another_process(make: Make) -> None:
    """History is shared: one instance replays what another appended."""
    a, _rec = await make()
    b, _rec_b = await make()
    await append_n(a, 4)
    assert [s for s, _e in await b.replay(ROOM, "viewer", 1) or []] == [2, 3, 4]
    assert await b.replay(ROOM, "viewer", 4) == []


async def test_epoch_is_shared_and_survives_instances(make: Make) -> None:
    """Every instance, including one started later, reports the same epoch for a room."""
    a, _rec = await make()
    b, _rec_b = await make()
    epoch = (await a.head(ROOM, "viewer")).epoch
    await append_n(b, 2)
    c, _rec_c = await make()
    assert {(await x.head(ROOM, "viewer")).epoch for x in (a, b, c)} == {epoch}
    assert (await c.head(ROOM, "viewer")).seq == 2


async def test_epoch_is_set_by_the_first_append_too(make: Make, admin: aioredis.Redis) -> None:
    """A room whose first event comes before any head() still gets one epoch that head() then reports."""
    a, _rec = await make()
    await append_n(a, 1)
    stored = await admin.get(redis_backend._k(ROOM, "epoch"))
    assert stored is not None
    assert (await a.head(ROOM, "viewer")).epoch == stored.decode()


async def test_watch_delivers_only_events_after_the_head(make: Make) -> None:
    """Events before a process watches a room are left to snapshot/replay; later ones are delivered."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await append_n(b, 3)
    await a.watch(ROOM)
    await append_n(b, 2, tag="late")
    assert await rec_a.wait_seq(5) == [4, 5]


async def test_unwatched_rooms_are_not_delivered(make: Make) -> None:
    """After unwatch the process stops delivering that room; watching again starts from the new head."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await a.watch(ROOM)
    await append_n(b, 1)
    await rec_a.wait_seq(1)
    await a.unwatch(ROOM)
    await append_n(b, 2)
    await a.watch(ROOM)
    await append_n(b, 1)
    assert await rec_a.wait_seq(4) == [1, 4]


async def test_presence_sums_processes_and_reports_changes_once(make: Make) -> None:
    """Two instances' counts add up; only the report that sees a new total says it changed."""
    a, _rec = await make()
    b, _rec_b = await make()
    assert await a.presence(ROOM, 2) == (2, True)
    assert await b.presence(ROOM, 3) == (5, True)
    assert await a.presence(ROOM, 2) == (5, False)
    assert await b.presence(ROOM, 3) == (5, False)
    assert await a.presence_total(ROOM) == 5
    assert await b.presence(ROOM, 0) == (2, True)
    assert await a.presence(ROOM, 2) == (2, False)


async def test_a_count_computed_before_another_process_s_is_not_published_after_it(make: Make) -> None:
    """The cross-process race: a computes 1, b then computes 2 and publishes it; a's late publish of 1
    is refused, so phones keep the newer count (it used to arrive last and stay on screen)."""
    a, rec_a = await make()
    b, rec_b = await make()
    await a.watch(ROOM)
    await b.watch(ROOM)
    assert await a.presence(ROOM, 1) == (1, True)
    assert await b.presence(ROOM, 1) == (2, True)
    assert await b.append(ROOM, [item("viewer", "viewers=2")], if_presence=2) == [1]
    assert await a.append(ROOM, [item("viewer", "viewers=1")], if_presence=1) == []
    assert await a.append(ROOM, [item("viewer", "after")]) == [2]
    for rec in (rec_a, rec_b):
        assert await rec.wait_seq(2) == [1, 2]
        assert [env for _seq, env in rec.seen()] == [envelope("viewers=2", 1), envelope("after", 2)]


async def test_presence_of_a_dead_process_expires(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """An instance that stops reporting (crashed) stops counting once its report's TTL runs out."""
    monkeypatch.setattr(redis_backend, "PRESENCE_TTL_SECS", 1)
    a, _rec = await make()
    b, _rec_b = await make()
    await a.presence(ROOM, 2)
    assert await b.presence(ROOM, 3) == (5, True)
    # b now dies silently; a keeps reporting on its tick until b's report has expired.
    async with asyncio.timeout(WAIT_SECS):
        while (report := await a.presence(ROOM, 2))[0] != 2:
            assert report == (5, False)
            await asyncio.sleep(0.1)  # the tick interval, not a wait for a result
    assert report == (2, True)
    assert await a.presence_total(ROOM) == 2


async def test_presence_total_does_not_lapse_while_reported(make: Make, admin: aioredis.Redis) -> None:
    """An unchanged report refreshes the published total, so a steady room never reads as empty."""
    a, _rec = await make()
    assert await a.presence(ROOM, 4) == (4, True)
    last_key = redis_backend._k(ROOM, "preslast")
    await admin.pexpire(last_key, 1000)  # as if the count had stood still for a long time
    assert await a.presence(ROOM, 4) == (4, False)
    assert await admin.ttl(last_key) > 1
    assert await a.presence_total(ROOM) == 4


async def test_pubsub_killed_reconnects_without_losing_events(make: Make, admin: aioredis.Redis) -> None:
    """After CLIENT KILL TYPE pubsub, the events published meanwhile are delivered in order, no gap."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await a.watch(ROOM)
    await append_n(b, 2)
    await rec_a.wait_seq(2)
    assert await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub") >= 1
    await append_n(b, 5, tag="meanwhile")
    assert await rec_a.wait_seq(7) == list(range(1, 8))
    await append_n(b, 1, tag="after")
    assert await rec_a.wait_seq(8) == list(range(1, 9))


async def test_pubsub_killed_before_the_first_event_still_delivers(make: Make, admin: aioredis.Redis) -> None:
    """A subscription cut right after watch() still yields every later event exactly once."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await a.watch(ROOM)
    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await append_n(b, 3)
    assert await rec_a.wait_seq(3) == [1, 2, 3]


async def test_redis_outage_recovers_and_fills_the_gap(make: Make, outage: Outage) -> None:
    """Redis unreachable for several reconnect attempts: once back, the missed events arrive in order."""
    a, rec_a = await make(url=outage.url)
    b, _rec_b = await make()
    await a.watch(ROOM)
    await append_n(b, 1)
    await rec_a.wait_seq(1)
    outage.down()
    await append_n(b, 3, tag="during")
    async with asyncio.timeout(WAIT_SECS):
        while outage.refused < 3:  # the backend has tried, and failed, to reconnect a few times
            outage.refused_event.clear()
            await outage.refused_event.wait()
    outage.up()
    assert await rec_a.wait_seq(4) == [1, 2, 3, 4]
    await append_n(b, 1, tag="after")
    assert await rec_a.wait_seq(5) == [1, 2, 3, 4, 5]
    assert await a.ping()


async def test_ping_is_false_while_redis_is_unreachable(make: Make, outage: Outage) -> None:
    """Readiness reports the hub down while Redis cannot be reached, and up again after."""
    a, _rec = await make(url=outage.url)
    assert await a.ping()
    outage.down()
    assert not await a.ping()
    outage.up()
    assert await a.ping()


async def test_concurrent_joiners_share_one_subscription(make: Make) -> None:
    """Many watch() calls for one room at once all return, and each event is still delivered once."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await asyncio.gather(*[a.watch(ROOM) for _ in range(20)])
    await append_n(b, 3)
    assert await rec_a.wait_seq(3) == [1, 2, 3]


async def test_join_during_an_outage_completes_when_redis_returns(make: Make, outage: Outage) -> None:
    """watch() while Redis is unreachable waits; once Redis answers it subscribes and delivers."""
    a, rec_a = await make(url=outage.url)
    b, _rec_b = await make()
    outage.down()
    joining = asyncio.create_task(a.watch(ROOM))
    async with asyncio.timeout(WAIT_SECS):
        while outage.refused < 2:
            outage.refused_event.clear()
            await outage.refused_event.wait()
    assert not joining.done()
    outage.up()
    await joining
    await append_n(b, 2)
    assert await rec_a.wait_seq(2) == [1, 2]


async def test_join_gives_up_if_redis_stays_unreachable(
    make: Make, outage: Outage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watch() fails after WATCH_TIMEOUT_SECS instead of hanging a joining connection forever."""
    monkeypatch.setattr(redis_backend, "WATCH_TIMEOUT_SECS", 0.3)
    a, _rec = await make(url=outage.url)
    outage.down()
    with pytest.raises(TimeoutError):
        await a.watch(ROOM)


async def test_failing_consumer_does_not_stop_delivery(make: Make) -> None:
    """If the deliver callback raises for one event, the following events are still delivered."""
    a, rec_a = await make()
    b, _rec_b = await make()
    calls = 0

    async def flaky(room_id: str, audience: str, seq: int, envelope: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("consumer bug")
        await rec_a(room_id, audience, seq, envelope)

    a.bind(flaky)
    await a.watch(ROOM)
    await append_n(b, 3)
    assert await rec_a.wait_seq(3) == [2, 3]


async def test_foreign_message_on_the_channel_is_ignored(make: Make, admin: aioredis.Redis) -> None:
    """A malformed publish on a room's channel is skipped; the room's events keep flowing."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await a.watch(ROOM)
    await admin.publish(redis_backend._channel(ROOM), b"not an event")
    await append_n(b, 2)
    assert await rec_a.wait_seq(2) == [1, 2]


class _NoStream:
    """Stands in for the stream read: fails the test if replay goes to Redis for it."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.calls = 0

    async def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return await self.real(*args, **kwargs)  # type: ignore[operator]


async def test_a_resume_storm_replays_from_memory_what_the_process_delivered(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events this process delivered are replayed from memory, exactly as the stream holds them."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await append_n(b, 2, tag="before")  # before the watch: only the stream has them
    await a.watch(ROOM)
    await append_n(b, 6)
    await rec_a.wait_seq(8)
    from_stream = await b.replay(ROOM, "viewer", 0)
    assert from_stream is not None and [s for s, _e in from_stream] == list(range(1, 9))
    assert isinstance(a, RedisBackend)
    xrange = _NoStream(a.redis.xrange)
    monkeypatch.setattr(a.redis, "xrange", xrange)
    for after in range(2, 8):
        assert await a.replay(ROOM, "viewer", after) == from_stream[after:]
    assert xrange.calls == 0
    # Further back than it delivered: read from the stream once, which extends the run backwards.
    assert await a.replay(ROOM, "viewer", 0) == from_stream
    assert xrange.calls == 1
    assert await a.replay(ROOM, "viewer", 1) == from_stream[1:]
    assert await a.replay(ROOM, "viewer", 0) == from_stream
    assert xrange.calls == 1
    # At the head, and beyond it, the answer is Redis's as before.
    assert await a.replay(ROOM, "viewer", 8) == []
    assert await a.replay(ROOM, "viewer", 9) is None


async def test_the_replay_run_follows_new_events_and_keeps_only_the_history(make: Make) -> None:
    """The run grows with every delivered event, never holds more than the history, stays gap-free."""
    a, rec_a = await make(history=5)
    await a.watch(ROOM)
    await append_n(a, 9)
    await rec_a.wait_seq(9)
    assert [s for s, _e in await a.replay(ROOM, "viewer", 4) or []] == [5, 6, 7, 8, 9]
    assert await a.replay(ROOM, "viewer", 3) is None  # seq 4 is beyond the history, in memory and in Redis
    await append_n(a, 1, tag="new")
    await rec_a.wait_seq(10)
    assert await a.replay(ROOM, "viewer", 8) == rec_a.seen()[8:]


async def test_replay_after_a_pubsub_gap_matches_the_stream(make: Make, admin: aioredis.Redis) -> None:
    """A subscription cut and caught up from the stream leaves a run that replays like the stream."""
    a, rec_a = await make()
    b, _rec_b = await make()
    await a.watch(ROOM)
    await append_n(b, 2)
    await rec_a.wait_seq(2)
    await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await append_n(b, 4, tag="meanwhile")
    await rec_a.wait_seq(6)
    for after in range(6):
        assert await a.replay(ROOM, "viewer", after) == await b.replay(ROOM, "viewer", after)


async def test_a_connect_storm_waits_for_pooled_connections_instead_of_failing(
    make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of concurrent head reads with a pool of 4 connections all succeed (they queue)."""
    monkeypatch.setattr(redis_backend, "REDIS_POOL_SIZE", 4)
    backend, _rec = await make()
    await append_n(backend, 3)
    heads = await asyncio.gather(*(backend.head(ROOM, "viewer") for _ in range(300)))
    assert {h.seq for h in heads} == {3}
    assert isinstance(backend, RedisBackend)
    assert backend.redis.connection_pool.max_connections == 4


def _count_pipelines(backend: RedisBackend, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """From now on, one entry per pipeline the backend opens."""
    calls: list[int] = []
    pipeline = backend.redis.pipeline

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return pipeline(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(backend.redis, "pipeline", counted)
    return calls


async def test_a_watched_room_answers_head_from_memory(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once watching, head() is the process's delivered seq with the epoch read at most once a
    second: a connect storm does not ask Redis once per connection. Unwatched rooms ask Redis."""
    a, rec_a = await make()
    b, _rec_b = await make()
    assert isinstance(a, RedisBackend)
    await a.watch(ROOM)
    first = await a.head(ROOM, "viewer")  # reads the epoch
    await append_n(b, 3)
    await rec_a.wait_seq(3)

    def no_pipeline(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("head() went to Redis")

    monkeypatch.setattr(a.redis, "pipeline", no_pipeline)
    assert await a.head(ROOM, "viewer") == redis_backend.Head(first.epoch, 3)
    assert await a.head(ROOM, "host") == redis_backend.Head(first.epoch, 0)
    monkeypatch.undo()
    monkeypatch.setattr(redis_backend, "EPOCH_CACHE_SECS", 0.0)
    await a._read_head(ROOM, "viewer")  # the epoch cached with no time left: the next head() asks
    calls = _count_pipelines(a, monkeypatch)
    assert await a.head(ROOM, "viewer") == redis_backend.Head(first.epoch, 3)
    assert calls == [1]
    assert (await a.head("elsewhere", "viewer")).seq == 0 and calls == [1, 1]


async def _watched_with_due_epoch(
    make: Make, monkeypatch: pytest.MonkeyPatch, n: int
) -> tuple[RedisBackend, str]:
    """A backend watching ROOM after n events, its epoch cached with no time left; and that epoch."""
    a, rec_a = await make()
    assert isinstance(a, RedisBackend)
    await a.watch(ROOM)
    await append_n(a, n)
    await rec_a.wait_seq(n)
    monkeypatch.setattr(redis_backend, "EPOCH_CACHE_SECS", 0.0)
    return a, (await a._read_head(ROOM, "viewer")).epoch


async def test_concurrent_heads_share_one_epoch_read(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reconnect storm in a watched room whose epoch is due again: one read, shared by all."""
    a, epoch = await _watched_with_due_epoch(make, monkeypatch, 2)
    calls = _count_pipelines(a, monkeypatch)
    heads = await asyncio.gather(*(a.head(ROOM, "viewer") for _ in range(200)))
    assert set(heads) == {redis_backend.Head(epoch, 2)}
    assert calls == [1]
    # A caller giving up (a phone that left) does not cancel the read for the others.
    waiting = [asyncio.ensure_future(a.head(ROOM, "viewer")) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[0].cancel()
    assert [await w for w in waiting[1:]] == [redis_backend.Head(epoch, 2)] * 2
    assert len(calls) == 2 and not a._epoch_reads


async def test_a_new_epoch_comes_with_the_seq_redis_has(make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis lost the room (restart without persistence) while this process still holds the old
    head: the first head() that sees the new epoch takes the seq from Redis too, never the new epoch
    with the old numbering."""
    a, old_epoch = await _watched_with_due_epoch(make, monkeypatch, 3)
    keys = [redis_backend._k(ROOM, "epoch"), *(redis_backend._k(ROOM, "seq", x) for x in ("viewer", "host"))]
    await a.redis.delete(*keys)  # what a restarted Redis without persistence has
    head = await a.head(ROOM, "viewer")
    assert head.epoch != old_epoch and head.seq == 0
