"""The shared core of both clients: what a call is, how it is signed and sent, how its
answer or error is read, and when it is retried. No I/O happens here, so the sync and the
async client differ only in how they wait."""

from __future__ import annotations

import enum
import json
import random
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import httpx

from ._version import __version__
from .errors import (
    ApiError,
    TernError,
    TransportError,
    UnexpectedResponseError,
    error_from_response,
)
from .models import DecodeError
from .signing import sign_request

T = TypeVar("T")


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = 0

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET
"""Marks an update's field as absent ("keep the value"), as opposed to ``None`` ("clear
it") where the API tells the two apart."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One server API request, ready to be signed and sent, with the way to read its
    answer. Building a call does no I/O; a retry sends the same bytes (the same
    ``client_msg_id``) under a fresh signature."""

    method: str
    path: str
    """Percent-encoded, exactly as sent and signed."""
    query: str
    """Raw query without ``?``, percent-encoded; ``""`` for none."""
    body: bytes | None
    read: Callable[[Any], T] = field(repr=False)
    idempotent: bool = False
    """Safe to send again when the first attempt's fate is unknown."""

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def segment(value: str) -> str:
    """One path segment, percent-encoded (ids may hold ``@`` and ``.``, conversation ids
    ``:``, reactions any emoji)."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"an id in a URL path must be a non-empty string, not {value!r}")
    return quote(value, safe="")


def path(template: str, *ids: str) -> str:
    """``path("/v1/users/{}/kick", "a@b")`` → ``/v1/users/a%40b/kick``."""
    return template.format(*(segment(i) for i in ids))


def query(**params: str | int | bool | None) -> str:
    """A raw query from the parameters that are not ``None``, in the order given."""
    parts = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        parts.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(parts)


def json_body(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes hashed by the signature and sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


_CLIENT_MSG_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_msg_id() -> str:
    """A fresh idempotency key for a send that was given none, so that the client's own
    retries of it are deduplicated by Tern."""
    return "py-" + "".join(secrets.choice(_CLIENT_MSG_ID_ALPHABET) for _ in range(26))


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long a client waits to try a call again.

    * ``429 rate_limited``: every call (it was refused before doing anything), after
      ``Retry-After`` seconds when the server sent one and it is at most
      ``max_retry_after``; a longer wait is the caller's decision, so it is raised.
    * A connection that could not be made: every call (nothing was sent).
    * 502, 503, 504, a timeout or a broken connection: idempotent calls only (reads, PUTs,
      sends with a ``client_msg_id``, which the client always gives a send).

    Between attempts: exponential backoff from ``initial_backoff`` to ``max_backoff``
    seconds with full jitter. ``RetryPolicy(max_attempts=1)`` turns retries off.
    """

    max_attempts: int = 3
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def delay(self, call: Call[Any], attempt: int, error: TernError) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to raise ``error``."""
        if attempt >= self.max_attempts:
            return None
        if isinstance(error, ApiError):
            if error.status == 429:
                if error.retry_after is None:
                    return self.backoff(attempt)
                return error.retry_after if error.retry_after <= self.max_retry_after else None
            if error.status in (502, 503, 504) and call.idempotent:
                return max(error.retry_after or 0.0, self.backoff(attempt))
            return None
        if isinstance(error, UnexpectedResponseError):
            return self.backoff(attempt) if error.status in (502, 503, 504) and call.idempotent else None
        if isinstance(error, TransportError):
            never_sent = isinstance(error.__cause__, (httpx.ConnectError, httpx.ConnectTimeout))
            return self.backoff(attempt) if never_sent or call.idempotent else None
        return None


class Core:
    """Signing, request building and answer reading for one app's credentials."""

    def __init__(
        self, base_url: str, app_key: str, app_secret: str, retry: RetryPolicy | None
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.app_key = app_key
        self._app_secret = app_secret
        self.retry = retry or RetryPolicy()
        self.user_agent = f"tern-sdk-python/{__version__}"

    def __repr__(self) -> str:
        return f"Core(base_url={self.base_url!r}, app_key={self.app_key!r})"

    def build(self, client: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        """The signed request for one attempt: a fresh timestamp and nonce each time."""
        body = call.body if call.body is not None else b""
        headers = sign_request(self.app_key, self._app_secret, call.method, call.target, body)
        headers["User-Agent"] = self.user_agent
        headers["Accept"] = "application/json"
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        url = httpx.URL(self.base_url + call.target)
        return client.build_request(call.method, url, headers=headers, content=call.body)

    @staticmethod
    def read(call: Call[T], response: httpx.Response) -> T:
        """The decoded answer, or the typed error it carries."""
        status = response.status_code
        body = response.content
        if not 200 <= status < 300:
            raise error_from_response(status, response.headers.get("Retry-After"), body)
        try:
            value = json.loads(body) if body else None
            return call.read(value)
        except (ValueError, DecodeError, LookupError, TypeError, AttributeError) as e:
            # Any answer that does not fit: a wrong base URL, an incompatible server.
            raise UnexpectedResponseError(status, body, f"{type(e).__name__}: {e}") from None


def transport_error(e: httpx.HTTPError, call: Call[Any]) -> TransportError:
    err = TransportError(f"{call.method} {call.path}: {type(e).__name__}: {e}")
    err.__cause__ = e
    return err
