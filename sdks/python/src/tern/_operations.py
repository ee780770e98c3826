"""Every operation of the server API (docs/openapi.json), once, as a method that builds a
:class:`Call`. ``Client`` and ``AsyncClient`` are generated from this class by
``scripts/generate_clients.py``: each method here becomes a method of both that sends the
call, and each method returning ``Call[Page[X]]`` also gets an ``iter_*`` twin that walks
every page.

Idempotent calls (``idempotent=True``) are retried when their first attempt's fate is
unknown; sends always carry a ``client_msg_id`` (a fresh one when none is given) so that a
retry is answered with the first message instead of storing a second.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from ._core import UNSET, Call, Unset, json_body, new_client_msg_id, path, query
from .models import (
    JSON,
    AppSettings,
    AppSettingsPatch,
    BatchResult,
    Block,
    Broadcast,
    Conversation,
    DeadEvent,
    DecodeError,
    DeleteForUserResult,
    ExtensionDelete,
    Extensions,
    ExtensionSet,
    Friend,
    FriendRequest,
    Group,
    JoinPolicy,
    JoinRequest,
    JoinResult,
    Member,
    Message,
    MessageType,
    Page,
    Presence,
    Reaction,
    ReactionUser,
    ReadCount,
    Redelivered,
    Room,
    RoomMute,
    SendResult,
    SessionsClosed,
    Target,
    Token,
    User,
    UserDetail,
    UserInput,
    WebhookConfig,
    WebhookSettings,
    WordList,
    decode,
)

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
"""What the server returns when no ``limit`` is given."""
MAX_PAGE_SIZE = 100


def _one(cls: type[T]) -> Callable[[Any], T]:
    return lambda value: decode(cls, value)


def _field(value: Any, key: str) -> Any:
    if not isinstance(value, dict) or key not in value:
        raise DecodeError(f"answer: missing {key!r}")
    return value[key]


def _items(cls: type[T], key: str) -> Callable[[Any], list[T]]:
    def read(value: Any) -> list[T]:
        items = _field(value, key)
        if not isinstance(items, list):
            raise DecodeError(f"answer.{key}: expected a list")
        return [decode(cls, item, f"answer.{key}[{i}]") for i, item in enumerate(items)]

    return read


def _strings(key: str) -> Callable[[Any], list[str]]:
    def read(value: Any) -> list[str]:
        items = _field(value, key)
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise DecodeError(f"answer.{key}: expected a list of strings")
        return list(items)

    return read


def _raw(value: Any) -> JSON:
    """An answer kept as the JSON object the server sent."""
    if not isinstance(value, dict):
        raise DecodeError("answer: expected an object")
    return value


def _done(value: Any) -> None:
    _field(value, "ok")


def _cursor_page(
    item: Callable[[Any], list[T]], again: Callable[[str], Call[Page[T]]]
) -> Callable[[Any], Page[T]]:
    """Reads a cursor-paged list; the page's next call is ``again(next_cursor)``."""

    def read(value: Any) -> Page[T]:
        items = item(value)
        cursor = value.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise DecodeError("answer.next_cursor: expected a string")
        return Page(items, cursor, again(cursor) if cursor else None)

    return read


def _page_of(cls: type[T], key: str, again: Callable[[str], Call[Page[T]]]) -> Callable[[Any], Page[T]]:
    return _cursor_page(_items(cls, key), again)


def _patch(**fields: Any) -> dict[str, Any]:
    """The fields of an update that are not :data:`UNSET`."""
    return {k: v for k, v in fields.items() if v is not UNSET}


def _optional(**fields: Any) -> dict[str, Any]:
    """The fields that are not ``None``."""
    return {k: v for k, v in fields.items() if v is not None}


def _get(p: str, read: Callable[[Any], T], q: str = "") -> Call[T]:
    return Call("GET", p, q, None, read, idempotent=True)


def _send(
    method: str, p: str, read: Callable[[Any], T], body: Mapping[str, Any] | None = None, *,
    idempotent: bool = False, q: str = "",
) -> Call[T]:
    return Call(method, p, q, None if body is None else json_body(body), read, idempotent)


class Operations:
    """The server API as calls. Users of the SDK call the same methods on ``Client`` or
    ``AsyncClient``, which send them."""

    # ---- users ---------------------------------------------------------------------------

    def upsert_users(self, users: Sequence[UserInput]) -> Call[list[User]]:
        """Creates or updates 1–100 users (``POST /v1/users``)."""
        return _send("POST", "/v1/users", _items(User, "users"), {"users": list(users)}, idempotent=True)

    def create_user(
        self, user_id: str, name: str | None = None, *, avatar_url: str | None = None,
        metadata: JSON | None = None,
    ) -> Call[User]:
        """Creates (or updates) one user: :meth:`upsert_users` with one entry."""
        entry = _optional(id=user_id, name=name, avatar_url=avatar_url, metadata=metadata)
        read = _items(User, "users")
        return _send("POST", "/v1/users", lambda v: read(v)[0], {"users": [entry]}, idempotent=True)

    def list_users(self, *, cursor: str | None = None, limit: int | None = None) -> Call[Page[User]]:
        """The app's users, by id, a page at a time (``GET /v1/users``)."""
        return _get(
            "/v1/users",
            _page_of(User, "users", lambda c: self.list_users(cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def get_user(self, user_id: str) -> Call[UserDetail]:
        """One user, with ``online``, ``devices`` and ``last_seen``."""
        return _get(path("/v1/users/{}", user_id), _one(UserDetail))

    def update_user(
        self, user_id: str, *, name: str | Unset = UNSET, avatar_url: str | None | Unset = UNSET,
        metadata: JSON | Unset = UNSET,
    ) -> Call[User]:
        """Changes the fields given; ``avatar_url=None`` clears the avatar."""
        body = _patch(name=name, avatar_url=avatar_url, metadata=metadata)
        return _send("PATCH", path("/v1/users/{}", user_id), _one(User), body, idempotent=True)

    def delete_user(self, user_id: str) -> Call[None]:
        """Deletes a user and closes their sessions; their messages stay."""
        return _send("DELETE", path("/v1/users/{}", user_id), _done)

    def mint_token(self, user_id: str, *, ttl_seconds: int | None = None) -> Call[Token]:
        """A user token for SDK login, minted by Tern (default lifetime 7 days). To mint
        without a round trip, use :func:`tern.mint_user_token`."""
        body = _optional(ttl_seconds=ttl_seconds)
        return _send("POST", path("/v1/users/{}/tokens", user_id), _one(Token), body)

    def revoke_tokens(self, user_id: str) -> Call[None]:
        """Revokes every token issued to the user so far and closes their sessions."""
        return _send("POST", path("/v1/users/{}/tokens/revoke", user_id), _done)

    def kick(self, user_id: str) -> Call[None]:
        """Closes the user's sessions now (they may log in again)."""
        return _send("POST", path("/v1/users/{}/kick", user_id), _done)

    def ban_user(
        self, user_id: str, *, until: int | None = None, reason: str | None = None
    ) -> Call[User]:
        """Bans until ``until`` (Unix ms; ``None``: forever): sessions close, logins and
        sends fail with ``user_banned``."""
        body = {"until": until, **_optional(reason=reason)}
        return _send("POST", path("/v1/users/{}/ban", user_id), _one(User), body, idempotent=True)

    def unban_user(self, user_id: str) -> Call[User]:
        return _send("DELETE", path("/v1/users/{}/ban", user_id), _one(User), idempotent=True)

    def mute_user(self, user_id: str, *, until: int | None = None) -> Call[User]:
        """Mutes app-wide until ``until`` (Unix ms; ``None``: forever): sends fail with
        ``user_muted``."""
        return _send(
            "POST", path("/v1/users/{}/mute", user_id), _one(User), {"until": until}, idempotent=True
        )

    def unmute_user(self, user_id: str) -> Call[User]:
        return _send("DELETE", path("/v1/users/{}/mute", user_id), _one(User), idempotent=True)

    def query_presence(self, user_ids: Sequence[str]) -> Call[list[Presence]]:
        """``online``, connected ``devices`` and ``last_seen`` of 1–500 users."""
        body = {"users": list(user_ids)}
        return _send("POST", "/v1/presence/query", _items(Presence, "users"), body, idempotent=True)

    # ---- messages ------------------------------------------------------------------------

    def send_message(
        self, *, to: Target, type: MessageType | str, content: JSON, from_: str | None = None,
        client_msg_id: str | None = None, reply_to: str | None = None,
        mentions: Sequence[str] | None = None, mention_all: bool | None = None,
    ) -> Call[SendResult]:
        """Sends a message (``POST /v1/messages``). ``from_=None`` sends as the system.

        Idempotent on ``(from, client_msg_id)``: a retry is answered with the first message.
        Without a ``client_msg_id`` the client makes one, so its own retries never store a
        message twice.
        """
        body = _optional(
            **{"from": from_},
            to=dict(to),
            client_msg_id=client_msg_id or new_client_msg_id(),
            type=type,
            content=content,
            reply_to=reply_to,
            mentions=None if mentions is None else list(mentions),
            mention_all=mention_all,
        )
        return _send("POST", "/v1/messages", _one(SendResult), body, idempotent=True)

    def send_text(
        self, from_: str | None, to: Target, text: str, *, client_msg_id: str | None = None,
        reply_to: str | None = None, mentions: Sequence[str] | None = None,
        mention_all: bool | None = None,
    ) -> Call[SendResult]:
        """A text message: ``send_text("alice", {"user": "bob"}, "hi")``."""
        return self.send_message(
            to=to, type="text", content={"text": text}, from_=from_, client_msg_id=client_msg_id,
            reply_to=reply_to, mentions=mentions, mention_all=mention_all,
        )

    def batch_send(
        self, *, from_: str, to: Sequence[str], type: MessageType | str, content: JSON,
        client_msg_id: str | None = None,
    ) -> Call[list[BatchResult]]:
        """One sender to up to 500 users, each their own direct message; each result has
        the ``message`` or an ``error`` code. Keyed per recipient by ``client_msg_id``."""
        body = {
            "from": from_, "to": list(to), "type": type, "content": content,
            "client_msg_id": client_msg_id or new_client_msg_id(),
        }
        return _send("POST", "/v1/messages/batch", _items(BatchResult, "results"), body, idempotent=True)

    def get_message(self, msg_id: str) -> Call[Message]:
        return _get(path("/v1/messages/{}", msg_id), _one(Message))

    def edit_message(self, msg_id: str, content: JSON) -> Call[Message]:
        """Replaces the content (never of a recalled message: ``message_recalled``)."""
        return _send("PATCH", path("/v1/messages/{}", msg_id), _one(Message), {"content": content})

    def recall_message(self, msg_id: str) -> Call[Message]:
        """Recalls any message: it stays in history with ``recalled`` and no content."""
        return _send("POST", path("/v1/messages/{}/recall", msg_id), _one(Message))

    def delete_message_for_user(self, msg_id: str, user_id: str) -> Call[DeleteForUserResult]:
        """Removes a message from one user's history on all their devices."""
        return _send(
            "POST", path("/v1/messages/{}/delete-for-user", msg_id), _one(DeleteForUserResult),
            {"user_id": user_id}, idempotent=True,
        )

    def get_extensions(self, msg_id: str) -> Call[Extensions]:
        return _get(path("/v1/messages/{}/extensions", msg_id), _one(Extensions))

    def update_extensions(
        self, msg_id: str, *, set: Sequence[ExtensionSet] = (),
        delete: Sequence[ExtensionDelete] = (), user_id: str | None = None,
    ) -> Call[Extensions]:
        """Sets and deletes extension keys, all or none; ``version_conflict`` when a key is
        not at its ``expected_version``."""
        body = _optional(user_id=user_id)
        body["set"] = [dict(s) for s in set]
        body["delete"] = [dict(d) for d in delete]
        return _send("POST", path("/v1/messages/{}/extensions", msg_id), _one(Extensions), body)

    def add_reaction(self, msg_id: str, reaction: str, user_id: str) -> Call[Reaction]:
        return _send(
            "PUT", path("/v1/messages/{}/reactions/{}/users/{}", msg_id, reaction, user_id),
            _one(Reaction), idempotent=True,
        )

    def remove_reaction(self, msg_id: str, reaction: str, user_id: str) -> Call[Reaction]:
        return _send(
            "DELETE", path("/v1/messages/{}/reactions/{}/users/{}", msg_id, reaction, user_id),
            _one(Reaction), idempotent=True,
        )

    def list_reaction_users(
        self, msg_id: str, reaction: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[ReactionUser]]:
        """Who reacted with ``reaction``, earliest first."""
        return _get(
            path("/v1/messages/{}/reactions/{}/users", msg_id, reaction),
            _page_of(
                ReactionUser, "users",
                lambda c: self.list_reaction_users(msg_id, reaction, cursor=c, limit=limit),
            ),
            query(cursor=cursor, limit=limit),
        )

    def history(
        self, conversation_id: str, *, after_seq: int | None = None,
        before_seq: int | None = None, limit: int | None = None,
    ) -> Call[Page[Message]]:
        """A page of a conversation's messages, oldest first: those after ``after_seq``
        (default 0), or with ``before_seq`` the page just before it. The page's next call
        continues in the same direction (newer pages after, older pages before);
        ``iter_history`` walks forward from ``after_seq`` to the newest message."""
        size = min(limit or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)

        def read(value: Any) -> Page[Message]:
            messages = _items(Message, "messages")(value)
            nxt: Call[Page[Message]] | None = None
            if len(messages) >= size:
                if before_seq is None:
                    nxt = self.history(conversation_id, after_seq=messages[-1].seq, limit=limit)
                elif messages[0].seq > 1:
                    nxt = self.history(conversation_id, before_seq=messages[0].seq, limit=limit)
            return Page(messages, None, nxt)

        return _get(
            path("/v1/conversations/{}/messages", conversation_id),
            read,
            query(after_seq=after_seq, before_seq=before_seq, limit=limit),
        )

    # ---- conversations -------------------------------------------------------------------

    def list_conversations(
        self, user_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Conversation]]:
        """A user's conversations, most recent first, with ``unread`` and ``last_message``."""
        return _get(
            path("/v1/users/{}/conversations", user_id),
            _page_of(
                Conversation, "conversations",
                lambda c: self.list_conversations(user_id, cursor=c, limit=limit),
            ),
            query(cursor=cursor, limit=limit),
        )

    def get_conversation(self, user_id: str, conversation_id: str) -> Call[Conversation]:
        return _get(
            path("/v1/users/{}/conversations/{}", user_id, conversation_id), _one(Conversation)
        )

    def mark_read(self, user_id: str, conversation_id: str, seq: int) -> Call[Conversation]:
        """Moves the user's read position up to ``seq`` (never back); the other side gets a
        receipt."""
        return _send(
            "POST", path("/v1/users/{}/conversations/{}/read", user_id, conversation_id),
            _one(Conversation), {"seq": seq}, idempotent=True,
        )

    # ---- groups --------------------------------------------------------------------------

    def create_group(
        self, *, name: str, owner: str, id: str | None = None, members: Sequence[str] = (),
        metadata: JSON | None = None, avatar_url: str | None = None,
        announcement: str | None = None, join_policy: JoinPolicy | None = None,
    ) -> Call[Group]:
        """Creates a group (Tern picks an id ``grp_...`` when none is given)."""
        body = _optional(
            id=id, name=name, owner=owner, members=list(members), metadata=metadata,
            avatar_url=avatar_url, announcement=announcement, join_policy=join_policy,
        )
        return _send("POST", "/v1/groups", _one(Group), body)

    def get_group(self, group_id: str) -> Call[Group]:
        return _get(path("/v1/groups/{}", group_id), _one(Group))

    def update_group(
        self, group_id: str, *, name: str | Unset = UNSET, avatar_url: str | None | Unset = UNSET,
        announcement: str | Unset = UNSET, metadata: JSON | Unset = UNSET,
        join_policy: JoinPolicy | Unset = UNSET, mute_all: bool | Unset = UNSET,
    ) -> Call[Group]:
        """Changes the fields given (``mute_all``: only owner and admins may send)."""
        body = _patch(
            name=name, avatar_url=avatar_url, announcement=announcement, metadata=metadata,
            join_policy=join_policy, mute_all=mute_all,
        )
        return _send("PATCH", path("/v1/groups/{}", group_id), _one(Group), body, idempotent=True)

    def dismiss_group(self, group_id: str) -> Call[None]:
        """Dismisses the group; members get a ``group_dismissed`` notice."""
        return _send("DELETE", path("/v1/groups/{}", group_id), _done)

    def add_members(self, group_id: str, user_ids: Sequence[str]) -> Call[list[str]]:
        """Adds 1–500 members; returns those added (existing members are skipped)."""
        return _send(
            "POST", path("/v1/groups/{}/members", group_id), _strings("added"),
            {"members": list(user_ids)}, idempotent=True,
        )

    def list_members(
        self, group_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Member]]:
        return _get(
            path("/v1/groups/{}/members", group_id),
            _page_of(Member, "members", lambda c: self.list_members(group_id, cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def get_member(self, group_id: str, user_id: str) -> Call[Member]:
        return _get(path("/v1/groups/{}/members/{}", group_id, user_id), _one(Member))

    def remove_member(self, group_id: str, user_id: str) -> Call[None]:
        """Removes a member (not the owner)."""
        return _send("DELETE", path("/v1/groups/{}/members/{}", group_id, user_id), _done)

    def set_role(self, group_id: str, user_id: str, role: str) -> Call[Member]:
        """Makes a member ``admin`` or ``member``."""
        return _send(
            "POST", path("/v1/groups/{}/members/{}/role", group_id, user_id), _one(Member),
            {"role": role}, idempotent=True,
        )

    def mute_member(self, group_id: str, user_id: str, *, until: int | None = None) -> Call[Member]:
        """Mutes a member in the group until ``until`` (Unix ms; ``None``: forever)."""
        return _send(
            "POST", path("/v1/groups/{}/members/{}/mute", group_id, user_id), _one(Member),
            {"until": until}, idempotent=True,
        )

    def unmute_member(self, group_id: str, user_id: str) -> Call[Member]:
        return _send(
            "DELETE", path("/v1/groups/{}/members/{}/mute", group_id, user_id), _one(Member),
            idempotent=True,
        )

    def leave_group(self, group_id: str, user_id: str) -> Call[None]:
        """The user leaves (the owner must transfer the ownership first)."""
        return _send("POST", path("/v1/groups/{}/members/{}/leave", group_id, user_id), _done)

    def transfer_owner(self, group_id: str, user_id: str) -> Call[Group]:
        """Makes a member the owner; the old owner becomes a member."""
        return _send(
            "POST", path("/v1/groups/{}/owner", group_id), _one(Group), {"user_id": user_id}
        )

    def join_group(self, group_id: str, user_id: str, *, message: str | None = None) -> Call[JoinResult]:
        """The user asks to join: ``joined`` at once (``free``), or a ``request``."""
        body = {"user_id": user_id, **_optional(message=message)}
        return _send("POST", path("/v1/groups/{}/join", group_id), _one(JoinResult), body)

    def list_join_requests(
        self, group_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[JoinRequest]]:
        return _get(
            path("/v1/groups/{}/join-requests", group_id),
            _page_of(
                JoinRequest, "requests",
                lambda c: self.list_join_requests(group_id, cursor=c, limit=limit),
            ),
            query(cursor=cursor, limit=limit),
        )

    def accept_join_request(self, group_id: str, user_id: str) -> Call[JoinRequest]:
        return _send(
            "POST", path("/v1/groups/{}/join-requests/{}/accept", group_id, user_id), _one(JoinRequest)
        )

    def decline_join_request(self, group_id: str, user_id: str) -> Call[JoinRequest]:
        return _send(
            "POST", path("/v1/groups/{}/join-requests/{}/decline", group_id, user_id), _one(JoinRequest)
        )

    def list_user_groups(
        self, user_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Group]]:
        """The groups a user is a member of."""
        return _get(
            path("/v1/users/{}/groups", user_id),
            _page_of(Group, "groups", lambda c: self.list_user_groups(user_id, cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def read_counts(self, group_id: str, msg_ids: Sequence[str]) -> Call[list[ReadCount]]:
        """How many members have and have not read each of 1–100 messages."""
        return _send(
            "POST", path("/v1/groups/{}/read-counts", group_id), _items(ReadCount, "counts"),
            {"msg_ids": list(msg_ids)}, idempotent=True,
        )

    def list_readers(
        self, group_id: str, msg_id: str, *, unread: bool = False, cursor: str | None = None,
        limit: int | None = None,
    ) -> Call[Page[str]]:
        """Members who read a message (``unread=True``: who have not)."""
        return _get(
            path("/v1/groups/{}/messages/{}/readers", group_id, msg_id),
            _cursor_page(
                _strings("user_ids"),
                lambda c: self.list_readers(group_id, msg_id, unread=unread, cursor=c, limit=limit),
            ),
            query(unread=unread or None, cursor=cursor, limit=limit),
        )

    # ---- rooms ---------------------------------------------------------------------------

    def create_room(
        self, room_id: str, *, name: str | None = None, metadata: JSON | None = None
    ) -> Call[Room]:
        body = _optional(id=room_id, name=name, metadata=metadata)
        return _send("POST", "/v1/rooms", _one(Room), body)

    def list_rooms(self, *, cursor: str | None = None, limit: int | None = None) -> Call[Page[Room]]:
        return _get(
            "/v1/rooms",
            _page_of(Room, "rooms", lambda c: self.list_rooms(cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def get_room(self, room_id: str) -> Call[Room]:
        """One room, with ``member_count`` (users in it now) and ``last_seq``."""
        return _get(path("/v1/rooms/{}", room_id), _one(Room))

    def update_room(
        self, room_id: str, *, name: str | None = None, metadata: JSON | None = None
    ) -> Call[Room]:
        body = _optional(name=name, metadata=metadata)
        return _send("PATCH", path("/v1/rooms/{}", room_id), _one(Room), body, idempotent=True)

    def dismiss_room(self, room_id: str) -> Call[SessionsClosed]:
        """Members are told and leave; the history is deleted."""
        return _send("DELETE", path("/v1/rooms/{}", room_id), _one(SessionsClosed))

    def remove_from_room(self, room_id: str, user_id: str) -> Call[SessionsClosed]:
        """Takes a user out of a room now (they may rejoin)."""
        return _send(
            "DELETE", path("/v1/rooms/{}/members/{}", room_id, user_id), _one(SessionsClosed),
            idempotent=True,
        )

    def mute_in_room(self, room_id: str, user_id: str, *, until: int | None = None) -> Call[RoomMute]:
        return _send(
            "PUT", path("/v1/rooms/{}/mutes/{}", room_id, user_id), _one(RoomMute),
            {"until": until}, idempotent=True,
        )

    def unmute_in_room(self, room_id: str, user_id: str) -> Call[None]:
        return _send("DELETE", path("/v1/rooms/{}/mutes/{}", room_id, user_id), _done)

    def list_room_mutes(
        self, room_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[RoomMute]]:
        """The mutes in force in a room."""
        return _get(
            path("/v1/rooms/{}/mutes", room_id),
            _page_of(RoomMute, "mutes", lambda c: self.list_room_mutes(room_id, cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    # ---- friends and blocks --------------------------------------------------------------

    def send_friend_request(
        self, user_id: str, to: str, *, message: str | None = None
    ) -> Call[FriendRequest]:
        body = {"to": to, **_optional(message=message)}
        return _send("POST", path("/v1/users/{}/friend-requests", user_id), _one(FriendRequest), body)

    def list_friend_requests(
        self, user_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[FriendRequest]]:
        """Pending requests to the user, by sender."""
        return _get(
            path("/v1/users/{}/friend-requests", user_id),
            _page_of(
                FriendRequest, "requests",
                lambda c: self.list_friend_requests(user_id, cursor=c, limit=limit),
            ),
            query(cursor=cursor, limit=limit),
        )

    def accept_friend_request(self, user_id: str, from_id: str) -> Call[FriendRequest]:
        return _send(
            "POST", path("/v1/users/{}/friend-requests/{}/accept", user_id, from_id), _one(FriendRequest)
        )

    def decline_friend_request(self, user_id: str, from_id: str) -> Call[FriendRequest]:
        return _send(
            "POST", path("/v1/users/{}/friend-requests/{}/decline", user_id, from_id), _one(FriendRequest)
        )

    def list_friends(
        self, user_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Friend]]:
        return _get(
            path("/v1/users/{}/friends", user_id),
            _page_of(Friend, "friends", lambda c: self.list_friends(user_id, cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def get_friend(self, user_id: str, friend_id: str) -> Call[Friend]:
        return _get(path("/v1/users/{}/friends/{}", user_id, friend_id), _one(Friend))

    def update_friend(
        self, user_id: str, friend_id: str, *, remark: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Call[Friend]:
        """Sets the remark (``""`` clears it) and/or replaces the tags; ``None`` keeps."""
        body = _optional(remark=remark, tags=None if tags is None else list(tags))
        return _send(
            "PATCH", path("/v1/users/{}/friends/{}", user_id, friend_id), _one(Friend), body,
            idempotent=True,
        )

    def delete_friend(self, user_id: str, friend_id: str, *, both: bool = False) -> Call[None]:
        """Takes ``friend_id`` off the user's list (``both=True``: off both lists)."""
        return _send(
            "DELETE", path("/v1/users/{}/friends/{}", user_id, friend_id), _done,
            q=query(both=both or None),
        )

    def list_blocks(
        self, user_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Block]]:
        return _get(
            path("/v1/users/{}/blocks", user_id),
            _page_of(Block, "blocks", lambda c: self.list_blocks(user_id, cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def block_user(self, user_id: str, blocked_id: str) -> Call[Block]:
        """``blocked_id``'s direct messages to ``user_id`` then fail with ``blocked``."""
        return _send(
            "PUT", path("/v1/users/{}/blocks/{}", user_id, blocked_id), _one(Block), idempotent=True
        )

    def unblock_user(self, user_id: str, blocked_id: str) -> Call[None]:
        return _send("DELETE", path("/v1/users/{}/blocks/{}", user_id, blocked_id), _done)

    # ---- broadcasts ----------------------------------------------------------------------

    def start_broadcast(
        self, *, type: MessageType | str, content: JSON, users: Sequence[str] | None = None,
        client_msg_id: str | None = None,
    ) -> Call[Broadcast]:
        """A notification to every user of the app, or to ``users`` (up to 10,000), run as
        a durable job. Idempotent on ``client_msg_id`` (made when none is given)."""
        body = _optional(
            type=type, content=content, users=None if users is None else list(users),
            client_msg_id=client_msg_id or new_client_msg_id(),
        )
        return _send("POST", "/v1/broadcasts", _one(Broadcast), body, idempotent=True)

    def get_broadcast(self, broadcast_id: str) -> Call[Broadcast]:
        return _get(path("/v1/broadcasts/{}", broadcast_id), _one(Broadcast))

    def list_broadcasts(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[Broadcast]]:
        """The app's broadcasts, newest first."""
        return _get(
            "/v1/broadcasts",
            _page_of(Broadcast, "broadcasts", lambda c: self.list_broadcasts(cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def cancel_broadcast(self, broadcast_id: str) -> Call[Broadcast]:
        return _send("POST", path("/v1/broadcasts/{}/cancel", broadcast_id), _one(Broadcast), idempotent=True)

    # ---- moderation ----------------------------------------------------------------------

    def put_word_list(self, name: str, *, policy: str, words: Sequence[str]) -> Call[WordList]:
        """Creates or replaces a word list; ``policy`` ``replace`` masks matches, ``reject``
        fails the send with ``content_rejected``."""
        return _send(
            "PUT", path("/v1/moderation/word-lists/{}", name), _one(WordList),
            {"policy": policy, "words": list(words)}, idempotent=True,
        )

    def list_word_lists(self) -> Call[list[WordList]]:
        return _get("/v1/moderation/word-lists", _items(WordList, "word_lists"))

    def get_word_list(self, name: str) -> Call[WordList]:
        return _get(path("/v1/moderation/word-lists/{}", name), _one(WordList))

    def delete_word_list(self, name: str) -> Call[None]:
        return _send("DELETE", path("/v1/moderation/word-lists/{}", name), _done)

    # ---- offline push (docs/push.md) -------------------------------------------------------

    def register_device(
        self, user_id: str, provider: str, token: str, *, bundle_id: str | None = None,
        environment: str | None = None, locale: str | None = None,
    ) -> Call[JSON]:
        """Registers a device's push token (``apns`` or ``fcm``) for ``user_id``; a token
        already held by another user of the app moves to this one."""
        body = _optional(provider=provider, token=token, bundle_id=bundle_id, environment=environment, locale=locale)
        return _send("POST", path("/v1/users/{}/devices", user_id), _raw, body, idempotent=True)

    def get_devices(self, user_id: str) -> Call[JSON]:
        """The user's registered push devices (``{"devices": [...]}``)."""
        return _get(path("/v1/users/{}/devices", user_id), _raw)

    def update_device(
        self, user_id: str, device_id: str, *, token: str | None = None,
        environment: str | None = None, locale: str | None = None,
    ) -> Call[JSON]:
        body = _optional(token=token, environment=environment, locale=locale)
        return _send("PATCH", path("/v1/users/{}/devices/{}", user_id, device_id), _raw, body, idempotent=True)

    def remove_device(self, user_id: str, device_id: str) -> Call[JSON]:
        return _send("DELETE", path("/v1/users/{}/devices/{}", user_id, device_id), _raw, idempotent=True)

    def test_push(self, user_id: str, device_id: str) -> Call[JSON]:
        """Sends a test notification to one device and answers with the provider's verdict."""
        return _send("POST", path("/v1/users/{}/devices/{}/test-push", user_id, device_id), _raw)

    def get_push_credentials(self) -> Call[JSON]:
        """Which providers have credentials (never the secrets themselves)."""
        return _get("/v1/push/credentials", _raw)

    def set_apns_credentials(self, *, key_id: str, team_id: str, bundle_id: str, private_key: str) -> Call[JSON]:
        body = {"key_id": key_id, "team_id": team_id, "bundle_id": bundle_id, "private_key": private_key}
        return _send("PUT", "/v1/push/credentials/apns", _raw, body, idempotent=True)

    def set_fcm_credentials(self, service_account: Any) -> Call[JSON]:
        """``service_account``: the service-account JSON Google gives (a mapping or its text)."""
        return _send("PUT", "/v1/push/credentials/fcm", _raw, {"service_account": service_account}, idempotent=True)

    def delete_push_credentials(self, provider: str) -> Call[JSON]:
        return _send("DELETE", path("/v1/push/credentials/{}", provider), _raw, idempotent=True)

    def get_push_log(
        self, *, user_id: str | None = None, device_id: str | None = None, msg_id: str | None = None,
        cursor: str | None = None, limit: int | None = None,
    ) -> Call[JSON]:
        """Push attempts, newest first, with each provider's answer (``{"entries": [...]}``)."""
        q = query(user_id=user_id, device_id=device_id, msg_id=msg_id, cursor=cursor, limit=limit)
        return _get("/v1/push/log", _raw, q)

    def get_push_settings(self, user_id: str) -> Call[JSON]:
        """The user's do-not-disturb hours and muted conversations
        (``{"dnd": {...} | None, "muted_conversations": [...]}``)."""
        return _get(path("/v1/users/{}/push-settings", user_id), _raw)

    def update_push_settings(
        self, user_id: str, *, dnd: JSON | None | Unset = UNSET, mute: Sequence[str] = (),
        unmute: Sequence[str] = (),
    ) -> Call[JSON]:
        """Sets the do-not-disturb hours (``{"start": "22:00", "end": "07:00",
        "utc_offset_minutes": 60}``; ``None`` clears them) and mutes or unmutes
        conversations (at most 100 each; unmute applies after mute), all or nothing."""
        body = _patch(dnd=dnd)
        if mute:
            body["mute"] = list(mute)
        if unmute:
            body["unmute"] = list(unmute)
        return _send("PATCH", path("/v1/users/{}/push-settings", user_id), _raw, body, idempotent=True)

    # ---- files (docs/files.md) -------------------------------------------------------------

    def create_file(self, *, uploader: str, name: str, size: int, content_type: str, sha256: str) -> Call[JSON]:
        """Announces an upload; answers with the file id and its tus upload URL."""
        body = {"uploader": uploader, "name": name, "size": size, "content_type": content_type, "sha256": sha256}
        return _send("POST", "/v1/files", _raw, body)

    def get_file(self, file_id: str, *, user: str | None = None) -> Call[JSON]:
        """A file's record and, for its uploader or a member of a conversation that holds
        it (``user``), an expiring download URL."""
        return _get(path("/v1/files/{}", file_id), _raw, query(user=user))

    def get_storage(self) -> Call[JSON]:
        """The app's storage use and quota."""
        return _get("/v1/app/storage", _raw)

    # ---- app settings and webhooks -------------------------------------------------------

    def get_app_settings(self) -> Call[AppSettings]:
        return _get("/v1/app/settings", _one(AppSettings))

    def update_app_settings(self, settings: AppSettingsPatch) -> Call[AppSettings]:
        """Changes the settings given and answers with all of them."""
        return _send("PATCH", "/v1/app/settings", _one(AppSettings), dict(settings), idempotent=True)

    def get_webhook(self) -> Call[WebhookSettings]:
        """The webhook configuration and the before-send breaker's state."""
        return _get("/v1/webhook", _one(WebhookSettings))

    def set_webhook(self, config: WebhookConfig) -> Call[WebhookSettings]:
        return _send("PUT", "/v1/webhook", _one(WebhookSettings), dict(config), idempotent=True)

    def list_dead_events(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> Call[Page[DeadEvent]]:
        """Webhook events given up after 24 h of retries."""
        return _get(
            "/v1/webhook/dead-events",
            _page_of(DeadEvent, "events", lambda c: self.list_dead_events(cursor=c, limit=limit)),
            query(cursor=cursor, limit=limit),
        )

    def redeliver_event(self, event_id: str) -> Call[Redelivered]:
        return _send("POST", path("/v1/webhook/dead-events/{}/redeliver", event_id), _one(Redelivered))
