"""The checks a sparse fit makes on its data, and the size/error frontier of sparse subsets.

:meth:`~microplex.calibration.SparseCalibrator.fit` and ``frontier`` check their data arguments with
:func:`checked_inputs` and :func:`check_reachable` (``frontier`` also refuses, once, targets that no weights
meet together); ``frontier`` then calls :func:`frontier_table` with a factory of estimators (one per budget,
``force=True``); a size whose fit fails gets an ``error`` row.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from microplex._errors import ConvergenceError, ConvergenceWarning, DataValidationError

from ._checks import check_column, check_records
from .calibrator import as_targets, at_start, zero_sized
from .design import Design, build_design
from .feasibility import check_feasible, target_errors, unreachable_targets
from .targets import Targets

__all__ = ["check_reachable", "checked_inputs", "frontier_table", "parameter_design"]


def checked_inputs(candidates: Any, targets: Any, weight_col: Any, household_col: Any) -> Targets:
    """The checks ``fit`` and ``frontier`` make on their data arguments; returns the targets as :class:`Targets`."""
    check_records(candidates, "candidates")
    check_column(weight_col, "weight_col")
    check_column(household_col, "household_col", allow_none=True)
    tg = as_targets(targets)
    if len(tg) == 0:
        raise DataValidationError("targets is empty; expected at least one target.")
    return tg


def parameter_design(
    candidates: pd.DataFrame, targets: Targets, weight_col: str, household_col: str | None, name: str
) -> Design:
    """The design of the targets given as the parameter ``name`` (``holdout``, ``auxiliary``) on ``candidates``;
    a :class:`DataValidationError` (a column the candidates lack, a category no record has) names the parameter,
    so that it is not read as one of the fitted targets."""
    try:
        return build_design(candidates, targets, weight_col, household_col)
    except DataValidationError as exc:
        raise DataValidationError(f"The {name!r} targets do not fit the candidates: {exc}") from exc


def check_reachable(
    design: Design, tolerance: float, method: str, max_records: int | None, *, scale: bool = True
) -> None:
    """Refuses targets no non-negative weights can reach within ``tolerance``, and (``scale``) target sets that
    zero weights meet (only means, or only zero totals: the empty subset would be the answer) where ``method``
    ``"l1"`` or a missing budget would look for the sparsest subset; without ``scale`` (``frontier``, before its
    fits), also targets that each can be reached but not together (a linear program: the
    :class:`ConvergenceError` every fit would raise, naming the targets in conflict)."""
    bad = unreachable_targets(design, 0.0, math.inf, rtol=tolerance)
    if bad:
        raise DataValidationError(
            f"{len(bad)} targets cannot be reached by any non-negative weights within tolerance "
            f"{tolerance:g}: " + "; ".join(bad[:10]) + "."
        )
    if not scale:
        check_feasible(design, tolerance)
        return
    scale_fixed = any(t.aggregate != "mean" and t.value != 0 for t in design.targets)
    if not scale_fixed and (method == "l1" or max_records is None):
        raise DataValidationError(
            f"Sparse calibration ({method}) needs at least one count or sum target with a non-zero value: "
            f"the targets {design.targets.names[:5]} are all met by zero weights, so the sparsest answer would "
            "keep no record. Add a population count target (or give method='l0' a max_records budget)."
        )


def frontier_table(
    make: Callable[[int], Any],
    candidates: pd.DataFrame,
    targets: Targets,
    sizes: Sequence[int],
    weight_col: str,
    household_col: str | None,
    hold: Design | None,
) -> pd.DataFrame:
    """One row per size: ``make(size).fit(...)``'s kept records, fitted errors, seconds and auxiliary
    convergence, and (with ``hold``, the design of the held-out targets) the held-out max and mean relative
    errors, each target in its own units (a mean target's row is the weighted sum of deviations, not a
    total); ``error`` holds the message where a fit raises a microplex error."""
    rows = []
    for size in sizes:
        est = make(int(size))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                est.fit(candidates, targets, weight_col, household_col=household_col)
            except (DataValidationError, ConvergenceError) as exc:
                rows.append({"size": int(size), "error": str(exc)})
                continue
        s = est.summary
        row = {
            "size": int(size),
            "kept": s["n_nonzero"],
            "max_rel_error": s["max_rel_error"],
            "mean_rel_error": s["mean_rel_error"],
            "seconds": s["seconds"],
            "auxiliary_converged": s["auxiliary_converged"],
        }
        if hold is not None:  # each held-out target in its own units (a mean as a mean), as the fitted errors, and
            # a target of 0 in thousandths of its records' size where the fit sizes its own (the targets' scale,
            # zero_sized), as report() reads a fitted one: at the weights as given, 1000 times below those, it read
            # 1000 times its miss
            sized = zero_sized(hold, est.result_.design.zero_factor or 1.0)
            rel = target_errors(at_start(sized, est.result_.start_scale), est.weights.to_numpy())
            row["holdout_max_rel_error"] = float(rel.max())
            row["holdout_mean_rel_error"] = float(rel.mean())
        rows.append(row)
    table = pd.DataFrame(rows)
    head = [c for c in ("size", "kept", "max_rel_error", "mean_rel_error", "seconds", "auxiliary_converged",
                        "holdout_max_rel_error", "holdout_mean_rel_error") if c in table.columns]
    return table[head + [c for c in table.columns if c not in head]]  # a failed size's "error" last
