"""``misen.testing.processes``: the fresh interpreters plugin tests load results in and open files without misen."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest
from misen.testing.processes import only_plugins, run_python, run_without_misen

_REGISTERED = """
import json
from misen.plugins import plugin_manager
print(json.dumps(sorted(name for name, _ in plugin_manager().list_name_plugin())))
"""


def test_run_python_passes_arguments_and_working_directory_and_returns_the_output(tmp_path: Path) -> None:
    out = run_python("import os, sys; print(sys.argv[1:], os.getcwd())", "a b", "c", cwd=tmp_path)
    assert out.strip() == f"['a b', 'c'] {tmp_path}"


def test_a_failing_process_fails_the_test_with_the_end_of_its_output() -> None:
    code = "import sys; print('x' * 9000); sys.stderr.write('ValueError: the reason'); sys.exit(3)"
    with pytest.raises(AssertionError, match=r"exited with 3:\n(.|\n)*ValueError: the reason") as failed:
        run_python(code)
    assert len(str(failed.value)) < 6100  # the end of a long output, not all of it
    with pytest.raises(AssertionError, match="ValueError: the reason"):
        run_python("raise ValueError('the reason')")


def test_only_plugins_keeps_the_named_entry_points_and_the_built_ins(tmp_path: Path) -> None:
    installed = sorted({ep.name for ep in metadata.entry_points(group="misen")})
    if "serializers-numpy" not in installed:
        pytest.skip("misen-serializers-numpy is not installed")
    monkeyed = only_plugins("serializers-numpy", tmp_path)
    assert monkeyed["XDG_CONFIG_HOME"] == str(tmp_path / "xdg")
    assert set(monkeyed["MISEN_DISABLE_PLUGINS"].split(",")) == set(installed) - {"serializers-numpy"}
    registered = json.loads(run_python(_REGISTERED, env=monkeyed))
    assert "serializers-numpy" in registered
    assert not set(registered) & (set(installed) - {"serializers-numpy"})
    assert only_plugins(["serializers-numpy", " "])["MISEN_DISABLE_PLUGINS"] == monkeyed["MISEN_DISABLE_PLUGINS"]
    nothing = json.loads(run_python(_REGISTERED, env=only_plugins("")))
    assert not set(nothing) & set(installed)  # the built-ins alone


def test_without_misen_the_libraries_import_and_misen_does_not(tmp_path: Path) -> None:
    (tmp_path / "v.json").write_text('{"a": 1}')
    assert run_without_misen("import json, sys; print(json.load(open(sys.argv[1]))['a'])", str(tmp_path / "v.json")) == "1\n"
    for module, refused in (("misen", "misen"), ("misen.serializer", "misen"), ("misen_workspace_disk", None)):
        refused = refused or module
        with pytest.raises(AssertionError, match=f"No module named '{refused}' \\(this process runs without misen\\)"):
            run_without_misen(f"import {module}")
