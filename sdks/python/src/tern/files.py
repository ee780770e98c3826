"""Files (docs/files.md): uploading bytes to the tus 1.0 upload URL that
``create_file`` answers, piece by piece with a checksum each, resuming from where the
server says it stands after a dropped connection; and downloading a file by its expiring
URL. Upload and download URLs carry their own signatures, so these requests are not
signed with the AppSecret.

    import tern
    from tern.files import upload_file, download_file

    with tern.Client(url, key, secret) as client:
        d = upload_file(client, uploader="alice", name="cat.png", content_type="image/png", data=png)
        data = download_file(client, d["file"]["id"], user="bob")
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable

import httpx

from .client import Client
from .errors import TernError, TransportError, error_from_response
from .models import JSON

__all__ = ["UPLOAD_CHUNK_BYTES", "download_file", "send_bytes", "upload_file", "upload_offset"]

UPLOAD_CHUNK_BYTES = 4 * 1024 * 1024
"""Bytes per PATCH by default: the server stores what arrives in pieces of this size."""

_TUS = {"tus-resumable": "1.0.0"}


def _retryable(status: int) -> bool:
    """Another try may succeed: the upload is busy, the offset moved, or the server failed."""
    return status in (409, 423, 429) or status >= 500


def upload_offset(upload_url: str, *, timeout: float = 60.0, http: httpx.Client | None = None) -> int:
    """How many bytes of the upload the server holds (tus ``HEAD``)."""
    h = http or httpx.Client(timeout=timeout)
    try:
        res = h.head(upload_url, headers=_TUS)
        if res.status_code != 200:
            raise error_from_response(res.status_code, res.headers.get("retry-after"), res.content)
        return int(res.headers.get("upload-offset", "0"))
    finally:
        if http is None:
            h.close()


def send_bytes(
    upload_url: str,
    data: bytes,
    *,
    chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    retries: int = 8,
    timeout: float = 60.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Sends what the server does not have yet of ``data`` to a tus upload URL, ``chunk_bytes``
    per ``PATCH`` with an ``Upload-Checksum``. After a network error, a busy upload or a
    server error it asks where the upload stands (``HEAD``) and goes on from there, up to
    ``retries`` failures in a row. Returns once every byte is acknowledged (the file is then
    complete); a wrong SHA-256 raises the ``checksum_mismatch`` :class:`ApiError`."""
    chunk = max(1, chunk_bytes)
    failures = 0
    offset: int | None = None
    last: TernError | None = None
    with httpx.Client(timeout=timeout) as http:
        while True:
            try:
                if offset is None:
                    offset = upload_offset(upload_url, http=http)
                if offset >= len(data):
                    return
                piece = data[offset : offset + chunk]
                digest = base64.b64encode(hashlib.sha256(piece).digest()).decode()
                res = http.patch(
                    upload_url,
                    content=piece,
                    headers={
                        **_TUS,
                        "content-type": "application/offset+octet-stream",
                        "upload-offset": str(offset),
                        "upload-checksum": f"sha256 {digest}",
                    },
                )
                if res.status_code == 204:
                    offset = int(res.headers["upload-offset"])
                    failures = 0
                    if on_progress is not None:
                        on_progress(offset, len(data))
                    continue
                err = error_from_response(res.status_code, res.headers.get("retry-after"), res.content)
                if not _retryable(res.status_code):
                    raise err
                last = err
            except httpx.TransportError as e:
                last = TransportError(f"upload: {e}")
                last.__cause__ = e
            except TernError as e:
                status = getattr(e, "status", 0)
                if not _retryable(status):
                    raise
                last = e
            offset = None
            failures += 1
            if failures > retries:
                assert last is not None
                raise last
            time.sleep(min(0.2 * 2 ** (failures - 1), 5.0))


def upload_file(
    client: Client,
    *,
    uploader: str,
    name: str,
    content_type: str,
    data: bytes,
    chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    retries: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> JSON:
    """Announces ``data`` as a file of ``uploader`` (with its SHA-256) and uploads it,
    resuming after dropped connections. Returns ``get_file``'s answer for the complete file:
    ``url``, ``expires_at``, ``file`` and, for an image, ``thumbnail_url``."""
    ticket = client.create_file(
        uploader=uploader,
        name=name,
        size=len(data),
        content_type=content_type,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    send_bytes(
        str(ticket["upload_url"]), data, chunk_bytes=chunk_bytes, retries=retries, on_progress=on_progress
    )
    return client.get_file(str(ticket["file_id"]))


def download_file(client: Client, file_id: str, *, user: str | None = None, timeout: float = 60.0) -> bytes:
    """The bytes of a complete file, for ``user`` (the uploader or a member of a
    conversation it was sent in) or, without one, for the app's backend."""
    answer = client.get_file(file_id, user=user)
    res = httpx.get(str(answer["url"]), timeout=timeout)
    if res.status_code != 200:
        raise error_from_response(res.status_code, res.headers.get("retry-after"), res.content)
    return res.content
