"""Hub backends behind one interface, chosen by URL and imported lazily."""

from __future__ import annotations

from server.realtime.backends.base import Backend, SharedRedis


def backend_from_url(url: str | None, *, history: int) -> Backend:
    """``None`` or ``memory://``: in-process. ``redis://`` / ``rediss://``: shared through Redis."""
    if url is None or url.startswith("memory://"):
        from server.realtime.backends.memory import MemoryBackend

        return MemoryBackend(history=history)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from server.realtime.backends.redis import RedisBackend

        return RedisBackend(url, history=history)
    raise ValueError(f"unsupported hub URL {url!r}: use memory:// or redis://")


__all__ = ["Backend", "SharedRedis", "backend_from_url"]
