"""A claim rush from many connections, shared by the embedded and the multi-process tests."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass

from tests.helpers import Client, join


@dataclass
class RushResult:
    granted: Counter[str]  # viewer id -> units granted
    refused: Counter[str]  # error code -> count
    codes: list[str]


async def rush(
    bases: list[tuple[str, str]], room_id: str, discount_id: int, *, viewers: int, claims_each: int
) -> RushResult:
    """``viewers`` phones, spread over the (http, ws) bases, each firing ``claims_each`` claims at
    once (without waiting for answers), then reading every answer."""
    phones: list[tuple[str, Client]] = []
    for i in range(viewers):
        http, ws = bases[i % len(bases)]
        joined = await join(http, room_id, f"rush{i}")
        phones.append(
            (joined["viewer_id"], await Client.connect(ws, "viewer", room_id, {"token": joined["token"]}))
        )
    granted: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    codes: list[str] = []

    async def fire(viewer_id: str, phone: Client) -> None:
        frames = [
            json.dumps({"type": "discount.claim", "id": f"r{n}", "data": {"id": discount_id}})
            for n in range(claims_each)
        ]
        for frame in frames:
            await phone.ws.send(frame)
        answered = 0
        while answered < claims_each:
            msg = await phone.recv(30)
            if msg["type"] == "ack":
                granted[viewer_id] += 1
                codes.append(msg["data"]["result"]["code"])
                answered += 1
            elif msg["type"] == "error":
                refused[msg["data"]["code"]] += 1
                answered += 1

    await asyncio.gather(*(fire(v, p) for v, p in phones))
    for _, phone in phones:
        await phone.close()
    return RushResult(granted, refused, codes)
