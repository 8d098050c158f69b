"""Tests of misen fill's engine: ids inserted at exact positions, formatting kept, renew, uniqueness, errors."""

from __future__ import annotations

import ast
import os
import re
import stat
from pathlib import Path

import pytest
from misen import _fill
from misen._fill import ID_ALPHABET, FillChange, duplicate_ids, fill_paths, new_id, project_files
from misen.errors import MisenError

ID_RE = re.compile(rf"^[{ID_ALPHABET}]{{10}}$")

FORMS = '''\
"""A module with odd formatting."""
import misen
import misen as mi
from misen import meta, meta as tag


@meta
def bare(x):  # a comment that stays
    return x


@meta()
def empty_call(): ...


@meta(cache=True)
def one_kw(): ...


@meta  (  cache = True )   # spaced out
async def spaced(): ...


@tag(
    cache=True,  # why we cache
    exclude={"x"},
)
def multi_line(x): ...


@misen.meta(id="KEEPTHIS22", cache=True)
def has_id(): ...


@mi.meta(
    # a comment before the first argument
    cache=True)
def comment_first(): ...


class Model:
    @meta(cache=True,
          defaults={"a": 1})
    def fit(self, a=1): ...


def outer():
    @meta
    def inner(): ...
    return inner


@other_decorator
@meta(cache=False)
def stacked(): ...


@functools.cache
def not_a_task(): ...
'''

EXPECTED = '''\
"""A module with odd formatting."""
import misen
import misen as mi
from misen import meta, meta as tag


@meta(id="{0}")
def bare(x):  # a comment that stays
    return x


@meta(id="{1}")
def empty_call(): ...


@meta(id="{2}", cache=True)
def one_kw(): ...


@meta  (  id="{3}", cache = True )   # spaced out
async def spaced(): ...


@tag(
    id="{4}",
    cache=True,  # why we cache
    exclude={{"x"}},
)
def multi_line(x): ...


@misen.meta(id="KEEPTHIS22", cache=True)
def has_id(): ...


@mi.meta(
    # a comment before the first argument
    id="{5}",
    cache=True)
def comment_first(): ...


class Model:
    @meta(id="{6}", cache=True,
          defaults={{"a": 1}})
    def fit(self, a=1): ...


def outer():
    @meta(id="{7}")
    def inner(): ...
    return inner


@other_decorator
@meta(id="{8}", cache=False)
def stacked(): ...


@functools.cache
def not_a_task(): ...
'''


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode())
    return path


def test_new_id_uses_the_unambiguous_alphabet() -> None:
    ids = {new_id(set()) for _ in range(300)}
    assert all(ID_RE.match(i) for i in ids)
    assert len(ids) == 300
    assert not set("".join(ids)) & set("O0I1")


def test_new_id_avoids_existing_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    # Randomness made predictable: the first candidate is taken, the second is free.
    draws = iter("A" * 10 + "B" * 10)
    monkeypatch.setattr(_fill.secrets, "choice", lambda seq: next(draws))
    assert new_id({"AAAAAAAAAA"}) == "BBBBBBBBBB"


def test_fill_inserts_ids_and_keeps_everything_else(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.py", FORMS)
    changes = fill_paths([path])
    names = [c.function for c in changes]
    assert names == [
        "bare",
        "empty_call",
        "one_kw",
        "spaced",
        "multi_line",
        "comment_first",
        "Model.fit",
        "outer.<locals>.inner",
        "stacked",
    ]
    assert all(c.old_id is None and ID_RE.match(c.new_id) and c.path == path.resolve() for c in changes)
    assert len({c.new_id for c in changes} | {"KEEPTHIS22"}) == len(changes) + 1
    assert path.read_text() == EXPECTED.format(*(c.new_id for c in changes))
    assert [c.line for c in changes][:3] == [7, 12, 16]
    ast.parse(path.read_text())


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.py", FORMS)
    fill_paths([tmp_path])
    once = path.read_bytes()
    assert fill_paths([tmp_path]) == []
    assert path.read_bytes() == once


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path / "tasks.py", FORMS)
    changes = fill_paths([path], dry_run=True)
    assert len(changes) == 9
    assert path.read_text() == FORMS


def test_renew_replaces_only_the_named_ids(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    text = (
        "from misen import meta\n\n"
        '@meta(id="AAAAAAAAAA", cache=True)\ndef train(): ...\n\n'
        '@meta(id="BBBBBBBBBB")\ndef evaluate(): ...\n\n'
        "class Model:\n"
        '    @meta(\n        id="CCCCCCCCCC",\n        cache=True,\n    )\n    def fit(self): ...\n'
    )
    path = _write(pkg / "mod.py", text)
    for spelling in ("train", "pkg.mod.train", "pkg.mod:train"):
        before = path.read_text()
        (change,) = fill_paths([tmp_path], renew={spelling})
        assert change.function == "train" and change.old_id != change.new_id
        assert path.read_text() == before.replace(f'"{change.old_id}"', f'"{change.new_id}"')
    (change,) = fill_paths([tmp_path], renew={"Model.fit"})
    assert change.old_id == "CCCCCCCCCC"
    after = path.read_text()
    assert '"BBBBBBBBBB"' in after and '"CCCCCCCCCC"' not in after
    assert after == text.replace("CCCCCCCCCC", change.new_id).replace(
        "AAAAAAAAAA",
        re.search(r'id="(\w+)", cache=True\)\ndef train', after).group(1),  # type: ignore[union-attr]
    )


def test_renew_of_an_unknown_name_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.py", "from misen import meta\n@meta\ndef train(): ...\n")
    with pytest.raises(MisenError, match="no @meta function named 'trian'"):
        fill_paths([path], renew={"trian"})
    assert path.read_text() == "from misen import meta\n@meta\ndef train(): ...\n"


def test_ids_are_unique_across_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path / "a.py", 'from misen import meta\n@meta(id="AAAAAAAAAA")\ndef a(): ...\n')
    b = _write(tmp_path / "b.py", "from misen import meta\n@meta\ndef b(): ...\n@meta\ndef c(): ...\n")
    # Every draw proposes A's id first, then the same second id twice: each must be refused.
    draws = iter("A" * 10 + "B" * 10 + "B" * 10 + "C" * 10)
    monkeypatch.setattr(_fill.secrets, "choice", lambda seq: next(draws))
    changes = fill_paths([tmp_path])
    assert [c.new_id for c in changes] == ["BBBBBBBBBB", "CCCCCCCCCC"]
    assert b.read_text().count('id="') == 2
    assert duplicate_ids([tmp_path]) == {}


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.py", 'from misen import meta\n@meta(id="SAMESAME22")\ndef a(): ...\n')
    b = _write(
        tmp_path / "b.py", '\nfrom misen import meta\n@meta(cache=True, id="SAMESAME22")\ndef b(): ...\n'
    )
    assert duplicate_ids([tmp_path]) == {"SAMESAME22": [(a.resolve(), 2, "a"), (b.resolve(), 3, "b")]}


def test_a_syntax_error_names_the_file_and_touches_nothing(tmp_path: Path) -> None:
    good = _write(tmp_path / "a_good.py", "from misen import meta\n@meta\ndef a(): ...\n")
    bad = _write(tmp_path / "b_bad.py", "from misen import meta\n\n@meta\ndef b(:\n    pass\n")
    with pytest.raises(MisenError, match=r"b_bad\.py:4: syntax error"):
        fill_paths([tmp_path])
    assert good.read_text() == "from misen import meta\n@meta\ndef a(): ...\n"
    assert bad.read_text() == "from misen import meta\n\n@meta\ndef b(:\n    pass\n"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(MisenError, match="no such file or directory"):
        fill_paths([tmp_path / "nope.py"])


def test_permissions_line_endings_and_encoding_are_kept(tmp_path: Path) -> None:
    crlf = tmp_path / "crlf.py"
    crlf.write_bytes(b"from misen import meta\r\n@meta(\r\n    cache=True,\r\n)\r\ndef a(): ...\r\n")
    os.chmod(crlf, 0o640)
    latin = tmp_path / "latin.py"
    latin.write_bytes(
        "# -*- coding: latin-1 -*-\nfrom misen import meta\n@meta  # café\ndef b(): return 'é'\n".encode(
            "latin-1"
        )
    )
    changes = {c.function: c.new_id for c in fill_paths([tmp_path])}
    assert (
        crlf.read_bytes()
        == (
            f'from misen import meta\r\n@meta(\r\n    id="{changes["a"]}",\r\n    cache=True,\r\n)\r\ndef a(): ...\r\n'
        ).encode()
    )
    assert stat.S_IMODE(crlf.stat().st_mode) == 0o640
    assert latin.read_bytes() == (
        f'# -*- coding: latin-1 -*-\nfrom misen import meta\n@meta(id="{changes["b"]}")  # café\n'
        "def b(): return 'é'\n"
    ).encode("latin-1")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_empty_or_none_id_counts_as_missing(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "t.py",
        'from misen import meta\n@meta(id=None)\ndef a(): ...\n@meta(id="")\ndef b(): ...\n',
    )
    a, b = fill_paths([path])
    assert (
        path.read_text()
        == f'from misen import meta\n@meta(id="{a.new_id}")\ndef a(): ...\n@meta(id="{b.new_id}")\ndef b(): ...\n'
    )


def test_a_meta_from_elsewhere_is_not_touched(tmp_path: Path) -> None:
    text = (
        "from other_library import meta\n@meta\ndef a(): ...\n"
        "import misen\n@misen.meta(**OPTIONS)\ndef b(): ...\n"  # may hold an id: left alone
    )
    path = _write(tmp_path / "t.py", text)
    assert fill_paths([path]) == []
    assert path.read_text() == text


def test_project_files_finds_the_package(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "my-project"\n')
    files = [
        "src/my_project/__init__.py",
        "src/my_project/models/train.py",
        "src/other/__init__.py",
        "tests/test_x.py",
        ".venv/lib/python3.11/site-packages/x/y.py",
        "src/my_project/.hidden/z.py",
        "build/lib/my_project/a.py",
        "setup.py",
    ]
    for f in files:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    assert project_files(tmp_path) == [
        (tmp_path / "src/my_project/__init__.py").resolve(),
        (tmp_path / "src/my_project/models/train.py").resolve(),
    ]
    (tmp_path / "pyproject.toml").write_text("[tool.something]\n")
    assert [p.relative_to(tmp_path.resolve()).as_posix() for p in project_files(tmp_path)] == [
        "src/my_project/__init__.py",
        "src/my_project/models/train.py",
        "src/other/__init__.py",
    ]


def test_project_files_of_a_flat_layout(tmp_path: Path) -> None:
    for f in ("pkg/__init__.py", "pkg/a.py", "tests/__init__.py", "venv/pyvenv.cfg", "venv/lib/x.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("")
    assert [p.name for p in project_files(tmp_path)] == ["__init__.py", "a.py"]
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "experiment.py").write_text("")
    (alone / "setup.py").write_text("")
    assert project_files(alone) == [(alone / "experiment.py").resolve()]


def test_fill_change_is_a_value() -> None:
    assert FillChange(Path("a.py"), 1, "f", None, "X") == FillChange(Path("a.py"), 1, "f", None, "X")
