"""Starts a real ``tern serve`` for the tests: in a temporary data directory, on a random
port, read from the banner, as the Rust tests do (tests/common/mod.rs).

The binary is ``$TERN_BIN`` when set, else ``cargo build -p tern --bin tern`` is run at the
repository root and ``${CARGO_TARGET_DIR:-target}/debug/tern`` used.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import tern

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs"


def tern_binary() -> Path:
    configured = os.environ.get("TERN_BIN")
    if configured:
        return Path(configured)
    subprocess.run(["cargo", "build", "-p", "tern", "--bin", "tern"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target.is_absolute():
        target = REPO / target
    return target / "debug" / "tern"


def clean_env(data_dir: Path) -> dict[str, str]:
    """The environment without a developer's own ``TERN_*`` settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
    env["TERN_DATA_DIR"] = str(data_dir)
    return env


@dataclass(frozen=True)
class App:
    app_key: str
    app_secret: str
    webhook_secret: str


class Server:
    def __init__(self, binary: Path, workdir: Path) -> None:
        self.binary = binary
        self.workdir = workdir
        self.env = clean_env(workdir / "data")
        self.env.update(
            TERN_HTTP_ADDR="127.0.0.1:0",
            TERN_GRPC_ADDR="127.0.0.1:0",
            TERN_LOG="warn",
            # The webhook test's receiver listens on 127.0.0.1.
            TERN_WEBHOOK_ALLOW_PRIVATE="1",
        )
        self.log = open(workdir / "serve.log", "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve"],
            cwd=workdir,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.process.stdout is not None
            for raw in self.process.stdout:
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        seen: list[str] = []
        self.base_url = ""
        # The address comes first; "tern: ready" once migrations are done, after which the
        # CLI may share the database.
        while True:
            try:
                line = lines.get(timeout=120)
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"tern serve did not get ready; saw {seen}") from None
            seen.append(line)
            if line.startswith("  http:"):
                self.base_url = line.split(":", 1)[1].strip()
            if line.startswith("tern: ready") and self.base_url:
                break

    def cli(self, *args: str) -> dict[str, str]:
        out = subprocess.run(
            [str(self.binary), *args, "--json"],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            check=False,
            timeout=60,
        )
        if out.returncode != 0:
            raise RuntimeError(f"tern {' '.join(args)}: {out.stderr.decode()}")
        result: dict[str, str] = json.loads(out.stdout)
        return result

    def new_app(self) -> App:
        """A new tenant with one app: apps of different tenants for cross-tenant tests."""
        name = "t-" + uuid.uuid4().hex[:10]
        self.cli("tenant", "create", name)
        app = self.cli("app", "create", "--tenant", name, "--name", "app")
        return App(app["app_key"], app["app_secret"], app["webhook_secret"])

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = Server(tern_binary(), tmp_path_factory.mktemp("tern"))
    yield s
    s.stop()


@pytest.fixture(scope="session")
def app(server: Server) -> App:
    return server.new_app()


@pytest.fixture(scope="session")
def other_app(server: Server) -> App:
    return server.new_app()


@pytest.fixture
def client(server: Server, app: App) -> Iterator[tern.Client]:
    with tern.Client(server.base_url, app.app_key, app.app_secret) as c:
        yield c


@pytest.fixture
def uid() -> str:
    """A suffix that keeps each test's users, groups and rooms apart on the shared app."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
