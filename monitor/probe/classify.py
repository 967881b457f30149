"""What a probe's HTTP status and error body mean: the outcome of a status (the core's one table,
`monitor.core.results.classify_status`), and a `detail` safe to keep.

A `detail` never holds the API key (or any 8-character fragment of it), a credential, a header, or
a body: only a sanitised, truncated message field of a JSON error body is ever quoted.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any, Final

from monitor.core.results import classify_status

__all__ = [
    "DETAIL_MAX_CHARS",
    "block_reason",
    "body_message",
    "classify_status",
    "error_detail",
    "json_message",
    "sanitise_detail",
]

DETAIL_MAX_CHARS: Final = 120


_BEARER = re.compile(r"(?i)\bbearer\s+\S+")
_CREDENTIAL_FIELD = re.compile(r"(?i)\b(authorization|api[-_ ]?key|token)(\"?\s*[:=]\s*\"?)[^\s\",}]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MIN_KEY_FRAGMENT: Final = 8


def sanitise_detail(text: str, secret: str = "") -> str:
    """Make server-provided text safe for `detail`: no key, no credential, one line, <= 120 chars.

    Removes the key itself and any fragment of it of 8 or more characters, `Bearer ...` values and
    `authorization=`/`api_key:`-style values; replaces characters that do not print (control,
    format, separators) first, so that none hides a fragment of the key; truncates.
    """
    text = _printable(text)
    if secret:
        if len(secret) <= _MIN_KEY_FRAGMENT:
            text = text.replace(secret, "***")
        else:
            spans: list[tuple[int, int]] = []
            for i in range(len(secret) - _MIN_KEY_FRAGMENT + 1):
                fragment = secret[i : i + _MIN_KEY_FRAGMENT]
                start = text.find(fragment)
                while start >= 0:
                    spans.append((start, start + _MIN_KEY_FRAGMENT))
                    start = text.find(fragment, start + 1)
            if spans:
                spans.sort()
                out, pos = [], 0
                for start, end in spans:
                    if end <= pos:
                        continue
                    if start > pos:
                        out.append(text[pos:start])
                        out.append("***")
                    pos = max(pos, end)
                out.append(text[pos:])
                text = "".join(out)
    text = _BEARER.sub("Bearer ***", text)
    text = _CREDENTIAL_FIELD.sub(r"\1\2***", text)
    text = text.strip()
    if len(text) > DETAIL_MAX_CHARS:
        text = text[: DETAIL_MAX_CHARS - 3] + "..."
    return text


def _printable(text: str) -> str:
    """One printable line: format characters (zero-width, bidi controls) dropped, any other
    character that does not print (control, line and paragraph separators) made a space."""
    text = _CONTROL.sub(" ", text)
    if text.isprintable():
        return text
    return "".join("" if unicodedata.category(c) == "Cf" else c if c.isprintable() else " " for c in text)


def json_message(obj: Any) -> str | None:
    """The human message of a JSON error body: FastAPI `detail` (string or list) or OpenAI `error`."""
    if not isinstance(obj, dict):
        return None
    detail = obj.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        msg = detail[0].get("msg")
        if isinstance(msg, str):
            return msg
    error = obj.get("error")
    if isinstance(error, str):
        return error
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


def error_detail(status: int, body: bytes | None, secret: str = "") -> str:
    """`HTTP 503`, or `HTTP 401: Invalid API key` when the body is JSON with a message in it.

    Only a message field of a JSON body is ever quoted (sanitised, truncated); HTML or any other
    body contributes nothing.
    """
    head = f"HTTP {status}"
    if 300 <= status < 400:
        return f"{head}: redirect not followed"
    if not body:
        return head
    try:
        message = json_message(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return head
    if not message:
        return head
    clean = sanitise_detail(message, secret)
    return f"{head}: {clean}" if clean else head


def body_message(body: bytes | None) -> str | None:
    """The message of a JSON error body (`json_message`), unsanitised: for decisions only."""
    if not body:
        return None
    try:
        return json_message(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return None


def block_reason(status: int, body: bytes | None, secret: str = "") -> str | None:
    """Why the key is blocked, when a 403 says so: LibertAI's gateway and hosts answer a known key
    that may not spend (no credits, a limit reached, the key disabled) with an error object,
    `{"error": {"message": "No credits.", "code": "no_credits", ...}}`. The message, sanitised
    (printable, one line, no key, bounded), or None for any other answer: a bare 403 stays
    `key_rejected`."""
    if status != 403 or not body:
        return None
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(error, dict):
        return None
    message, code = error.get("message"), error.get("code")
    text = (
        message if isinstance(message, str) and message.strip() else code if isinstance(code, str) else None
    )
    if text is None:
        return None
    return sanitise_detail(text, secret) or None
