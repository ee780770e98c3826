"""Errors of the server API, as typed exceptions.

Every error answer of Tern is ``{"error": {"code", "message", "request_id"}}`` with a stable
``code`` (docs/errors.md). :class:`ApiError` carries that code, the HTTP status, the request
id and ``Retry-After``; its subclasses group the codes by what a caller does about them, so
``except tern.NotFoundError`` reads as what it means while ``err.code`` stays exact.
"""

from __future__ import annotations

import enum
import json
from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConflictError",
    "ErrorCode",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RejectedError",
    "ServerError",
    "TernError",
    "TransportError",
    "UnexpectedResponseError",
    "error_from_response",
]


class ErrorCode(str, enum.Enum):
    """Every stable code of docs/errors.md. ``ApiError.code`` is a plain ``str`` so that
    codes added by a newer server still arrive; compare with ``err.code == ErrorCode.X``."""

    MISSING_CREDENTIALS = "missing_credentials"
    UNKNOWN_APP_KEY = "unknown_app_key"
    TIMESTAMP_OUT_OF_WINDOW = "timestamp_out_of_window"
    BAD_SIGNATURE = "bad_signature"
    NONCE_REUSED = "nonce_reused"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_LIFETIME_TOO_LONG = "token_lifetime_too_long"
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"
    TOKEN_REVOKED = "token_revoked"
    USER_NOT_FOUND = "user_not_found"
    APP_SUSPENDED = "app_suspended"
    INVALID_JSON = "invalid_json"
    INVALID_ARGUMENT = "invalid_argument"
    CONTENT_TOO_LARGE = "content_too_large"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    USER_BANNED = "user_banned"
    USER_MUTED = "user_muted"
    BLOCKED = "blocked"
    NOT_FRIENDS = "not_friends"
    RECALL_WINDOW_PASSED = "recall_window_passed"
    CONTENT_REJECTED = "content_rejected"
    MESSAGE_REJECTED = "message_rejected"
    WEBHOOK_UNAVAILABLE = "webhook_unavailable"
    GROUP_FULL = "group_full"
    MEMBER_MUTED = "member_muted"
    GROUP_MUTED = "group_muted"
    RECEIPTS_UNAVAILABLE = "receipts_unavailable"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"
    EDIT_WINDOW_PASSED = "edit_window_passed"
    MESSAGE_RECALLED = "message_recalled"
    VERSION_CONFLICT = "version_conflict"
    LIMIT_EXCEEDED = "limit_exceeded"
    # offline push (docs/push.md)
    INVALID_PUSH_CREDENTIALS = "invalid_push_credentials"
    PUSH_NOT_CONFIGURED = "push_not_configured"
    # files (docs/files.md)
    CHECKSUM_MISMATCH = "checksum_mismatch"
    CHECKSUM_UNSUPPORTED = "checksum_unsupported"
    CONTENT_TYPE_NOT_ALLOWED = "content_type_not_allowed"
    FILE_NOT_READY = "file_not_ready"
    FILE_TOO_LARGE = "file_too_large"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    STORAGE_QUOTA_EXCEEDED = "storage_quota_exceeded"
    TUS_VERSION_UNSUPPORTED = "tus_version_unsupported"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UPLOAD_BUSY = "upload_busy"
    UPLOAD_EXCEEDS_LENGTH = "upload_exceeds_length"
    UPLOAD_EXPIRED = "upload_expired"
    UPLOAD_OFFSET_MISMATCH = "upload_offset_mismatch"
    URL_EXPIRED = "url_expired"
    URL_INVALID = "url_invalid"

    def __str__(self) -> str:
        return self.value


class TernError(Exception):
    """Base of everything this package raises for a call that did not succeed."""


class TransportError(TernError):
    """Tern could not be reached, or the connection broke before an answer (the cause is
    the ``httpx`` exception). A non-idempotent call may or may not have taken effect."""


class UnexpectedResponseError(TernError):
    """An answer that is not Tern's JSON (a proxy's error page, a wrong base URL)."""

    def __init__(self, status: int, body: bytes, why: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"HTTP {status}: {why}: {body[:200]!r}")


class ApiError(TernError):
    """Tern answered with an error. ``code`` is the stable code of docs/errors.md."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        """Seconds to wait before trying again, from ``Retry-After`` (429, some 503)."""
        super().__init__(f"{status} {code}: {message} (request id {request_id or '-'})")


class AuthenticationError(ApiError):
    """401: the signature, the key, the clock or a token is wrong (``bad_signature``,
    ``unknown_app_key``, ``timestamp_out_of_window``, ``nonce_reused``, ``token_*``,
    ``missing_credentials``)."""


class PermissionDeniedError(ApiError):
    """403: ``forbidden``, ``app_suspended``, ``user_banned``, ``user_muted``,
    ``blocked``, ``not_friends``, ``member_muted``, ``group_muted``, the windows passed."""


class InvalidRequestError(ApiError):
    """400, 405 and 413: ``invalid_argument``, ``invalid_json``, ``content_too_large``,
    ``payload_too_large``, ``method_not_allowed``. Retrying the same call fails again."""


class NotFoundError(ApiError):
    """404 ``not_found``: no such thing in this app (another app's things look the same)."""


class ConflictError(ApiError):
    """409: ``conflict`` (exists already) or ``version_conflict`` (read again, retry)."""


class RejectedError(ApiError):
    """422: the request was understood and refused by a rule (``content_rejected``,
    ``message_rejected``, ``group_full``, ``message_recalled``, ``limit_exceeded``,
    ``receipts_unavailable``)."""


class RateLimitedError(ApiError):
    """429 ``rate_limited``: wait ``retry_after`` seconds."""


class ServerError(ApiError):
    """5xx: ``unavailable``, ``webhook_unavailable``, ``internal``. Worth retrying
    idempotent calls (the client does, within its retry policy)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: ConflictError,
    413: InvalidRequestError,
    422: RejectedError,
    429: RateLimitedError,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (Tern sends whole seconds; an HTTP date is ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(status: int, retry_after: str | None, body: bytes) -> TernError:
    """The exception for an error answer: an :class:`ApiError` subclass when the body is
    Tern's error envelope, else :class:`UnexpectedResponseError`."""
    try:
        envelope: Any = json.loads(body)
        detail = envelope["error"]
        code = detail["code"]
        message = detail.get("message", "")
        request_id = detail.get("request_id", "")
        if not isinstance(code, str):
            raise TypeError("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return UnexpectedResponseError(status, body, "not a Tern error answer")
    if status >= 500:
        cls: type[ApiError] = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(status, code, str(message), str(request_id), parse_retry_after(retry_after))
