"""Checking Tern's webhooks in a tenant's backend (SIGNING.md §3), whatever the web
framework.

Every webhook carries ``X-Tern-Signature: t=<unix s>,v1=<hex>[,v1=<hex>]``, an
HMAC-SHA256 of ``"<t>.<raw body>"`` under the app's webhook secret. Call
:func:`verify_webhook` on the raw body bytes *before* parsing them, then dedupe on
``X-Tern-Webhook-Id``::

    # Flask
    verify_webhook(request.get_data(), request.headers["X-Tern-Signature"], SECRET)
    # FastAPI / Starlette
    verify_webhook(await request.body(), request.headers["x-tern-signature"], SECRET)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "WEBHOOK_TOLERANCE_SECONDS",
    "WebhookBadSignature",
    "WebhookError",
    "WebhookEvent",
    "WebhookMalformed",
    "WebhookTimestampOutOfWindow",
    "parse_webhook",
    "sign_webhook",
    "verify_webhook",
]

WEBHOOK_TOLERANCE_SECONDS = 300
"""Signatures older (or further ahead) than this are refused, as SIGNING.md asks."""


class WebhookError(Exception):
    """A webhook that must not be trusted: answer it with 400 (or 401) and do not act on it."""


class WebhookMalformed(WebhookError):
    """``X-Tern-Signature`` is not ``t=<unix seconds>,v1=<hex>``, or the body is not a
    webhook event."""


class WebhookTimestampOutOfWindow(WebhookError):
    """The signature's ``t`` is more than the tolerance away from now: a replay, or a
    wrong clock."""


class WebhookBadSignature(WebhookError):
    """No ``v1`` of the header matches this body under any of the given secrets."""


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def sign_webhook(body: bytes | str, secret: str, timestamp: int) -> str:
    """The ``X-Tern-Signature`` value Tern sends for this body: for tests of a receiver."""
    mac = hmac.new(
        secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + _as_bytes(body), hashlib.sha256
    )
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_webhook(
    body: bytes | str,
    signature_header: str,
    secret: str | Iterable[str],
    *,
    now: int | None = None,
    tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS,
) -> None:
    """Returns when the webhook is genuine and fresh; raises a :class:`WebhookError`
    otherwise.

    ``body`` is the raw request body exactly as received (``str`` is taken as UTF-8);
    ``signature_header`` the ``X-Tern-Signature`` value; ``secret`` the app's webhook
    secret, or several while you rotate yours. During Tern's own rotation the header carries
    one ``v1`` per active secret: any match is enough. ``now`` defaults to the clock.
    """
    t: int | None = None
    candidates: list[str] = []
    for part in signature_header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookMalformed("X-Tern-Signature is malformed: expected t=<unix s>,v1=<hex>")
        if key == "t":
            if t is not None or not value or not (value.isascii() and value.isdigit()):
                raise WebhookMalformed("X-Tern-Signature has a bad or repeated t=")
            t = int(value)
        elif key == "v1":
            candidates.append(value)
        # Other schemes may be added beside v1 later: ignored.
    if t is None or not candidates:
        raise WebhookMalformed("X-Tern-Signature needs t= and at least one v1=")
    current = int(time.time()) if now is None else now
    if abs(current - t) > tolerance_seconds:
        raise WebhookTimestampOutOfWindow(
            f"the webhook was signed at {t}, {current - t} s from now (tolerance "
            f"{tolerance_seconds} s)"
        )
    secrets = [secret] if isinstance(secret, str) else list(secret)
    message = f"{t}.".encode("ascii") + _as_bytes(body)
    for s in secrets:
        expected = hmac.new(s.encode("utf-8"), message, hashlib.sha256).hexdigest()
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate.lower()):
                return
    raise WebhookBadSignature("the webhook's signature does not match this body and secret")


@dataclass(frozen=True)
class WebhookEvent:
    """A webhook body: ``{"id", "type", "app_key", "created_at", "data"}``."""

    id: str
    """``wh_...``: the same on every retry; dedupe on it."""
    type: str
    """``message.sent``, ``message.before_send``, ``group.created``, ..."""
    app_key: str
    created_at: str
    """RFC 3339, UTC; a retry keeps the original time."""
    data: dict[str, Any]


def parse_webhook(body: bytes | str) -> WebhookEvent:
    """Parses a webhook body (verify it first). Unknown fields are ignored."""
    try:
        raw = json.loads(_as_bytes(body))
    except ValueError as e:
        raise WebhookMalformed(f"the webhook body is not JSON: {e}") from None
    if not isinstance(raw, Mapping):
        raise WebhookMalformed("the webhook body is not a JSON object")
    fields: dict[str, Any] = dict(raw)
    try:
        event = WebhookEvent(
            id=str(fields["id"]),
            type=str(fields["type"]),
            app_key=str(fields["app_key"]),
            created_at=str(fields["created_at"]),
            data=dict(fields.get("data") or {}),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise WebhookMalformed(f"the webhook body lacks {e}") from None
    return event
