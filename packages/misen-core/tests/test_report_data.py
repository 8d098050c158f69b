"""What the report is made of, without a browser: the command's contract, ``tree --format``, ``why``'s code diff,
the code text kept in the workspace, labels and result previews."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import pytest
from misen import Serializer, Task, meta
from misen.labels import task_labels
from misen.preview import Preview, default_preview
from misen.serializer import preview_value
from report_demo_project import STATES, edit_helper, make_demo
from test_cli_project import Project, pycache_dir

STEPS = "demo_project.steps"


@pytest.fixture
def demo(tmp_path: Path) -> Project:
    return make_demo(tmp_path / "proj", pycache_dir())


def _data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="misen-data">(.*?)</script>', html, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_report_exits_0_in_any_state_and_prints_its_path(demo: Project) -> None:
    # Nothing computed yet: still a report, every task pending.
    fresh = demo.run("-m", STEPS, "report")
    assert fresh.returncode == 0, fresh.stderr
    path = Path(fresh.stdout.strip())
    assert path == demo.root / "misen-report-Demo.html" and path.is_file()
    data = _data(path.read_text())
    assert {t["state"] for t in data["tasks"]} == {"pending"} and len(data["tasks"]) == len(STATES)
    assert data["runs"] == [] and data["tables"] == []
    # After a run with a failure and an edit: every state, and through `misen experiment` too.
    assert demo.run("-m", STEPS).returncode == 1
    edit_helper(demo)
    out = demo.root / "out" / "r.html"
    proc = demo.run("-m", "misen.cli", "experiment", f"{STEPS}:Demo", "report", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == out.resolve()
    data = _data(out.read_text())
    assert {t["label"]: t["state"] for t in data["tasks"]} == STATES
    by_label = {t["label"]: t for t in data["tasks"]}
    assert by_label["score[x=1, y=2]"]["preview"] == {"kind": "text", "data": "{'value': 12, 'ratio': 0.5}"}
    assert by_label["picture"]["preview"]["kind"] == "image"
    assert by_label["best"]["error_of"] == by_label["score[x=3, y=2]"]["id"]
    assert by_label["score[x=3, y=2]"]["log"]["text"].rstrip().endswith("ValueError: x=3, y=2 is out of range")
    assert by_label["score[x=1, y=1]"]["size"] > 0 and by_label["score[x=1, y=1]"]["duration"] >= 0
    (table,) = data["tables"]
    assert table["columns"] == ["x", "y", "value", "ratio"] and len(table["rows"]) == 5


def test_a_name_the_experiment_does_not_have_is_one_error_line(demo: Project) -> None:
    proc = demo.run("-m", STEPS, "tree", "--format", "svg")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "'svg' is not one of 'text', 'dot', 'json'" in proc.stderr


def test_tree_as_dot_and_json(demo: Project) -> None:
    assert demo.run("-m", STEPS).returncode == 1
    dot = demo.run("-m", STEPS, "tree", "--format", "dot")
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph misen {") and "rankdir=LR;" in dot.stdout
    assert dot.stdout.count(" -> ") == 6  # six scores feed best; picture and shift stand alone
    assert '"score[x=3, y=2]"' in dot.stdout and 'fillcolor="#e53935"' in dot.stdout
    js = json.loads(demo.run("-m", STEPS, "tree", "--format", "json").stdout)
    assert set(js["named"]) == {"best", "picture", "shifted"}
    states = {t["label"]: t["state"] for t in js["tasks"]}
    assert states["best"] == "skipped" and states["shift"] == "done"
    best = next(t for t in js["tasks"] if t["label"] == "best")
    assert len(best["deps"]) == 6 and all(d in {t["id"] for t in js["tasks"]} for d in best["deps"])
    # The text tree is unchanged by the new option.
    assert demo.run("-m", STEPS, "tree").stdout.startswith("best ✗")


def test_why_prints_the_code_diff_of_a_stale_task(demo: Project) -> None:
    assert demo.run("-m", STEPS).returncode == 1
    edit_helper(demo)
    why = demo.run("-m", STEPS, "why", "shifted")
    assert why.returncode == 0, why.stderr
    lines = [ln.strip() for ln in why.stdout.splitlines()]
    assert "status: stale" in lines
    assert "changed: demo_project.steps._shift (src/demo_project/steps.py:7)" in lines
    assert "-    return v + 1" in why.stdout and "+    return v + 2" in why.stdout


def test_siblings_whose_code_changed_each_show_the_diff_and_their_earlier_run_and_log(demo: Project) -> None:
    assert demo.run("-m", STEPS).returncode == 1
    path = demo.root / "src/demo_project/steps.py"
    path.write_text(path.read_text().replace('"value": x * 10 + y', '"value": x * 10 + y + 0'))
    out = demo.root / "stale.html"
    proc = demo.run("-m", STEPS, "report", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    data = _data(out.read_text())
    stale = [t for t in data["tasks"] if t["fn"] == "score" and t["state"] == "stale"]
    assert len(stale) == 5  # the five that had a result; the failed one has none to be stale against
    for t in stale:
        (item,) = t["diff"]["items"]
        assert item["name"] == "demo_project.steps.score" and item["change"] == "changed"
        assert "+    return {'value': x * 10 + y + 0, 'ratio': x / y}" in item["lines"]
        assert item == stale[0]["diff"]["items"][0]
        x, y = (int(v.split("=")[1]) for v in t["label"][len("score[") : -1].split(", "))
        assert f"scoring x={x} y={y}" in t["log"]["text"]  # the log of the run that computed the earlier result
    bars = [b for run in data["runs"] for b in run["bars"] if b["state"] == "stale"]
    assert sorted(b["task"] for b in bars) == sorted(t["id"] for t in stale)


def test_the_workspace_keeps_normalized_code_text(tmp_path: Path) -> None:
    from misen import MemoryWorkspace
    from misen.code_text import item_text, keep_code_text

    module = tmp_path / "kept_text_mod.py"
    module.write_text(
        "from misen import meta\n\n"
        "def helper(v):\n    '''A docstring.'''\n    # a comment\n    return v   *  2\n\n"
        "@meta(id='KEEPTEXT01', cache=True)\ndef twice(v: int) -> int:\n    return helper(v)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        from kept_text_mod import twice  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    task = Task(twice, v=2)
    ws = MemoryWorkspace(name="kept-text")
    assert task.result(ws) == 4
    items = {i.name: i for i in task.fingerprint.items}
    helper = items["kept_text_mod.helper"]
    assert item_text(helper) == "def helper(v):\n    return v * 2\n"  # no docstring, comment or spacing
    rec = ws.get_record("code", helper.digest)
    assert rec == {"name": "kept_text_mod.helper", "kind": "function", "text": "def helper(v):\n    return v * 2\n"}
    twice_text = ws.get_record("code", items["kept_text_mod.twice"].digest)["text"]
    assert twice_text == "def twice(v):\n    return helper(v)\n"  # @meta and annotations left out
    keep_code_text(ws, task)  # again: nothing changes, nothing fails


def test_labels_tell_siblings_apart_by_their_upstream_arguments() -> None:
    @meta(id="LABELTRAIN", cache=True)
    def train(c: float, gamma: float, seed: int = 0) -> float:
        return c * gamma

    @meta(id="LABELEVALX", cache=True)
    def evaluate(model: float, split: str = "test") -> float:
        return model

    models = [Task(train, c=c, gamma=g) for c in (0.3, 1.0) for g in (0.01, 0.1)]
    evals = [Task(evaluate, model=m) for m in models]
    labels = task_labels([*models, *evals])
    assert labels[evals[1].hash] == "evaluate[c=0.3, gamma=0.1]"
    assert labels[models[2].hash] == "train[c=1.0, gamma=0.01]"
    single = Task(evaluate, model=models[0], split="valid")
    assert task_labels([single])[single.hash] == "evaluate"


def _png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x01\x02\x03")) + chunk(b"IEND", b"")


def test_previews_of_standard_values(tmp_path: Path) -> None:
    assert default_preview(3.5) == Preview.text("3.5")
    assert default_preview({"a": 1, "b": [1, 2]}) == Preview.text("{'a': 1, 'b': [1, 2]}")
    assert default_preview(_png()) == Preview.png(_png())
    image = tmp_path / "plot.png"
    image.write_bytes(_png())
    assert default_preview(str(image)) == Preview("image", _png(), "image/png")  # a task returning its plot's path
    assert default_preview(str(tmp_path / "missing.png")) == Preview.text(str(tmp_path / "missing.png"))
    long = default_preview("x" * 5000)
    assert long is not None and len(long.data) == 1200 and str(long.data).endswith("…")
    nested = default_preview({"<k>": object()})
    assert nested is not None and nested.kind == "html" and "&lt;k&gt;" in str(nested.data)


def test_a_serializer_preview_is_used_and_its_errors_are_contained() -> None:
    class Shouting(Serializer):
        PLUGIN_NAME = "test.shouting"

        def preview(self, value: Any) -> Any:
            return Preview.text(str(value).upper())

    class Broken(Serializer):
        PLUGIN_NAME = "test.broken"

        def preview(self, value: Any) -> Any:
            raise RuntimeError("no preview")

    assert preview_value("quiet", Shouting) == Preview.text("QUIET")
    assert preview_value("quiet", Broken()) is None
    assert preview_value(7) == Preview.text("7")  # through the registry: the stdlib serializers' default
