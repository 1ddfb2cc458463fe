"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one page run in order in one namespace (a later block may use the names of an
earlier one), in a temporary working directory, so files a page writes do not land in the
repository. A block preceded by the line ``<!-- skip -->`` is not run: that marker is for
fragments a reader is not told to run as they stand (none at the moment; see ``SKIP``).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
SKIP = "<!-- skip -->"
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every ```python block of ``text`` not marked ``<!-- skip -->``."""
    blocks = []
    for match in _FENCE.finditer(text):
        if match.group(1) != "python":
            continue
        before = text[:match.start()].rstrip().splitlines()
        if before and before[-1].strip() == SKIP:
            continue
        blocks.append((text.count("\n", 0, match.start()) + 2, match.group(2)))
    return blocks


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def test_extractor_reads_fences_and_skip_marker():
    text = ("# t\n\n```python\na = 1\n```\n\n```bash\nls\n```\n\n<!-- skip -->\n```python\nb = 2\n```\n"
            "```python title\nc = a + 1\n```\n")
    blocks = python_blocks(text)
    assert [code for _, code in blocks] == ["a = 1\n", "c = a + 1\n"]
    assert blocks[0][0] == 4


def test_every_page_with_code_is_collected():
    with_code = {_page_id(p) for p in PAGES if python_blocks(p.read_text(encoding="utf-8"))}
    assert {"README.md", "docs/tutorial.md", "docs/synthesis.md", "docs/calibration.md", "docs/fusion.md",
            "docs/households.md", "docs/scale.md"} <= with_code


@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_page_examples_run(page: Path, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip("no python block")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{_page_id(page)}:{line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the block at {_page_id(page)} line {line} failed: {exc!r}") from exc


def _included(page: Path) -> list[Path]:
    """The files a page includes with ``--8<-- "path"`` (pymdownx.snippets, paths from the root)."""
    return [ROOT / m for m in re.findall(r'^--8<-- "([^"]+)"', page.read_text(encoding="utf-8"), re.MULTILINE)]


def test_benchmark_pages_are_readable():
    """What the docs show of the benchmark results: no ``nan`` cell, no internal issue number."""
    pages = [*(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "benchmarks").glob("*.md")]
    shown = {p for page in pages for p in [page, *_included(page)]}
    assert any("results" in str(p) for p in shown)
    for path in sorted(shown):
        text = path.read_text(encoding="utf-8")
        rows = [line for line in text.splitlines() if line.lstrip().startswith("|")]
        assert not [r for r in rows if re.search(r"\|\s*nan\s*(?=\|)", r)], f"nan cell in {path.name}"
        assert not re.search(r"\bissues? \d+|issue-\d+", text, re.IGNORECASE), f"issue number in {path.name}"
