"""Makes the result tables of ``benchmarks/results/*.md`` readable (the generators call :func:`tidy`).

In every Markdown table: a ``nan`` cell (a figure that does not apply, e.g. a fit time on the
floor row) is left empty, and a column whose every number is a whole number is written without
decimals (``77.000`` -> ``77``), and a negative zero (``-0.000``, a small negative difference rounded
away) is written ``+0.000`` where the column's figures are signed, else ``0.000``. Text outside tables
is unchanged.

``python benchmarks/tidy_results.py benchmarks/results/*.md`` rewrites files in place (idempotent).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

def mean_and_worst(rows: pd.DataFrame) -> pd.DataFrame:
    """Scores per variant (``who``) over the seeds (``seed``): their mean and their largest (the worst seed, for
    scores where smaller is better), one column pair per variant, rounded to 3 decimals."""
    by = rows.groupby("who")
    mean = by.mean(numeric_only=True).drop(columns="seed").T
    worst = by.max(numeric_only=True).drop(columns="seed").T
    return pd.concat({"mean": mean, "worst seed": worst}, axis=1).round(3)


_NUMBER = re.compile(r"^-?[\d,]*\.?\d+(?:e[-+]?\d+)?$")
_NAN = {"nan", "NaN", "<NA>", "None"}
_NEGATIVE_ZERO = re.compile(r"(?<![\w.])-(0\.0+)(?![\d])")


def _cells(line: str) -> list[str]:
    return line.strip()[1:-1].split("|")


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()))


def _tidy_table(lines: list[str]) -> list[str]:
    rows = [_cells(line) for line in lines]
    if len({len(r) for r in rows}) != 1:
        return lines  # a cell holding "|": leave the table as it is
    body = [i for i in range(len(rows)) if i >= 2]
    for j in range(len(rows[0])):
        values = [rows[i][j].strip() for i in body]
        numbers = [v for v in values if _NUMBER.match(v)]
        whole = bool(numbers) and all(float(v.replace(",", "")) == int(float(v.replace(",", ""))) and "e" not in v
                                      for v in numbers) and any("." in v for v in numbers)
        signed = any("+" in v for v in values)
        for i in body:
            cell = rows[i][j]
            v = cell.strip()
            if v in _NAN:
                new = ""
            elif (whole and _NUMBER.match(v)) or _NEGATIVE_ZERO.search(v):
                new = _NEGATIVE_ZERO.sub(r"+\1" if signed else r"\1", v)
                new = new.split(".")[0] if whole and _NUMBER.match(v) else new
            else:
                continue
            rows[i][j] = new.rjust(len(cell) - 1) + " " if len(cell) > 1 else new
    return ["|" + "|".join(r) + "|" for r in rows]


def tidy(text: str) -> str:
    """Returns ``text`` with its Markdown tables tidied (see the module docstring)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _is_separator(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.extend(_tidy_table(lines[i:j]))
            i = j
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(tidy(path.read_text(encoding="utf-8")), encoding="utf-8")
