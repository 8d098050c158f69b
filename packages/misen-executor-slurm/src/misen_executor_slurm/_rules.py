"""Conditions of ``[[executor.rules]]`` (``"gpus > 0 and memory >= 64"``) and sbatch flag normalisation.

The condition language is deliberately tiny and never evaluated as Python: comparisons of one `Resources`
field with a literal (``FIELD OP VALUE``, ``OP`` one of ``== != < <= > >=``), joined by ``and``/``or``
(``and`` binds tighter) and negated with ``not``; parentheses group. Fields: ``cpus``, ``gpus``, ``nodes``,
``memory`` (GiB), ``time`` (minutes; a task without a limit never matches a comparison on it), ``gpu_memory``
(GiB), ``gpu_runtime`` (``cuda``/``rocm``/``xpu``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from misen.resources import Resources

__all__ = ["Condition", "flag_name", "merge_flags", "normalize_flags"]

FIELDS = ("cpus", "gpus", "nodes", "memory", "time", "gpu_memory", "gpu_runtime")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|(==|!=|<=|>=|<|>)|([()])|([A-Za-z_][A-Za-z_0-9]*)|(\"[^\"]*\"|'[^']*')|(\S))"
)

Node = Callable[[Resources], bool]


class Condition:
    """A parsed rule condition; call `matches` with a task's `Resources`.

    Raises:
        ValueError: the text is not a valid condition; the message quotes it and says what is wrong.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._tokens = self._tokenize(text)
        self._pos = 0
        if not self._tokens:
            raise ValueError("empty condition (write e.g. 'gpus > 0')")
        self._node = self._or()
        if self._pos != len(self._tokens):
            raise self._error(f"unexpected {self._tokens[self._pos][1]!r}")

    def matches(self, resources: Resources) -> bool:
        return self._node(resources)

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"

    # --- parsing ----------------------------------------------------------------------------------------------

    def _tokenize(self, text: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        for m in _TOKEN.finditer(text):
            number, op, paren, word, string, other = m.groups()
            if number is not None:
                tokens.append(("value", float(number)))
            elif op is not None:
                tokens.append(("op", op))
            elif paren is not None:
                tokens.append((paren, paren))
            elif word is not None:
                low = word.lower()
                if low in ("and", "or", "not"):
                    tokens.append((low, low))
                elif low in ("true", "false"):
                    tokens.append(("value", low == "true"))
                elif low == "none":
                    tokens.append(("value", None))
                else:
                    tokens.append(("name", word))
            elif string is not None:
                tokens.append(("value", string[1:-1]))
            elif other is not None:
                raise ValueError(f"condition {text!r}: unexpected character {other!r}")
        return tokens

    def _error(self, what: str) -> ValueError:
        return ValueError(f"condition {self.text!r}: {what} (write e.g. 'gpus > 0 and memory >= 64')")

    def _peek(self) -> str | None:
        return self._tokens[self._pos][0] if self._pos < len(self._tokens) else None

    def _take(self, kind: str) -> Any:
        if self._peek() != kind:
            found = self._tokens[self._pos][1] if self._pos < len(self._tokens) else "the end"
            raise self._error(f"expected {kind}, found {found!r}")
        value = self._tokens[self._pos][1]
        self._pos += 1
        return value

    def _or(self) -> Node:
        parts = [self._and()]
        while self._peek() == "or":
            self._pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def _and(self) -> Node:
        parts = [self._not()]
        while self._peek() == "and":
            self._pos += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def _not(self) -> Node:
        if self._peek() == "not":
            self._pos += 1
            inner = self._not()
            return lambda r: not inner(r)
        if self._peek() == "(":
            self._pos += 1
            node = self._or()
            self._take(")")
            return node
        return self._comparison()

    def _comparison(self) -> Node:
        name = self._take("name")
        if name not in FIELDS:
            raise self._error(f"unknown field {name!r} (fields: {', '.join(FIELDS)})")
        op = self._take("op")
        value = self._take("value")
        if name == "gpu_runtime":
            if op not in ("==", "!=") or not isinstance(value, str):
                raise self._error(
                    "gpu_runtime compares with == or != to a quoted name, e.g. gpu_runtime == 'rocm'"
                )
        elif value is not None and not isinstance(value, float):
            raise self._error(f"{name} compares with a number, got {value!r}")
        elif value is None and op not in ("==", "!="):
            raise self._error(f"{name} compares with none only through == or !=")
        fn = _OPS[op]

        def compare(r: Resources) -> bool:
            actual = getattr(r, name)
            if actual is None or value is None:
                return fn(actual, value) if op in ("==", "!=") else False
            return bool(fn(actual, value))

        return compare


def normalize_flags(flags: list[str] | dict[str, Any], *, where: str) -> list[str]:
    """Turn ``["--exclusive", "--mail-type=END"]`` or ``{"exclusive": true, "mail-type": "END"}`` into flags.

    In the mapping form a key may omit the leading dashes; ``true`` gives a bare flag and ``false``/``none``
    leaves it out. Flags must start with ``-`` and hold no newline (they become ``#SBATCH`` lines).

    Raises:
        ValueError: a flag is malformed; the message names ``where``.
    """
    out: list[str] = []
    if isinstance(flags, dict):
        for key, value in flags.items():
            name = key if key.startswith("-") else ("--" + key if len(key) > 1 else "-" + key)
            if value is True:
                out.append(name)
            elif value is False or value is None:
                continue
            elif name.startswith("--"):
                out.append(f"{name}={value}")
            else:
                out.append(f"{name} {value}")
    else:
        out = [str(f) for f in flags]
    for flag in out:
        if not flag.startswith("-") or flag.strip() != flag or not flag.strip("-"):
            raise ValueError(
                f"{where}: {flag!r} is not an sbatch flag (write e.g. '--exclusive' or '--qos=long')"
            )
        if "\n" in flag or "\r" in flag or "\0" in flag:
            raise ValueError(f"{where}: flag {flag!r} contains a line break")
        if flag_name(flag) in RESERVED:
            raise ValueError(
                f"{where}: {flag_name(flag)} is set by the slurm executor itself and cannot be given"
            )
    return out


_SHORT = {
    "-A": "--account", "-a": "--array", "-C": "--constraint", "-c": "--cpus-per-task", "-D": "--chdir",
    "-d": "--dependency", "-e": "--error", "-G": "--gpus", "-J": "--job-name", "-N": "--nodes", "-n": "--ntasks",
    "-o": "--output", "-p": "--partition", "-q": "--qos", "-t": "--time", "-w": "--nodelist",
    "-x": "--exclude",
}  # fmt: skip
#: Options the executor sets itself: a user value would break how it tracks jobs.
RESERVED = (
    "--array",
    "--dependency",
    "--output",
    "--error",
    "--chdir",
    "--wrap",
    "--parsable",
    "--kill-on-invalid-dep",
)


def flag_name(flag: str) -> str:
    """The long option a flag sets (``--mem=4G`` → ``--mem``; ``-p gpu`` → ``--partition``)."""
    name = re.split(r"[=\s]", flag, maxsplit=1)[0]
    if not name.startswith("--") and len(name) > 2:
        name = name[:2]  # "-pgpu"
    return _SHORT.get(name, name)


def merge_flags(flags: list[str]) -> list[str]:
    """Keep the last value of each option (``--partition=a`` then ``--partition=b`` gives ``b``), in first-seen order."""
    merged: dict[str, str] = {}
    for flag in flags:
        merged[flag_name(flag)] = flag
    return list(merged.values())
