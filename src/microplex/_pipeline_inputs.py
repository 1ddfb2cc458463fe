"""The tables the pipeline's stages read: the sources (renamed, chosen, cleaned), the training weight,
the population total and the current population (one file or a streamed dataset folder).

Used by the stage functions in :mod:`microplex._pipeline_stages`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _pipeline_households as households
from ._errors import DataValidationError
from ._files import columns_hint
from ._params import duplicated
from ._pipeline_config import WEIGHT
from .io import as_numbers, read_table
from .scale._layout import cast_to_schema, hive_partitioning

if TYPE_CHECKING:
    from ._pipeline_stages import StageContext


def _training_weight(config: Mapping[str, Any]) -> str | None:
    """The weight column of the table the model is fitted on (the fuse base's, or the one source's)."""
    sources = {s["name"]: s for s in config["sources"]}
    name = config["fuse"]["base"] if "fuse" in config else config["sources"][0]["name"]
    return sources[name].get("weight")


def _source_frame(config: Mapping[str, Any], src: Mapping[str, Any], path: Path,
                  filtered: Collection[str] = ()) -> pd.DataFrame:
    """A source table read from ``path`` (its ``numeric`` columns as numbers) with its renames, column choice and
    dropped missing rows."""
    label = f"source {src['name']!r} ({src['path']})"
    df = as_numbers(read_table(path), src.get("numeric", []), f"{label} (its 'numeric' setting)")
    if src.get("rename"):
        missing = [c for c in src["rename"] if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"The 'rename' table of {label} names columns {missing} it lacks{columns_hint(missing, df.columns)}.")
        df = df.rename(columns=src["rename"])
        names = [str(c) for c in df.columns]
        clashes = duplicated(names)
        if clashes:
            raise DataValidationError(f"The 'rename' table of {label} gives several columns the names {clashes}.")
    if src.get("combine"):
        df = _combine(df, src["combine"], label)
    weight = [src["weight"]] if src.get("weight") else []
    if src.get("columns"):
        keep = list(dict.fromkeys(list(src["columns"]) + weight))
        missing = [c for c in keep if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"The 'columns' of {label} name columns {missing} it lacks{columns_hint(missing, df.columns)}.")
        df = df[keep]
    if weight and weight[0] not in df.columns:
        raise DataValidationError(f"The weight column {weight[0]!r} of {label} is not one of its "
                                  f"columns{columns_hint(weight, df.columns)}.")
    model_columns = _model_columns(config)
    if len(config["sources"]) == 1:
        missing = [c for c in model_columns if c not in df.columns]
        if missing:
            raise DataValidationError(f"The model columns {missing} are not columns of "
                                      f"{label}{columns_hint(missing, df.columns)}.")
    dropna = src.get("dropna", True)
    if isinstance(dropna, list):
        absent = [c for c in dropna if c not in df.columns]
        if absent:
            raise DataValidationError(f"The 'dropna' columns {absent} are not columns of "
                                      f"{label}{columns_hint(absent, df.columns)}.")
    if dropna is not False:  # true, or a list of columns whose rows go too
        needed = [c for c in dropped_columns(config, filtered) if c in df.columns]
        needed += [c for c in (dropna if isinstance(dropna, list) else []) if c not in needed]
        if households.is_households(config):
            df = households.dropna(df, config, needed, label[:1].upper() + label[1:], filtered)
        elif needed:  # said in a warning, with the counts (R's "observations deleted due to missingness")
            from .synthesis._validation import complete_rows

            df = complete_rows(df, needed, label[:1].upper() + label[1:], "are dropped ('dropna', default true): "
                               "a pipeline keeps the missing values of targets and conditions that name no area or partition "
                               "and that no target filters on, and none with differential privacy.")
        df = df.reset_index(drop=True)
    return df


def _model_columns(config: Mapping[str, Any]) -> list[str]:
    """The source columns the model reads (the household model's, or the targets and conditions)."""
    model = config["model"]
    return (households.model_columns(config) if households.is_households(config)
            else list(model["targets"]) + list(model.get("conditions", [])))


def dropped_columns(config: Mapping[str, Any], filtered: Collection[str] = ()) -> list[str]:
    """The model columns whose missing values ``dropna`` (default true) drops from a source: those the model does
    not take (:func:`_missing_modelled`: the columns naming areas or partitions, those a target filters on, all
    with differential privacy), in the model's order.

    ``fit`` and ``fuse`` fingerprint them: which rows a source keeps depends on ``generate.by``,
    ``generate.partition_by``, ``sparsify.by``, ``model.holdout_by`` and ``model.epsilon``, settings of other
    sections."""
    kept = _missing_modelled(config, filtered)
    return [c for c in _model_columns(config) if c not in kept]


def filtered_columns(targets: Mapping[str, Any]) -> set[str]:
    """The columns that the targets files read up front (``calibrate``, ``sparsify``, ``evaluate``: their
    :class:`~microplex.calibration.Targets`) filter on."""
    return {c for name, ts in targets.items() if name != "public" for t in ts for c in t.filters}


#: Each targets file read up front (a key of the pipeline's ``targets``) and the setting that names it.
_TARGET_SETTINGS = {"calibrate": "calibrate.targets", "sparsify": "sparsify.targets", "evaluate": "evaluate.heldout"}


def check_target_columns(config: Mapping[str, Any], targets: Mapping[str, Any]) -> None:
    """Refuses, before any work, a target or held-out cell naming a column (in its filter, or as its variable) that
    no population of the run will have: without a ``generate.conditions`` file (whose other columns the records
    keep) and outside a household pipeline, the populations hold the model's columns and the weight column only,
    so such a target would be refused by its stage after the fit and the generation had run.

    Raises
    ------
    DataValidationError
        Naming the setting of the file, the columns, one target using them and the columns the population holds.
    """
    if households.is_households(config) or config["generate"].get("conditions"):
        return
    held = [*_model_columns(config), WEIGHT]
    for name, setting in _TARGET_SETTINGS.items():
        if name == "sparsify" and "calibrate" in targets and not config.get("sparsify", {}).get("targets"):
            continue  # the calibrate stage's file, checked as such
        for t in targets.get(name, ()):
            missing = [c for c in dict.fromkeys([*t.filters, *([t.variable] if t.variable is not None else [])])
                       if c not in held]
            if missing:
                raise DataValidationError(
                    f"The {setting!r} file names columns {missing} that the population will not have "
                    f"(target {t.name!r}): the population holds the model's columns {held[:-1]} and {WEIGHT!r}. "
                    "Add them to 'model.targets' or 'model.conditions', or use the model's columns.")


def _missing_modelled(config: Mapping[str, Any], filtered: Collection[str] = ()) -> set[str]:
    """The model columns whose missing values the model fits (without DP: a target's as a state of their own, see
    :class:`~microplex.synthesis.transforms.ContinuousEncoder`; a condition's as an input of their own, see
    :class:`~microplex.synthesis.transforms.ConditionEncoder`), so that ``dropna`` keeps their rows:
    dropping them dropped every record a variable does not apply to (acs12's ``hrs_work`` is missing for the 52%
    not working). Not a column that names areas (``model.holdout_by``, ``generate.by``, ``sparsify.by``) or
    partitions (``generate.partition_by``), nor one that a target filters on (``filtered``): those take no missing
    value (calibration refuses them: no filter tells whether they match)."""
    model, gen = config["model"], config.get("generate", {})
    if "epsilon" in model:
        return set()
    areas = {model.get("holdout_by"), gen.get("by"), config.get("sparsify", {}).get("by"), *gen.get("partition_by", []),
             *filtered}
    return {*model.get("targets", []), *model.get("conditions", [])} - areas


def _combine(df: pd.DataFrame, combine: Mapping[str, list[str]], label: str) -> pd.DataFrame:
    """Adds each key column of ``combine`` (``{new: [a, b]}``): the values of ``a``, ``b`` joined with ``:``.

    A nested area code that is unique only within its parent (a PUMA within its state) becomes one
    national key (``"Alabama:100"``). The listed columns must exist and hold no missing value; the
    new name must not be a column already.
    """
    df = df.copy()
    for new, parts in combine.items():
        missing = [c for c in parts if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"The 'combine' table of {label} names columns {missing} it lacks{columns_hint(missing, df.columns)}.")
        if new in df.columns:
            raise DataValidationError(
                f"The 'combine' table of {label} adds the column {new!r}, which it already has; choose another name.")
        gaps = [c for c in parts if df[c].isna().any()]
        if gaps:
            raise DataValidationError(
                f"The 'combine' table of {label} joins columns {gaps} that hold missing values; a key needs every part.")
        key = df[parts[0]].astype(str)
        for c in parts[1:]:
            key = key + ":" + df[c].astype(str)
        df[new] = key.astype(object)
    return df


def imputations(config: Mapping[str, Any]) -> int:
    """The copies of each base record in the training table: ``fuse.n_imputations`` (1 without [fuse])."""
    return int(config["fuse"].get("n_imputations", 1)) if "fuse" in config else 1


def base_records(config: Mapping[str, Any], data: pd.DataFrame) -> int:
    """The number of base records in the table the model is fitted on: its rows, or with ``fuse.n_imputations``
    = k > 1 its rows over k, :func:`~microplex.fuse` having stacked one copy of the base per imputation, in the
    base's order and numbered 0, 1, ... in its ``_imputation`` column (row ``i * n + r`` is copy ``i`` of base
    record ``r``). Raises :class:`DataValidationError` when ``data`` is not laid out so."""
    k = imputations(config)
    if k == 1:
        return len(data)
    n, extra = divmod(len(data), k)
    laid_out = ("_imputation" in data.columns and not extra
                and np.array_equal(data["_imputation"].to_numpy(), np.repeat(np.arange(k), n)))
    if not laid_out:
        raise DataValidationError(
            f"The fused table ({len(data):,} rows) does not hold one copy of the base records per imputation, in "
            f"order and numbered 0 to {k - 1} in its '_imputation' column, as [fuse] writes it with "
            f"'n_imputations' = {k}; run the pipeline again with --force to fuse again.")
    return n


def _population_total(config: Mapping[str, Any], train: pd.DataFrame, holdout: pd.DataFrame) -> float:
    """The total weight the synthetic records represent: ``generate.population``, else the source's (the training
    and held-out records' total weight, or their count without a weight column; each base record counted once
    with ``fuse.n_imputations`` copies)."""
    if "population" in config["generate"]:
        return float(config["generate"]["population"])
    weight = _training_weight(config)
    total = (float(train[weight].sum()) + float(holdout[weight].sum())) if weight else float(len(train) + len(holdout))
    return total / imputations(config)


def stage_population_total(ctx: StageContext) -> float:
    """:func:`_population_total` of the stage's training and held-out tables, read for their weight column only
    (for their row counts without one)."""
    weight = _training_weight(ctx.config)
    columns = [weight] if weight else []
    return _population_total(ctx.config, *(pd.read_parquet(ctx.input(n), columns=columns) for n in ("train", "holdout")))


def _read_population(ctx: StageContext, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """The current population, with its ``weight`` column; at most ``max_rows`` rows drawn at random, whose
    weights are multiplied by the population's records over the sample's, so that the sample stands for the
    population (its weighted totals estimate the population's).

    A streamed dataset folder is read with its partition columns cast back to the training
    table's types, and its weight (which ``generate_dataset`` does not write) is the population
    total over its row count, as for a generated file.
    """
    path = ctx.input("population")
    if not path.is_dir():
        records = pd.read_parquet(path)
        if max_rows is not None and len(records) > max_rows:
            return _stand_for(records.sample(max_rows, random_state=seed), len(records))
        return records
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    dataset = pads.dataset(path, format="parquet", partitioning=hive_partitioning(path))
    rows = dataset.count_rows()
    if max_rows is not None and rows > max_rows:
        take = np.sort(np.random.default_rng(seed).choice(rows, size=max_rows, replace=False))
        records = dataset.take(pa.array(take)).to_pandas()
    else:
        records = dataset.to_table().to_pandas()
    schema = pq.read_schema(ctx.input("train"))
    cast_to_schema(records, schema, ctx.config["generate"]["partition_by"])
    if WEIGHT not in records.columns:  # as generated: each record carries an equal share
        records[WEIGHT] = stage_population_total(ctx) / rows
    return _stand_for(records, rows)


def _stand_for(sample: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``sample`` of a population of ``rows`` records with its weights multiplied by ``rows / len(sample)``
    (a sample that kept its weights gave the sample's calibration totals: errors of 0.67 on targets met exactly)."""
    if len(sample) < rows and WEIGHT in sample.columns:
        sample[WEIGHT] = sample[WEIGHT].to_numpy(float) * (rows / len(sample))
    sample.attrs["population_rows"] = rows  # for the report: a sample says what it stands for
    return sample

