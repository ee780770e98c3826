"""A minimal WebSocket client (the standard library only) that logs a user in over
``tern.v1.json``: enough to check that the tokens this SDK mints are the ones Tern takes, and
to watch what the server API's kicks and revocations do to a session."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
from typing import Any
from urllib.parse import urlsplit


class Session:
    def __init__(self, base_url: str, token: str, device_id: str = "py-test") -> None:
        url = urlsplit(base_url)
        self.sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=15)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /v1/connect HTTP/1.1\r\nHost: {url.netloc}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: tern.v1.json\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError(f"no upgrade: {head!r}")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"no upgrade: {head!r}")
        self.send({"id": "1", "auth": {"token": token, "device_id": device_id, "platform": "PLATFORM_DESKTOP"}})
        self.first = self.recv()
        """The answer to ``auth``: ``auth_ok``, or ``error`` with the token's code."""

    def send(self, frame: dict[str, Any]) -> None:
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def recv(self) -> dict[str, Any]:
        """The next text frame, as JSON; ``{"close": code}`` for a close frame."""
        while True:
            b0, b1 = self._read(2)
            length = b1 & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read(8))
            payload = self._read(length)
            opcode = b0 & 0x0F
            if opcode == 0x1:
                frame: dict[str, Any] = json.loads(payload)
                return frame
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                return {"close": code}

    def close(self) -> None:
        self.sock.close()
