"""Areas in the pipeline: a held-out split that keeps every area in training, a population drawn
for every area, and a sparse subset chosen area by area.

Used by the stage functions in :mod:`microplex._pipeline_stages` when ``model.holdout_by``,
``generate.by`` or ``sparsify.by`` name an area column (a state, or a PUMA key built with a
source's ``combine`` table).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._errors import ConvergenceError, DataValidationError
from ._pipeline_config import WEIGHT
from ._random import int_seed, named_child
from ._stats import systematic_counts

if TYPE_CHECKING:
    from ._pipeline_stages import StageContext

__all__: list[str] = []


def _listed(values: list[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def _check_no_missing_area(values: pd.Series, setting: str, what: str) -> None:
    """Refuses records of no area: a missing value of the ``setting`` column belongs to no area, so an
    area-by-area stage would leave its records out (``pd.factorize`` codes them -1).

    Raises
    ------
    DataValidationError
        Naming the setting, the column, the count of records and what to do.
    """
    missing = int(values.isna().sum())
    if missing:
        raise DataValidationError(
            f"The {setting!r} column {values.name!r} has {missing} {what} (of {len(values)}) with no value: they "
            f"belong to no area, so '{setting}' would leave them out. Give them an area, or drop them (in a pipeline, "
            f"a source's default 'dropna = true' drops them; in Python, frame.dropna(subset=[{values.name!r}])).")


def _split_within(data: pd.DataFrame, share: float, column: str,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and held-out records, the held-out share taken within each value of ``column``.

    Each area holds out about ``share`` of its records (systematic rounding of ``share`` times the
    record count over the areas, so the total is ``round(share * len(data))`` up to the cap) but
    never its last record: every area keeps at least one training record, so a model conditioned
    on the area knows every area.
    """
    if column not in data.columns:
        raise DataValidationError(
            f"The 'model.holdout_by' setting names {column!r}, which is not a column of the training table; "
            f"it has {[str(c) for c in data.columns][:20]}.")
    codes, areas = pd.factorize(data[column], sort=True)
    if (codes < 0).any():
        raise DataValidationError(f"The 'model.holdout_by' column {column!r} holds missing values.")
    sizes = np.bincount(codes, minlength=len(areas))
    held = systematic_counts(sizes / sizes.sum(), int(round(share * len(data))), rng)
    held = np.minimum(held, sizes - 1)
    order = rng.permutation(len(data))
    rank = pd.Series(codes[order]).groupby(codes[order]).cumcount().to_numpy()
    out = np.zeros(len(data), dtype=bool)
    out[order] = rank < held[codes[order]]
    return data.iloc[np.flatnonzero(~out)], data.iloc[np.flatnonzero(out)]


def _area_conditions(conditions: pd.DataFrame, weights: np.ndarray, n: int, column: str,
                     rng: np.random.Generator) -> pd.DataFrame:
    """``n`` condition rows drawn area by area: every area of ``column`` gets its share of ``n``.

    Each area's count is its share of the training weight times ``n`` (systematic rounding, so the
    counts sum to ``n`` and each is within 1 of its expectation); its rows are resampled from its own
    training condition rows in proportion to their weights. An area whose records all weigh 0 is outside
    the weighted population and gets none; any other area whose count rounds to 0 raises: every area of
    positive weight gets records, or ``generate.n`` is raised. Raises when every area weighs 0.
    """
    if column not in conditions.columns:
        raise DataValidationError(
            f"The 'generate.by' setting names {column!r}, which is not a condition column of the model "
            f"{[str(c) for c in conditions.columns]}.")
    codes, areas, counts, weighted = _area_counts(conditions[column], weights, n, rng)
    rows = []
    for i in np.flatnonzero(weighted):
        k, members = counts[i], np.flatnonzero(codes == i)
        p = weights[members] / weights[members].sum()
        rows.append(members[rng.choice(len(members), size=int(k), p=p)])
    return conditions.iloc[np.concatenate(rows)].reset_index(drop=True)


def _area_counts(values: pd.Series, weights: np.ndarray, n: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, pd.Index, np.ndarray, np.ndarray]:
    """Each area's count of ``n`` records (see :func:`_area_conditions`): the codes of ``values`` (the area
    column), the areas, their counts and which areas weigh more than 0. Raises when an area of positive weight gets
    no record, naming the ``generate.n`` from which each is sure of one, or when every area weighs 0."""
    column = values.name
    _check_no_missing_area(values, "generate.by", "training records")
    codes, areas = pd.factorize(values, sort=True)
    totals = np.bincount(codes, weights=weights, minlength=len(areas))
    weighted = totals > 0  # an area whose records all weigh 0 is outside the population: no record
    if not weighted.any():
        raise DataValidationError(
            f"The 'generate.by' column {column!r}: the records of every area ({_listed(list(areas))}) have weight 0, "
            "so no area has a population to draw records for.")
    counts = np.zeros(len(areas), dtype=np.int64)
    counts[weighted] = systematic_counts(totals[weighted] / totals.sum(), int(n), rng)
    empty = [areas[i] for i in np.flatnonzero(weighted & (counts == 0))]
    if empty:
        need = int(np.ceil(totals.sum() / totals[weighted].min()))
        raise DataValidationError(
            f"'generate.n' = {n} leaves {len(empty)} areas of {column!r} without a record ({_listed(empty)}); "
            f"every area gets its share of the records: raise 'generate.n' to {need}, from which every area is sure "
            "of a record (below it, whether an area whose share is under one record gets one depends on the seed).")
    return codes, areas, counts, weighted


def area_streams(seed: int) -> tuple[np.random.Generator, int]:
    """The generate stage's two streams under ``generate.by``, from its seed: the generator that draws the areas'
    counts and rows (:func:`_area_conditions`), and the seed of the synthesizer's draw."""
    ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(ss[0]), int_seed(ss[1])


def check_generate_by(config: Mapping[str, Any], train: pd.DataFrame, weight: str | None) -> None:
    """``generate.by``'s check that ``generate.n`` gives every area of positive weight a record, made by the fit
    stage on its training records (those the generate stage resamples, with the weights of the column ``weight``
    or 1 each) before the fit: the same counts from the same stream, so the same refusal, before the model is
    trained and written (``demo --geo --rows 1000`` was refused after a 13 s fit). Weights the fit would refuse,
    and an area column the model lacks, are left to the fit's own checks."""
    gen = config["generate"]
    column = gen.get("by")
    if not column or column not in train.columns or gen.get("n") is None:
        return
    if weight is None:
        w = np.ones(len(train))
    elif weight in train.columns and pd.api.types.is_numeric_dtype(train[weight].dtype):
        w = train[weight].to_numpy(dtype=float, na_value=np.nan)
    else:
        return
    if not np.isfinite(w).all() or (w < 0).any():
        return
    seed = int_seed(named_child(int(config.get("seed", 0)), "generate"))  # the generate stage's seed (stage_seeds)
    _area_counts(train[column].reset_index(drop=True), w, int(gen["n"]), area_streams(seed)[0])


def _budgets(records: pd.DataFrame, codes: np.ndarray, values: list[Any], areas: list[Any], total: int | None,
             weight: str, household_col: str | None, column: str, rng: np.random.Generator) -> list[int | None]:
    """Each area's budget: its number of targets, plus its share of the rest of ``total`` in proportion
    to its weight (systematic rounding), at most its records (or its targets' count, where that is more);
    ``None`` each without a total.

    An area whose budget would exceed its records (its weight share above its share of the records, as calibrated
    weights make it) gets its records, and the rest of ``total`` is shared again among the other areas, so the
    budgets sum to ``total``, or to every record when ``total`` exceeds them. Households count once (the first
    record's weight, and one record each) when ``household_col`` is given.
    """
    if total is None:
        return [None] * len(values)
    per_area = Counter(areas)
    need = np.array([per_area[v] for v in values], dtype=np.int64)
    if need.sum() > total:
        raise DataValidationError(
            f"The 'sparsify.max_records' budget {total} is below the {int(need.sum())} targets of the areas of "
            f"{column!r}; each area needs at least as many records as its targets. Raise 'sparsify.max_records'.")
    first = np.ones(len(records), dtype=bool)
    if household_col is not None:
        first = ~records[household_col].duplicated().to_numpy()
    w = np.where(first, records[weight].to_numpy(dtype=float), 0.0)
    mass = np.bincount(codes, weights=w, minlength=len(values))
    size = np.bincount(codes, weights=first.astype(float), minlength=len(values)).astype(np.int64)
    size = np.maximum(size, need)  # an area of fewer records than targets keeps its targets' count, as before
    budgets = np.zeros(len(values), dtype=np.int64)
    free, left = np.ones(len(values), dtype=bool), int(total)
    while free.any():
        part = mass[free] if mass[free].sum() > 0 else size[free].astype(float)  # the areas left all weigh 0
        share = need[free] + systematic_counts(part / part.sum(), left - int(need[free].sum()), rng)
        over = share > size[free]
        if not over.any():
            budgets[free] = share
            break
        full = np.flatnonzero(free)[over]  # these areas keep every record; the rest is shared again
        budgets[full] = size[full]
        left -= int(size[full].sum())
        free[full] = False
    return budgets.tolist()


def _sparsify_by(records: pd.DataFrame, targets: Any, column: str, params: Mapping[str, Any],
                 weight: str, household_col: str | None) -> tuple[np.ndarray, pd.DataFrame]:
    """Sparse subsets chosen area by area: one :class:`~microplex.SparseCalibrator` per value of ``column``.

    Every target must fix ``column`` to one value (its area); an area's records are calibrated to its
    own targets, with a seed of its own (the named child of ``params["seed"]``). ``max_records`` is the
    budget of all areas together: each area gets as many records as it has targets plus its share of
    the rest by weight (:func:`_budgets`); without it each area searches its smallest budget. Returns
    the weights of every record (zero for those not kept) and a table with one row per area: ``area``,
    ``candidates``, ``budget``, ``kept``, ``targets``, ``max_rel_error``.
    """
    from .calibration import SparseCalibrator, Targets
    from .calibration.design import lookup_values
    from .calibration.filters import fixed_value

    if column not in records.columns:
        raise DataValidationError(
            f"The 'sparsify.by' setting names {column!r}, which is not a column of the population "
            f"{[str(c) for c in records.columns]}.")
    _check_no_missing_area(records[column], "sparsify.by", "records")
    areas = [fixed_value(t.filters, column) for t in targets]
    loose = [t.name for t, a in zip(targets, areas, strict=True) if a is None]
    if loose:
        raise DataValidationError(
            f"With 'sparsify.by' = {column!r} every target must fix {column!r} to one value (its area); "
            f"{len(loose)} do not: {_listed(loose)}.")
    codes, values = pd.factorize(records[column], sort=True)
    values = pd.Index(np.asarray(values))  # a categorical column's values as their own dtype
    # each target's area as the column holds it, found as the solve finds it ("300100" for the code 300100)
    at = lookup_values(values, areas)
    unknown = sorted({a for a, k in zip(areas, at, strict=True) if k < 0}, key=str)
    if unknown:
        raise DataValidationError(
            f"Targets name areas of {column!r} with no record in the population: {_listed(unknown)}.")
    listed = values.tolist()
    areas = [listed[k] for k in at]
    targeted = set(areas)
    bare = [v for v in values.tolist() if v not in targeted]
    if bare:
        raise DataValidationError(
            f"Areas of {column!r} have records but no target, so 'sparsify.by' would drop them: {_listed(bare)}; "
            "give every area targets (at least its count).")
    base_seed = int(params.get("seed", 0))
    budgets = _budgets(records, codes, values.tolist(), areas, params.get("max_records"), weight, household_col, column,
                       np.random.default_rng(named_child(base_seed, "budgets")))
    weights = np.zeros(len(records))
    rows = []
    for i, area in enumerate(values.tolist()):
        members = np.flatnonzero(codes == i)
        mine = Targets([t for t, a in zip(targets, areas, strict=True) if a == area])
        seed = int_seed(named_child(base_seed, f"{column}={area}"))
        part = records.iloc[members]
        try:
            res = SparseCalibrator(**{**params, "seed": seed, "max_records": budgets[i]}).fit(
                part, mine, weight_col=weight, household_col=household_col)
        except (DataValidationError, ConvergenceError) as exc:  # the same error, naming the area
            raise type(exc)(f"Sparsifying the area {column} = {area!r}: {exc}") from exc
        w = np.asarray(res.result_.record_weights, dtype=float)
        weights[members] = w
        rows.append({"area": area, "candidates": len(members), "budget": budgets[i], "kept": int((w > 0).sum()),
                     "targets": len(mine),
                     "max_rel_error": float(res.summary["max_rel_error"])})
    return weights, pd.DataFrame(rows)


#: How the evaluate stage names the population each stage wrote, for the held-out cells.
_POPULATIONS = {"generate": "generated", "calibrate": "calibrated", "sparsify": "subset"}


def _heldout(ctx: StageContext) -> pd.DataFrame:
    """Every population's totals of the held-out cells (``evaluate.heldout``): generated, calibrated, subset."""
    from .evaluation.areas import heldout_errors

    populations = {label: pd.read_parquet(ctx.input(f"population@{stage}"))
                   for stage, label in _POPULATIONS.items() if ctx.input(f"population@{stage}") is not None}
    return heldout_errors(populations, ctx.targets["evaluate"], weight_col=WEIGHT, areas=ctx.config["evaluate"].get("areas", []))


def _check_targets_on(report: Any, records: pd.DataFrame, targets: Any) -> None:
    """Adds the calibration targets' achieved totals over every column of ``records`` to ``report``.

    With ``evaluate.exclude`` the scored frames lack the excluded columns (a PUMA key), which the
    targets use; the totals are taken on the whole population instead, as :func:`~microplex.evaluation.evaluate`
    would (its ``calibration`` table and ``calibration_rel_error`` scores).
    """
    from .evaluation.calibration import achieved_vs_target
    from .evaluation.report import _calibration_totals

    achieved, wanted = _calibration_totals(records, records[WEIGHT].to_numpy(dtype=float), targets)
    report.calibration = achieved_vs_target(achieved, wanted)
    rows = pd.DataFrame([("calibration_rel_error", name, "all", abs(float(e)))
                         for name, e in report.calibration["rel_error"].items()], columns=report.scores.columns)
    report.scores = pd.concat([report.scores, rows], ignore_index=True)


def check_geography(records: pd.DataFrame, targets: Any, geography: list[str]) -> None:
    """``[calibrate] geography``: the areas of ``records`` must nest (each finer area inside one coarser area),
    every target's area must have records, and nested targets must add up; checked on the area table (one
    row per finest area) before the solve, each problem raising a :class:`DataValidationError` naming the areas."""
    from .scale._areas import area_table, check_areas

    missing = [c for c in geography if c not in records.columns]
    if missing:
        raise DataValidationError(
            f"The 'calibrate.geography' setting names columns {missing} that the population does not have; "
            f"it has {list(records.columns)}."
        )
    check_areas(area_table(records, geography), targets, geography)

