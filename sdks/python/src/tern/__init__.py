"""Tern's server-side SDK for Python: a signed client of the server API (blocking and
asyncio), user-token minting, and webhook verification.

    import tern

    with tern.Client("http://127.0.0.1:8080", "ak_...", "sk_...") as client:
        client.create_user("alice", "Alice")
        sent = client.send_text("alice", {"user": "bob"}, "hi")
        for message in client.iter_history(sent.conversation_id):
            print(message.seq, message.content)
"""

from ._version import __version__

from ._core import UNSET, Call, RetryPolicy, Unset
from .async_client import AsyncClient
from .client import Client
from .errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    ErrorCode,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RejectedError,
    ServerError,
    TernError,
    TransportError,
    UnexpectedResponseError,
)
from .models import *  # noqa: F403
from .models import __all__ as _models_all
from .signing import canonical_query, mint_server_token, mint_user_token, sign_request
from .webhook import (
    WebhookBadSignature,
    WebhookError,
    WebhookEvent,
    WebhookMalformed,
    WebhookTimestampOutOfWindow,
    parse_webhook,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "UNSET",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Call",
    "Client",
    "ConflictError",
    "ErrorCode",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RejectedError",
    "RetryPolicy",
    "ServerError",
    "TernError",
    "TransportError",
    "UnexpectedResponseError",
    "Unset",
    "WebhookBadSignature",
    "WebhookError",
    "WebhookEvent",
    "WebhookMalformed",
    "WebhookTimestampOutOfWindow",
    "__version__",
    "canonical_query",
    "mint_server_token",
    "mint_user_token",
    "parse_webhook",
    "sign_request",
    "sign_webhook",
    "verify_webhook",
    *_models_all,
]
