"""Fixtures of the S3 workspace's tests: a real S3 server (moto's ThreadedMotoServer on loopback), a fresh
bucket per test, workspaces on s3://, memory:// and file://, and a runner for child processes."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from misen_workspace_s3 import S3Workspace

BACKENDS = ["s3", "memory", "file"]
#: Backends two processes can share (memory:// lives in one process).
SHARED_BACKENDS = ["s3", "file"]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The endpoint of an S3 server on 127.0.0.1 (moto, in a thread of this test process)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials in this test's environment only (child processes inherit them); no user AWS files."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "misen-test-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "misen-test-secret-do-not-log")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def bucket(moto_endpoint: str, aws_env: None) -> str:
    """A fresh, empty bucket on the moto server."""
    import s3fs

    name = f"misen-{uuid.uuid4().hex[:16]}"
    s3fs.S3FileSystem(endpoint_url=moto_endpoint, use_listings_cache=False).mkdir(name)
    return name


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> tuple[str, str]:
    """(url, endpoint_url) of an empty store on ``backend``."""
    if backend == "s3":
        name = request.getfixturevalue("bucket")
        return f"s3://{name}/team/misen", request.getfixturevalue("moto_endpoint")
    if backend == "memory":
        return f"memory://misen-{uuid.uuid4().hex[:12]}/ws", ""
    return f"file://{tmp_path}/store", ""


@pytest.fixture
def make_ws(store_url: tuple[str, str], tmp_path: Path) -> Iterator[Callable[..., S3Workspace]]:
    """Workspaces on one store; each call is another "machine" (its own local cache) unless ``cache`` is given."""
    url, endpoint = store_url
    made: list[S3Workspace] = []

    def make(cache: str | None = None, **settings: Any) -> S3Workspace:
        cache_dir = tmp_path / (cache or f"cache-{len(made)}")
        ws = S3Workspace(url=url, endpoint_url=endpoint, cache_dir=str(cache_dir), **settings)
        made.append(ws)
        return ws

    yield make
    for ws in made:
        ws.close()


ChildRunner = Callable[..., subprocess.CompletedProcess[str]]


def child_command(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script), *args]


@pytest.fixture
def run_child() -> ChildRunner:
    """Run a Python snippet in a child process (it inherits the test's environment); fail on a timeout."""

    def run(
        script: str, *args: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(child_command(script, *args), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    return run


@pytest.fixture
def popen_child() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a Python snippet in a child process; every child still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []

    def start(script: str, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            child_command(script, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.fixture(autouse=True)
def _fresh_misen_session(misen_session: object) -> object:
    """Each test gets its own misen session (`misen.testing`), so nothing carries over between tests."""
    return misen_session
