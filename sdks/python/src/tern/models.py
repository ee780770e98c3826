"""Typed models of the server API's answers (frozen dataclasses) and of its inputs
(TypedDicts), named after the schemas of docs/openapi.json.

Answers are decoded strictly enough to catch a wrong base URL or an incompatible server
(a missing required field or a wrong type raises :class:`tern.UnexpectedResponseError`)
and loosely enough for a newer server: unknown fields are ignored. A JSON ``from`` field is
``from_`` in Python. Times are Unix milliseconds except ``Token.expires_at`` (seconds).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    Literal,
    NotRequired,
    Required,
    TypedDict,
    TypeVar,
    Union,
)

if TYPE_CHECKING:
    from ._core import Call

__all__ = [
    "AppSettings",
    "AppSettingsPatch",
    "BatchResult",
    "BeforeSend",
    "BeforeSendConfig",
    "Block",
    "Breaker",
    "Broadcast",
    "Conversation",
    "DecodeError",
    "DeadEvent",
    "DeleteForUserResult",
    "Extension",
    "ExtensionDelete",
    "ExtensionSet",
    "Extensions",
    "Friend",
    "FriendRequest",
    "Group",
    "JSON",
    "JoinPolicy",
    "JoinRequest",
    "JoinResult",
    "Member",
    "Message",
    "MessageType",
    "Page",
    "Presence",
    "QuotedMessage",
    "Reaction",
    "ReactionUser",
    "ReadCount",
    "Redelivered",
    "Room",
    "RoomMute",
    "SendResult",
    "SessionsClosed",
    "Target",
    "Token",
    "User",
    "UserDetail",
    "UserInput",
    "WebhookConfig",
    "WebhookSettings",
    "WebhookSettingsView",
    "WordList",
    "decode",
]

JSON = dict[str, Any]
"""A JSON object: message content, metadata."""

MessageType = Literal["text", "image", "file", "audio", "video", "location", "custom"]
JoinPolicy = Literal["free", "approval", "invite_only"]

T = TypeVar("T")


def _json(name: str) -> dict[str, str]:
    return {"json": name}


# ---- users -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class User:
    id: str
    name: str
    metadata: JSON
    created_at: int
    updated_at: int
    avatar_url: str | None = None
    banned_until: int | None = None
    """Unix ms while banned (``253402300799999``: forever)."""
    muted_until: int | None = None
    """Unix ms while muted app-wide."""


@dataclass(frozen=True, kw_only=True)
class UserDetail(User):
    """A user with what is live about them now."""

    online: bool
    devices: list[str]
    """Device ids of the sessions open now."""
    last_seen: int | None = None


@dataclass(frozen=True, kw_only=True)
class Token:
    token: str
    expires_at: int
    """Unix **seconds**, as in the JWT."""


@dataclass(frozen=True, kw_only=True)
class Presence:
    user_id: str
    online: bool
    devices: list[str]
    last_seen: int | None = None


# ---- messages ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SendResult:
    """The answer to a send: the message is durable once you have it."""

    msg_id: str
    conversation_id: str
    seq: int
    created_at: int


@dataclass(frozen=True, kw_only=True)
class BatchResult:
    """One recipient of a batch send: ``message`` or ``error`` (a stable code)."""

    to: str
    message: SendResult | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Extension:
    key: str
    value: str
    version: int
    updated_at: int
    updated_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class Extensions:
    extensions: list[Extension]
    version: int


@dataclass(frozen=True, kw_only=True)
class Reaction:
    reaction: str
    count: int
    reacted: bool
    users: list[str]
    """The first three users who reacted."""


@dataclass(frozen=True, kw_only=True)
class ReactionUser:
    user_id: str
    reacted_at: int


@dataclass(frozen=True, kw_only=True)
class QuotedMessage:
    msg_id: str
    seq: int
    type: str
    created_at: int
    recalled: bool
    from_: str | None = field(default=None, metadata=_json("from"))
    content: JSON | None = None
    edited_at: int | None = None


@dataclass(frozen=True, kw_only=True)
class Message:
    msg_id: str
    conversation_id: str
    seq: int
    client_msg_id: str
    type: str
    created_at: int
    recalled: bool
    from_: str | None = field(default=None, metadata=_json("from"))
    """The sender; ``None`` for a system message."""
    content: JSON | None = None
    """``None`` once recalled."""
    edited_at: int | None = None
    reply_to: str | None = None
    quoted: QuotedMessage | None = None
    version: int = 0
    extensions: list[Extension] = field(default_factory=list)
    reactions: list[Reaction] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)
    mention_all: bool = False


@dataclass(frozen=True, kw_only=True)
class DeleteForUserResult:
    msg_id: str
    user_id: str
    deleted: bool
    """``False``: it was deleted for them already."""


@dataclass(frozen=True, kw_only=True)
class Conversation:
    conversation_id: str
    kind: str
    last_seq: int
    read_seq: int
    unread: int
    mentioned: bool
    updated_at: int
    version: int
    last_message: Message | None = None


# ---- groups ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Group:
    id: str
    name: str
    owner: str
    announcement: str
    join_policy: str
    member_count: int
    metadata: JSON
    mute_all: bool
    created_at: int
    updated_at: int
    avatar_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class Member:
    user_id: str
    role: str
    """``owner``, ``admin`` or ``member``."""
    joined_at: int
    muted_until: int | None = None


@dataclass(frozen=True, kw_only=True)
class JoinRequest:
    group_id: str
    user_id: str
    message: str
    state: str
    created_at: int
    updated_at: int
    inviter: str | None = None


@dataclass(frozen=True, kw_only=True)
class JoinResult:
    joined: bool
    member: Member | None = None
    request: JoinRequest | None = None


@dataclass(frozen=True, kw_only=True)
class ReadCount:
    msg_id: str
    seq: int
    read: int
    unread: int


# ---- rooms -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Room:
    id: str
    name: str
    metadata: JSON
    created_by: str
    """``server_api`` or ``join``."""
    member_count: int
    """Users in the room now."""
    last_seq: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, kw_only=True)
class RoomMute:
    user_id: str
    until: int


@dataclass(frozen=True, kw_only=True)
class SessionsClosed:
    ok: bool
    sessions: int
    """How many sessions were told to leave."""


# ---- friends -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FriendRequest:
    from_: str = field(metadata=_json("from"))
    to: str
    message: str
    state: str
    created_at: int
    updated_at: int


@dataclass(frozen=True, kw_only=True)
class Friend:
    user_id: str
    friend_id: str
    tags: list[str]
    created_at: int
    updated_at: int
    remark: str | None = None


@dataclass(frozen=True, kw_only=True)
class Block:
    user_id: str
    blocked_id: str
    created_at: int


# ---- broadcasts, moderation, settings, webhooks --------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Broadcast:
    id: str
    status: str
    """``running``, ``done``, ``cancelled`` or ``failed``."""
    audience: str
    """``all`` or ``list``."""
    users_seen: int
    sent: int
    failed: int
    type: str
    content: JSON
    created_at: int
    updated_at: int
    total: int | None = None
    finished_at: int | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class WordList:
    name: str
    policy: str
    """``replace`` or ``reject``."""
    words: list[str]
    created_at: int
    updated_at: int


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    max_token_ttl_seconds: int
    auto_create_users: bool
    write_rate_per_second: int
    read_rate_per_second: int
    max_text_bytes: int
    max_content_bytes: int
    recall_window_seconds: int
    user_send_rate_per_second: int
    max_sessions_mobile: int
    max_sessions_web: int
    secret_grace_seconds: int
    friendship_required_for_direct: bool
    group_member_limit: int
    users_may_create_groups: bool
    group_read_receipt_limit: int
    edit_window_seconds: int
    rooms_created_on_join: bool
    room_send_rate_per_second: int
    room_backlog: int
    broadcast_rate_per_second: int


@dataclass(frozen=True, kw_only=True)
class BeforeSend:
    enabled: bool = False
    sources: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    timeout_ms: int | None = None
    policy: str | None = None


@dataclass(frozen=True, kw_only=True)
class WebhookSettingsView:
    url: str | None = None
    events: list[str] = field(default_factory=list)
    before_send: BeforeSend | None = None


@dataclass(frozen=True, kw_only=True)
class Breaker:
    consecutive_failures: int
    cooldown_ms: int
    paused_until: int | None = None


@dataclass(frozen=True, kw_only=True)
class WebhookSettings:
    config: WebhookSettingsView
    breaker: Breaker | None = None


@dataclass(frozen=True, kw_only=True)
class DeadEvent:
    id: str
    type: str
    body: str
    state: str
    attempts: int
    created_at: int
    next_attempt_at: int
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class Redelivered:
    id: str
    queued_at: int


# ---- inputs ------------------------------------------------------------------------------


class UserInput(TypedDict, total=False):
    """One user of :meth:`Client.upsert_users`."""

    id: Required[str]
    name: str
    avatar_url: str | None
    metadata: JSON


class Target(TypedDict, total=False):
    """Where a message goes: exactly one of ``user``, ``group``, ``room``."""

    user: str
    group: str
    room: str


class ExtensionSet(TypedDict):
    key: str
    value: str
    expected_version: NotRequired[int]


class ExtensionDelete(TypedDict):
    key: str
    expected_version: NotRequired[int]


class BeforeSendConfig(TypedDict, total=False):
    enabled: bool
    sources: list[str]
    """``sdk``, ``server_api``."""
    types: list[str]
    timeout_ms: int
    policy: Literal["fail_open", "fail_closed"]


class WebhookConfig(TypedDict, total=False):
    url: str | None
    events: list[str]
    before_send: BeforeSendConfig | None


class AppSettingsPatch(TypedDict, total=False):
    """Any subset of the app settings (docs/server-api.md, "App settings")."""

    max_token_ttl_seconds: int
    auto_create_users: bool
    write_rate_per_second: int
    read_rate_per_second: int
    max_text_bytes: int
    max_content_bytes: int
    recall_window_seconds: int
    user_send_rate_per_second: int
    max_sessions_mobile: int
    max_sessions_web: int
    secret_grace_seconds: int
    friendship_required_for_direct: bool
    group_member_limit: int
    users_may_create_groups: bool
    group_read_receipt_limit: int
    edit_window_seconds: int
    rooms_created_on_join: bool
    room_send_rate_per_second: int
    room_backlog: int
    broadcast_rate_per_second: int
    push: dict[str, Any]
    """The offline push policy, replaced whole: ``show_preview``, ``badge``,
    ``mention_only_group_size``, ``templates`` (docs/push.md)."""


# ---- decoding ----------------------------------------------------------------------------


class DecodeError(ValueError):
    """An answer that does not fit its model."""


_hints_cache: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _hints_cache.get(cls)
    if hints is None:
        hints = typing.get_type_hints(cls)
        _hints_cache[cls] = hints
    return hints


def _decode_value(tp: Any, value: Any, where: str) -> Any:
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        others = [a for a in args if a is not type(None)]
        return _decode_value(others[0], value, where)
    if origin is list:
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected a list, got {type(value).__name__}")
        (item,) = typing.get_args(tp)
        return [_decode_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DecodeError(f"{where}: expected an object, got {type(value).__name__}")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return decode(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"{where}: expected a boolean, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise DecodeError(f"{where}: expected a string, got {value!r}")
        return value
    raise DecodeError(f"{where}: no decoder for {tp!r}")  # pragma: no cover


def decode(cls: type[T], value: Any, where: str = "answer") -> T:
    """Builds the dataclass ``cls`` from parsed JSON: required fields must be present and
    every field of the right type; unknown fields are ignored."""
    if not isinstance(value, dict):
        raise DecodeError(f"{where}: expected an object, got {type(value).__name__}")
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f.metadata.get("json", f.name)
        if key in value:
            kwargs[f.name] = _decode_value(hints[f.name], value[key], f"{where}.{key}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{where}: missing {key!r}")
    return cls(**kwargs)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list. ``next_cursor`` is ``None`` on the last page; pass it back as
    ``cursor`` for the next one, or use the client's ``iter_*`` methods, which do."""

    items: list[T]
    next_cursor: str | None = None
    next_call: Call[Page[T]] | None = field(default=None, repr=False, compare=False)
    """The request for the next page, ``None`` on the last: what the ``iter_*`` methods
    follow, and ``client.call(page.next_call)`` sends."""

    @property
    def has_more(self) -> bool:
        return self.next_call is not None

    def __iter__(self) -> typing.Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)
