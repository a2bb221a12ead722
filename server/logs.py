"""Structured logs: one JSON object per line (python-json-logger), or plain text for a terminal.

Every record passes ``Redact`` first, at every level: at debug level the libraries underneath log
request headers and frames (websockets logs each handshake header, the host's cookie among them;
httpcore logs replies with their Set-Cookie), and an exception's text may hold a URL with its
password. Cookies, Authorization and other secret headers, token-shaped strings, ``token=``/``key=``
style values, JSON fields named like secrets and URL passwords are replaced with ``[redacted]``.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

REDACTED = "[redacted]"
# Header names whose whole value is a secret.
_SENSITIVE_HEADERS = r"(?:cookie|set-cookie|authorization|proxy-authorization|x-api-key|webhook-signature)"
# Field and parameter names whose value is a secret (lw_* are Livewall's cookies).
_SENSITIVE_NAMES = (
    r"(?:[\w-]*(?:token|secret|passw(?:or)?d|api[_-]?key|apikey|signature)|"
    + _SENSITIVE_HEADERS
    + r"|key|k|sig|lw_[\w-]+)"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host
    (re.compile(r"(?P<keep>\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:)[^\s@/'\"]+@", re.I), rf"\g<keep>{REDACTED}@"),
    # "token": "...", 'cookie': '...', (b'set-cookie', b'...'); also cut short (a truncated frame)
    (
        re.compile(rf"(?P<keep>(?P<q>['\"]){_SENSITIVE_NAMES}(?P=q)\s*[:,=]\s*b?['\"])[^'\"\r\n]*", re.I),
        rf"\g<keep>{REDACTED}",
    ),
    # Cookie: ..., authorization: Bearer ... (a header line: everything to its end)
    (
        re.compile(rf"(?P<keep>(?<![\w-]){_SENSITIVE_HEADERS}\s*:\s*)[^\r\n'\"]+", re.I),
        rf"\g<keep>{REDACTED}",
    ),
    # token=..., k=..., lw_host_abc=... (query strings, cookies, form bodies)
    (re.compile(rf"(?P<keep>(?<![\w-]){_SENSITIVE_NAMES}=)[^\s&;,'\"]+", re.I), rf"\g<keep>{REDACTED}"),
    # Bearer abc..., Basic abc...
    (re.compile(r"(?P<keep>\b(?:bearer|basic)\s+)[\w.~+/=-]{8,}", re.I), rf"\g<keep>{REDACTED}"),
    # Signed tokens (itsdangerous: base64 JSON . timestamp . signature), webhook secrets
    (re.compile(r"\beyJ[\w-]{4,}\.[\w-]+\.[\w-]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), REDACTED),
)
# A record's own attributes (the rest are extras a caller passed, which are redacted too).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with every secret the patterns know replaced."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """Rewrites each record with its secrets redacted: message, exception text, stack and extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: let the formatter report it as usual
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # Formatted now so the text can be redacted; formatters print exc_text when exc_info is gone.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


def configure(level: str = "info", *, json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    # On the handler, not the root logger: a logger's filters do not see its children's records.
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
