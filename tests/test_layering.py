"""Layering: which subpackages may import which (no import cycles, the statistics layer at the bottom).

From the bottom up: the private modules (``_errors``, ``_params``, ``_random``, ``_stats``); then
``calibration`` and ``synthesis`` (independent of each other); then ``scale``, ``fusion`` and
``households``; ``evaluation`` judges any of them and imports none of them but calibration's public
API (for calibration targets, lazily); ``pipeline`` and ``cli`` sit on top. Checked statically on
every import statement (imports inside functions included) and by importing each subpackage alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import microplex

SRC = Path(microplex.__file__).parent
SUBPACKAGES = ["calibration", "synthesis", "scale", "fusion", "households", "evaluation"]

#: For each subpackage, the microplex subpackages and top modules it must never import.
FORBIDDEN: dict[str, set[str]] = {
    "calibration": {"synthesis", "scale", "fusion", "households", "evaluation", "pipeline", "cli"},
    "synthesis": {"calibration", "scale", "fusion", "households", "evaluation", "pipeline", "cli"},
    "scale": {"fusion", "households", "evaluation", "pipeline", "cli"},
    "fusion": {"scale", "households", "evaluation", "pipeline", "cli"},
    "households": {"scale", "fusion", "evaluation", "pipeline", "cli"},
    "evaluation": {"synthesis", "scale", "fusion", "households", "pipeline", "cli"},
}
#: The bottom layer imports no other microplex module but the exceptions.
BOTTOM = {"_stats": {"_errors"}, "_random": set(), "_errors": set(), "_params": {"_errors"}, "_files": {"_errors"}}


def _imported(path: Path) -> set[str]:
    """The ``microplex`` top-level names (subpackage or module) that the file at ``path`` imports."""
    return _imports_of(path.read_text(encoding="utf-8"), path.relative_to(SRC).parts[:-1])


def _imports_of(source: str, package: tuple[str, ...]) -> set[str]:
    """The same for ``source``, a module of ``microplex.<package>`` (relative imports resolved)."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                mod = base + (node.module.split(".") if node.module else [])
                names = [".".join(["microplex", *mod])] if mod else [f"microplex.{a.name}" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            bits = name.split(".")
            if bits[0] == "microplex" and len(bits) > 1:
                out.add(bits[1])
    return out


def _files(top: str) -> list[Path]:
    p = SRC / top
    return sorted(p.rglob("*.py")) if p.is_dir() else [SRC / f"{top}.py"]


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_no_subpackage_imports_a_higher_layer(package):
    bad = {f.relative_to(SRC).as_posix(): sorted(_imported(f) & FORBIDDEN[package]) for f in _files(package)}
    assert not {k: v for k, v in bad.items() if v}


@pytest.mark.parametrize("module", sorted(BOTTOM))
def test_the_bottom_layer_imports_only_the_exceptions(module):
    imported = _imported(SRC / f"{module}.py") - {module}
    assert imported <= BOTTOM[module], f"{module} imports {sorted(imported - BOTTOM[module])}"


def test_the_checker_sees_relative_and_lazy_imports():
    assert "_stats" in _imported(SRC / "calibration" / "diagnostics.py")
    probe = "def f():\n    from ..evaluation import metrics\n    import microplex.scale.writer\n    from . import design\n"
    assert _imports_of(probe, ("calibration",)) == {"evaluation", "scale", "calibration"}
    assert _imports_of("from . import _stats\nfrom ._errors import X\n", ()) == {"_stats", "_errors"}


@pytest.mark.parametrize("package", ["calibration", "synthesis", "scale", "_stats"])
def test_importing_a_lower_layer_does_not_load_evaluation(package):
    code = (
        "import sys, importlib; importlib.import_module('microplex.' + sys.argv[1]); "
        "print([m for m in sys.modules if m.startswith('microplex.evaluation')])"
    )
    out = subprocess.run([sys.executable, "-c", code, package], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_microplex_loads_no_heavy_dependency_until_used():
    """``import microplex`` (and the calibration API) loads neither torch nor Dask, matplotlib or typer;
    the synthesis names import torch on first use and are the same objects as the subpackages'."""
    code = (
        "import sys, microplex; from microplex import Calibrator, Targets; "
        "heavy = ['torch', 'zuko', 'dask', 'distributed', 'matplotlib', 'typer', 'sklearn']; "
        "before = [m for m in heavy if m in sys.modules]; "
        "from microplex import Synthesizer, HouseholdSynthesizer, fuse; import microplex.synthesis as s; "
        "print(before, 'torch' in sys.modules, Synthesizer is s.Synthesizer, microplex.scale.__name__, "
        "sorted(set(microplex.__all__) - set(dir(microplex))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True True microplex.scale []"
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        microplex.nothing  # noqa: B018
