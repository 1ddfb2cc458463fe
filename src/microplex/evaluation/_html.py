"""Renders an :class:`~microplex.evaluation.report.EvaluationReport` as one self-contained HTML file."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._validation import is_numeric
from .._stats import weighted_quantile
from . import _verdict, registry
from .metrics import weighted_corr

if TYPE_CHECKING:  # pragma: no cover
    from .report import EvaluationReport

__all__ = ["render_html", "log_friendly_scale"]

REAL, SYNTH, HOLD = "#1f77b4", "#d62728", "#7f7f7f"
MAX_VARIABLES = 40

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:1.8em}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:12px} .card{border:1px solid #e3e3e3;padding:6px}
img{max-width:100%;height:auto} .note{color:#555;font-size:13px}
.grid>.card{flex:1 1 520px} .wide{overflow-x:auto;max-width:100%}
.prov{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:2px 16px;font-size:13px;
background:#f7f7f7;border:1px solid #e3e3e3;padding:8px 12px;margin:8px 0}
.prov span{color:#555} .light{display:inline-block;min-width:4.2em;padding:1px 6px;border-radius:9px;
text-align:center;font-size:12px;color:#fff} .green{background:#2e7d32} .amber{background:#b26a00} .red{background:#c62828}
.verdict{font-size:15px;padding:8px 12px;border-left:6px solid #999;background:#fafafa}
.verdict.green{border-color:#2e7d32;background:#eef6ee;color:#222} .verdict.amber{border-color:#b26a00;background:#fdf5e6;color:#222}
.verdict.red{border-color:#c62828;background:#fbeaea;color:#222}
details>summary{cursor:pointer;font-weight:600;margin:8px 0}
"""


def _png(fig: object) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


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


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _numeric_plot(name: str, r: np.ndarray, s: np.ndarray, wr: np.ndarray, ws: np.ndarray) -> str:
    plt = _plt()
    kr, ks = ~np.isnan(r), ~np.isnan(s)
    r, wr, s, ws = r[kr], wr[kr], s[ks], ws[ks]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.4, 2.8))
    both = np.r_[r, s]
    lin = log_friendly_scale(r)
    lo, hi = float(np.min(both)), float(np.max(both))
    if lin is not None:
        t = lambda x: np.sign(x) * np.log10(1 + np.abs(x) / lin)  # noqa: E731
        inv = lambda y: np.sign(y) * lin * (10 ** np.abs(y) - 1)  # noqa: E731
        bins = inv(np.linspace(t(lo), t(hi), 41))
    else:
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 41)
    ax1.hist(r, bins=bins, weights=wr / wr.sum(), histtype="step", color=REAL, label="real", linewidth=1.5)
    ax1.hist(s, bins=bins, weights=ws / ws.sum(), histtype="step", color=SYNTH, label="synthetic", linewidth=1.5)
    ax1.set_ylabel("weight share")
    for x, w, color, label in ((r, wr, REAL, "real"), (s, ws, SYNTH, "synthetic")):
        o = np.argsort(x, kind="stable")
        ax2.step(x[o], np.cumsum(w[o]) / w.sum(), where="post", color=color, label=label)
    ax2.set_ylabel("ECDF")
    for ax in (ax1, ax2):
        if lin is not None:
            ax.set_xscale("symlog", linthresh=lin)
        ax.set_xlabel(name + (" (symlog)" if lin is not None else ""))
    ax2.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _categorical_plot(name: str, r: pd.Series, s: pd.Series, wr: np.ndarray, ws: np.ndarray) -> str:
    plt = _plt()
    pr = pd.Series(wr).groupby(r.astype(object).fillna("<missing>").to_numpy()).sum() / wr.sum()
    ps = pd.Series(ws).groupby(s.astype(object).fillna("<missing>").to_numpy()).sum() / ws.sum()
    shares = pd.concat({"real": pr, "synthetic": ps}, axis=1).fillna(0.0)
    shares = shares.sort_values("real", ascending=False).head(30)
    fig, ax = plt.subplots(figsize=(8.4, 2.8))
    x = np.arange(len(shares))
    ax.bar(x - 0.2, shares["real"], width=0.4, color=REAL, label="real")
    ax.bar(x + 0.2, shares["synthetic"], width=0.4, color=SYNTH, label="synthetic")
    ax.set_xticks(x, [str(i)[:18] for i in shares.index], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("weight share")
    ax.set_title(name, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _heatmaps(rep: EvaluationReport) -> str:
    plt = _plt()
    cols = [c for c in rep.real_df.columns if is_numeric(rep.real_df[c])][:MAX_VARIABLES]
    if len(cols) < 2:
        return '<p class="note">Fewer than two numeric columns: no correlation matrix.</p>'
    cr = weighted_corr(rep.real_df[cols], rep.real_weights)
    cs = weighted_corr(rep.synthetic_df[cols], rep.synthetic_weights)
    size = min(4.2, 1.4 + 0.3 * len(cols))
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 1.2, size))
    for ax, mat, title in zip(axes, (cr, cs, cs - cr), ("real", "synthetic", "synthetic - real")):
        im = ax.imshow(mat.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
        ax.set_yticks(range(len(cols)), cols, fontsize=7)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.8)
    return _png(fig)


def _overview_plot(rep: EvaluationReport) -> str:
    plt = _plt()
    s = rep.scores[(rep.scores["subgroup"] == "all")]
    dist = pd.concat(
        [
            s[s["metric"] == "ks"].set_index("variable")["value"],
            1 - s[s["metric"] == "tv_complement"].set_index("variable")["value"],
        ]
    )
    if dist.empty:
        return ""
    fig, ax = plt.subplots(figsize=(8.4, 0.6 + 0.28 * len(dist)))
    ax.barh(range(len(dist)), dist.to_numpy(), color=SYNTH)
    ax.set_yticks(range(len(dist)), dist.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("KS statistic (numeric) / total variation distance (categorical); 0 is perfect")
    ax.set_xlim(0, max(0.05, float(dist.max()) * 1.1))
    fig.tight_layout()
    return _png(fig)


def _calibration_plots(rep: EvaluationReport) -> str:
    plt = _plt()
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
        ax2.barh(range(len(c)), 100 * c["rel_error"].to_numpy(), color=SYNTH)
        ax2.set_yticks(range(len(c)), c.index, fontsize=7)
        ax2.set_xlabel("relative error (%)")
        fig.tight_layout()
        parts.append(_png(fig))
        parts.append(c.to_html(float_format=lambda v: f"{v:.6g}"))
    if rep.weights_summary is not None:
        w = rep.synthetic_weights
        fig, ax = plt.subplots(figsize=(5, 2.8))
        pos = w[w > 0]
        if pos.size and pos.max() > pos.min():
            ax.hist(pos, bins=np.geomspace(pos.min(), pos.max(), 40), color=SYNTH)
            ax.set_xscale("log")
        else:
            ax.hist(w, bins=10, color=SYNTH)
        ax.set_xlabel("weight (log scale)")
        ax.set_ylabel("records")
        fig.tight_layout()
        parts.append(_png(fig))
        parts.append(rep.weights_summary.to_frame("value").to_html(float_format=lambda v: f"{v:.6g}"))
    return "\n".join(parts)


def _privacy_plot(rep: EvaluationReport) -> str:
    from .privacy import dcr

    plt = _plt()
    d_s = dcr(rep.synthetic_df, rep.real_df)
    d_h = dcr(rep.holdout_df, rep.real_df)
    fig, ax = plt.subplots(figsize=(6, 2.8))
    top = float(np.quantile(np.r_[d_s, d_h], 0.99)) or 1.0
    bins = np.linspace(0, top, 40)
    ax.hist(d_h, bins=bins, histtype="step", color=HOLD, density=True, label="holdout to training")
    ax.hist(d_s, bins=bins, histtype="step", color=SYNTH, density=True, label="synthetic to training")
    ax.set_xlabel("distance to closest training record")
    ax.legend(fontsize=8)
    fig.tight_layout()
    table = pd.Series(rep.privacy).to_frame("value").to_html(float_format=lambda v: f"{v:.4g}")
    note = (
        '<p class="note">dcr_ratio = median synthetic distance / median holdout distance. '
        "Read: about 1 or more means synthetic records are as far from the training records as fresh data; "
        "below 1 they sit closer (possible memorisation).</p>"
    )
    return _png(fig) + note + table


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    if isinstance(value, tuple | list):
        return ", ".join(_fmt(v) for v in value) or "none"
    return str(value)


def _provenance(rep: EvaluationReport, model: object, extra: Mapping[str, object] | None) -> str:
    items = {**rep.provenance, **_verdict.provenance(model), **dict(extra or {})}
    if "pmse" in set(rep.scores["metric"]):
        items["pMSE rows"] = _verdict.pmse_rows(len(rep.real_df), len(rep.synthetic_df))
    cells = "".join(f"<div><span>{html.escape(str(k))}:</span> {html.escape(_fmt(v))}</div>"
                    for k, v in items.items() if v is not None)
    return f'<div class="prov" id="provenance">{cells}</div>'


def _light(verdict: str) -> str:
    return f'<span class="light {verdict}">{verdict}</span>'


def _given(rep: EvaluationReport, model: object) -> list[str]:
    """The columns the synthetic records were drawn for: ``rep.conditions`` and the model's conditions."""
    names = list(rep.conditions) + list(getattr(model, "condition_vars", None) or [])
    return [c for c in rep.real_df.columns if c in names]


def _verdict_section(rep: EvaluationReport, given: list[str]) -> tuple[str, pd.DataFrame | None]:
    """The overall summary at the top, and the verdict table (None without a holdout)."""
    if rep.floor is None:
        return ('<p class="verdict" id="verdict">No holdout was given, so there is no real-vs-real floor to '
                "judge the scores against: pass <code>holdout_df</code> (real records not used for training) to "
                "get a verdict per metric.</p>", None)
    table = _verdict.verdict_table(rep.scores, rep.floor, given)
    counts = table["verdict"].value_counts()
    worst = next((v for v in reversed(_verdict.LIGHTS) if counts.get(v, 0)), "green")
    text = {"green": "every judged score is within the real-vs-real floor's range",
            "amber": "some scores sit above the real-vs-real floor's range",
            "red": "some scores are far above the real-vs-real floor"}[worst]
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in _verdict.LIGHTS)
    bad = table[table["verdict"] != "green"].assign(
        excess=lambda t: t["value"] - t["floor"]).sort_values("excess", ascending=False).head(5)
    listing = "; ".join(f"{html.escape(str(r.metric))} of {html.escape(str(r.variable))} "
                        f"{r.value:.4g} (floor {r.floor:.4g})" for r in bad.itertuples())
    return (f'<p class="verdict {worst}" id="verdict"><b>Verdict: {text}</b> ({tally}, over {len(table)} scores '
            f"of the targets and the whole file).{' Furthest above: ' + listing + '.' if listing else ''}</p>"
            '<p class="note">Each score is read against the floor: the same metric for the holdout records '
            "against the real records, i.e. what sampling alone gives. Green: within max(1.5 x floor, floor + "
            "0.01); amber: within max(3 x floor, floor + 0.03); red: beyond. Conditions are not judged.</p>", table)


def _per_variable(rep: EvaluationReport, columns: list[str], verdicts: pd.DataFrame | None) -> str:
    summary = rep.summary()
    keep = [e.name for e in registry.METRICS if e.kind == "column" and e.name in summary.columns]
    rows = [c for c in columns if c in summary.index]
    if not keep or not rows:
        return ""
    per_var = summary.loc[rows, keep]
    if verdicts is None or not len(verdicts):
        table = per_var.rename_axis(index="variable", columns=None).reset_index()
        return f'<div class="wide">{table.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")}</div>'
    lights = verdicts[verdicts["subgroup"] == "all"].set_index(["variable", "metric"])
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keep)
    body = []
    for var in rows:
        cells = []
        for k in keep:
            v = per_var.at[var, k]
            if pd.isna(v):
                cells.append("<td></td>")
                continue
            key = (var, k)
            mark = ""
            if key in lights.index:
                hit = lights.loc[key]
                mark = f" {_light(hit['verdict'])}<br><span class=\"note\">floor {hit['floor']:.4f}</span>"
            cells.append(f"<td>{v:.4f}{mark}</td>")
        body.append(f"<tr><th>{html.escape(str(var))}</th>{''.join(cells)}</tr>")
    return (f'<div class="wide"><table class="dataframe"><thead><tr><th>variable</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def render_html(rep: EvaluationReport, *, title: str = "microplex evaluation report", model: object = None,
                provenance: Mapping[str, object] | None = None) -> str:
    """Returns the report as an HTML document with every plot embedded (no scripts, no external files).

    The page opens with the provenance header (``rep.provenance``, the settings of ``model`` when
    given, and any ``provenance`` lines) and, when a holdout was given, the verdict of every score
    of the targets against the real-vs-real floor (:mod:`._verdict`).
    """

    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", _provenance(rep, model, provenance)]
    body.append(
        f'<p class="note">{len(rep.real_df):,} real and {len(rep.synthetic_df):,} synthetic records; '
        f"{rep.real_df.shape[1]} variables; conditions: {esc(', '.join(rep.conditions) or 'none')}.</p>"
    )
    given = _given(rep, model)
    verdict_html, verdicts = _verdict_section(rep, given)
    body.append(verdict_html)
    targets = [c for c in rep.real_df.columns if c not in given]
    body.append('<h2 id="targets">Targets</h2>')
    body.append('<p class="note">The variables the synthetic file was made to reproduce.</p>')
    body.append(_per_variable(rep, targets, verdicts))
    if given:
        body.append('<h2 id="conditions">Conditions (given)</h2>')
        body.append('<p class="note">The synthetic records were drawn for these values (given, or resampled from '
                    "the training data): their scores show how the condition values were supplied, not the model's "
                    "fidelity, and are not judged.</p>")
        body.append(_per_variable(rep, given, None))
    body.append('<h2 id="whole-file">Whole file</h2>')
    overall = rep.scores[(rep.scores["variable"] == "all") & (rep.scores["subgroup"] == "all")].copy()
    overall["better"] = overall["metric"].map(registry.metric_direction()).fillna("")
    if verdicts is not None:
        judged = verdicts[verdicts["variable"] == "all"].set_index("metric")
        overall["floor"] = overall["metric"].map(judged["floor"])
        overall["verdict"] = overall["metric"].map(judged["verdict"]).map(_light, na_action="ignore")
        cols = ["metric", "value", "floor", "verdict", "better"]
    else:
        cols = ["metric", "value", "better"]
    body.append(overall[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", escape=False,
                                      formatters={"metric": esc}))
    body.append(_overview_plot(rep))
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks_mean"]
    if len(sub):
        body.append("<h2>Subgroup fidelity</h2>")
        body.append('<p class="note">Weighted mean over the condition cells of the within-cell KS (numeric) '
                    "or total variation distance (categorical).</p>")
        body.append(sub.pivot_table(index="variable", columns="subgroup", values="value", sort=False)
                    .to_html(float_format=lambda v: f"{v:.4f}"))
    body.append("<h2>Variables</h2>")
    body.append('<p class="note">Weighted histograms and ECDFs; skewed non-negative variables use a symlog '
                "axis so that zeros and the upper tail are both visible.</p><div class=\"grid\">")
    for c in list(rep.real_df.columns)[:MAX_VARIABLES]:
        r, s = rep.real_df[c], rep.synthetic_df[c]
        if is_numeric(r):
            img = _numeric_plot(c, r.to_numpy(dtype=float, na_value=np.nan), s.to_numpy(dtype=float, na_value=np.nan),
                                rep.real_weights, rep.synthetic_weights)
            pm = rep.point_masses.get(c)
            extra = pm.to_html(index=False, float_format=lambda v: f"{v:.4g}") if pm is not None and len(pm) <= 12 else ""
            q = np.array([0.01, 0.5, 0.99, 0.999])
            qt = pd.DataFrame({"real": weighted_quantile(r, q, rep.real_weights),
                               "synthetic": weighted_quantile(s, q, rep.synthetic_weights)},
                              index=[f"p{v * 100:g}" for v in q]).T.to_html(float_format=lambda v: f"{v:.5g}")
        else:
            img, extra, qt = _categorical_plot(c, r, s, rep.real_weights, rep.synthetic_weights), "", ""
        body.append(f'<div class="card"><h3>{esc(str(c))}</h3>{img}{qt}{extra}</div>')
    body.append("</div><h2>Correlations</h2>")
    body.append(_heatmaps(rep))
    if rep.calibration is not None or rep.weights_summary is not None:
        body.append("<h2>Calibration</h2>")
        body.append(_calibration_plots(rep))
    if rep.privacy is not None and rep.holdout_df is not None:
        body.append("<h2>Privacy</h2>")
        body.append(_privacy_plot(rep))
    body.append(f'<details id="all-scores"><summary>All scores ({len(rep.scores):,} rows)</summary>')
    body.append(rep.scores.to_html(index=False, float_format=lambda v: f"{v:.5g}"))
    body.append("</details>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
