"""Follow-up on the wire: the JSON bodies of the console and of the phone parsed into typed commands,
and rows shaped into the JSON they read. The only module of follow-up where raw dicts come and go;
the messages of refusals are part of the API (docs/api.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from server import text
from server.errors import InvalidInput
from server.followup import contacts, rules, templates
from server.storage.followup import (
    Alert,
    Campaign,
    Contact,
    FollowupSettings,
    Journey,
    Message,
    PausedEntry,
    Template,
)
from server.storage.models import IntentEvent

# What a journey's entries became while it was paused (console: the journey's card).
ENTRY_STATUSES = ("held", "entered", "goal", "skipped")
SETTING_FIELDS = (
    "quiet_start",
    "quiet_end",
    "cap_per_day",
    "cap_per_week",
    "failure_pause_ratio",
    "webhook_url",
    "utm",
    "utm_source",
)
UTM_SOURCE = re.compile(r"[A-Za-z0-9_.-]{1,40}")
# The browsers' push services. The endpoint comes from the browser, and the server will POST to it:
# any other host would let a page make the server call an address of its choice.
PUSH_SERVICES = (
    ".googleapis.com",  # Chrome, Edge on Android, Samsung
    ".push.services.mozilla.com",  # Firefox
    ".notify.windows.com",  # Edge on Windows
    ".push.apple.com",  # Safari
)

Json = dict[str, Any]


# --- the console's commands ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsChange:
    """The settings a PUT names, cleaned; ``webhook_url`` (when it sets one) is still to be checked
    against the outbound rules."""

    values: Mapping[str, str | int | float | None]
    webhook_url: str | None


def parse_settings(body: Json) -> SettingsChange:
    unknown = set(body) - set(SETTING_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown settings: {', '.join(sorted(unknown))}")
    values: dict[str, str | int | float | None] = {}
    for key in ("quiet_start", "quiet_end"):
        if key in body:
            values[key] = rules.clean_hhmm(body[key], key)
    for key in ("cap_per_day", "cap_per_week"):
        if key in body:
            v = body[key]
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100:
                raise InvalidInput(f"{key} must be a whole number from 0 to 100")
            values[key] = v
    if "failure_pause_ratio" in body:
        v = body["failure_pause_ratio"]
        if not isinstance(v, int | float) or isinstance(v, bool) or not 0 < v <= 1:
            raise InvalidInput("failure_pause_ratio must be a number above 0 and at most 1")
        values["failure_pause_ratio"] = float(v)
    url = None
    if "webhook_url" in body:
        url = body["webhook_url"] or None
        if url is not None and (
            not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 1000
        ):
            raise InvalidInput("webhook_url must be an http(s) URL")
        values["webhook_url"] = url
    if "utm" in body:
        if not isinstance(body["utm"], bool):
            raise InvalidInput("utm must be true or false")
        values["utm"] = body["utm"]
    if "utm_source" in body:
        source = body["utm_source"] or None
        if source is not None and (not isinstance(source, str) or not UTM_SOURCE.fullmatch(source)):
            raise InvalidInput("utm_source must be 1 to 40 letters, digits, '-', '_' or '.'")
        values["utm_source"] = source
    return SettingsChange(values, url)


@dataclass(frozen=True)
class JourneyStatus:
    status: str | None  # active | paused
    while_paused: str | None  # hold | skip


def parse_journey_status(body: Json) -> JourneyStatus:
    status, while_paused = body.get("status"), body.get("while_paused")
    if status is None and while_paused is None:
        raise InvalidInput("give status (active or paused), while_paused (hold or skip), or both")
    if status is not None and status not in ("active", "paused"):
        raise InvalidInput("status must be active or paused")
    if while_paused is not None:
        while_paused = rules.clean_while_paused(while_paused)
    return JourneyStatus(status, while_paused)


@dataclass(frozen=True)
class TemplateText:
    subject: str | None
    body: str


def parse_template_text(body: Json) -> TemplateText:
    subject, text_ = body.get("subject") or None, body.get("body")
    if subject is not None and not isinstance(subject, str):
        raise InvalidInput("subject must be text")
    if not isinstance(text_, str) or not text_.strip():
        raise InvalidInput("body must be the message text")
    templates.check_size(subject, text_)  # the rest is checked by rendering it, in a worker process
    return TemplateText(subject, text_)


@dataclass(frozen=True)
class TemplateSpec:
    key: str
    channel: str  # "*" for any
    locale: str
    text: TemplateText


def parse_template(body: Json) -> TemplateSpec:
    key = rules.clean_slug(body.get("key"), "key")
    channel = body.get("channel") or "*"
    if channel not in (*rules.CHANNELS, "*"):
        raise InvalidInput("channel must be * (any) or one of " + ", ".join(rules.CHANNELS))
    locale = body.get("locale")
    if locale not in contacts.LOCALES:
        raise InvalidInput(f"locale must be one of {', '.join(contacts.LOCALES)}")
    return TemplateSpec(key, channel, locale, parse_template_text(body))


@dataclass(frozen=True)
class NewCampaign:
    name: str
    segment: str
    channel: str
    template: str
    send_ms: int


def parse_campaign(body: Json, now_ms: int) -> NewCampaign:
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 120:
        raise InvalidInput("name must be 1 to 120 characters")
    if body.get("segment") not in rules.SEGMENTS:
        raise InvalidInput(f"segment must be one of {', '.join(rules.SEGMENTS)}")
    if body.get("channel") not in (*rules.CHANNELS, "auto"):
        raise InvalidInput("channel must be auto or one of " + ", ".join(rules.CHANNELS))
    template = rules.clean_slug(body.get("template"), "template")
    send_ms = body.get("send_ms") or now_ms
    if (
        not isinstance(send_ms, int)
        or isinstance(send_ms, bool)
        or not now_ms - 60_000 <= send_ms <= now_ms + 90 * 86_400_000
    ):
        raise InvalidInput("send_ms must be a time from now to 90 days ahead (epoch ms)")
    return NewCampaign(name.strip(), body["segment"], body["channel"], template, send_ms)


@dataclass(frozen=True)
class DoNotContact:
    email: str | None
    phone: str | None
    channels: tuple[str, ...]
    reason: str


def parse_do_not_contact(body: Json) -> DoNotContact:
    email = text.clean_email(body.get("email"))
    phone = text.clean_phone(body.get("phone"))
    if email is None and phone is None:
        raise InvalidInput("give the email or the phone of the person")
    channel = body.get("channel") or "all"
    if channel not in (*contacts.CONSENT_CHANNELS, "all"):
        raise InvalidInput("channel must be all or one of " + ", ".join(contacts.CONSENT_CHANNELS))
    reason = body.get("reason")
    if not isinstance(reason, str) or not 0 < len(reason.strip()) <= 32:
        raise InvalidInput("reason must be 1 to 32 characters (complaint, asked by phone, ...)")
    channels = contacts.CONSENT_CHANNELS if channel == "all" else (channel,)
    return DoNotContact(email, phone, channels, reason.strip())


# --- the phone's and the gateway's commands ---------------------------------------------------------------


@dataclass(frozen=True)
class OptIn:
    """The opt-in box: an email and/or a phone, a time zone, the language, the wording shown and the
    consent per channel."""

    name: str | None
    email: str | None
    phone: str | None
    tz: str | None
    lang: str
    wording: str
    consent: Mapping[str, bool]

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone


def parse_opt_in(body: Json, default_region: str = "CN") -> OptIn:
    email = text.clean_email(body.get("email"))
    phone = text.clean_phone(body.get("phone"), default_region)
    if email is None and phone is None:
        raise InvalidInput("leave an email address or a phone number", code="no_contact")
    tz = rules.clean_tz(body["tz"]) if body.get("tz") else None
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 80):
        raise InvalidInput("name must be text of at most 80 characters")
    lang: str = body["lang"] if body.get("lang") in contacts.LOCALES else "zh-CN"
    wording = body.get("wording")
    if not isinstance(wording, str) or not 0 < len(wording) <= 500:
        raise InvalidInput("wording: the consent text the viewer saw (1 to 500 characters)")
    consent = body.get("consent") or {}
    if not isinstance(consent, dict) or not all(isinstance(v, bool) for v in consent.values()):
        raise InvalidInput('consent must be like {"email": true, "sms": false}')
    return OptIn(name or None, email, phone, tz, lang, wording, consent)


def push_service(endpoint: str) -> bool:
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    return parts.scheme == "https" and any(host.endswith(s) or host == s[1:] for s in PUSH_SERVICES)


@dataclass(frozen=True)
class PushSubscribe:
    endpoint: str
    p256dh: str
    auth: str
    wording: str | None
    lang: str | None
    tz: str | None


def parse_push(body: Json) -> PushSubscribe:
    sub = body.get("subscription")
    keys = sub.get("keys") if isinstance(sub, dict) else None
    endpoint = sub.get("endpoint") if isinstance(sub, dict) else None
    if (
        not isinstance(endpoint, str)
        or not push_service(endpoint)
        or len(endpoint) > 1000
        or not isinstance(keys, dict)
        or not all(isinstance(keys.get(k), str) and 0 < len(keys[k]) <= 200 for k in ("p256dh", "auth"))
    ):
        raise InvalidInput(
            "subscription must be a PushSubscription (an https endpoint of a browser's push service, "
            "keys p256dh and auth)"
        )
    wording = body.get("wording") if isinstance(body.get("wording"), str) else None
    lang = body.get("lang") if body.get("lang") in contacts.LOCALES else None
    tz = rules.clean_tz(body["tz"]) if body.get("tz") else None
    return PushSubscribe(endpoint, keys["p256dh"], keys["auth"], wording, lang, tz)


@dataclass(frozen=True)
class SmsReply:
    phone: str
    text: str


def parse_sms_reply(body: Json) -> SmsReply:
    sender, said = body.get("from"), body.get("text")
    if not isinstance(said, str) or len(said) > 1600:
        raise InvalidInput("text must be the message text")
    phone = text.clean_phone(sender)
    if phone is None:
        raise InvalidInput("from must be the sender's phone number", code="bad_phone")
    return SmsReply(phone, said)


@dataclass(frozen=True)
class SmsReceipt:
    provider_id: str
    delivered: bool
    reason: str | None


def parse_sms_receipt(body: Json) -> SmsReceipt:
    provider_id, status = body.get("id"), body.get("status")
    if not isinstance(provider_id, str) or not 0 < len(provider_id) <= 200:
        raise InvalidInput("id must be the gateway's message id")
    if status not in ("delivered", "failed"):
        raise InvalidInput("status must be delivered or failed")
    reason = body.get("reason")
    return SmsReceipt(provider_id, status == "delivered", reason[:200] if isinstance(reason, str) else None)


# --- shapes ----------------------------------------------------------------------------------------------


def no_entries() -> Json:
    return {**dict.fromkeys(ENTRY_STATUSES, 0), "skipped_recent": []}


def journey_shape(j: Journey, entries: Json | None = None) -> Json:
    return {
        "id": j.id,
        "key": j.key,
        "name": j.name,
        "status": j.status,
        "paused_reason": j.paused_reason,
        "while_paused": j.while_paused,
        "paused_entries": entries or no_entries(),
        "entry": j.entry,
        "key_by": j.key_by,
        "goal": j.goal,
        "conditions": orjson.loads(j.conditions),
        "steps": orjson.loads(j.steps),
    }


def skipped_shape(entry: PausedEntry, event: IntentEvent, name: str | None) -> Json:
    return {
        "event": event.kind,
        "event_ms": event.created_ms,
        "product_id": event.product_id,
        "order_id": event.order_id,
        "viewer_id": entry.viewer_id,
        "name": name,
        "reason": entry.reason,
    }


def settings_shape(s: FollowupSettings) -> Json:
    return {f: getattr(s, f) for f in SETTING_FIELDS}


def template_shape(t: Template) -> Json:
    return {
        "id": t.id,
        "key": t.key,
        "channel": t.channel,
        "locale": t.locale,
        "subject": t.subject,
        "body": t.body,
    }


def message_shape(m: Message) -> Json:
    return {
        "id": m.id,
        "journey_id": m.journey_id,
        "step": m.step,
        "campaign_id": m.campaign_id,
        "channel": m.channel,
        "template": m.template,
        "transactional": m.transactional,
        "status": m.status,
        "reason": m.reason,
        "attempts": m.attempts,
        "next_ms": m.next_ms,
        "created_ms": m.created_ms,
        "sent_ms": m.sent_ms,
        "subject": m.subject,
    }


def contact_shape(contact: Contact, consent: Mapping[str, str], push: bool) -> Json:
    """What the phone knows of its own contact: masked addresses and the consent per channel."""
    return {
        "email": text.mask_email(contact.email) if contact.email else None,
        "phone": text.mask_phone(contact.phone) if contact.phone else None,
        "tz": contact.tz,
        "consent": dict(consent),
        "push": push,
    }


def inbox_shape(m: Message) -> Json:
    return {"id": m.id, "subject": m.subject, "text": m.body, "sent_ms": m.sent_ms}


def campaign_shape(c: Campaign, counts: Mapping[str, int]) -> Json:
    """A campaign as the console lists it, with its messages counted by status."""
    return {
        "id": c.id,
        "name": c.name,
        "segment": c.segment,
        "channel": c.channel,
        "template": c.template,
        "status": c.status,
        "send_ms": c.send_ms,
        "total": c.total,
        "counts": counts,
    }


def alert_shape(a: Alert) -> Json:
    return {"id": a.id, "kind": a.kind, "text": a.text, "created_ms": a.created_ms}
