"""Reports of :func:`~microplex.fusion.fuse`: held-out fit scores and correlation bounds."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._stats import weighted_pearson
from ..synthesis import Synthesizer
from ._source import Source, category_labels, is_categorical
from .diagnostics import correlation_bounds, design_matrix, weighted_ks, weighted_tvd

if TYPE_CHECKING:
    from ._plan import FusionStep

__all__ = ["holdout_scores", "bounds_table", "BOUNDS_COLUMNS"]

#: Column flagging auxiliary records in a donor model trained with auxiliary data.
AUX_FLAG = "_auxiliary"
#: The columns of :attr:`~microplex.fusion.FusionResult.bounds` (:func:`bounds_table`), in order: the pair's names
#: and sources, the shared variables, then the correlations.
BOUNDS_COLUMNS = ("y", "z", "y_source", "z_source", "shared", "lower", "cia", "upper", "fused", "auxiliary")


def holdout_scores(model: Synthesizer, hold: pd.DataFrame, step: FusionStep, w_col: str, seed: int,
                    fill: Mapping[str, Any], categorical: Collection[str] = ()) -> list[dict[str, Any]]:
    """Held-out fit scores of one donor model, one dict per imputed variable; columns named in ``categorical``
    (number codes declared categorical) are scored as categories (TVD and agreement, no correlation)."""
    cond = hold.copy()
    for c, v in fill.items():
        cond[c] = v
    if fill:
        cond[AUX_FLAG] = 0.0
    fake = model.generate(cond[list(model.condition_vars)], seed=seed)
    w = hold[w_col].to_numpy(float)
    lp = model.log_prob(fake[list(model.condition_vars)].assign(**{b: hold[b].set_axis(fake.index) for b in step.block}))
    log_lik = float(np.average(lp, weights=w))
    numeric = [c for c in step.predictors + step.block if not is_categorical(hold[c], categorical)]
    rows = []
    for v in step.block:
        true, imp = hold[v], fake[v]
        row = {"variable": v, "donor": step.donor, "predictors": step.predictors, "auxiliary": step.auxiliary,
               "n_holdout": len(hold), "log_lik": log_lik}
        if is_categorical(true, categorical):
            true, imp = category_labels(true), category_labels(imp)
            row.update(kind="categorical", tvd=weighted_tvd(true, w, imp, w),
                       agreement=float(np.average(true.to_numpy() == imp.to_numpy(), weights=w)))
        else:  # missing values (a state of the model's) are scored by their share, the values given by the KS
            t, s = true.to_numpy(float, na_value=np.nan), imp.to_numpy(float, na_value=np.nan)
            gt, gs = ~np.isnan(t), ~np.isnan(s)
            pms = model.point_masses_.get(v, ())
            row.update(
                kind="numeric", ks=weighted_ks(t[gt], w[gt], s[gs], w[gs]) if gt.any() and gs.any() else np.nan,
                missing_error=abs(np.average(~gt, weights=w) - np.average(~gs, weights=w)),
                point_mass_error=max((abs(np.average(t == p, weights=w) - np.average(s == p, weights=w)) for p in pms),
                                     default=0.0),
                corr_true_imputed=weighted_pearson(t, s, w),
                max_corr_error=max((abs(weighted_pearson(t, hold[c].to_numpy(float, na_value=np.nan), w)
                                        - weighted_pearson(s, fake[c].to_numpy(float, na_value=np.nan), w))
                                    for c in numeric if c != v), default=0.0),
            )
        rows.append(row)
    return rows


def bounds_table(sources: list[Source], base: Source, steps: list[FusionStep], aux: Source | None,
                 fused: pd.DataFrame, categorical: Collection[str] = ()) -> pd.DataFrame:
    """Correlation bounds for every numeric pair (Y imputed, Z from another source) never observed together, given
    the predictors of Y's donor model that Z's source observes (every column the two sources have in common unless
    ``shared`` left some out); columns named in ``categorical`` (number codes declared categorical) are no such
    pair's Y or Z and enter the shared variables as indicators."""
    origin = {c: base for c in base.variables}
    by_name = {s.name: s for s in sources}
    for step in steps:
        origin.update({c: by_name[step.donor] for c in step.block})
    rows = []
    # every imputation is a copy of the base (its records in order): ``fused`` is the mean of their correlations,
    # the pooled estimate (it was the first imputation's alone, one draw's noise with 5 imputations)
    copies = [g for _, g in fused.groupby("_imputation", sort=True)] if "_imputation" in fused.columns else [fused]
    w_fused = base.weights

    def fused_corr(y: str, z: str) -> float:
        values = []
        for g in copies:
            ok = g[[y, z]].notna().all(axis=1).to_numpy()
            values.append(weighted_pearson(g[y].to_numpy(float)[ok], g[z].to_numpy(float)[ok], w_fused[ok]))
        return float(np.mean(values))
    for step in steps:
        donor = by_name[step.donor]
        for y in step.block:
            if is_categorical(donor.data[y], categorical):
                continue
            for z, z_src in origin.items():
                if z_src is donor or is_categorical(z_src.data[z], categorical) or z in step.predictors:
                    continue
                if any(y in s.variables and z in s.variables for s in sources):
                    continue
                if rows and any(r["y"] == z and r["z"] == y for r in rows):
                    continue
                # the variables the donor model conditions on that z's source observes: with 'shared', a column both
                # sources have but the fusion left out (not comparable, or of other types) conditioned on nothing
                # (the bounds and cia described another fusion, and a column of text in one read as numbers failed)
                shared = [c for c in step.predictors if c in z_src.variables]
                dy = donor.data[[y, *shared]].notna().all(axis=1).to_numpy()
                dz = z_src.data[[z, *shared]].notna().all(axis=1).to_numpy()
                if not shared or dy.sum() < 3 or dz.sum() < 3:
                    continue
                fy, fz = donor.data.loc[dy], z_src.data.loc[dz]
                xy, xz = design_matrix([fy, fz], shared, categorical)
                lo, cia, hi = correlation_bounds(fy[y].to_numpy(float), xy, donor.weights[dy],
                                                 fz[z].to_numpy(float), xz, z_src.weights[dz])
                row = {"y": y, "z": z, "y_source": donor.name, "z_source": z_src.name, "shared": tuple(shared),
                       "lower": lo, "cia": cia, "upper": hi, "fused": fused_corr(y, z), "auxiliary": np.nan}
                if aux is not None and y in aux.variables and z in aux.variables:
                    a = aux.data[[y, z]].notna().all(axis=1).to_numpy()
                    row["auxiliary"] = weighted_pearson(aux.data[y].to_numpy(float)[a], aux.data[z].to_numpy(float)[a],
                                             aux.weights[a])
                rows.append(row)
    return pd.DataFrame(rows, columns=list(BOUNDS_COLUMNS))
