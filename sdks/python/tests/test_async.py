"""The asyncio client against the same real ``tern serve``: the same core paths, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

import tern

from .conftest import App, Server

pytestmark = pytest.mark.anyio


@pytest.fixture
async def aclient(server: Server, app: App) -> AsyncIterator[tern.AsyncClient]:
    async with tern.AsyncClient(server.base_url, app.app_key, app.app_secret) as c:
        yield c


async def test_users_messages_and_the_async_history_iterator(aclient: tern.AsyncClient, uid: str) -> None:
    a, b = f"aa-{uid}", f"ab-{uid}"
    users = await aclient.upsert_users([{"id": a, "name": "A"}, {"id": b, "name": "B"}])
    assert [u.id for u in users] == [a, b]
    assert (await aclient.get_user(a)).name == "A"

    # Concurrent sends into one conversation: every one stored once, seqs gapless.
    sent = await asyncio.gather(*(aclient.send_text(a, {"user": b}, f"n{i}") for i in range(20)))
    assert sorted(s.seq for s in sent) == list(range(1, 21))
    conversation = sent[0].conversation_id

    seen = [m async for m in aclient.iter_history(conversation, limit=6)]
    assert [m.seq for m in seen] == list(range(1, 21))
    assert sorted(m.content["text"] for m in seen if m.content) == sorted(f"n{i}" for i in range(20))

    listed = [u.id async for u in aclient.iter_users(limit=1)]
    assert {a, b} <= set(listed) and len(listed) == len(set(listed))


async def test_group_lifecycle_async(aclient: tern.AsyncClient, uid: str) -> None:
    owner, member = f"ago-{uid}", f"agm-{uid}"
    await aclient.upsert_users([{"id": owner}, {"id": member}])
    group = await aclient.create_group(name="Async", owner=owner, members=[member])
    assert group.id.startswith("grp_") and group.member_count == 2
    await aclient.send_text(member, {"group": group.id}, "hi")
    assert {m.user_id async for m in aclient.iter_members(group.id)} == {owner, member}
    await aclient.mute_member(group.id, member)
    with pytest.raises(tern.PermissionDeniedError) as caught:
        await aclient.send_text(member, {"group": group.id}, "muted")
    assert caught.value.code == "member_muted"
    await aclient.dismiss_group(group.id)
    with pytest.raises(tern.NotFoundError):
        await aclient.get_group(group.id)


async def test_errors_async(server: Server, app: App, other_app: App, aclient: tern.AsyncClient, uid: str) -> None:
    async with tern.AsyncClient(server.base_url, app.app_key, "sk_wrong") as wrong:
        with pytest.raises(tern.AuthenticationError) as caught:
            await wrong.get_app_settings()
    assert caught.value.code == "bad_signature"

    with pytest.raises(tern.InvalidRequestError) as invalid:
        await aclient.send_message(to={"user": "x"}, type="nonsense", content={}, from_="y")
    assert invalid.value.code == "invalid_argument"

    mine = f"amine-{uid}"
    await aclient.create_user(mine)
    async with tern.AsyncClient(server.base_url, other_app.app_key, other_app.app_secret) as other:
        with pytest.raises(tern.NotFoundError):
            await other.get_user(mine)


async def test_a_retried_async_send_stores_one_message(server: Server, app: App, uid: str) -> None:
    real = httpx.AsyncHTTPTransport()
    lost = 0

    class LoseFirstAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal lost
            response = await real.handle_async_request(request)
            if request.url.path == "/v1/messages" and lost == 0:
                await response.aread()
                lost += 1
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    a, b = f"ara-{uid}", f"arb-{uid}"
    async with httpx.AsyncClient(transport=LoseFirstAnswer()) as http:
        client = tern.AsyncClient(server.base_url, app.app_key, app.app_secret, http_client=http)
        await client.upsert_users([{"id": a}, {"id": b}])
        first = await client.send_text(a, {"user": b}, "once", client_msg_id=f"c-{uid}")
        assert lost == 1
        history = [m async for m in client.iter_history(first.conversation_id)]
    assert [(m.client_msg_id, m.content) for m in history] == [(f"c-{uid}", {"text": "once"})]
