"""Every vector of docs/signing-vectors.json (shared by all SDKs and the platform), and
Tern's own vectors of docs/signing.md."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

import tern
from tern import signing

from .conftest import DOCS

VECTORS: dict[str, Any] = json.loads((DOCS / "signing-vectors.json").read_text())
REQUESTS: list[dict[str, str]] = VECTORS["requests"]


def test_the_file_has_every_kind_of_vector() -> None:
    assert len(REQUESTS) >= 7
    assert {"webhook", "user_token", "app_key", "app_secret"} <= VECTORS.keys()


@pytest.mark.parametrize("v", REQUESTS, ids=[f"{r['method']} {r['path']}" for r in REQUESTS])
def test_request_vector(v: dict[str, str]) -> None:
    body = bytes.fromhex(v["body_hex"])
    assert signing.canonical_query(v["raw_query"]) == v["canonical_query"]
    assert (
        signing.string_to_sign(
            v["timestamp"], v["nonce"], v["method"], v["path"], v["raw_query"], body
        )
        == v["string_to_sign"]
    )
    target = v["path"] + ("?" + v["raw_query"] if v["raw_query"] else "")
    headers = tern.sign_request(
        VECTORS["app_key"],
        VECTORS["app_secret"],
        v["method"],
        target,
        body,
        timestamp=int(v["timestamp"]),
        nonce=v["nonce"],
    )
    assert headers == {
        "X-Tern-App-Key": VECTORS["app_key"],
        "X-Tern-Timestamp": v["timestamp"],
        "X-Tern-Nonce": v["nonce"],
        "X-Tern-Signature": v["signature"],
    }


def test_the_edge_case_vector_of_signing_md() -> None:
    headers = tern.sign_request(
        "ak_demo_4k2m9p7q",
        "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0",
        "GET",
        "/v1/search?tag=%zz&q=100%&name=%e4%bd%a0&q=a+b&empty",
        timestamp=1767225607,
        nonce="edge-case-nonce-01",
    )
    assert headers["X-Tern-Signature"] == (
        "v1=6e9f17f2f2cc12c955fc3bb83c15dafe46e3c31533c4d031da3463d075c4b928"
    )
    assert (
        signing.canonical_query("tag=%zz&q=100%&name=%e4%bd%a0&q=a+b&empty")
        == "empty=&name=%E4%BD%A0&q=100%25&q=a%2Bb&tag=%25zz"
    )


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", ""),
        ("a=b=c&&x", "a=b%3Dc&x="),
        ("q=%zz&q=%4", "q=%254&q=%25zz"),
        ("q=%e4%bd%a0", "q=%E4%BD%A0"),
        ("=x&b", "=x&b="),
        ("k=%", "k=%25"),
        ("Z=1&a=1&_=1&0=1", "0=1&Z=1&_=1&a=1"),
        ("x=%7e%2d", "x=~-"),
    ],
)
def test_canonical_query_edge_cases(raw: str, canonical: str) -> None:
    assert signing.canonical_query(raw) == canonical


def test_the_user_token_vector() -> None:
    t = VECTORS["user_token"]
    c = t["claims"]
    token = tern.mint_user_token(
        c["iss"], VECTORS["app_secret"], c["sub"], iat=c["iat"], exp=c["exp"]
    )
    assert token == t["token"]


def test_tokens_of_signing_md() -> None:
    with_jti = tern.mint_user_token(
        "ak_demo_4k2m9p7q",
        "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0",
        "alice",
        iat=1767225600,
        exp=1767229200,
        jti="login-0001",
    )
    assert with_jti == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic3ViIjoiYWxp"
        "Y2UiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMCwianRpIjoibG9naW4tMDAwMSJ9.ueGwIMsj5l"
        "-iy85rL9mCTLqoNYODUezGT0VY48uY3T4"
    )
    server = tern.mint_server_token(
        "ak_demo_4k2m9p7q",
        "sk_test_7f3a9c2e5b1d4f60a8e2c9b7d5f3a1e0",
        iat=1767225600,
        exp=1767229200,
    )
    assert server == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJha19kZW1vXzRrMm05cDdxIiwic2NvcGUiOiJzZX"
        "J2ZXIiLCJpYXQiOjE3NjcyMjU2MDAsImV4cCI6MTc2NzIyOTIwMH0.o-aM6p5bxYvAchLzGhtTUqXLT6e8m3rfST"
        "XmSQOnhiU"
    )


def test_a_minted_token_lives_ttl_seconds_from_now() -> None:
    token = tern.mint_user_token("ak_x", "sk", "bob", ttl_seconds=600, iat=2000000000)
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims == {"iss": "ak_x", "sub": "bob", "iat": 2000000000, "exp": 2000000600}


def test_nonces_are_fresh_and_valid() -> None:
    a, b = signing.new_nonce(), signing.new_nonce()
    assert a != b
    assert 16 <= len(a) <= 64 and a.isalnum() and a.isascii()


# ---- webhooks ----------------------------------------------------------------------------

WH = VECTORS["webhook"]
WH_T = int(WH["timestamp"])


def test_the_webhook_vector_verifies_and_is_reproduced() -> None:
    tern.verify_webhook(WH["body"].encode(), WH["header"], WH["webhook_secret"], now=WH_T)
    tern.verify_webhook(WH["body"], WH["header"], WH["webhook_secret"], now=WH_T + 300)
    tern.verify_webhook(WH["body"], WH["header"], WH["webhook_secret"], now=WH_T - 300)
    assert tern.sign_webhook(WH["body"], WH["webhook_secret"], WH_T) == WH["header"]
    event = tern.parse_webhook(WH["body"])
    assert (event.id, event.type, event.data) == ("wh_01", "message.sent", {"msg_id": "m1"})


def test_any_v1_of_a_rotation_is_enough_and_so_is_any_of_our_secrets() -> None:
    v1 = WH["header"].split(",v1=")[1]
    rotating = f"t={WH_T},v1={'00' * 32},v1={v1}"
    tern.verify_webhook(WH["body"], rotating, WH["webhook_secret"], now=WH_T)
    tern.verify_webhook(WH["body"], WH["header"], ["whsec_old", WH["webhook_secret"]], now=WH_T)


def test_replays_tampering_wrong_secrets_and_garbage_are_refused() -> None:
    with pytest.raises(tern.WebhookTimestampOutOfWindow):
        tern.verify_webhook(WH["body"], WH["header"], WH["webhook_secret"], now=WH_T + 301)
    with pytest.raises(tern.WebhookBadSignature):
        tern.verify_webhook(WH["body"].replace("m1", "m2"), WH["header"], WH["webhook_secret"], now=WH_T)
    with pytest.raises(tern.WebhookBadSignature):
        tern.verify_webhook(WH["body"], WH["header"], "whsec_wrong", now=WH_T)
    moved = WH["header"].replace(f"t={WH_T}", f"t={WH_T + 1}")
    with pytest.raises(tern.WebhookBadSignature):
        tern.verify_webhook(WH["body"], moved, WH["webhook_secret"], now=WH_T)
    for bad in ["", f"t={WH_T}", "v1=abc", "t=x,v1=ab", "nonsense", f"t={WH_T},t={WH_T},v1=00"]:
        with pytest.raises(tern.WebhookMalformed):
            tern.verify_webhook(WH["body"], bad, WH["webhook_secret"], now=WH_T)
    # Every refusal is one type a receiver can catch.
    assert issubclass(tern.WebhookMalformed, tern.WebhookError)
    with pytest.raises(tern.WebhookMalformed):
        tern.parse_webhook(b"[1]")
