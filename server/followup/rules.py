"""Pure rules of follow-up messaging: journey specs, matching, waits, quiet hours, caps, retries.

No I/O here: the engine and the delivery loop call these with the data they loaded.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from server.errors import InvalidInput

CHANNELS = ("email", "sms", "push", "webhook", "inapp")
# "auto" picks, at send time, the first channel the contact can be reached on, in this order.
AUTO_ORDER = ("push", "email", "sms", "inapp")
# Events a journey can start on or end at (docs/followup.md lists what each means).
EVENT_KINDS = (
    "product.view",
    "product.details",
    "product.buy",
    "checkout.leave",
    "discount.claim",
    "question.asked",
    "draw.entered",
    "draw.won",
    "draw.claimed",
    "coupon.redeemed",
    "order.placed",
    "order.paid",
    "order.shipped",
    "order.delivered",
    "order.refunded",
    "order.reviewed",
    "checkout.abandoned",
)
KEY_BY = ("order_id", "product_id", "discount_id")
# What an entry event does while its journey is paused: held until the resume, or skipped (recorded).
WHILE_PAUSED = ("hold", "skip")
# The audiences a campaign can go to (campaigns.segment_people).
SEGMENTS = ("attended", "clicked_not_paid", "claimed_not_redeemed", "winners", "followers", "contacts")
MAX_STEPS = 20
MAX_WAIT_MINUTES = 90 * 24 * 60  # a follow-up three months later is a new campaign, not a wait
MAX_STALE_MINUTES = 30 * 24 * 60
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")

# Retries: exponential backoff with full jitter from this base, capped; then the dead-letter list.
RETRY_BASE_SECS = 30.0
RETRY_CAP_SECS = 3600.0
MAX_ATTEMPTS = 6
# A sale is attributed to the last message the contact got within this window before paying.
CONVERSION_WINDOW_MS = 72 * 3600 * 1000
# The circuit breaker looks at this many of a journey's latest final outcomes.
BREAKER_WINDOW = 20


def clean_slug(value: object, what: str = "key") -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise InvalidInput(f"{what} must be 1-40 characters of a-z, 0-9, - and _")
    return value


def clean_hhmm(value: object, what: str) -> str:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise InvalidInput(f"{what} must be a time of day as HH:MM (00:00 to 23:59)")
    return value


def clean_tz(value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64:
        raise InvalidInput("tz must be an IANA time zone such as Asia/Shanghai")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {value!r}") from None
    return value


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidInput(f"{what} must be a whole number from {lo} to {hi}")
    return value


def clean_while_paused(value: object) -> str:
    if value not in WHILE_PAUSED:
        raise InvalidInput(
            "while_paused must be hold (entries wait and go in when the journey resumes) "
            "or skip (they are recorded as skipped)"
        )
    return str(value)


def clean_step(step: object, index: int) -> dict[str, Any]:
    """One journey step: ``{"wait": {"minutes": N}}``, ``{"wait": {"until": "HH:MM"}}`` or
    ``{"send": {"channel", "template", "transactional"?, "stale_minutes"?, "coupon"?}}``."""
    where = f"steps[{index}]"
    if not isinstance(step, dict) or len(step) != 1:
        raise InvalidInput(f"{where} must be an object with one key: wait or send")
    if "wait" in step:
        wait = step["wait"]
        if isinstance(wait, dict) and set(wait) == {"minutes"}:
            return {"wait": {"minutes": _int(wait["minutes"], f"{where}.wait.minutes", 1, MAX_WAIT_MINUTES)}}
        if isinstance(wait, dict) and set(wait) == {"until"}:
            return {"wait": {"until": clean_hhmm(wait["until"], f"{where}.wait.until")}}
        raise InvalidInput(f'{where}.wait must be {{"minutes": N}} or {{"until": "HH:MM"}}')
    if "send" in step:
        send = step["send"]
        if not isinstance(send, dict):
            raise InvalidInput(f"{where}.send must be an object")
        channel = send.get("channel")
        if channel not in (*CHANNELS, "auto"):
            raise InvalidInput(f"{where}.send.channel must be one of {', '.join((*CHANNELS, 'auto'))}")
        out: dict[str, Any] = {
            "channel": channel,
            "template": clean_slug(send.get("template"), f"{where}.send.template"),
            "transactional": bool(send.get("transactional", False)),
        }
        if send.get("stale_minutes") is not None:
            out["stale_minutes"] = _int(
                send["stale_minutes"], f"{where}.send.stale_minutes", 1, MAX_STALE_MINUTES
            )
        if send.get("coupon") not in (None, ""):
            coupon = send["coupon"]
            if not isinstance(coupon, str) or len(coupon) > 40:
                raise InvalidInput(f"{where}.send.coupon must be text of at most 40 characters")
            out["coupon"] = coupon
        unknown = set(send) - {"channel", "template", "transactional", "stale_minutes", "coupon"}
        if unknown:
            raise InvalidInput(f"{where}.send has unknown fields: {', '.join(sorted(unknown))}")
        return {"send": out}
    raise InvalidInput(f"{where} must be an object with one key: wait or send")


def clean_journey(raw: object) -> dict[str, Any]:
    """A journey as the console sends it, validated; raises InvalidInput with what is wrong."""
    if not isinstance(raw, dict):
        raise InvalidInput("a journey must be a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        raise InvalidInput("name must be 1 to 120 characters")
    entry = raw.get("entry")
    if entry not in EVENT_KINDS:
        raise InvalidInput(f"entry must be one of {', '.join(EVENT_KINDS)}")
    goal = raw.get("goal") or None
    if goal is not None and goal not in EVENT_KINDS:
        raise InvalidInput(f"goal must be one of {', '.join(EVENT_KINDS)}")
    if goal == entry:
        raise InvalidInput("the goal must be another event than the entry")
    key_by = raw.get("key_by") or None
    if key_by is not None and key_by not in KEY_BY:
        raise InvalidInput(f"key_by must be one of {', '.join(KEY_BY)}")
    steps = raw.get("steps")
    if not isinstance(steps, list) or not 0 < len(steps) <= MAX_STEPS:
        raise InvalidInput(f"steps must be a list of 1 to {MAX_STEPS} steps")
    cleaned = [clean_step(s, i) for i, s in enumerate(steps)]
    if not any("send" in s for s in cleaned):
        raise InvalidInput("a journey needs at least one send step")
    conditions = raw.get("conditions") or {}
    if not isinstance(conditions, dict):
        raise InvalidInput("conditions must be an object")
    cond: dict[str, Any] = {}
    if conditions.get("product_ids"):
        ids = conditions["product_ids"]
        if (
            not isinstance(ids, list)
            or len(ids) > 100
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids)
        ):
            raise InvalidInput("conditions.product_ids must be a list of at most 100 product ids")
        cond["product_ids"] = ids
    if conditions.get("source") not in (None, "", "room", "shop"):
        raise InvalidInput("conditions.source must be room or shop")
    if conditions.get("source"):
        cond["source"] = conditions["source"]
    unknown = set(conditions) - {"product_ids", "source"}
    if unknown:
        raise InvalidInput(f"conditions has unknown fields: {', '.join(sorted(unknown))}")
    while_paused = raw.get("while_paused")
    return {
        # None: not given (a replaced journey keeps its choice; a new one holds).
        "while_paused": None if while_paused is None else clean_while_paused(while_paused),
        "key": clean_slug(raw.get("key")),
        "name": name.strip(),
        "entry": entry,
        "goal": goal,
        "key_by": key_by,
        "conditions": cond,
        "steps": cleaned,
    }


@dataclass(frozen=True)
class EventFacts:
    """What routing needs to know of one logged event."""

    kind: str
    source: str
    product_id: int | None
    order_id: str | None
    discount_id: int | None


def entry_key(key_by: str | None, event: EventFacts) -> str | None:
    """The instance key of an entry event: '' for unkeyed journeys, None if the key is missing
    (a journey keyed by order cannot start from an event without an order)."""
    if key_by is None:
        return ""
    value = getattr(event, key_by)
    return None if value is None else str(value)


def matches_entry(conditions: dict[str, Any], event: EventFacts) -> bool:
    if conditions.get("source") and conditions["source"] != event.source:
        return False
    ids = conditions.get("product_ids")
    return not (ids and event.product_id not in ids)


def goal_reached(key_by: str | None, instance_key: str, event: EventFacts) -> bool:
    """A goal event ends an instance of the same person when it names the same key, or names no
    key at all (an order paid with no product given ends every "did not pay" instance)."""
    if key_by is None or instance_key == "":
        return True
    value = getattr(event, key_by)
    return value is None or str(value) == instance_key


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Asia/Shanghai")


def _parse_hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def next_local_time(now_ms: int, hhmm: str, tz: str | None) -> int:
    """The next moment (strictly after now) when the clock in ``tz`` shows ``hhmm``, in epoch ms."""
    z = zone(tz)
    local = datetime.fromtimestamp(now_ms / 1000, z)
    target = datetime.combine(local.date(), _parse_hhmm(hhmm), z)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), _parse_hhmm(hhmm), z)
    return int(target.timestamp() * 1000)


def wait_until(step: dict[str, Any], now_ms: int, tz: str | None, time_scale: float = 1.0) -> int:
    """When a wait step ends. ``time_scale`` compresses fixed waits (tests, demos); local times are
    kept as they are, since compressing a clock time means nothing."""
    wait = step["wait"]
    if "minutes" in wait:
        return now_ms + max(1, int(wait["minutes"] * 60_000 * time_scale))
    return next_local_time(now_ms, wait["until"], tz)


def in_quiet_hours(now_ms: int, start: str, end: str, tz: str | None) -> bool:
    """Whether the contact's local clock is inside [start, end) (which may span midnight)."""
    if start == end:
        return False
    local = datetime.fromtimestamp(now_ms / 1000, zone(tz)).time().replace(second=0, microsecond=0)
    s, e = _parse_hhmm(start), _parse_hhmm(end)
    return s <= local < e if s < e else local >= s or local < e


def quiet_hold(now_ms: int, start: str, end: str, tz: str | None) -> int | None:
    """When a marketing message may go out: None now, else the end of the quiet hours."""
    if not in_quiet_hours(now_ms, start, end, tz):
        return None
    return next_local_time(now_ms, end, tz)


def capped(sent_day: int, sent_week: int, cap_day: int, cap_week: int) -> str | None:
    """Why a marketing message is over the frequency cap, or None if it may go."""
    if sent_day >= cap_day:
        return f"frequency cap: {sent_day} marketing messages in 24 h (cap {cap_day})"
    if sent_week >= cap_week:
        return f"frequency cap: {sent_week} marketing messages in 7 days (cap {cap_week})"
    return None


def retry_delay_secs(
    attempt: int, *, rng: random.Random | None = None, retry_after: float | None = None
) -> float:
    """Exponential backoff with full jitter (AWS architecture blog): uniform in [0, min(cap, base*2^n)],
    never sooner than the provider's Retry-After."""
    ceiling = min(RETRY_CAP_SECS, RETRY_BASE_SECS * 2 ** max(0, attempt - 1))
    delay = (rng or random).uniform(ceiling / 2, ceiling)  # half-jitter: spread, but never instant
    # A provider's Retry-After is honoured up to a day: beyond that the message is better dead-lettered.
    return max(delay, min(retry_after or 0.0, 86_400.0))


def breaker_trips(outcomes: list[bool], ratio: float, min_sends: int) -> bool:
    """Whether a journey's recent final outcomes (True = failed) cross its failure threshold."""
    if len(outcomes) < min_sends:
        return False
    return sum(outcomes) / len(outcomes) > ratio


_STOP_WORDS = {"stop", "unsubscribe", "cancel", "end", "quit", "stopall", "td", "退订", "取消", "t"}


def is_stop(text: str) -> bool:
    """Whether an inbound SMS asks to stop (English keywords and the Chinese 退订/TD convention)."""
    return text.strip().strip(".!。！").lower() in _STOP_WORDS
