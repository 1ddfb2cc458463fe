"""Renders an :class:`~microplex.evaluation.report.EvaluationReport` as one self-contained HTML file."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._validation import is_numeric
from .metrics import _cut_label, _cut_labels
from .._stats import weighted_quantile
from . import _plots_file as pf, _verdict, registry
from ._plots import GRID, categorical_plot, is_binary, log_friendly_scale, numeric_plot, pair_plots

if TYPE_CHECKING:  # pragma: no cover
    from .report import EvaluationReport

__all__ = ["render_html", "log_friendly_scale"]

MAX_VARIABLES = pf.MAX_VARIABLES

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
.grid>.card.big{flex:1 1 1000px} .grid>.card.small{flex:0 1 auto}
.toc{font-size:14px;margin:8px 0;padding:6px 0;border-bottom:1px solid #eee} .toc a{color:#1f5fa8;text-decoration:none}
h3 .note{font-weight:normal}
"""


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{value:.6g}"
    if isinstance(value, tuple | list):
        return ", ".join(_fmt(v) for v in value) or "none"
    return str(value)


def _provenance(rep: EvaluationReport, model: object, extra: Mapping[str, object] | None) -> str:
    items = {**rep.provenance, **_verdict.provenance(model), **dict(extra or {})}
    if "pmse" in set(rep.scores["metric"]):
        items["pMSE rows"] = _verdict.pmse_rows(rep.real_weights, rep.synthetic_weights)
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
    table = _verdict.report_verdicts(rep, given)
    counts = table["verdict"].value_counts()
    worst = next((v for v in reversed(_verdict.LIGHTS) if counts.get(v, 0)), "green")
    text = {"green": "every judged score is within its floor's range",
            "amber": "some scores sit above their floor's range",
            "red": "some scores are far above their floor"}[worst]
    notice = _disclosure_notice(rep)
    if notice:  # whatever the scores: a release that copies its training records is not a green release
        worst, text = "red", "the release has privacy problems (below), whatever its scores"
    tally = ", ".join(f"{counts.get(v, 0)} {v}" for v in _verdict.LIGHTS)
    scope = "the targets, the whole file and the attacks" if rep.attacks else "the targets and the whole file"
    bad = _verdict.worst_first(table[table["verdict"] != "green"]).head(5)
    listing = "; ".join(f"{html.escape(str(r.metric))} of {html.escape(str(r.variable))} "
                        f"{r.value:.4g} (floor {r.floor:.4g})" for r in bad.itertuples())
    attacks = (f" The attacks are read against fresh data: the membership AUC against 0.5 (an attack with no "
               f"advantage; green up to {_verdict.AUC_AMBER:g}, amber up to {_verdict.AUC_RED:g}), each synthetic "
               f"disclosure figure against the holdout's (green up to {_verdict.DISCLOSURE_AMBER:g} above it, amber up "
               f"to {_verdict.DISCLOSURE_RED:g}; see Privacy)." if rep.attacks else "")
    return (f'<p class="verdict {worst}" id="verdict"><b>Verdict: {text}</b> ({tally}, over {len(table)} scores '
            f"of {scope}).{' Furthest beyond their floor: ' + listing + '.' if listing else ''}</p>{notice}"
            '<p class="note">Each score is read against the floor: the same metric for the holdout records '
            "against the real records, i.e. what sampling alone gives. Green: within max(1.5 x floor, floor + "
            f"0.01); amber: within max(3 x floor, floor + 0.03); red: beyond. Conditions are not judged.{attacks}</p>",
            table)


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
    of the targets against the real-vs-real floor (:mod:`._verdict`); the disclosure risks of
    :func:`~microplex.evaluation.privacy.privacy_problems` make it red and are listed under it.
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
    body.append(f'<div class="grid"><div class="card">{_whole_file(rep, verdicts)}</div>'
                f'<div class="card">{pf.overview_plot(rep)}</div></div>')
    body.append(_subgroups(rep))
    body.append(_variables(rep, targets))
    body.append('<h2 id="correlations">Correlations</h2>')
    body.append(pf.heatmaps(rep))
    pairs = pair_plots(rep, targets)
    if pairs:
        body.append('<h3 id="pairs">Most correlated pairs of targets</h3>')
        body.append('<p class="note">The pairs of numeric targets with the largest weighted correlation in the real '
                    f"records: the weighted share of records in each cell of a {GRID} x {GRID} grid, real and "
                    "synthetic on one (logarithmic) colour scale; empty cells are white.</p>")
        body.append('<div class="grid">' + "".join(f'<div class="card small">{p}</div>' for p in pairs) + "</div>")
    if rep.fusion_bounds is not None:
        body.append(_fusion_bounds(rep.fusion_bounds))
    if rep.calibration is not None or rep.weights_summary is not None:
        body.append('<h2 id="calibration">Calibration</h2>')
        body.append(pf.calibration_plots(rep))
    if rep.heldout is not None:
        from ._plots_area import heldout_section

        body.append(heldout_section(rep))
    if rep.privacy is not None and rep.holdout_df is not None:  # with the attacks' figures, when they were run
        body.append('<h2 id="privacy">Privacy</h2>')
        body.append(_privacy(rep, _verdict.synthetic_sample(provenance)))
    history = pf.training_history(model)
    if history is not None:
        body.append('<h2 id="training">Training</h2>')
        body.append(f'<p class="note">The loss of {esc(type(model).__name__)} per epoch ({len(history)} epochs run): '
                    "the weighted mean negative log-likelihood per record (lower is better) on the training records "
                    "and, when part of the records was held back for validation, on those records; the circle "
                    "marks the epoch of the lowest validation loss.</p>")
        body.append(pf.training_plot(history))
    body.append(f'<details id="all-scores"><summary>All scores ({len(rep.scores):,} rows)</summary>')
    body.append(f'<div class="wide">{rep.scores.to_html(index=False, float_format=lambda v: f"{v:.5g}")}</div>')
    body.append("</details>")
    body.insert(1, _contents(body))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


#: Most rows of the fusion bounds the report shows (the widest; the pipeline's fusion_bounds.csv has them all).
MAX_BOUNDS = 50


def _fusion_bounds(bounds: pd.DataFrame) -> str:
    """The section of a fusion's correlation bounds (:attr:`~microplex.fusion.FusionResult.bounds`): each pair
    never observed together, widest range first, at most :data:`MAX_BOUNDS` rows."""
    parts = ['<h2 id="fusion-bounds">Fusion bounds</h2>',
             '<p class="note">The training records were fused from several sources. For each pair of numeric variables '
             "that no source observes together, the range of correlations compatible with the data given the shared "
             "variables (<i>lower</i>, <i>upper</i>), the value under conditional independence (<i>cia</i>), which the "
             "fusion assumes, and the correlation in the fused records (<i>fused</i>): a wide range means the "
             "assumption, not the data, decides the fused value.</p>"]
    if not len(bounds):
        parts.append('<p class="note">No pair of numeric variables is unobserved together: nothing to bound.</p>')
        return "\n".join(parts)
    width = (bounds["upper"] - bounds["lower"]).rename("width")
    shown = bounds.assign(width=width).sort_values("width", ascending=False, kind="stable")
    columns = [c for c in ("y", "z", "y_source", "z_source", "shared", "lower", "cia", "upper", "width", "fused",
                           "auxiliary") if c in shown.columns and (c != "auxiliary" or shown[c].notna().any())]
    if len(shown) > MAX_BOUNDS:
        parts.append(f'<p class="note">The {MAX_BOUNDS} widest of {len(shown):,} pairs.</p>')
    table = shown.head(MAX_BOUNDS)[columns].to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="",
                                                    formatters={"shared": _fmt})
    parts.append(f'<div class="wide">{table}</div>')
    return "\n".join(parts)


def _contents(body: list[str]) -> str:
    """Links to the page's sections (the ``<h2 id=...>`` already in ``body``)."""
    import re

    found = re.findall(r'<h2 id="([a-z-]+)">([^<]+)</h2>', "\n".join(body))
    return '<nav class="toc">' + " · ".join(f'<a href="#{i}">{t}</a>' for i, t in found) + "</nav>"


def _whole_file(rep: EvaluationReport, verdicts: pd.DataFrame | None) -> str:
    """The table of the scores of the whole file, with floors and lights when there is a holdout."""
    overall = rep.scores[(rep.scores["variable"] == "all") & (rep.scores["subgroup"] == "all")].copy()
    overall["better"] = overall["metric"].map(registry.metric_direction()).fillna("")
    if verdicts is not None:
        judged = verdicts[verdicts["variable"] == "all"].set_index("metric")
        overall["floor"] = overall["metric"].map(judged["floor"])
        overall["verdict"] = overall["metric"].map(judged["verdict"]).map(_light, na_action="ignore")
        cols = ["metric", "value", "floor", "verdict", "better"]
    else:
        cols = ["metric", "value", "better"]
    return overall[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", escape=False,
                                 formatters={"metric": html.escape})


def _subgroups(rep: EvaluationReport) -> str:
    """The subgroup section: the mean within-cell distances, and a heat map of the cells per condition."""
    sub = rep.scores[rep.scores["metric"] == "subgroup_ks_mean"]
    if not len(sub):
        return ""
    parts = ['<h2 id="subgroups">Subgroup fidelity</h2>',
             '<p class="note">Within each cell of a condition (numeric conditions binned at 5 weighted quantiles '
             "of the real records), the KS statistic (numeric) or total variation distance (categorical) of each "
             "variable; the table gives their mean weighted by the cells' real shares. Cells with fewer than 20 "
             "records on a side are left out.</p>",
             sub.pivot_table(index="variable", columns="subgroup", values="value", sort=False)
             .to_html(float_format=lambda v: f"{v:.4f}")]
    plots = [pf.subgroup_plot(by, table) for by, table in pf.subgroup_cells(rep.scores).items()]
    parts.append('<div class="grid">' + "".join(f'<div class="card">{p}</div>' for p in plots) + "</div>")
    return "\n".join(parts)


def _variables(rep: EvaluationReport, targets: list[str]) -> str:
    """One card per variable: numeric ones with histogram, ECDF, QQ plot and quantiles; the others with bars."""
    esc = html.escape
    parts = ['<h2 id="variables">Variables</h2>',
             '<p class="note">Numeric variables: weighted histogram, cumulative distribution and QQ plot (the '
             "weighted quantiles of the synthetic records against those of the real records, every half percent "
             "from 0.5% to 99.5%: on the grey line where they agree); skewed non-negative variables use a symlog "
             "axis so that zeros and the upper tail are both visible. Categorical and binary variables: the "
             "weighted share of each value. Targets first, then the conditions.</p>"]
    order = [c for c in rep.real_df.columns if c in targets] + [c for c in rep.real_df.columns if c not in targets]
    parts.append(pf.left_out(len(order), "variables", "every variable is in the score tables") + '<div class="grid">')
    for c in order[:MAX_VARIABLES]:
        r, s = rep.real_df[c], rep.synthetic_df[c]
        if is_numeric(r) and not is_binary(r):
            img = numeric_plot(c, r.to_numpy(dtype=float, na_value=np.nan), s.to_numpy(dtype=float, na_value=np.nan),
                               rep.real_weights, rep.synthetic_weights)
            pm = rep.point_masses.get(c)
            extra = ""
            if pm is not None and len(pm) <= 12:  # the values as the cut labels: in full where integers, none alike
                extra = pm.assign(value=_cut_labels(pm["value"])).to_html(index=False,
                                                                          float_format=lambda v: f"{v:.4g}")
            q = np.array([0.01, 0.5, 0.99, 0.999])
            qt = pd.DataFrame({"real": weighted_quantile(r, q, rep.real_weights),
                               "synthetic": _quantiles_or_nan(s, q, rep.synthetic_weights)},
                              index=[f"p{v * 100:g}" for v in q]).T.to_html(float_format=_quantile_label)
        else:
            img, extra, qt = categorical_plot(c, r, s, rep.real_weights, rep.synthetic_weights), "", ""
        role = "target" if c in targets else "condition"
        size = "big" if qt else "small"
        parts.append(f'<div class="card {size}"><h3>{esc(str(c))} <span class="note">({role})</span></h3>{img}'
                     f'<div class="wide">{qt}{extra}</div></div>')
    return "\n".join(parts) + "</div>"


def _quantiles_or_nan(values: pd.Series, q: np.ndarray, weights: np.ndarray) -> np.ndarray:
    x = values.to_numpy(dtype=float, na_value=np.nan)
    keep = ~np.isnan(x)
    return weighted_quantile(x[keep], q, weights[keep]) if keep.any() and weights[keep].sum() > 0 else np.full(len(q), np.nan)


def _privacy(rep: EvaluationReport, sample: str | None = None) -> str:
    """The privacy section: the attacks' figures (when run), then the labelled histogram of distances to
    the closest record and the figures; ``sample`` (the synthetic records scored were a sample, as
    :func:`._verdict.synthetic_sample` reads it) opens it with a notice that every figure is the sample's."""
    from .privacy import dcr

    if rep.dcr_distances is not None:  # the distances of rep.privacy (evaluate keeps them): the same subsample
        d_s, d_h = rep.dcr_distances["synthetic"], rep.dcr_distances["holdout"]
    else:  # a report built without them: recomputed by its seed (None: a fresh subsample above 5,000 records)
        seed = rep.provenance.get("seed", 0)
        seed = seed if isinstance(seed, int) or seed is None else 0
        d_s = dcr(rep.synthetic_df, rep.real_df, seed=seed)
        d_h = dcr(rep.holdout_df, rep.real_df, seed=seed)
    table = pd.Series(rep.privacy).to_frame("value").to_html(float_format=lambda v: f"{v:.4g}")
    note = (
        '<p class="note">For each synthetic record (red) and each holdout record (grey: real records not used '
        "in training, i.e. what fresh data gives) the distance to its closest training record "
        f"({pf.DCR_UNITS}; at most 5,000 records a side). The shaded band (dashed line) holds distances at or "
        "below the 5th percentile of the holdout distances: records there are <i>as close to a training record as "
        "the closest 5% of fresh records</i>. Compare the share of synthetic records there (dcr_close_share) with "
        "the holdout's own share (dcr_close_share_holdout, the reference: 5% of the holdout records, more when "
        "their distances tie); about the same when the synthetic records behave like fresh data, many more, or a "
        "synthetic curve shifted left, hint at memorised records (a copy of the training records reads 100%). "
        "When many holdout records have an exact twin among the training records (discrete columns), that "
        "percentile is 0 and both shares are those of records with an exact twin, as the exact-copy rates below. "
        "dcr_ratio = median synthetic distance / median holdout distance: about 1 or more is as far as fresh "
        "data.</p>"
    )
    return _not_fresh(rep) + _sampled(sample) + _attacks(rep) + pf.dcr_plot(d_s, d_h) + note + table


def _sampled(sample: str | None) -> str:
    """A notice, above the privacy figures, that they were computed on a sample of the synthetic file (or "")."""
    if not sample:
        return ""
    return ('<p class="verdict amber" id="privacy-sample"><b>The privacy figures are those of a sample of the '
            f"synthetic file</b> ({html.escape(sample)}). The exact-copy rates and the DCR figures estimate the whole "
            "file's; the membership AUC sees only the training records whose copies (or near copies) were drawn, so "
            "it understates the risk of a file that copies its training records (4,000 copied records read 0.96 "
            "whole and 0.61 from a sample of 1,000). Score the whole file for the privacy figures.</p>")


def _quantile_label(value: float) -> str:
    """A quantile of the Variables tables at 5 significant digits, every digit of its integer part kept (a top code of
    100,000 read ``1e+05``, like 99,999.5).

    >>> _quantile_label(100000.0), _quantile_label(25564.67), _quantile_label(0.0123456), _quantile_label(float("nan"))
    ('100000', '25564.7', '0.012346', 'nan')
    """
    return _cut_label(value, 5) if np.isfinite(value) else str(value)


def _disclosure_notice(rep: EvaluationReport) -> str:
    """A red notice of the disclosure risks :func:`~microplex.evaluation.privacy.privacy_problems` finds in
    ``rep.privacy`` (those ``evaluate`` warned of), or "" when there is none."""
    problems = _verdict.privacy_problems_of(rep)
    if not problems:
        return ""
    return ('<p class="verdict red" id="privacy-problems"><b>Possible disclosure risk.</b> '
            + "; ".join(html.escape(p) for p in problems)
            + '. See <a href="#privacy">Privacy</a>.</p>')


def _not_fresh(rep: EvaluationReport) -> str:
    """A notice, above the privacy figures, where the holdout holds training records (the rule of
    :func:`~microplex.evaluation.privacy.privacy_summary`'s warning), which makes them meaningless."""
    from .privacy import holdout_overlap

    why = holdout_overlap(rep.real_df, rep.holdout_df)
    return f'<p class="verdict red"><b>The holdout is not fresh data.</b> {html.escape(why)}</p>' if why else ""


def _attacks(rep: EvaluationReport) -> str:
    """The attack figures of the privacy section, each beside what fresh data gives, with its light."""
    if not rep.attacks:
        return ""
    esc = html.escape
    names = {"membership_auc": "membership AUC", "disco_synthetic": "DiSCO", "attribution_synthetic": "attribution"}
    rows = "".join(
        f"<tr><td>{names[r.metric]}</td><td>{esc(str(r.variable)) if r.variable != 'all' else ''}</td>"
        f"<td>{r.value:.4g}</td><td>{r.floor:.4g}</td><td>{_light(r.verdict)}</td></tr>"
        for r in _verdict.attack_table(rep.attacks).itertuples())
    quasi = rep.attacks.get("quasi_identifiers") or []
    rows_text = _verdict.membership_rows_text(rep.attacks)
    scored = f"; scored on {esc(rows_text)}" if rows_text else ""
    disclosure = (
        f" Attribute disclosure of each sensitive column from the quasi-identifiers ({esc(', '.join(quasi))}; numeric "
        "ones cut into 5 groups at the training quantiles): DiSCO is the share of training records whose "
        "quasi-identifiers occur in the synthetic file with a single sensitive value, the right one; attribution "
        "the share whose sensitive value is the synthetic file's most frequent one for them. Beside each, the same "
        "with the holdout released instead, which any file from the population gives: green up to "
        f"{_verdict.DISCLOSURE_AMBER:g} above it, amber up to {_verdict.DISCLOSURE_RED:g}, red beyond (shares of "
        "the records, so an excess counts in records whatever the baseline)."
        if rep.attacks.get("attribute_disclosure") else " No attribute disclosure was measured (no quasi-identifiers).")
    note = (
        '<p class="note">Attacks on the synthetic file, each set beside what fresh data gives. Membership '
        "inference: the AUC of telling training records from holdout records by their distance to the closest "
        f"synthetic record; 0.5 is an attack with no advantage (green up to {_verdict.AUC_AMBER:g}, amber up to "
        f"{_verdict.AUC_RED:g}, red beyond){scored}.{disclosure}</p>"
    )
    return ('<h3 id="attacks">Attacks</h3><table class="dataframe"><thead><tr><th>attack</th><th>sensitive column</th>'
            "<th>synthetic</th><th>fresh data</th><th>verdict</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{note}" '<h3 id="dcr">Distance to the closest record</h3>')
