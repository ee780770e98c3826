"""The files helpers (``tern.files``) against a real ``tern serve``: an upload resumed
after its connection is cut mid-body, a download by a member, the refusals a user would
meet."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

import tern
from tern.files import download_file, send_bytes, upload_file, upload_offset

from .conftest import Server

MIB = 1024 * 1024


class CuttingProxy:
    """A TCP proxy to Tern that cuts the first connection carrying more than
    ``cut_after`` bytes towards the server, once."""

    def __init__(self, target: str, cut_after: int) -> None:
        u = urlsplit(target)
        self.target = (u.hostname or "127.0.0.1", u.port or 80)
        self.cut_after: int | None = cut_after
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            up = socket.create_connection(self.target)
            threading.Thread(target=self._up, args=(client, up), daemon=True).start()
            threading.Thread(target=self._down, args=(up, client), daemon=True).start()

    def _up(self, client: socket.socket, up: socket.socket) -> None:
        sent = 0
        try:
            while data := client.recv(65536):
                sent += len(data)
                with self.lock:
                    cut = self.cut_after is not None and sent > self.cut_after
                    if cut:
                        self.cut_after = None
                        self.cuts += 1
                if cut:
                    up.sendall(data[: len(data) // 2])
                    break
                up.sendall(data)
        except OSError:
            pass
        for s in (client, up):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _down(self, up: socket.socket, client: socket.socket) -> None:
        try:
            while data := up.recv(65536):
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def files_client(server: Server) -> Iterator[tuple[tern.Client, CuttingProxy]]:
    app = server.new_app()
    proxy = CuttingProxy(server.base_url, cut_after=5 * MIB)
    with tern.Client(server.base_url, app.app_key, app.app_secret) as c:
        c.upsert_users([{"id": "alice"}, {"id": "bob"}, {"id": "carol"}])
        yield c, proxy
    proxy.close()


def test_an_upload_resumes_after_a_cut_and_a_member_downloads_it(
    server: Server, files_client: tuple[tern.Client, CuttingProxy]
) -> None:
    client, proxy = files_client
    # upload_file: announce, pieces with checksums, the complete file's answer.
    small = os.urandom(300_000)
    done = upload_file(client, uploader="alice", name="a.bin", content_type="application/octet-stream", data=small)
    assert done["file"]["state"] == "complete"
    assert download_file(client, done["file"]["id"]) == small

    # send_bytes through a proxy that cuts the connection in the middle of the upload.
    data = os.urandom(9 * MIB + 77)
    ticket = client.create_file(
        uploader="alice",
        name="notes.pdf",
        size=len(data),
        content_type="application/pdf",
        sha256=hashlib.sha256(data).hexdigest(),
    )
    seen: list[int] = []
    url = str(ticket["upload_url"]).replace(server.base_url, proxy.base_url)
    assert url.startswith(proxy.base_url)
    send_bytes(url, data, on_progress=lambda sent, total: seen.append(sent))
    assert proxy.cuts == 1, "the connection was cut once in the middle of the upload"
    assert seen[-1] == len(data)
    answer = client.get_file(str(ticket["file_id"]))
    assert answer["file"]["state"] == "complete"
    assert answer["file"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert "thumbnail_url" not in answer
    file_id = answer["file"]["id"]

    client.send_message(from_="alice", to={"user": "bob"}, type="file", content={"file_id": file_id})
    assert download_file(client, file_id, user="bob") == data
    with pytest.raises(tern.NotFoundError):
        download_file(client, file_id, user="carol")
    assert client.get_storage()["files"] >= 1


def test_a_wrong_sha256_is_refused_and_never_served(files_client: tuple[tern.Client, CuttingProxy]) -> None:
    client, _ = files_client
    data = b"not what was announced" * 10
    ticket = client.create_file(
        uploader="alice", name="x.bin", size=len(data), content_type="application/octet-stream", sha256="0" * 64
    )
    with pytest.raises(tern.ApiError) as e:
        send_bytes(str(ticket["upload_url"]), data)
    assert e.value.code == "checksum_mismatch"
    assert upload_offset(str(ticket["upload_url"])) == len(data)
    with pytest.raises(tern.ApiError) as e:
        client.get_file(str(ticket["file_id"]))
    assert e.value.code == "file_not_ready"
