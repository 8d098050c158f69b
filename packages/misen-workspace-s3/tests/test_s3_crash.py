"""kill -9 of a process in the middle of saving a result: no partial result is ever visible, and a later save of
the same value completes it."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from misen import cache
from misen_workspace_s3 import S3Workspace

SERIALIZER = '''
from pathlib import Path
from misen.serializer import Serializer


class MultiFile(Serializer):
    """Stores a list of byte strings as one file each: a result with many parts."""

    PLUGIN_NAME = "test.multifile"
    TYPES = ()

    def save(self, value, directory, ctx):
        for i, part in enumerate(value):
            (directory / f"part-{i:03d}.bin").write_bytes(part)
        return {"n": len(value)}

    def load(self, directory, meta, ctx):
        return [(directory / f"part-{i:03d}.bin").read_bytes() for i in range(meta["n"])]
'''

WRITER = """
from misen import cache
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from multifile import MultiFile
from misen.workspace import Workspace
from misen_workspace_s3.workspace import S3Workspace

ws = Workspace.from_spec(json.loads(sys.argv[1]))
marker, pause = Path(sys.argv[3]), sys.argv[4] == "pause"


def signal_parent(text):
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.rename(marker)  # the parent sees the whole text or nothing


value = [bytes([i]) * 300_000 for i in range(8)]
if pause:
    upload = S3Workspace._upload_file
    done = []

    def upload_then_hang(self, local, rel):
        upload(self, local, rel)
        done.append(rel)
        if len(done) == 3:  # three parts are in the store, the rest and the marker are not
            signal_parent(rel.split("/")[1])
            time.sleep(600)

    S3Workspace._upload_file = upload_then_hang
h = cache.store(ws, value, serializer=MultiFile())
signal_parent(h)
ws.close()
"""


def _multifile(tmp_path: Path) -> Any:
    (tmp_path / "multifile.py").write_text(textwrap.dedent(SERIALIZER))
    spec = importlib.util.spec_from_file_location("multifile_for_test", tmp_path / "multifile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MultiFile


@pytest.mark.parametrize("backend", ["s3", "file"], indirect=True)
def test_kill_9_mid_save_leaves_no_result(
    make_ws: Callable[..., S3Workspace],
    popen_child: Callable[..., Any],
    run_child: Callable[..., Any],
    tmp_path: Path,
) -> None:
    multifile = _multifile(tmp_path)
    ws = make_ws()
    spec = json.dumps(ws.spec())
    marker = tmp_path / "marker"
    proc = popen_child(WRITER, spec, str(tmp_path), str(marker), "pause")
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), proc.communicate(timeout=5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    h = marker.read_text()

    parts = [e["name"] for e in ws.remote.find(f"results/{h}")]
    assert len(parts) == 3 and not any(p.endswith("manifest.json") for p in parts), parts
    fresh = make_ws()
    assert not fresh.has_result(h)
    assert h not in set(fresh.iter_results())
    assert fresh.open_result(h) is None

    marker.unlink()
    run_child(WRITER, spec, str(tmp_path), str(marker), "go")
    assert marker.read_text() == h
    value = cache.load_hash(make_ws(), h, serializer=multifile())
    assert value == [bytes([i]) * 300_000 for i in range(8)]
