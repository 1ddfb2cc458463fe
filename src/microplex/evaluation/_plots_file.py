"""Plots of the evaluation report for the whole file: overview, correlations, subgroups,
calibration, privacy (distance to closest record) and the model's training curve (PNG, embedded)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._plots import HOLD, REAL, SYNTH, label, png, pyplot
from ._validation import is_numeric
from .metrics import weighted_corr

if TYPE_CHECKING:  # pragma: no cover
    from .report import EvaluationReport

__all__ = ["MAX_VARIABLES", "left_out", "TARGET_LABEL", "target_labels", "overview_plot", "heatmaps", "subgroup_cells", "subgroup_plot", "calibration_plots", "dcr_plot",
           "DCR_UNITS", "training_history", "training_plot"]

MAX_VARIABLES = 40
#: Calibration targets shown at most (bars and table): beyond, the largest relative errors.
MAX_TARGETS = 40
#: How the distance to the closest record is measured (:func:`~microplex.evaluation.privacy.encode_records`).
DCR_UNITS = ("Euclidean distance over all columns: a numeric column counts the difference of its training-"
             "distribution ranks (0 to 1), a different category (a missing one too) adds 1 to the squared distance")


def left_out(total: int, what: str, rest: str) -> str:
    """A note that only the first :data:`MAX_VARIABLES` of ``total`` ``what`` are drawn (``rest``: where the others
    are), or "" when none is left out.

    Examples
    --------
    >>> left_out(45, "variables", "every variable is in the score tables")
    '<p class="note">Only the first 40 of 45 variables are drawn; every variable is in the score tables.</p>'
    >>> left_out(40, "variables", "every variable is in the score tables")
    ''
    """
    if total <= MAX_VARIABLES:
        return ""
    return f'<p class="note">Only the first {MAX_VARIABLES} of {total} {what} are drawn; {html.escape(rest)}.</p>'


def overview_plot(rep: EvaluationReport) -> str:
    """One bar per variable: its KS statistic (numeric) or total variation distance (categorical)."""
    plt = pyplot()
    s = rep.scores[(rep.scores["subgroup"] == "all")]
    dist = pd.concat([s[s["metric"] == "ks"].set_index("variable")["value"],
                      1 - s[s["metric"] == "tv_complement"].set_index("variable")["value"]])
    if dist.empty:
        return ""
    fig, ax = plt.subplots(figsize=(7.0, 0.7 + 0.26 * len(dist)))
    ax.barh(range(len(dist)), dist.to_numpy(), color=SYNTH)
    ax.set_yticks(range(len(dist)), [label(v, 30) for v in dist.index], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("KS statistic (numeric) / total variation distance (categorical); 0 is perfect")
    ax.set_xlim(0, max(0.05, float(dist.max()) * 1.1))
    fig.tight_layout()
    return png(fig, "distance of each variable's distribution")


def heatmaps(rep: EvaluationReport) -> str:
    """Weighted correlation matrices of the numeric columns: real, synthetic and their difference."""
    plt = pyplot()
    numeric = [c for c in rep.real_df.columns if is_numeric(rep.real_df[c])]
    cols = numeric[:MAX_VARIABLES]
    if len(cols) < 2:
        return '<p class="note">Fewer than two numeric columns: no correlation matrix.</p>'
    note = left_out(len(numeric), "numeric variables", "the correlation errors of the whole file cover all of them")
    cr = weighted_corr(rep.real_df[cols], rep.real_weights)
    cs = weighted_corr(rep.synthetic_df[cols], rep.synthetic_weights)
    size = min(4.2, 1.4 + 0.3 * len(cols))
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 1.2, size))
    names = [label(c, 20) for c in cols]
    for ax, mat, title in zip(axes, (cr, cs, cs - cr), ("real", "synthetic", "synthetic - real")):
        im = ax.imshow(mat.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(cols)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(cols)), names, fontsize=7)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8, label="weighted Pearson correlation")
    return note + png(fig, "correlation matrices")


def subgroup_cells(scores: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The within-cell distances (``subgroup_ks`` rows) per condition: ``{by: variable x cell table}``.

    Each ``subgroup_ks_mean`` row (subgroup ``"by <condition>"``) follows the cells it averages,
    so the cells are read in the order the registry wrote them (no parsing of cell labels).
    """
    out: dict[str, list] = {}
    cells: list = []
    for metric, variable, subgroup, value in scores[["metric", "variable", "subgroup", "value"]].itertuples(index=False):
        if metric == "subgroup_ks":
            cells.append((variable, subgroup, value))
        elif metric == "subgroup_ks_mean":
            by = str(subgroup)[3:]
            out.setdefault(by, []).extend(c for c in cells if c[0] == variable)
            cells = []
    return {by: pd.DataFrame(rows, columns=["variable", "cell", "value"]).pivot_table(
        index="variable", columns="cell", values="value", sort=False) for by, rows in out.items() if rows}


def subgroup_plot(by: str, table: pd.DataFrame, limit: int = 30) -> str:
    """Heat map of the within-cell distance of each variable (rows) in each cell of ``by`` (columns)."""
    plt = pyplot()
    note = left_out(table.shape[0], "variables", f"the table above gives each one's mean over the cells of {by}")
    cut = table.shape[1] > limit
    table = table.iloc[:MAX_VARIABLES, :limit]
    fig, ax = plt.subplots(figsize=(min(11.4, 2.5 + 0.55 * table.shape[1]), 0.9 + 0.3 * table.shape[0]))
    values = table.to_numpy(float)
    top = max(0.1, float(np.nanmax(values)))
    im = ax.imshow(values, vmin=0, vmax=top, cmap="Reds", aspect="auto")
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="#fff" if v > 0.6 * top else "#222")
    ax.set_xticks(range(table.shape[1]), [label(c, 18) for c in table.columns], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(table.shape[0]), [label(v, 24) for v in table.index], fontsize=8)
    ax.set_title(f"within each cell of {label(by, 40)}" + (f" (first {limit} cells)" if cut else ""),
                 fontsize=9)
    fig.colorbar(im, ax=ax, label="KS / TV distance", shrink=0.9)
    fig.tight_layout()
    return note + png(fig, f"distances within the cells of {by}")


#: Characters of a calibration target's name on its bar (longer names lose their middle, more where two would read alike).
TARGET_LABEL = 40


def _elide(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters by its middle: its start and (the longer part) its end kept."""
    if len(text) <= limit:
        return text
    tail = (limit - 1) * 3 // 5
    return text[: limit - 1 - tail] + "…" + text[len(text) - tail:]


def target_labels(names: object, limit: int = TARGET_LABEL) -> list[str]:
    """Bar labels of target names: each cut by its middle to ``limit`` characters (:func:`_elide`), the start and the
    end kept, so that the targets of one margin (alike but for their last category) read apart; labels that still
    coincide are lengthened until they differ (or are the whole name).

    Examples
    --------
    >>> target_labels(["count[db040 == 'Lower Austria' & rb090 == 'female']",
    ...                "count[db040 == 'Lower Austria' & rb090 == 'male']"], 30)
    ["count[db040 …b090 == 'female']", "count[db040 … rb090 == 'male']"]
    """
    full = [str(v) for v in names]
    out = [_elide(s, limit) for s in full]
    n = limit
    while True:
        seen: dict[str, int] = {}
        for lab in out:
            seen[lab] = seen.get(lab, 0) + 1
        clash = [i for i, lab in enumerate(out) if seen[lab] > 1 and lab != full[i]]
        if not clash:
            break
        n *= 2
        for i in clash:
            out[i] = _elide(full[i], n)
    return [label(lab) for lab in out]


def calibration_plots(rep: EvaluationReport) -> str:
    """Achieved against target totals with their relative errors, and the synthetic weights' spread."""
    plt = pyplot()
    parts = []
    if rep.calibration is not None and len(rep.calibration):
        c = rep.calibration
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
        ax1.scatter(c["target"], c["achieved"], color=SYNTH, s=18)
        lim = [float(min(c["target"].min(), c["achieved"].min())), float(max(c["target"].max(), c["achieved"].max()))]
        ax1.plot(lim, lim, color="#999", linewidth=1)
        ax1.set_xlabel("target")
        ax1.set_ylabel("achieved")
        if lim[0] > 0 and lim[1] / lim[0] > 100:
            ax1.set_xscale("log")
            ax1.set_yscale("log")
        # a target not reached at all (NaN: a mean over records of weight 0) is the worst, never left out
        worst = c.reindex(c["rel_error"].abs().sort_values(ascending=False, kind="stable", na_position="first").index
                          ).head(MAX_TARGETS)
        shown = worst if len(c) > MAX_TARGETS else c
        # a target of 0 has no relative error (its rel_error is the absolute miss): no bar, said below the chart
        zero = (shown["target"] == 0).to_numpy()
        ax2.barh(range(len(shown)), np.where(zero, 0.0, 100 * shown["rel_error"].to_numpy()), color=SYNTH)
        ax2.set_yticks(range(len(shown)), target_labels(shown.index), fontsize=7)
        ax2.set_xlabel("relative error (%)" + (f", the {MAX_TARGETS} largest" if len(c) > MAX_TARGETS else ""))
        fig.tight_layout()
        parts.append(png(fig, "calibration targets"))
        if zero.any():
            parts.append(f'<p class="note">{int(zero.sum())} target(s) of 0 shown without a bar: their rel_error in '
                         "the table is the absolute miss (a count left in a cell that must be empty), not a share.</p>")
        if len(c) > MAX_TARGETS:
            parts.append(f'<p class="note">{len(c):,} targets; the {MAX_TARGETS} with the largest absolute relative '
                         "error:</p>")
        parts.append(shown.to_html(float_format=lambda v: f"{v:.6g}"))
    if rep.weights_summary is not None:
        w = rep.synthetic_weights
        fig, ax = plt.subplots(figsize=(5, 2.8))
        pos = w[w > 0]
        if pos.size and pos.max() > pos.min():
            ax.hist(pos, bins=np.geomspace(pos.min(), pos.max(), 40), color=SYNTH)
            ax.set_xscale("log")
            ax.set_xlabel("weight (log scale)")
        else:  # one positive value (and zeros): a bar per value (a histogram of 1e300 +- 0.5 has no finite bins)
            values, counts = np.unique(w, return_counts=True)
            ax.bar([f"{v:.6g}" for v in values], counts, color=SYNTH)
            ax.set_xlabel("weight")
        ax.set_ylabel("records")
        fig.tight_layout()
        parts.append(png(fig, "synthetic weights"))
        parts.append(rep.weights_summary.to_frame("value").to_html(float_format=lambda v: f"{v:.6g}"))
    return "\n".join(parts)


def dcr_plot(d_synthetic: np.ndarray, d_holdout: np.ndarray) -> str:
    """Histograms of the distance to the closest training record, synthetic against holdout records,
    with the 5th percentile of the holdout distances marked and the shares of synthetic and of holdout
    records at or below it (:func:`~microplex.evaluation.privacy.close_shares`, the figures of
    ``dcr_close_share``)."""
    from .privacy import close_shares

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 3.2))
    top = float(np.quantile(np.r_[d_synthetic, d_holdout], 0.99)) or 1.0
    bins = np.linspace(0, top, 41)
    cut, close, reference = close_shares(d_synthetic, d_holdout)
    ax.axvspan(0, cut, color="#f3d3d3",
               label=f"at or below the holdout's 5th percentile ({cut:.3g}): {close:.1%} of synthetic, "
                     f"{reference:.1%} of holdout records")
    ax.hist(np.minimum(d_holdout, top), bins=bins, histtype="step", color=HOLD, linewidth=1.5,
            weights=np.full(len(d_holdout), 1 / len(d_holdout)),
            label=f"holdout to training (median {np.median(d_holdout):.3g})")
    ax.hist(np.minimum(d_synthetic, top), bins=bins, histtype="step", color=SYNTH, linewidth=1.5,
            weights=np.full(len(d_synthetic), 1 / len(d_synthetic)),
            label=f"synthetic to training (median {np.median(d_synthetic):.3g})")
    ax.axvline(cut, color=HOLD, linestyle="--", linewidth=1)
    ax.set_xlabel("distance to the closest training record (rank units; the last bin holds the top 1%)")
    ax.set_ylabel("share of records")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig, "distance to the closest training record")


def training_history(model: object) -> pd.DataFrame | None:
    """The model's training history (``history_`` with ``epoch`` and ``train_loss``), else None."""
    history = getattr(model, "history_", None)
    if not isinstance(history, pd.DataFrame) or not len(history) or not {"epoch", "train_loss"} <= set(history):
        return None
    return history


def training_plot(history: pd.DataFrame) -> str:
    """Training and validation loss per epoch, the epoch of the lowest validation loss marked."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.0, 3.0))
    epoch = history["epoch"].to_numpy(float)
    ax.plot(epoch, history["train_loss"].to_numpy(float), color=REAL, marker=".", label="training records")
    val = history["val_loss"].to_numpy(float) if "val_loss" in history else np.full(len(history), np.nan)
    if np.isfinite(val).any():
        ax.plot(epoch, val, color=SYNTH, marker=".", label="validation records")
        best = int(np.nanargmin(val))
        ax.plot([epoch[best]], [val[best]], "o", mfc="none", color="#000", markersize=9,
                label=f"lowest validation loss (epoch {epoch[best]:g})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (negative log-likelihood\nper record, weighted)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig, "training loss per epoch")
