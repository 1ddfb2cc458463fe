"""The held-out cells section of the evaluation report: the error summary per population and, per
area column, a sorted dot plot of each area's error (PNG, embedded; no map files needed)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ._plots import HOLD, REAL, SYNTH, label, png, pyplot
from .areas import area_errors, error_summary

if TYPE_CHECKING:  # pragma: no cover
    from .report import EvaluationReport

__all__ = ["heldout_section", "area_plot"]

#: Dot colours of the populations, in order of appearance (generated, calibrated, subset).
_COLOURS = (HOLD, REAL, SYNTH, "#2ca02c", "#9467bd")
#: Areas named on the axis at most; beyond, the areas are ranks.
_MAX_NAMED = 60


def area_plot(table, column: str) -> str:
    """Each area's misplacement (:func:`~microplex.evaluation.areas.area_errors`), one dot per population, the
    areas sorted by the last population's."""
    plt = pyplot()
    names = list(dict.fromkeys(table["population"]))
    last = table[table["population"] == names[-1]].sort_values("error", kind="stable")
    order = {a: i for i, a in enumerate(last["area"])}
    n = len(order)
    named = n <= _MAX_NAMED
    fig, ax = plt.subplots(figsize=(9.0, 3.4 if not named else 3.0 + 0.02 * n))
    for colour, name in zip(_COLOURS * (1 + len(names) // len(_COLOURS)), names):
        part = table[(table["population"] == name) & table["area"].isin(order)]
        x = part["area"].map(order).to_numpy()
        ax.scatter(x, 100 * part["error"].to_numpy(), s=14 if named else 4, color=colour, label=label(name, 30),
                   alpha=0.85, linewidths=0)
    if named:
        ax.set_xticks(range(n), [label(a, 18) for a in last["area"]], rotation=90, fontsize=7)
    else:
        ax.set_xlabel(f"{n:,} areas of {label(column, 30)}, sorted by the {label(names[-1], 30)} error")
    ax.set_ylabel("misplacement (%)\nsum |achieved - value| / sum value", fontsize=8)
    ax.set_title(f"held-out cells by {label(column, 30)}", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return png(fig, f"held-out error by {column}")


def heldout_section(rep: EvaluationReport) -> str:
    """The section's HTML: what the cells are, the summary table, one plot per area column."""
    errors = rep.heldout
    parts = ['<h2 id="heldout">Held-out cells</h2>',
             f'<p class="note">{errors["target"].nunique():,} cells that no stage calibrated to, totalled in each '
             "population: the absolute relative error |achieved - value| / value per cell (a cell no record reaches "
             "has error 1), and per area the misplacement, sum |achieved - value| / sum value over its cells "
             "(where the area's total is right, twice the share of the people in the wrong cells: a misplaced "
             "person counts in the cell it is missing from and in the one it is extra in; the cells have positive "
             "values, so a person placed in a cell they do not list, one the data leave empty, counts once, in the "
             "cell it is missing from: an area whose people all sit in such cells reads 100%, not 200%).</p>",
             error_summary(errors).to_html(index=False, float_format=lambda v: f"{v:.4g}", formatters={
                 "population": html.escape})]
    plots = [area_plot(area_errors(errors, column), column) for column in rep.areas]
    parts += [f'<div class="card">{p}</div>' for p in plots]
    return "\n".join(parts)
