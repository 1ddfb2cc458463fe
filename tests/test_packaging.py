"""Packaging: the licence files exist and are declared, every bundled data file has its licence stated."""

import re
import tomllib
from pathlib import Path

from microplex.datasets import DATASETS

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "src" / "microplex" / "datasets" / "data"


def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_licence_files_exist_and_are_declared():
    p = project()
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert p["license"] == "MIT AND GPL-3.0-only"
    for name in p["license-files"]:
        assert (ROOT / name).is_file(), name
    assert "GNU GENERAL PUBLIC LICENSE" in (DATA / "licenses" / "GPL-3.0.txt").read_text()[:200]
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in p["classifiers"])
    assert set(p["urls"]) >= {"Homepage", "Source", "Issues"}


def test_every_bundled_data_file_has_its_licence_stated():
    table = (DATA / "LICENSES.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \| [^|]+ \| ([^|]+(?:\\\|[^|]+)?) \|", table, re.M)}
    files = sorted(p.name for p in DATA.glob("*.csv"))
    assert files == sorted(DATASETS.values())
    assert sorted(rows) == files                      # a new data file needs its row
    assert all("GPL" in licence for licence in rows.values())


def test_package_data_ships_the_licences_with_the_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["microplex"]
    assert {"datasets/data/*.csv", "datasets/data/*.md", "datasets/data/licenses/*.txt"} <= set(globs)


def test_package_data_ships_every_bundled_pipeline():
    """`microplex demo` and `demo --geo` read their pipeline, targets and held-out cells from the package."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["microplex"]
    folders = sorted(p.parent.name for p in (ROOT / "src" / "microplex" / "datasets").glob("*/pipeline.toml"))
    assert folders == ["demo", "demo_geo"]
    assert all(f"datasets/{folder}/*" in globs for folder in folders)
