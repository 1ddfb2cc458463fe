"""Names the targets that cannot be met together, with a minimum-violation linear program (HiGHS).

Solves ``min sum_j (s+_j + s-_j) / (1 + |t_j|)`` subject to ``X'w + s+ - s- = t`` and the weight
bounds (``w >= 0`` for raking and logit). Targets with a non-zero slack in the optimum are the ones
that must move for the others to be met; a zero optimum means the targets are feasible and a failed
solve is a numerical problem, not a data problem.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from .design import Design

__all__ = ["min_violation"]

logger = logging.getLogger(__name__)


def min_violation(design: Design, lower: np.ndarray, upper: np.ndarray, *, rtol: float = 1e-7) -> pd.DataFrame:
    """Returns the targets that must be relaxed, with the closest achievable value.

    Parameters
    ----------
    design : Design
    lower, upper : ndarray of shape (n_units,)
        Bounds on the weights (may be infinite).
    rtol : float, default=1e-7
        Relative slack below which a target counts as met.

    Returns
    -------
    DataFrame
        Columns ``target``, ``value``, ``closest_achievable``, ``rel_gap``; empty when feasible.
    """
    n, m = design.x.shape
    t = design.totals
    scale = 1.0 / (1.0 + np.abs(t))
    a_eq = sp.hstack([sp.diags(scale) @ design.xt, sp.diags(scale), -sp.diags(scale)]).tocsc()
    b_eq = t * scale
    cost = np.concatenate([np.zeros(n), np.ones(2 * m)])
    lb = np.concatenate([lower, np.zeros(2 * m)])
    ub = np.concatenate([upper, np.full(2 * m, math.inf)])
    bounds = np.column_stack([np.where(np.isfinite(lb), lb, -np.inf), np.where(np.isfinite(ub), ub, np.inf)])
    res = linprog(cost, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
    if res.status != 0:
        logger.warning("infeasibility diagnosis LP did not solve: %s", res.message)
        return pd.DataFrame(columns=["target", "value", "closest_achievable", "rel_gap"])
    slack = res.x[n : n + m] - res.x[n + m :]
    closest = t - slack
    gap = np.abs(slack) / np.where(t == 0, 1.0, np.abs(t))
    bad = gap > rtol
    names = design.targets.names
    return pd.DataFrame(
        {
            "target": [names[j] for j in np.flatnonzero(bad)],
            "value": t[bad],
            "closest_achievable": closest[bad],
            "rel_gap": gap[bad],
        }
    )
