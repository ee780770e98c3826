"""The client side of SIGNING.md: signed server API requests (§1), user and server bearer
tokens (§2).

This module depends on nothing but the standard library, so a tenant can sign requests or
mint tokens without the HTTP clients. It is checked byte for byte against
``docs/signing-vectors.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time

__all__ = [
    "HEADER_APP_KEY",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "canonical_query",
    "mint_server_token",
    "mint_user_token",
    "new_nonce",
    "sign_request",
    "signature",
    "string_to_sign",
]

HEADER_APP_KEY = "X-Tern-App-Key"
HEADER_TIMESTAMP = "X-Tern-Timestamp"
HEADER_NONCE = "X-Tern-Nonce"
HEADER_SIGNATURE = "X-Tern-Signature"

_ALGORITHM = "TERN1-HMAC-SHA256"
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_NONCE_ALPHABET = string.ascii_letters + string.digits


def _percent_decode(raw: str) -> bytes:
    """Decodes ``%XX`` escapes; ``+`` stays ``+`` and a ``%`` that starts no valid escape
    stays a literal ``%`` (signing.md, canonical query step 3)."""
    data = raw.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(data):
        b = data[i]
        if b == 0x25 and i + 2 < len(data) and data[i + 1] in _HEX and data[i + 2] in _HEX:
            out.append(int(data[i + 1 : i + 3], 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return bytes(out)


def _percent_encode(data: bytes) -> str:
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in data)


def _canonical_component(raw: str) -> str:
    return _percent_encode(_percent_decode(raw))


def canonical_query(raw_query: str) -> str:
    """The canonical query of SIGNING.md §1 for a raw query string (without the ``?``)."""
    pairs: list[tuple[bytes, bytes]] = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append(
            (
                _canonical_component(key).encode("ascii"),
                _canonical_component(value).encode("ascii"),
            )
        )
    pairs.sort()
    return "&".join(f"{k.decode('ascii')}={v.decode('ascii')}" for k, v in pairs)


def string_to_sign(
    timestamp: str, nonce: str, method: str, path: str, raw_query: str, body: bytes
) -> str:
    """The seven-line string to sign: no newline after the last line."""
    return "\n".join(
        [
            _ALGORITHM,
            timestamp,
            nonce,
            method.upper(),
            path,
            canonical_query(raw_query),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def signature(secret: str, to_sign: str) -> str:
    """``v1=`` and the lowercase hex HMAC-SHA256 of the string to sign under the AppSecret."""
    mac = hmac.new(secret.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256)
    return "v1=" + mac.hexdigest()


def new_nonce() -> str:
    """A fresh nonce: 32 random characters of ``[A-Za-z0-9]`` (the server takes 16 to 64
    of ``[A-Za-z0-9_-]``)."""
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(32))


def sign_request(
    app_key: str,
    secret: str,
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four headers that sign one request.

    ``path_and_query`` is the request target exactly as it goes on the wire
    (``/v1/conversations/d%3Aa%3Ab/messages?limit=50``); ``body`` the exact bytes sent.
    ``timestamp`` defaults to now and ``nonce`` to a fresh one: pass them only to reproduce
    a vector.
    """
    path, _, query = path_and_query.partition("?")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    n = new_nonce() if nonce is None else nonce
    return {
        HEADER_APP_KEY: app_key,
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: n,
        HEADER_SIGNATURE: signature(secret, string_to_sign(ts, n, method, path, query, body)),
    }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _encode_hs256(secret: str, claims_json: str) -> str:
    header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
    signing_input = f"{header}.{_b64url(claims_json.encode('utf-8'))}"
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_b64url(mac.digest())}"


def _json_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def mint_user_token(
    app_key: str,
    secret: str,
    user_id: str,
    *,
    ttl_seconds: int = 3600,
    iat: int | None = None,
    exp: int | None = None,
    jti: str | None = None,
) -> str:
    """A user token (SIGNING.md §2) for SDK login, signed locally with an AppSecret.

    Claims are written in the order ``iss, sub, iat, exp[, jti]``, as Tern itself mints
    them. ``iat`` defaults to now and ``exp`` to ``iat + ttl_seconds``; the server refuses
    lifetimes over the app's ``max_token_ttl_seconds`` (30 days by default).
    """
    issued = int(time.time()) if iat is None else iat
    expires = issued + ttl_seconds if exp is None else exp
    claims = (
        f'{{"iss":{_json_string(app_key)},"sub":{_json_string(user_id)},'
        f'"iat":{issued},"exp":{expires}'
    )
    if jti is not None:
        claims += f',"jti":{_json_string(jti)}'
    return _encode_hs256(secret, claims + "}")


def mint_server_token(
    app_key: str,
    secret: str,
    *,
    ttl_seconds: int = 3600,
    iat: int | None = None,
    exp: int | None = None,
) -> str:
    """A server bearer token (``Authorization: Bearer ...``) for tools that cannot sign a
    body. The server refuses lifetimes over 3600 s."""
    issued = int(time.time()) if iat is None else iat
    expires = issued + ttl_seconds if exp is None else exp
    claims = (
        f'{{"iss":{_json_string(app_key)},"scope":"server","iat":{issued},"exp":{expires}}}'
    )
    return _encode_hs256(secret, claims)
