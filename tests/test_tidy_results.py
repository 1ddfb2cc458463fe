"""The benchmark pages' table tidier (benchmarks/tidy_results.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from tidy_results import tidy  # noqa: E402


def test_tables_lose_nan_trailing_zeros_of_whole_columns_and_negative_zeros():
    text = ("intro -0.000 nan\n"
            "| a | n | d | e |\n|---|---|---|---|\n"
            "| x | 77.000 | +0.010 (1) / -0.000 (0) | -0.000 |\n"
            "| y | 3.000 | -0.001 | nan |")
    out = tidy(text)
    assert out.split("\n")[0] == "intro -0.000 nan"  # text outside tables is unchanged
    rows = [[c.strip() for c in line.strip()[1:-1].split("|")] for line in out.split("\n")[3:]]
    assert rows == [["x", "77", "+0.010 (1) / +0.000 (0)", "0"], ["y", "3", "-0.001", ""]]
    assert tidy(out) == out
