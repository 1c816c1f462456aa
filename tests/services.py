"""Real services for the tests: a ``modelgrid serve`` subprocess, and PostgreSQL.

Where PostgreSQL is missing, its tests skip with the reason; under CI (``CI=true``) a missing
service fails the run instead, so CI never goes green by skipping.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

POSTGRES_URL = os.environ.get(
    "MODELGRID_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MODELGRID_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(name: str, url: str) -> None:
    """Skip (or, under CI, fail) unless something listens at ``url``'s host and port."""
    parts = urlsplit(url)
    default_port = 6379 if parts.scheme.startswith("redis") else 5432
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc.strerror or exc})"
        if in_ci():
            pytest.fail(f"{reason}; CI must run every test")
        pytest.skip(f"{reason}; start it or set the URL to run these tests")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    admin_key: str
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    pid: int = 0

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self, needle: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The JSON log lines that mention ``needle``, once the writer thread has written them."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [
                json.loads(x) for x in self.log().splitlines() if needle in x and x.startswith("{")
            ]
            if lines or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)

    def new_key(self, org: str, plan: str = "free", role: str = "user") -> str:
        """A new key of ``org`` (made on ``plan`` if new), through the admin API."""
        body = {"org": org, "plan": plan, "role": role}
        headers = {"Authorization": f"Bearer {self.admin_key}"}
        r = httpx.post(f"{self.url}/admin/v1/keys", json=body, headers=headers)
        assert r.status_code == 201, r.text
        return str(r.json()["key"])

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``modelgrid ARGS`` against this server's data and address."""
        return subprocess.run(
            [sys.executable, "-m", "modelgrid", *args],
            env={**self.env, "MODELGRID_URL": self.url},
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


@contextmanager
def run_server(
    tmp: Path, config: str = "", serve_args: tuple[str, ...] = (), **env: str
) -> Iterator[Server]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    admin_key = "mg-test-admin-" + os.urandom(8).hex()
    config_path = tmp / "modelgrid.toml"
    config_path.write_text(config)
    full_env = {
        **os.environ,
        "MODELGRID_DATA_DIR": str(tmp / "data"),
        "MODELGRID_ADMIN_KEY": admin_key,
        "MODELGRID_CONFIG": str(config_path),
        **env,
    }
    full_env.pop("MODELGRID_API_KEY", None)
    log_path = tmp / "server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelgrid", "serve", "--port", str(port), *serve_args],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(
        f"http://127.0.0.1:{port}", admin_key, tmp / "data", log_path, full_env, proc.pid
    )
    try:
        _wait_healthy(server, proc)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(server: Server, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become healthy:\n{server.log()}")
