"""The blocking client against a real ``tern serve``: what a tenant's backend does and
sees."""

from __future__ import annotations

import http.server
import json
import queue
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import tern

from .conftest import App, Server


def test_users_are_created_read_listed_page_by_page_and_deleted(client: tern.Client, uid: str) -> None:
    ids = [f"u{i}-{uid}" for i in range(7)]
    created = client.upsert_users([{"id": i, "name": f"User {i}", "metadata": {"n": n}} for n, i in enumerate(ids)])
    assert [u.id for u in created] == ids

    alice = client.get_user(ids[0])
    assert (alice.name, alice.metadata, alice.online, alice.devices) == (f"User {ids[0]}", {"n": 0}, False, [])

    first = client.list_users(limit=3)
    assert len(first) == 3 and first.next_cursor is not None
    listed = [u.id for u in client.iter_users(limit=3)]
    assert len(listed) == len(set(listed)), "no user twice across pages"
    assert set(ids) <= set(listed)
    assert listed == sorted(listed)

    renamed = client.update_user(ids[1], name="Renamed", avatar_url="https://example.com/a.png")
    assert (renamed.name, renamed.avatar_url) == ("Renamed", "https://example.com/a.png")
    cleared = client.update_user(ids[1], avatar_url=None)
    assert (cleared.name, cleared.avatar_url) == ("Renamed", None)

    client.delete_user(ids[2])
    with pytest.raises(tern.NotFoundError) as caught:
        client.get_user(ids[2])
    assert caught.value.code == "not_found" and caught.value.request_id


def test_messages_are_sent_and_history_is_read_with_the_iterator(client: tern.Client, uid: str) -> None:
    a, b = f"alice-{uid}", f"bob-{uid}"
    client.upsert_users([{"id": a, "name": "Alice"}, {"id": b, "name": "Bob"}])
    sent = [client.send_text(a if i % 2 == 0 else b, {"user": b if i % 2 == 0 else a}, f"m{i}") for i in range(25)]
    conversation = sent[0].conversation_id
    assert conversation == f"d:{a}:{b}" if a < b else f"d:{b}:{a}"
    assert {s.conversation_id for s in sent} == {conversation}, "both directions are one conversation"
    assert [s.seq for s in sent] == list(range(1, 26))

    messages = list(client.iter_history(conversation, limit=10))
    assert [m.seq for m in messages] == list(range(1, 26))
    assert [m.content for m in messages] == [{"text": f"m{i}"} for i in range(25)]
    assert messages[0].from_ == a and messages[1].from_ == b

    after = list(client.iter_history(conversation, after_seq=20, limit=2))
    assert [m.seq for m in after] == [21, 22, 23, 24, 25]

    older = client.history(conversation, before_seq=11, limit=5)
    assert [m.seq for m in older] == [6, 7, 8, 9, 10]
    assert older.next_call is not None
    assert [m.seq for m in client.call(older.next_call)] == [1, 2, 3, 4, 5]
    backwards = [m.seq for m in client.iter_history(conversation, before_seq=11, limit=5)]
    assert backwards == [6, 7, 8, 9, 10, 1, 2, 3, 4, 5]

    one = client.get_message(sent[3].msg_id)
    assert (one.seq, one.content) == (4, {"text": "m3"})

    edited = client.edit_message(sent[3].msg_id, {"text": "m3, edited"})
    assert edited.content == {"text": "m3, edited"} and edited.edited_at is not None
    recalled = client.recall_message(sent[4].msg_id)
    assert recalled.recalled and recalled.content is None
    with pytest.raises(tern.RejectedError) as caught:
        client.edit_message(sent[4].msg_id, {"text": "too late"})
    assert caught.value.code == tern.ErrorCode.MESSAGE_RECALLED

    conversations = client.list_conversations(b)
    mine = next(c for c in conversations if c.conversation_id == conversation)
    assert mine.last_seq == 25 and mine.last_message is not None
    read = client.mark_read(a, conversation, 25)
    assert (read.read_seq, read.unread) == (25, 0)


def test_a_retried_send_with_the_same_client_msg_id_stores_one_message(
    server: Server, app: App, uid: str
) -> None:
    """The first attempt reaches Tern but its answer is lost; the client's retry sends the
    same client_msg_id, and Tern answers with the first message."""
    a, b = f"ra-{uid}", f"rb-{uid}"
    real = httpx.HTTPTransport()
    lost = {"count": 0}

    class LoseFirstAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = real.handle_request(request)
            if request.url.path == "/v1/messages" and lost["count"] == 0:
                response.read()
                lost["count"] += 1
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    http = httpx.Client(transport=LoseFirstAnswer())
    with tern.Client(server.base_url, app.app_key, app.app_secret, http_client=http) as client:
        client.upsert_users([{"id": a}, {"id": b}])
        first = client.send_text(a, {"user": b}, "only once")  # no client_msg_id given
        assert lost["count"] == 1
        again = client.send_text(a, {"user": b}, "a different text", client_msg_id=client.get_message(first.msg_id).client_msg_id)
        assert again == first, "a retry is answered with the first message"
        history = list(client.iter_history(first.conversation_id))
    http.close()
    assert [m.content for m in history] == [{"text": "only once"}]


def test_the_group_lifecycle(client: tern.Client, uid: str) -> None:
    owner, bob, carol, dave = (f"{n}-{uid}" for n in ("owner", "bob", "carol", "dave"))
    client.upsert_users([{"id": u} for u in (owner, bob, carol, dave)])
    group = client.create_group(id=f"g-{uid}", name="Team", owner=owner, members=[bob], join_policy="approval")
    assert (group.owner, group.member_count, group.join_policy) == (owner, 2, "approval")

    assert client.add_members(group.id, [carol, bob]) == [carol]
    members = [m.user_id for m in client.iter_members(group.id, limit=1)]  # a page per member
    assert sorted(members) == sorted([owner, bob, carol])
    assert group.id in {g.id for g in client.iter_user_groups(carol)}

    assert client.set_role(group.id, bob, "admin").role == "admin"
    joined = client.join_group(group.id, dave, message="let me in")
    assert not joined.joined and joined.request is not None
    assert [r.user_id for r in client.iter_join_requests(group.id)] == [dave]
    assert client.accept_join_request(group.id, dave).state == "accepted"
    assert client.get_member(group.id, dave).role == "member"

    sent = client.send_text(bob, {"group": group.id}, "hello team", mentions=[carol])
    assert sent.conversation_id == f"g:{group.id}"
    assert client.get_conversation(carol, sent.conversation_id).mentioned

    client.mute_member(group.id, carol)
    with pytest.raises(tern.PermissionDeniedError) as caught:
        client.send_text(carol, {"group": group.id}, "can I speak?")
    assert caught.value.code == "member_muted"
    assert client.unmute_member(group.id, carol).muted_until is None
    client.send_text(carol, {"group": group.id}, "now I can")

    counts = client.read_counts(group.id, [sent.msg_id])
    assert counts[0].msg_id == sent.msg_id

    updated = client.update_group(group.id, name="Team 2", mute_all=True)
    assert (updated.name, updated.mute_all) == ("Team 2", True)
    with pytest.raises(tern.PermissionDeniedError) as caught:
        client.send_text(carol, {"group": group.id}, "muted all")
    assert caught.value.code == "group_muted"

    assert client.transfer_owner(group.id, bob).owner == bob
    client.leave_group(group.id, owner)
    client.remove_member(group.id, dave)
    assert {m.user_id for m in client.iter_members(group.id)} == {bob, carol}

    client.dismiss_group(group.id)
    with pytest.raises(tern.NotFoundError):
        client.get_group(group.id)


def test_moderation_word_lists_bans_and_mutes(client: tern.Client, uid: str) -> None:
    a, b = f"ma-{uid}", f"mb-{uid}"
    client.upsert_users([{"id": a}, {"id": b}])
    words = client.put_word_list(f"bad-{uid}", policy="reject", words=[f"forbidden{uid}"])
    assert words.policy == "reject"
    assert f"bad-{uid}" in {w.name for w in client.list_word_lists()}
    with pytest.raises(tern.RejectedError) as caught:
        client.send_text(a, {"user": b}, f"this is forbidden{uid} here")
    assert (caught.value.status, caught.value.code) == (422, "content_rejected")
    client.delete_word_list(f"bad-{uid}")
    client.send_text(a, {"user": b}, f"this is forbidden{uid} here")

    banned = client.ban_user(a, reason="spam")
    assert banned.banned_until is not None
    with pytest.raises(tern.PermissionDeniedError) as denied:
        client.send_text(a, {"user": b}, "still here?")
    assert denied.value.code == tern.ErrorCode.USER_BANNED
    assert client.unban_user(a).banned_until is None

    until = int(time.time() * 1000) + 3_600_000
    assert client.mute_user(a, until=until).muted_until == until
    with pytest.raises(tern.PermissionDeniedError) as denied:
        client.send_text(a, {"user": b}, "muted?")
    assert denied.value.code == "user_muted"
    client.unmute_user(a)
    client.send_text(a, {"user": b}, "free again")


def test_friends_blocks_and_reactions(client: tern.Client, uid: str) -> None:
    a, b = f"fa-{uid}", f"fb-{uid}"
    client.upsert_users([{"id": a}, {"id": b}])
    assert client.send_friend_request(a, b, message="hi").state == "pending"
    assert [r.from_ for r in client.iter_friend_requests(b)] == [a]
    client.accept_friend_request(b, a)
    assert [f.friend_id for f in client.iter_friends(a)] == [b]
    friend = client.update_friend(a, b, remark="Bee", tags=["work"])
    assert (friend.remark, friend.tags) == ("Bee", ["work"])
    client.delete_friend(a, b, both=True)
    assert list(client.iter_friends(b)) == []

    sent = client.send_text(a, {"user": b}, "react to me")
    reaction = client.add_reaction(sent.msg_id, "👍", b)
    assert (reaction.reaction, reaction.count) == ("👍", 1)
    assert [u.user_id for u in client.iter_reaction_users(sent.msg_id, "👍")] == [b]

    client.block_user(b, a)
    assert [x.blocked_id for x in client.iter_blocks(b)] == [a]
    with pytest.raises(tern.PermissionDeniedError) as caught:
        client.send_text(a, {"user": b}, "blocked?")
    assert caught.value.code == "blocked"
    client.unblock_user(b, a)


def test_rooms_broadcasts_settings_and_tokens(client: tern.Client, uid: str) -> None:
    room = client.create_room(f"room-{uid}", name="Lobby", metadata={"topic": "x"})
    assert (room.name, room.member_count) == ("Lobby", 0)
    assert client.update_room(room.id, name="Hall").name == "Hall"
    assert room.id in {r.id for r in client.iter_rooms(limit=2)}
    u = f"room-user-{uid}"
    client.create_user(u)
    sent = client.send_text(u, {"room": room.id}, "hi room")
    assert sent.conversation_id == f"r:{room.id}"
    client.mute_in_room(room.id, u)
    assert [m.user_id for m in client.iter_room_mutes(room.id)] == [u]
    client.unmute_in_room(room.id, u)
    assert client.dismiss_room(room.id).ok

    job = client.start_broadcast(type="text", content={"text": "hello all"}, users=[u], client_msg_id=f"b-{uid}")
    assert client.start_broadcast(type="text", content={"text": "hello all"}, users=[u], client_msg_id=f"b-{uid}").id == job.id
    assert client.get_broadcast(job.id).audience == "list"
    assert job.id in {x.id for x in client.iter_broadcasts()}

    settings = client.get_app_settings()
    assert settings.room_backlog == 50
    token = client.mint_token(u, ttl_seconds=600)
    assert token.token.count(".") == 2 and token.expires_at > time.time()
    client.revoke_tokens(u)
    client.kick(u)
    presence = client.query_presence([u])
    assert presence[0].user_id == u and not presence[0].online


def test_a_wrong_secret_an_unknown_key_and_bad_input_give_the_documented_codes(server: Server, app: App) -> None:
    with tern.Client(server.base_url, app.app_key, "sk_not_the_secret") as wrong:
        with pytest.raises(tern.AuthenticationError) as caught:
            wrong.list_users()
    assert (caught.value.status, caught.value.code) == (401, "bad_signature")

    with tern.Client(server.base_url, "ak_nosuchapp123", app.app_secret) as unknown:
        with pytest.raises(tern.AuthenticationError) as caught:
            unknown.list_users()
    assert caught.value.code == tern.ErrorCode.UNKNOWN_APP_KEY

    with tern.Client(server.base_url, app.app_key, app.app_secret) as client:
        with pytest.raises(tern.InvalidRequestError) as bad:
            client.create_user("not a valid id!")
        assert (bad.value.status, bad.value.code) == (400, "invalid_argument")
        with pytest.raises(tern.InvalidRequestError) as bad:
            client.send_message(to={"user": "x"}, type="text", content={"text": ""}, from_="y")
        assert bad.value.code == "invalid_argument"
        with pytest.raises(tern.InvalidRequestError) as bad:
            client.update_app_settings({"room_backlog": 100000})
        assert "room_backlog" in bad.value.message
        # A body Tern cannot parse: the same error shape, code invalid_json.
        with pytest.raises(tern.InvalidRequestError) as bad:
            client.call(tern.Call("POST", "/v1/users", "", b'{"users": [', lambda v: v))
        assert bad.value.code == "invalid_json"


def test_app_b_cannot_see_app_a(server: Server, app: App, other_app: App, client: tern.Client, uid: str) -> None:
    a, b = f"xa-{uid}", f"xb-{uid}"
    client.upsert_users([{"id": a}, {"id": b}])
    sent = client.send_text(a, {"user": b}, "secret")
    group = client.create_group(name="private", owner=a)
    with tern.Client(server.base_url, other_app.app_key, other_app.app_secret) as other:
        for read in (
            lambda: other.get_user(a),
            lambda: other.get_message(sent.msg_id),
            lambda: other.get_group(group.id),
            lambda: other.recall_message(sent.msg_id),
            lambda: list(other.iter_conversations(a)),
            lambda: list(other.iter_history(sent.conversation_id)),
        ):
            with pytest.raises(tern.NotFoundError):
                read()
        assert a not in {u.id for u in other.iter_users()}
    # Still intact for its own app.
    assert client.get_message(sent.msg_id).content == {"text": "secret"}


def test_rate_limits_carry_retry_after_and_are_waited_out(server: Server) -> None:
    limited = server.new_app()
    with tern.Client(server.base_url, limited.app_key, limited.app_secret) as admin:
        admin.update_app_settings({"read_rate_per_second": 1})
    no_retry = tern.RetryPolicy(max_attempts=1)
    with tern.Client(server.base_url, limited.app_key, limited.app_secret, retry=no_retry) as client:
        with pytest.raises(tern.RateLimitedError) as caught:
            for _ in range(20):
                client.list_users()
    assert caught.value.status == 429 and caught.value.code == "rate_limited"
    assert caught.value.retry_after is not None and caught.value.retry_after >= 1
    with tern.Client(server.base_url, limited.app_key, limited.app_secret) as patient:
        for _ in range(3):
            patient.list_users()  # each waits out Retry-After instead of failing


def test_a_server_bearer_token_is_accepted(server: Server, app: App) -> None:
    token = tern.mint_server_token(app.app_key, app.app_secret, ttl_seconds=600)
    answer = httpx.get(f"{server.base_url}/v1/users?limit=1", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    stale = tern.mint_server_token(app.app_key, app.app_secret, iat=int(time.time()) - 7200, ttl_seconds=3600)
    answer = httpx.get(f"{server.base_url}/v1/users", headers={"Authorization": f"Bearer {stale}"})
    assert answer.json()["error"]["code"] == "token_expired"


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    got: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"action":"allow"}')

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", got
    httpd.shutdown()
    httpd.server_close()


def test_a_real_webhook_verifies_with_the_apps_webhook_secret(
    server: Server, receiver: tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    hooked = server.new_app()
    with tern.Client(server.base_url, hooked.app_key, hooked.app_secret) as client:
        settings = client.set_webhook({"url": url, "events": ["message.sent"]})
        assert settings.config.url == url and settings.config.events == ["message.sent"]
        client.upsert_users([{"id": "wa"}, {"id": "wb"}])
        sent = client.send_text("wa", {"user": "wb"}, "hook me")
        headers, body = got.get(timeout=60)
        assert list(client.iter_dead_events()) == []

    tern.verify_webhook(body, headers["x-tern-signature"], hooked.webhook_secret)
    event = tern.parse_webhook(body)
    assert event.type == headers["x-tern-event"] == "message.sent"
    assert event.id == headers["x-tern-webhook-id"]
    assert event.data["msg_id"] == sent.msg_id
    with pytest.raises(tern.WebhookBadSignature):
        tern.verify_webhook(body, headers["x-tern-signature"], hooked.app_secret)
    with pytest.raises(tern.WebhookBadSignature):
        tern.verify_webhook(body.replace(b"hook me", b"hook ME"), headers["x-tern-signature"], hooked.webhook_secret)
    assert json.loads(body)["app_key"] == hooked.app_key


def test_the_quick_start_of_the_docs_runs(server: Server) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    fresh = server.new_app()
    script = Path(__file__).resolve().parent.parent / "examples" / "quickstart.py"
    env = {**os.environ, "TERN_URL": server.base_url, "TERN_APP_KEY": fresh.app_key,
           "TERN_APP_SECRET": fresh.app_secret}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["1 alice: {'text': 'Hi Bob!'}", "2 bob: {'text': 'Hi Alice!'}"]
    assert "d:alice:bob: 1 unread" in out.stdout
    assert "expected: not_found" in out.stdout


def test_tokens_minted_locally_and_by_tern_log_users_in_and_revocation_and_kicks_end_sessions(
    server: Server, app: App, client: tern.Client, uid: str
) -> None:
    from .ws_login import Session

    user = f"login-{uid}"
    local = tern.mint_user_token(app.app_key, app.app_secret, user, ttl_seconds=600)
    session = Session(server.base_url, local, device_id="dev-1")
    assert session.first["auth_ok"]["user_id"] == user, session.first
    detail = client.get_user(user)  # created on first login
    assert detail.online and detail.devices == ["dev-1"]
    client.kick(user)
    assert session.recv()["kicked"]["code"] == "kicked"
    assert session.recv() == {"close": 4001}
    session.close()

    minted = client.mint_token(user, ttl_seconds=600)
    session = Session(server.base_url, minted.token)
    assert session.first["auth_ok"]["user_id"] == user, session.first
    client.revoke_tokens(user)
    assert session.recv()["kicked"]["code"] == "token_revoked"
    session.close()

    refused = Session(server.base_url, minted.token)
    assert refused.first["error"]["code"] == "token_revoked"
    refused.close()
    wrong = Session(server.base_url, tern.mint_user_token(app.app_key, "sk_wrong", user))
    assert wrong.first["error"]["code"] == "bad_signature"
    wrong.close()


def test_batches_replies_extensions_deletes_and_readers(client: tern.Client, uid: str) -> None:
    a, b, c = f"ea-{uid}", f"eb-{uid}", f"ec-{uid}"
    client.upsert_users([{"id": a}, {"id": b}, {"id": c}])

    blocker = f"ed-{uid}"
    client.create_user(blocker)
    client.block_user(blocker, a)
    results = client.batch_send(from_=a, to=[b, c, blocker], type="text", content={"text": "to all"})
    by_to = {r.to: r for r in results}
    assert by_to[b].message is not None and by_to[c].message is not None
    assert (by_to[blocker].message, by_to[blocker].error) == (None, "blocked")
    first = by_to[b].message
    assert first is not None
    once = client.batch_send(from_=a, to=[b, c], type="text", content={"text": "x"}, client_msg_id=f"bt-{uid}")
    twice = client.batch_send(from_=a, to=[b, c], type="text", content={"text": "y"}, client_msg_id=f"bt-{uid}")
    assert [r.message for r in once] == [r.message for r in twice], "a batch is idempotent per recipient"

    reply = client.send_text(b, {"user": a}, "replying", reply_to=first.msg_id)
    quoted = client.get_message(reply.msg_id)
    assert quoted.reply_to == first.msg_id
    assert quoted.quoted is not None and quoted.quoted.content == {"text": "to all"}

    ext = client.update_extensions(first.msg_id, set=[{"key": "color", "value": "red"}])
    assert [(e.key, e.value) for e in ext.extensions] == [("color", "red")]
    version = ext.extensions[0].version
    with pytest.raises(tern.ConflictError) as caught:
        client.update_extensions(first.msg_id, set=[{"key": "color", "value": "blue", "expected_version": version + 7}])
    assert caught.value.code == "version_conflict"
    client.update_extensions(first.msg_id, set=[{"key": "color", "value": "blue", "expected_version": version}])
    assert [e.value for e in client.get_extensions(first.msg_id).extensions] == ["blue"]

    assert client.delete_message_for_user(first.msg_id, b).deleted is True
    assert client.delete_message_for_user(first.msg_id, b).deleted is False

    group = client.create_group(name="Readers", owner=a, members=[b, c])
    said = client.send_text(a, {"group": group.id}, "read me")
    client.mark_read(b, said.conversation_id, said.seq)
    assert list(client.iter_readers(group.id, said.msg_id)) == [b]
    assert list(client.iter_readers(group.id, said.msg_id, unread=True)) == [c]
    counts = client.read_counts(group.id, [said.msg_id])
    assert (counts[0].read, counts[0].unread) == (1, 1)

    joined = client.update_group(group.id, join_policy="approval")
    assert joined.join_policy == "approval"
    outsider = f"eo-{uid}"
    client.create_user(outsider)
    client.join_group(group.id, outsider)
    assert client.decline_join_request(group.id, outsider).state == "declined"

    client.send_friend_request(a, c)
    assert client.decline_friend_request(c, a).state == "declined"
    with pytest.raises(tern.NotFoundError):
        client.get_friend(a, c)

    with pytest.raises(tern.NotFoundError):
        client.redeliver_event("wh_nosuchevent")
    with pytest.raises(tern.NotFoundError):
        client.get_word_list(f"none-{uid}")
