"""The docs cannot drift from the code: generated pages match, every hook and setting is documented, links hold."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def _gen_reference():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("misen_docs_gen_reference", DOCS / "gen_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_reference_pages_match_the_code() -> None:
    # A fresh interpreter: the registry must be the installed plugins only, not what other tests registered.
    done = subprocess.run(
        [sys.executable, str(DOCS / "gen_reference.py"), "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, f"{done.stderr}\n(regenerate with `uv run python docs/gen_reference.py`)"


def test_every_hook_spec_has_a_docstring_and_a_section() -> None:
    gen = _gen_reference()
    specs = gen.hook_specs()
    assert "misen_add_executors" in specs and len(specs) >= 4
    page = (DOCS / "hooks.md").read_text()
    for name, fn in specs.items():
        doc = (fn.__doc__ or "").strip()
        assert doc, f"hook spec {name} has no docstring"
        assert f"### `{name}`" in page, f"hook spec {name} is missing from docs/hooks.md"
        assert doc.splitlines()[0] in page, f"docs/hooks.md does not show the docstring of {name}"


def test_hook_page_would_catch_a_missing_hook() -> None:
    gen = _gen_reference()
    page = gen.render_hooks()
    for name in gen.hook_specs():
        assert f"### `{name}`" in page
    assert "### `misen_no_such_hook`" not in page


def test_every_backend_setting_has_help_and_a_row() -> None:
    from misen.session import registry
    from misen.settings import CacheSettings

    page = (DOCS / "configuration.md").read_text()
    reg = registry()
    classes = [*reg.executors().values(), *reg.workspaces().values()]
    assert {c.PLUGIN_NAME for c in classes} >= {"local", "in-process", "disk", "memory"}
    settings = [c.Settings for c in classes] + [CacheSettings]
    for cls in settings:
        for field in attrs.fields(cls):
            if not field.init or field.name.startswith("_"):
                continue
            assert field.metadata.get("help"), f"{cls.__module__}.{cls.__qualname__}.{field.name} has no help text"
            assert f"| `{field.name}` |" in page, f"{field.name} of {cls.__qualname__} is not in docs/configuration.md"
    for cls in classes:
        assert f'### `type = "{cls.PLUGIN_NAME}"`' in page


def test_cli_page_lists_every_experiment_command() -> None:
    from misen.cli._commands import COMMANDS

    page = (DOCS / "cli.md").read_text()
    for spec in COMMANDS:
        assert f"`training {spec.name}`" in page, f"experiment command {spec.name} is not in docs/cli.md"
    for name in ("fill", "plugins", "config", "experiment"):
        assert f"`misen {name}`" in page


def _relative_links(text: str) -> list[str]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not t.startswith(("http://", "https://", "#", "mailto:"))]


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md"])
def test_relative_links_of_top_level_pages_resolve(name: str) -> None:
    path = ROOT / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    broken = [t for t in _relative_links(path.read_text()) if not (ROOT / t.split("#")[0]).exists()]
    assert not broken, f"{name} links to missing files: {broken}"


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None,
    reason="mkdocs-material is not installed (the docs dependency group)",
)
def test_docs_build_strict(tmp_path: Path) -> None:
    # MISEN_DOCS_CHECK_ONLY: the build must not rewrite the checkout's pages (a stale page is the other test's
    # failure). Strict mode turns every warning (a broken internal link or anchor, a page missing from the nav) into an error.
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1", "MISEN_DOCS_CHECK_ONLY": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "configuration" / "index.html").exists()
    assert (tmp_path / "site" / "plugins" / "index.html").exists()
