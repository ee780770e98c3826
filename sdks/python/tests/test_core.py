"""The shared core without a server: error mapping, retries, request bytes, and that the
operations cover the whole of docs/openapi.json. A fake transport stands in for Tern."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import tern
from tern._core import Call
from tern._operations import Operations

from .conftest import DOCS

Handler = Callable[[httpx.Request], httpx.Response]


def fake(handler: Handler, retry: tern.RetryPolicy | None = None) -> tern.Client:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    fast = retry or tern.RetryPolicy(initial_backoff=0.001, max_backoff=0.002)
    return tern.Client("http://tern.test", "ak_test_key", "sk_test", retry=fast, http_client=http)


def error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code} happened", "request_id": "req-1"}}
    return httpx.Response(status, json=body, headers=headers)


def user_json(uid: str = "alice") -> dict[str, Any]:
    return {"id": uid, "name": "A", "metadata": {}, "created_at": 1, "updated_at": 1,
            "online": False, "devices": []}


# ---- error mapping -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (401, "bad_signature", tern.AuthenticationError),
        (401, "timestamp_out_of_window", tern.AuthenticationError),
        (403, "user_banned", tern.PermissionDeniedError),
        (400, "invalid_json", tern.InvalidRequestError),
        (413, "payload_too_large", tern.InvalidRequestError),
        (404, "not_found", tern.NotFoundError),
        (409, "version_conflict", tern.ConflictError),
        (422, "content_rejected", tern.RejectedError),
        (500, "internal", tern.ServerError),
        (418, "something_new", tern.ApiError),
    ],
)
def test_an_error_answer_becomes_its_typed_error(status: int, code: str, cls: type) -> None:
    with fake(lambda r: error(status, code)) as client:
        with pytest.raises(cls) as caught:
            client.get_user("alice")
    e = caught.value
    assert isinstance(e, tern.ApiError)
    assert (e.status, e.code, e.request_id) == (status, code, "req-1")
    assert code in str(e) and "req-1" in str(e)


def test_rate_limited_carries_retry_after_when_it_is_too_long_to_wait() -> None:
    with fake(lambda r: error(429, "rate_limited", {"Retry-After": "120"})) as client:
        with pytest.raises(tern.RateLimitedError) as caught:
            client.get_user("alice")
    assert caught.value.retry_after == 120
    assert caught.value.code == tern.ErrorCode.RATE_LIMITED


def test_rate_limited_is_retried_after_retry_after_even_for_a_non_idempotent_call() -> None:
    seen: list[str] = []

    def handler(r: httpx.Request) -> httpx.Response:
        seen.append(r.headers["X-Tern-Nonce"])
        if len(seen) == 1:
            return error(429, "rate_limited", {"Retry-After": "0"})
        return httpx.Response(200, json={"ok": True})

    with fake(handler) as client:
        client.kick("alice")
    assert len(seen) == 2
    assert seen[0] != seen[1], "a retry must be signed with a fresh nonce"


def test_a_non_json_answer_is_an_unexpected_response() -> None:
    with fake(lambda r: httpx.Response(502, text="<html>bad gateway</html>"),
              tern.RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(tern.UnexpectedResponseError) as caught:
            client.get_user("alice")
    assert caught.value.status == 502


def test_an_answer_that_does_not_fit_the_model_is_an_unexpected_response() -> None:
    with fake(lambda r: httpx.Response(200, json={"id": "alice"})) as client:
        with pytest.raises(tern.UnexpectedResponseError, match="missing 'name'"):
            client.get_user("alice")
    with fake(lambda r: httpx.Response(200, json={**user_json(), "online": "yes"})) as client:
        with pytest.raises(tern.UnexpectedResponseError, match="online"):
            client.get_user("alice")


def test_an_answer_of_the_wrong_shape_is_an_unexpected_response() -> None:
    answers: list[Any] = [[1, 2], {"users": []}, {"users": "x"}, "text"]
    for answer in answers:

        def handler(r: httpx.Request, a: Any = answer) -> httpx.Response:
            return httpx.Response(200, json=a)

        with fake(handler) as client:
            with pytest.raises(tern.UnexpectedResponseError):
                client.create_user("alice")


def test_unknown_answer_fields_are_ignored() -> None:
    with fake(lambda r: httpx.Response(200, json={**user_json(), "new_field": [1]})) as client:
        assert client.get_user("alice").online is False


def test_every_documented_error_code_is_in_the_enum() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \| \d{3} \|", (DOCS / "errors.md").read_text(), re.M))
    assert len(documented) >= 39
    assert documented == {c.value for c in tern.ErrorCode}


# ---- retries -----------------------------------------------------------------------------

def test_a_send_without_client_msg_id_gets_one_and_retries_send_the_same_bytes() -> None:
    bodies: list[bytes] = []

    def handler(r: httpx.Request) -> httpx.Response:
        bodies.append(r.content)
        if len(bodies) < 3:
            return error(503, "unavailable")
        return httpx.Response(200, json={"msg_id": "m_1", "conversation_id": "d:a:b", "seq": 1,
                                         "created_at": 5})

    with fake(handler) as client:
        sent = client.send_text("a", {"user": "b"}, "hi")
    assert sent.msg_id == "m_1"
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]
    cmid = json.loads(bodies[0])["client_msg_id"]
    assert cmid.startswith("py-") and 1 <= len(cmid) <= 64


def test_a_non_idempotent_call_is_not_retried_on_503() -> None:
    calls = 0

    def handler(r: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return error(503, "unavailable")

    with fake(handler) as client:
        with pytest.raises(tern.ServerError):
            client.create_group(name="g", owner="alice")
    assert calls == 1


def test_timeouts_retry_idempotent_calls_only_and_connect_errors_retry_all() -> None:
    calls = 0

    def timeout(r: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow", request=r)

    with fake(timeout) as client:
        with pytest.raises(tern.TransportError):
            client.get_user("alice")
        assert calls == 3
        calls = 0
        with pytest.raises(tern.TransportError):
            client.kick("alice")
        assert calls == 1

    attempts = 0

    def refused_once(r: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise httpx.ConnectError("refused", request=r)
        return httpx.Response(200, json={"ok": True})

    with fake(refused_once) as client:
        client.kick("alice")
    assert attempts == 2


def test_retries_can_be_turned_off() -> None:
    calls = 0

    def handler(r: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return error(503, "unavailable")

    with fake(handler, tern.RetryPolicy(max_attempts=1)) as client:
        with pytest.raises(tern.ServerError):
            client.get_user("alice")
    assert calls == 1


# ---- request bytes -----------------------------------------------------------------------

def test_the_request_on_the_wire_is_the_one_signed() -> None:
    captured: list[httpx.Request] = []

    def handler(r: httpx.Request) -> httpx.Response:
        captured.append(r)
        return httpx.Response(200, json={"messages": []})

    with fake(handler) as client:
        client.history("d:alice:bob@x", after_seq=3, limit=10)
    r = captured[0]
    assert r.url.raw_path == b"/v1/conversations/d%3Aalice%3Abob%40x/messages?after_seq=3&limit=10"
    to_sign = tern.signing.string_to_sign(
        r.headers["X-Tern-Timestamp"], r.headers["X-Tern-Nonce"], "GET",
        "/v1/conversations/d%3Aalice%3Abob%40x/messages", "after_seq=3&limit=10", b"",
    )
    assert r.headers["X-Tern-Signature"] == tern.signing.signature("sk_test", to_sign)
    assert r.headers["X-Tern-App-Key"] == "ak_test_key"


def test_an_empty_id_is_refused_before_anything_is_sent() -> None:
    with fake(lambda r: pytest.fail("nothing may be sent")) as client:
        with pytest.raises(ValueError):
            client.get_user("")


def test_update_tells_absent_from_null() -> None:
    bodies: list[Any] = []

    def handler(r: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(r.content))
        return httpx.Response(200, json=user_json())

    with fake(handler) as client:
        client.update_user("alice", name="Al")
        client.update_user("alice", avatar_url=None)
    assert bodies == [{"name": "Al"}, {"avatar_url": None}]


# ---- coverage of the API -----------------------------------------------------------------

O = Operations()
EVERY_OPERATION: dict[str, Callable[[], Call[Any]]] = {
    "POST /v1/users/{user_id}/devices": lambda: O.register_device("u", "apns", "t"),
    "GET /v1/users/{user_id}/devices": lambda: O.get_devices("u"),
    "PATCH /v1/users/{user_id}/devices/{device_id}": lambda: O.update_device("u", "d", locale="en"),
    "DELETE /v1/users/{user_id}/devices/{device_id}": lambda: O.remove_device("u", "d"),
    "POST /v1/users/{user_id}/devices/{device_id}/test-push": lambda: O.test_push("u", "d"),
    "GET /v1/push/credentials": lambda: O.get_push_credentials(),
    "PUT /v1/push/credentials/apns": lambda: O.set_apns_credentials(key_id="k", team_id="t", bundle_id="b", private_key="p"),
    "PUT /v1/push/credentials/fcm": lambda: O.set_fcm_credentials({}),
    "DELETE /v1/push/credentials/{provider}": lambda: O.delete_push_credentials("fcm"),
    "GET /v1/push/log": lambda: O.get_push_log(user_id="u"),
    "GET /v1/users/{user_id}/push-settings": lambda: O.get_push_settings("u"),
    "PATCH /v1/users/{user_id}/push-settings": lambda: O.update_push_settings("u", mute=["g:g1"]),
    "POST /v1/files": lambda: O.create_file(uploader="u", name="a", size=1, content_type="text/plain", sha256="00"),
    "GET /v1/files/{file_id}": lambda: O.get_file("f", user="u"),
    "GET /v1/app/storage": lambda: O.get_storage(),
    "GET /v1/app/settings": lambda: O.get_app_settings(),
    "PATCH /v1/app/settings": lambda: O.update_app_settings({"room_backlog": 5}),
    "GET /v1/broadcasts": lambda: O.list_broadcasts(),
    "POST /v1/broadcasts": lambda: O.start_broadcast(type="text", content={"text": "x"}),
    "GET /v1/broadcasts/{broadcast_id}": lambda: O.get_broadcast("b"),
    "POST /v1/broadcasts/{broadcast_id}/cancel": lambda: O.cancel_broadcast("b"),
    "GET /v1/conversations/{conversation_id}/messages": lambda: O.history("d:a:b"),
    "POST /v1/groups": lambda: O.create_group(name="g", owner="a"),
    "GET /v1/groups/{group_id}": lambda: O.get_group("g"),
    "DELETE /v1/groups/{group_id}": lambda: O.dismiss_group("g"),
    "PATCH /v1/groups/{group_id}": lambda: O.update_group("g", name="n"),
    "POST /v1/groups/{group_id}/join": lambda: O.join_group("g", "u"),
    "GET /v1/groups/{group_id}/join-requests": lambda: O.list_join_requests("g"),
    "POST /v1/groups/{group_id}/join-requests/{user_id}/accept": lambda: O.accept_join_request("g", "u"),
    "POST /v1/groups/{group_id}/join-requests/{user_id}/decline": lambda: O.decline_join_request("g", "u"),
    "GET /v1/groups/{group_id}/members": lambda: O.list_members("g"),
    "POST /v1/groups/{group_id}/members": lambda: O.add_members("g", ["u"]),
    "GET /v1/groups/{group_id}/members/{user_id}": lambda: O.get_member("g", "u"),
    "DELETE /v1/groups/{group_id}/members/{user_id}": lambda: O.remove_member("g", "u"),
    "POST /v1/groups/{group_id}/members/{user_id}/leave": lambda: O.leave_group("g", "u"),
    "POST /v1/groups/{group_id}/members/{user_id}/mute": lambda: O.mute_member("g", "u"),
    "DELETE /v1/groups/{group_id}/members/{user_id}/mute": lambda: O.unmute_member("g", "u"),
    "POST /v1/groups/{group_id}/members/{user_id}/role": lambda: O.set_role("g", "u", "admin"),
    "GET /v1/groups/{group_id}/messages/{msg_id}/readers": lambda: O.list_readers("g", "m"),
    "POST /v1/groups/{group_id}/owner": lambda: O.transfer_owner("g", "u"),
    "POST /v1/groups/{group_id}/read-counts": lambda: O.read_counts("g", ["m"]),
    "POST /v1/messages": lambda: O.send_text("a", {"user": "b"}, "hi"),
    "POST /v1/messages/batch": lambda: O.batch_send(from_="a", to=["b"], type="text", content={}),
    "GET /v1/messages/{msg_id}": lambda: O.get_message("m"),
    "PATCH /v1/messages/{msg_id}": lambda: O.edit_message("m", {"text": "x"}),
    "POST /v1/messages/{msg_id}/delete-for-user": lambda: O.delete_message_for_user("m", "u"),
    "GET /v1/messages/{msg_id}/extensions": lambda: O.get_extensions("m"),
    "POST /v1/messages/{msg_id}/extensions": lambda: O.update_extensions("m"),
    "GET /v1/messages/{msg_id}/reactions/{reaction}/users": lambda: O.list_reaction_users("m", "r"),
    "PUT /v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}": lambda: O.add_reaction("m", "r", "u"),
    "DELETE /v1/messages/{msg_id}/reactions/{reaction}/users/{user_id}": lambda: O.remove_reaction("m", "r", "u"),
    "POST /v1/messages/{msg_id}/recall": lambda: O.recall_message("m"),
    "GET /v1/moderation/word-lists": lambda: O.list_word_lists(),
    "GET /v1/moderation/word-lists/{name}": lambda: O.get_word_list("w"),
    "PUT /v1/moderation/word-lists/{name}": lambda: O.put_word_list("w", policy="reject", words=["x"]),
    "DELETE /v1/moderation/word-lists/{name}": lambda: O.delete_word_list("w"),
    "POST /v1/presence/query": lambda: O.query_presence(["u"]),
    "GET /v1/rooms": lambda: O.list_rooms(),
    "POST /v1/rooms": lambda: O.create_room("r"),
    "GET /v1/rooms/{room_id}": lambda: O.get_room("r"),
    "DELETE /v1/rooms/{room_id}": lambda: O.dismiss_room("r"),
    "PATCH /v1/rooms/{room_id}": lambda: O.update_room("r", name="n"),
    "DELETE /v1/rooms/{room_id}/members/{user_id}": lambda: O.remove_from_room("r", "u"),
    "GET /v1/rooms/{room_id}/mutes": lambda: O.list_room_mutes("r"),
    "PUT /v1/rooms/{room_id}/mutes/{user_id}": lambda: O.mute_in_room("r", "u"),
    "DELETE /v1/rooms/{room_id}/mutes/{user_id}": lambda: O.unmute_in_room("r", "u"),
    "GET /v1/users": lambda: O.list_users(),
    "POST /v1/users": lambda: O.upsert_users([{"id": "u"}]),
    "GET /v1/users/{user_id}": lambda: O.get_user("u"),
    "DELETE /v1/users/{user_id}": lambda: O.delete_user("u"),
    "PATCH /v1/users/{user_id}": lambda: O.update_user("u", name="n"),
    "POST /v1/users/{user_id}/ban": lambda: O.ban_user("u"),
    "DELETE /v1/users/{user_id}/ban": lambda: O.unban_user("u"),
    "GET /v1/users/{user_id}/blocks": lambda: O.list_blocks("u"),
    "PUT /v1/users/{user_id}/blocks/{blocked_id}": lambda: O.block_user("u", "v"),
    "DELETE /v1/users/{user_id}/blocks/{blocked_id}": lambda: O.unblock_user("u", "v"),
    "GET /v1/users/{user_id}/conversations": lambda: O.list_conversations("u"),
    "GET /v1/users/{user_id}/conversations/{conversation_id}": lambda: O.get_conversation("u", "c"),
    "POST /v1/users/{user_id}/conversations/{conversation_id}/read": lambda: O.mark_read("u", "c", 1),
    "GET /v1/users/{user_id}/friend-requests": lambda: O.list_friend_requests("u"),
    "POST /v1/users/{user_id}/friend-requests": lambda: O.send_friend_request("u", "v"),
    "POST /v1/users/{user_id}/friend-requests/{from_id}/accept": lambda: O.accept_friend_request("u", "v"),
    "POST /v1/users/{user_id}/friend-requests/{from_id}/decline": lambda: O.decline_friend_request("u", "v"),
    "GET /v1/users/{user_id}/friends": lambda: O.list_friends("u"),
    "GET /v1/users/{user_id}/friends/{friend_id}": lambda: O.get_friend("u", "v"),
    "DELETE /v1/users/{user_id}/friends/{friend_id}": lambda: O.delete_friend("u", "v"),
    "PATCH /v1/users/{user_id}/friends/{friend_id}": lambda: O.update_friend("u", "v", remark="r"),
    "GET /v1/users/{user_id}/groups": lambda: O.list_user_groups("u"),
    "POST /v1/users/{user_id}/kick": lambda: O.kick("u"),
    "POST /v1/users/{user_id}/mute": lambda: O.mute_user("u"),
    "DELETE /v1/users/{user_id}/mute": lambda: O.unmute_user("u"),
    "POST /v1/users/{user_id}/tokens": lambda: O.mint_token("u"),
    "POST /v1/users/{user_id}/tokens/revoke": lambda: O.revoke_tokens("u"),
    "GET /v1/webhook": lambda: O.get_webhook(),
    "PUT /v1/webhook": lambda: O.set_webhook({"url": None}),
    "GET /v1/webhook/dead-events": lambda: O.list_dead_events(),
    "POST /v1/webhook/dead-events/{event_id}/redeliver": lambda: O.redeliver_event("e"),
}


def test_every_operation_of_the_openapi_document_has_a_method() -> None:
    spec = json.loads((DOCS / "openapi.json").read_text())
    documented = {
        f"{method.upper()} {p}"
        for p, item in spec["paths"].items()
        for method in item
        # The server API; the operator API (/admin/v1) is not the SDK's.
        if method in ("get", "post", "put", "patch", "delete") and p.startswith("/v1/")
    }
    assert documented == set(EVERY_OPERATION)
    for key, build in EVERY_OPERATION.items():
        method, template = key.split(" ")
        call = build()
        pattern = "^" + re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(template)) + "$"
        assert call.method == method, key
        assert re.match(pattern, call.path), (key, call.path)


def test_both_clients_have_every_operation_with_an_iterator_per_list() -> None:
    names = [n for n in dir(Operations) if not n.startswith("_")]
    for name in names:
        assert callable(getattr(tern.Client, name)), name
        assert callable(getattr(tern.AsyncClient, name)), name
    for lister in [n for n in names if n.startswith("list_") and n != "list_word_lists"]:
        iterator = "iter_" + lister.removeprefix("list_")
        assert hasattr(tern.Client, iterator) and hasattr(tern.AsyncClient, iterator), iterator
