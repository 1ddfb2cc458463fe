"""Plots of the evaluation report for single variables and pairs of variables (PNG, embedded).

Every plot compares the weighted real records (blue) with the weighted synthetic records (red):

* a numeric variable: weighted histogram, ECDF and a QQ plot of weighted quantiles
  (:func:`microplex._stats.weighted_quantile`), on a symlog axis when the data are skewed and
  non-negative (:func:`log_friendly_scale`);
* a categorical or binary variable (at most two distinct values): bars of the weighted shares;
* a pair of numeric targets: weighted 2-D histograms of the real and the synthetic records side by
  side, on one colour scale (:func:`pair_plots` picks the most correlated pairs).

Labels come from user data: :func:`label` keeps matplotlib from reading them as mathtext.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd

from .._stats import ecdf, weighted_quantile
from ._validation import is_numeric
from .metrics import weighted_corr

__all__ = ["REAL", "SYNTH", "HOLD", "png", "pyplot", "label", "log_friendly_scale", "is_binary",
           "qq_points", "ecdf_grid", "numeric_plot", "categorical_plot", "top_pairs", "pair_plots", "QQ_PROBABILITIES"]

REAL, SYNTH, HOLD = "#1f77b4", "#d62728", "#7f7f7f"
#: Cells per axis of the pair plots' 2-D histograms.
GRID = 30
#: Probabilities of the QQ plot's points: every half percent from 0.5% to 99.5%.
QQ_PROBABILITIES = np.linspace(0.005, 0.995, 199)


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (unless one was chosen already)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def png(fig: object, alt: str = "plot") -> str:
    """Closes ``fig`` and returns it as an ``<img>`` tag with the PNG embedded (``alt`` is escaped)."""
    import html

    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def label(text: object, limit: int | None = None) -> str:
    """A user string as matplotlib text: ``$`` escaped (no mathtext), cut to ``limit`` characters.

    Examples
    --------
    >>> label("income $ (USD)")
    'income \\\\$ (USD)'
    """
    s = str(text)
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def log_friendly_scale(values: np.ndarray) -> float | None:
    """Returns a symlog linear threshold for skewed non-negative data (e.g. incomes with zeros), else None.

    Non-negative data whose positive values span 1.5 decades or more (max / p5 >= 30) get a
    symlog axis, linear below the 5th percentile of the positive values, when they hold zeros
    (>= 1% of records) or a long right tail (max / median > 20).

    Examples
    --------
    >>> log_friendly_scale(np.r_[np.zeros(50), np.exp(np.linspace(0, 12, 200))]) is not None
    True
    >>> log_friendly_scale(np.linspace(0, 1, 100)) is None
    True
    """
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0 or x.min() < 0:
        return None
    pos = x[x > 0]
    if pos.size < 10:
        return None
    lo, med = np.quantile(pos, [0.05, 0.5])
    wide = pos.max() / max(lo, 1e-300) >= 30
    if wide and (np.mean(x == 0) >= 0.01 or pos.max() / max(med, 1e-300) > 20):
        return float(lo)
    return None


def is_binary(series: pd.Series) -> bool:
    """Whether a numeric column holds at most two distinct values (it is then drawn as bars).

    Examples
    --------
    >>> is_binary(pd.Series([0, 1, 1, None])), is_binary(pd.Series([0.0, 1.0, 2.0]))
    (True, False)
    """
    return is_numeric(series) and series.dropna().nunique() <= 2


def _bins(lo: float, hi: float, lin: float | None, n: int = 40) -> np.ndarray:
    """``n`` bins over [lo, hi], even on the symlog axis of threshold ``lin`` when given."""
    if lin is None:
        return np.linspace(lo, hi if hi > lo else lo + 1, n + 1)
    t = lambda x: np.sign(x) * np.log10(1 + np.abs(x) / lin)  # noqa: E731
    inv = lambda y: np.sign(y) * lin * (10 ** np.abs(y) - 1)  # noqa: E731
    return inv(np.linspace(t(lo), t(hi if hi > lo else lo + 1), n + 1))


def qq_points(r: np.ndarray, s: np.ndarray, wr: np.ndarray, ws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The QQ plot's points: weighted quantiles of the real and the synthetic values at :data:`QQ_PROBABILITIES`.

    Examples
    --------
    >>> qr, qs = qq_points(np.array([1.0, 2.0]), np.array([1.0, 2.0]), np.array([3.0, 1.0]), np.ones(2))
    >>> float(qr[100]), float(qs[100])
    (1.0, 2.0)
    """
    return weighted_quantile(r, QQ_PROBABILITIES, wr), weighted_quantile(s, QQ_PROBABILITIES, ws)


def ecdf_grid(r: np.ndarray, s: np.ndarray, wr: np.ndarray, ws: np.ndarray, points: int = 1000) -> np.ndarray:
    """Where the ECDF plot evaluates both samples: every distinct value when there are few, else the
    weighted quantiles of both at ``points`` even steps (no jump of either ECDF between two grid
    points exceeds 1 / ``points``, far below a pixel), so a large file draws as fast as a small one.

    Examples
    --------
    >>> ecdf_grid(np.array([3.0, 1.0]), np.array([2.0]), np.ones(2), np.ones(1)).tolist()
    [1.0, 2.0, 3.0]
    """
    both = np.unique(np.r_[r, s])
    if both.size <= 2 * points:
        return both
    p = np.linspace(0.0, 1.0, points + 1)
    parts = [weighted_quantile(x, p, w) for x, w in ((r, wr), (s, ws)) if len(x)]
    return np.unique(np.r_[both[0], both[-1], *parts])


def numeric_plot(name: str, r: np.ndarray, s: np.ndarray, wr: np.ndarray, ws: np.ndarray) -> str:
    """Weighted histogram, ECDF and QQ plot (weighted quantiles at :data:`QQ_PROBABILITIES`)."""
    plt = pyplot()
    kr, ks = ~np.isnan(r), ~np.isnan(s)
    r, wr, s, ws = r[kr], wr[kr], s[ks], ws[ks]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(11.4, 3.0))
    if not len(s) or not ws.sum() > 0:  # every synthetic value missing (scored as missing_share_error)
        s, ws = r[:0], wr[:0]
    both = np.r_[r, s]
    lin = log_friendly_scale(r)
    bins = _bins(float(np.min(both)), float(np.max(both)), lin)
    ax1.hist(r, bins=bins, weights=wr / wr.sum(), histtype="step", color=REAL, label="real", linewidth=1.5)
    if len(s):
        ax1.hist(s, bins=bins, weights=ws / ws.sum(), histtype="step", color=SYNTH, label="synthetic", linewidth=1.5)
    ax1.set_ylabel("weight share")
    ax1.set_title("histogram", fontsize=9)
    grid = ecdf_grid(r, s, wr, ws)
    for x, w, color, tag in ((r, wr, REAL, "real"), (s, ws, SYNTH, "synthetic")):
        if len(x):
            ax2.step(grid, ecdf(x, w, grid), where="post", color=color, label=tag)
    ax2.set_ylabel("ECDF (weight share below)")
    ax2.set_title("cumulative distribution", fontsize=9)
    if len(s):
        qr, qs = qq_points(r, s, wr, ws)
        lo, hi = float(min(qr.min(), qs.min())), float(max(qr.max(), qs.max()))
        ax3.plot([lo, hi], [lo, hi], color="#999", linewidth=1, label="equal")
        ax3.plot(qr, qs, ".", color=SYNTH, markersize=3, label="p0.5 ... p99.5")
        ax3.legend(loc="upper left", fontsize=7)
    ax3.set_ylabel("synthetic quantile")
    ax3.set_title("QQ plot (weighted quantiles)", fontsize=9)
    for ax in (ax1, ax2, ax3):
        if lin is not None:
            ax.set_xscale("symlog", linthresh=lin)
        ax.set_xlabel(label(name, 40) + (" (symlog)" if lin is not None else ""))
    if lin is not None:
        ax3.set_yscale("symlog", linthresh=lin)
    ax3.set_xlabel("real quantile of " + label(name, 30) + (" (symlog)" if lin is not None else ""))
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return png(fig, f"{name}: histogram, ECDF and QQ plot")


def _value_label(v: object) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v)


def categorical_plot(name: str, r: pd.Series, s: pd.Series, wr: np.ndarray, ws: np.ndarray) -> str:
    """Bars of the weighted share of each value (the 30 most common real values), real beside synthetic."""
    plt = pyplot()
    rv = r.astype(object).map(_value_label, na_action="ignore").fillna("<missing>").to_numpy()
    sv = s.astype(object).map(_value_label, na_action="ignore").fillna("<missing>").to_numpy()
    pr = pd.Series(wr).groupby(rv).sum() / wr.sum()
    ps = pd.Series(ws).groupby(sv).sum() / ws.sum()
    shares = pd.concat({"real": pr, "synthetic": ps}, axis=1).fillna(0.0)
    shares = shares.sort_values("real", ascending=False, kind="stable").head(30)
    if is_numeric(r):  # numbers (e.g. a 0/1 column) in their order, missing last
        order = pd.to_numeric(pd.Series(shares.index, index=shares.index), errors="coerce")
        shares = shares.loc[order.sort_values(na_position="last", kind="stable").index]
    fig, ax = plt.subplots(figsize=(max(4.0, min(11.4, 2.0 + 0.45 * len(shares))), 3.0))
    x = np.arange(len(shares))
    ax.bar(x - 0.2, shares["real"], width=0.4, color=REAL, label="real")
    ax.bar(x + 0.2, shares["synthetic"], width=0.4, color=SYNTH, label="synthetic")
    ax.set_xticks(x, [label(i, 18) for i in shares.index], rotation=30 if len(shares) > 4 else 0,
                  ha="right" if len(shares) > 4 else "center", fontsize=8)
    ax.set_ylabel("weight share")
    ax.set_xlabel(label(name, 40))
    ax.set_title("weighted share of each value" + (" (30 most common)" if len(shares) == 30 else ""), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return png(fig, f"{name}: shares of each value")


def top_pairs(df: pd.DataFrame, weights: np.ndarray, columns: list[str], k: int = 3) -> list[tuple[str, str, float]]:
    """The ``k`` pairs of ``columns`` with the largest absolute weighted correlation in ``df``.

    Returns ``(a, b, correlation)`` tuples, strongest first (ties in column order).

    Examples
    --------
    >>> df = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [1.0, 2, 3, 5], "c": [4.0, 1, 3, 2]})
    >>> [(a, b) for a, b, _ in top_pairs(df, np.ones(4), ["a", "b", "c"], k=1)]
    [('a', 'b')]
    """
    if len(columns) < 2:
        return []
    corr = weighted_corr(df[columns], weights)
    found = [(a, b, float(corr.at[a, b])) for i, a in enumerate(columns) for b in columns[i + 1:]]
    found = [p for p in found if np.isfinite(p[2])]
    return sorted(found, key=lambda p: -abs(p[2]))[:k]


def pair_plots(rep: object, columns: list[str], k: int = 3) -> list[str]:
    """Weighted 2-D histograms (real | synthetic, one log colour scale) of the ``k`` most correlated
    pairs among the numeric, non-binary ``columns`` of the report ``rep``."""
    from matplotlib.colors import LogNorm

    plt = pyplot()
    real, synth = rep.real_df, rep.synthetic_df
    cols = [c for c in columns if is_numeric(real[c]) and not is_binary(real[c])]
    out = []
    for a, b, rho in top_pairs(real, rep.real_weights, cols, k):
        cs = weighted_corr(synth[[a, b]], rep.synthetic_weights).at[a, b]
        frames = []
        for df, w in ((real, rep.real_weights), (synth, rep.synthetic_weights)):
            x, y = df[a].to_numpy(float, na_value=np.nan), df[b].to_numpy(float, na_value=np.nan)
            keep = ~(np.isnan(x) | np.isnan(y))
            frames.append((x[keep], y[keep], w[keep]))
        xs, ys = np.r_[frames[0][0], frames[1][0]], np.r_[frames[0][1], frames[1][1]]
        lx, ly = log_friendly_scale(frames[0][0]), log_friendly_scale(frames[0][1])
        bx = _bins(float(xs.min()), float(xs.max()), lx, GRID)
        by = _bins(float(ys.min()), float(ys.max()), ly, GRID)
        grids = []
        for x, y, w in frames:
            h, _, _ = np.histogram2d(x, y, bins=[bx, by], weights=w)
            grids.append(h / max(w.sum(), 1e-300))
        pos = np.concatenate([g[g > 0] for g in grids])
        norm = LogNorm(vmin=float(pos.min()), vmax=float(pos.max())) if pos.size else None
        fig, axes = plt.subplots(1, 2, figsize=(10.0, 3.6), sharex=True, sharey=True)
        for ax, g, tag, r_ in zip(axes, grids, ("real", "synthetic"), (rho, cs)):
            mesh = ax.pcolormesh(bx, by, np.ma.masked_equal(g.T, 0.0), norm=norm, cmap="viridis")
            ax.set_title(f"{tag} (weighted Pearson r = {r_:.3f})", fontsize=9)
            ax.set_xlabel(label(a, 40) + (" (symlog)" if lx is not None else ""))
            if lx is not None:
                ax.set_xscale("symlog", linthresh=lx)
            if ly is not None:
                ax.set_yscale("symlog", linthresh=ly)
        axes[0].set_ylabel(label(b, 40) + (" (symlog)" if ly is not None else ""))
        fig.colorbar(mesh, ax=list(axes), shrink=0.85, label="weight share per cell")
        out.append(png(fig, f"{a} against {b}: real and synthetic"))
    return out
