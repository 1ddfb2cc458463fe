"""The guard catalogue in ``docs/trust.md`` is pinned by tests: every row names a test that exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "docs" / "trust.md"
_NODE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?`")


def _rows() -> list[tuple[str, str, str]]:
    rows = []
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        for path, name in _NODE.findall(line):
            rows.append((line, path, name))
    return rows


def _defined(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_the_catalogue_lists_guards():
    rows = _rows()
    assert len(rows) >= 40, f"docs/trust.md names only {len(rows)} tests"
    areas = {line.split("|")[1].strip() for line, _, _ in rows}
    assert {"synthesis", "calibration", "pipeline", "scale", "households"} <= areas


_ROWS = _rows() if CATALOGUE.is_file() else []


@pytest.mark.parametrize("line,path,name", _ROWS, ids=[f"{p}::{n}" for _, p, n in _ROWS])
def test_every_catalogue_row_names_an_existing_test(line, path, name):
    file = ROOT / path
    assert file.is_file(), f"{path} (named in docs/trust.md) does not exist"
    assert name.startswith("test_") and name in _defined(file), f"{path}::{name} (docs/trust.md) is not a test there"
