"""Network failures between the S3 workspace and its server: a loopback TCP proxy in front of moto resets
connections; requests are retried with backoff, or fail with one clear message and no partial result."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from misen import cache
from misen_workspace_s3 import CredentialsError, S3Workspace, StorageUnavailableError


class DroppingProxy:
    """Forwards a loopback port to ``target``; resets the first ``drop_first`` connections, and every
    connection (open or new) while it is `down`."""

    def __init__(self, target: tuple[str, int], drop_first: int = 0) -> None:
        self.target = target
        self.drop_first = drop_first
        self.down = False
        self.accepted = 0
        self.dropped = 0
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _reset(conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close sends RST
            conn.close()
        except OSError:
            pass

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            if self.down or self.accepted <= self.drop_first:
                self.dropped += 1
                self._reset(conn)
                continue
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._live.update((conn, upstream))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            self._reset(src)
            self._reset(dst)

    def go_down(self) -> None:
        self.down = True
        with self._lock:
            live, self._live = list(self._live), set()
        for s in live:
            self._reset(s)

    def close(self) -> None:
        self._server.close()
        self.go_down()


@pytest.fixture
def proxy_to_moto(moto_endpoint: str) -> Iterator[DroppingProxy]:
    parsed = urlparse(moto_endpoint)
    proxy = DroppingProxy((parsed.hostname or "127.0.0.1", parsed.port or 80))
    yield proxy
    proxy.close()


def _ws(bucket: str, endpoint: str, tmp_path: Path, name: str, **kw: object) -> S3Workspace:
    return S3Workspace(url=f"s3://{bucket}/net", endpoint_url=endpoint, cache_dir=str(tmp_path / name), **kw)


def test_reset_connections_are_retried(bucket: str, proxy_to_moto: DroppingProxy, tmp_path: Path) -> None:
    proxy_to_moto.drop_first = 3
    ws = _ws(bucket, proxy_to_moto.endpoint, tmp_path, "a", retries=6)
    ws.put_record("task", "t1", {"ok": True})
    assert proxy_to_moto.dropped == 3  # the first requests really failed, and were retried
    h = cache.store(ws, list(range(10_000)))
    proxy_to_moto.drop_first = proxy_to_moto.accepted + 2  # two more resets in the middle of the reads
    reader = _ws(bucket, proxy_to_moto.endpoint, tmp_path, "b", retries=6)
    assert reader.get_record("task", "t1") == {"ok": True}
    assert cache.load_hash(reader, h) == list(range(10_000))
    assert proxy_to_moto.dropped == 5
    ws.close()
    reader.close()


def test_a_server_that_stays_down_fails_with_a_clear_message(
    bucket: str, proxy_to_moto: DroppingProxy, tmp_path: Path
) -> None:
    proxy_to_moto.go_down()
    ws = _ws(bucket, proxy_to_moto.endpoint, tmp_path, "a", retries=3)
    with pytest.raises(StorageUnavailableError) as info:
        ws.put_record("task", "t1", {"ok": True})
    message = str(info.value)
    assert f"s3://{bucket}/net/records/task/t1.json" in message and "after 3 attempts" in message
    assert proxy_to_moto.endpoint in message
    assert proxy_to_moto.dropped >= 3  # (the HTTP client may also retry a reset once by itself)
    assert "misen-test-secret" not in message
    ws.close()


def test_a_failure_mid_save_leaves_no_result(
    bucket: str, moto_endpoint: str, proxy_to_moto: DroppingProxy, tmp_path: Path
) -> None:
    ws = _ws(bucket, proxy_to_moto.endpoint, tmp_path, "a", retries=2)
    upload = ws._upload_file
    uploaded: list[str] = []

    def upload_then_lose_the_network(local: Path, rel: str) -> None:
        upload(local, rel)
        uploaded.append(rel)
        proxy_to_moto.go_down()  # every later request (the marker's) is reset

    ws._upload_file = upload_then_lose_the_network  # type: ignore[method-assign]
    value = {"big": b"z" * 500_000}
    with pytest.raises(StorageUnavailableError, match="after 2 attempts"):
        cache.store(ws, value)
    assert len(uploaded) == 1 and not uploaded[0].endswith("manifest.json")
    h = uploaded[0].split("/")[1]
    direct = _ws(bucket, moto_endpoint, tmp_path, "direct")
    assert direct.remote.exists(uploaded[0])  # the data landed...
    assert not direct.has_result(h)  # ...but without its marker it is no result
    assert list(direct.iter_results()) == []
    assert cache.store(direct, value) == h and cache.load_hash(direct, h) == value
    ws.close()
    direct.close()


def test_a_missing_profile_is_named(bucket: str, moto_endpoint: str, tmp_path: Path) -> None:
    ws = _ws(bucket, moto_endpoint, tmp_path, "a", profile="no-such-profile")
    with pytest.raises(CredentialsError) as info:
        ws.get_record("task", "t1")
    assert "AWS profile 'no-such-profile' (workspace setting `profile`)" in str(info.value)
    assert "misen-test-secret" not in str(info.value)


AUTH_SERVER = """
import logging, sys
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop()
"""


@pytest.fixture
def strict_moto(aws_env: None) -> Iterator[str]:
    """A second moto server, in its own process, that checks signatures (unknown keys get 403)."""
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0")
    proc = subprocess.Popen(
        [sys.executable, "-c", AUTH_SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    proc.stdin.close()
    proc.wait(30)


def test_refused_credentials_name_their_source_not_their_value(strict_moto: str, tmp_path: Path) -> None:
    ws = _ws("any-bucket", strict_moto, tmp_path, "a", retries=1)
    with pytest.raises(CredentialsError) as info:
        ws.put_record("task", "t1", {})
    message = str(info.value)
    assert "s3://any-bucket/net/records/task/t1.json" in message and "refused" in message
    assert "the environment variables AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" in message
    assert "misen-test-secret" not in message and "misen-test-key-id" not in message
    ws.close()
