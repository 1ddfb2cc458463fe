"""The household branch of the pipeline's stages (``model.household_id`` set).

fit: a :class:`~microplex.households.HouseholdSynthesizer` on the source's persons, split into training
and held-out records by household; generate: linked households and persons datasets streamed by
:func:`~microplex.scale.generate_household_dataset` (``households/`` and ``persons/`` in the population
folder); calibrate: :func:`~microplex.scale.rake_dataset` with ``persons=``: one weight per household,
person-level (and household-level) targets, out of core, then both datasets copied with the weights;
sparsify: the persons (with their household's columns and weight) read into memory and a sparse subset of
households chosen by :class:`~microplex.calibration.SparseCalibrator` with ``household_col``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._errors import DataValidationError
from ._pipeline_config import WEIGHT, refuse_negative_weights
from ._pipeline_manifest import discard_folder
from .scale._layout import cast_to_schema, hive_partitioning, layout
from .scale._linked import check_linked
from .synthesis.schema import declare_categorical

__all__ = ["calibrate", "dropna", "fit", "generate", "is_households", "model_columns", "read_persons"]

#: [model] keys passed to HouseholdSynthesizer by name, and Synthesizer keys it takes directly.
_NAMED = ("person_id", "size_var", "geography", "age_var")
_DIRECT = ("flow", "transforms", "hidden_features", "epochs", "batch_size", "learning_rate", "weight_decay",
           "validation_fraction", "patience")
_INNER = ("bins", "point_mass_threshold", "max_point_masses", "rounding", "structural_zeros")


def is_households(config: Mapping[str, Any]) -> bool:
    """Whether the pipeline builds households (``model.household_id`` is set)."""
    return "household_id" in config.get("model", {})


def model_columns(config: Mapping[str, Any]) -> list[str]:
    """The source columns the household model reads."""
    model = config["model"]
    named = [model[k] for k in ("household_id", "person_id") if k in model]
    return list(dict.fromkeys(named + list(model["household_vars"]) + list(model["person_vars"])))


def dropna(data: pd.DataFrame, config: Mapping[str, Any], columns: list[str], who: str = "The source",
           filtered: Collection[str] = ()) -> pd.DataFrame:
    """``data`` without the households of which some person misses a value of ``columns`` that the household model
    does not take, dropped whole and said in a warning naming ``who`` (the source), the columns and the counts.

    A person variable's missing values below an age are kept: with ``model.age_var``, a value missing for a person
    younger than every person with a value is "not applicable" (children's incomes in EU-SILC), which
    :class:`~microplex.households.HouseholdSynthesizer` models. Dropping them dropped every household with a child
    (eusilc with ``py010n`` a person variable: 2,720 children of 14,827 persons, none left), silently. Not in a
    column that a target filters on (``filtered``): calibration takes no missing value there.

    A person without a household id raises :class:`~microplex.DataValidationError` naming the column, the count and
    the rows, as ``HouseholdSynthesizer.fit`` does: that person belongs to no household to drop whole. Dropping only
    them left their household short of persons (3 of ``hsize`` 4), and the model then took the person counts, not
    ``hsize``, as the size (95 of 1,000 generated households with ``hsize`` unequal to their persons), silently.
    """
    from .households._validation import _ids, applicable_from

    model = config["model"]
    hid, age = model["household_id"], model.get("age_var")
    no_id = data[hid].isna().to_numpy()
    if no_id.any():
        raise DataValidationError(
            f"{who}: {int(no_id.sum()):,} persons have no household id (column {hid!r} missing at rows "
            f"{_ids(data.index[no_id])}); every person must belong to a household. 'dropna' drops whole households, "
            "and these persons belong to none: give them their household's id, or leave them out of the source.")
    missing = data[columns].isna()
    if age is not None and age in data.columns:
        ages = data[age].to_numpy(float, na_value=np.nan)
        for c in columns:
            if c != age and c in model["person_vars"] and c not in filtered and missing[c].any():
                na = missing[c].to_numpy()
                threshold = applicable_from(na, ages)
                if threshold is not None:  # below it: not applicable, kept
                    missing[c] = na & ~(ages < threshold)
    bad = missing.any(axis=1).to_numpy()
    if not bad.any():
        return data
    incomplete = data[hid][bad].unique()
    dropped = data[hid].isin(incomplete).to_numpy()
    counts = {c: int(n) for c, n in missing.sum().items() if n}
    warnings.warn(f"{who}: {len(incomplete):,} of {data[hid].nunique():,} households ({int(dropped.sum()):,} persons) "
                  f"have persons missing values of {counts} and are dropped whole ('dropna', default true): a "
                  "household pipeline keeps a person variable's missing values only below an age ('age_var': those "
                  "of persons younger than every person with a value).", UserWarning, stacklevel=3)
    return data[~dropped]


def _weight(config: Mapping[str, Any]) -> str | None:
    from ._pipeline_inputs import _training_weight

    return _training_weight(config)


def population_households(config: Mapping[str, Any], train: pd.DataFrame, holdout: pd.DataFrame) -> float:
    """The households the population holds: the source households' total weight (the training and held-out
    households', each counted once), or their count without a weight column."""
    hid, weight = config["model"]["household_id"], _weight(config)
    columns = [hid, weight] if weight else [hid]
    first = pd.concat([train[columns], holdout[columns]], ignore_index=True).drop_duplicates(hid)
    return float(first[weight].sum()) if weight else float(len(first))


def _population_households(ctx) -> float:  # type: ignore[no-untyped-def]
    """:func:`population_households` of the stage's training and held-out tables, read for the id and weight only."""
    hid, weight = ctx.config["model"]["household_id"], _weight(ctx.config)
    columns = [hid, weight] if weight else [hid]
    return population_households(ctx.config, *(pd.read_parquet(ctx.input(n), columns=columns)
                                               for n in ("train", "holdout")))


def fit(ctx, data: pd.DataFrame) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Splits ``data`` by household, fits the household model, writes model, train and holdout."""
    from .households import HouseholdSynthesizer

    model = ctx.config["model"]
    hid = model["household_id"]
    ids = pd.unique(data[hid])
    share = float(model.get("holdout", 0.2))
    order = np.random.default_rng(ctx.seed("split")).permutation(len(ids))
    cut = int(round((1 - share) * len(ids)))
    in_train = data[hid].isin(ids[order[:cut]]).to_numpy()
    train, holdout = data[in_train], data[~in_train]
    if cut < 2:
        raise DataValidationError(
            f"The fit stage has {len(ids)} households ({cut} to train after 'model.holdout'); it needs at least 2.")
    params = {k: model[k] for k in _NAMED + _DIRECT if k in model}
    if "hidden_features" in params:
        params["hidden_features"] = tuple(params["hidden_features"])
    inner = {k: model[k] for k in _INNER if k in model}
    hs = HouseholdSynthesizer(model["household_vars"], model["person_vars"], hid, household_weight=_weight(ctx.config),
                              verbose=ctx.progress, synthesizer_params=inner or None,
                              schema=declare_categorical(None, model.get("categorical", [])), **params)
    hs.fit(train, seed=ctx.seed("fit"))
    # saved as they are: the file must not depend on the progress bars (-q), nor its inner models' files
    inner = [hs.household_model_, hs.late_model_, *hs.person_models_.values(), *(m for _, m in hs.applicable_models_)]
    for m in [hs, *(m for m in inner if m is not None)]:
        m.set_params(verbose=False)
    hs.save(ctx.output("model"))
    train.to_parquet(ctx.output("train"), index=False)
    holdout.to_parquet(ctx.output("holdout"), index=False)
    return {"train_rows": len(train), "train_households": cut,
            "note": f"household model on {cut:,} households ({len(train):,} persons)"}


def generate(ctx) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Streams ``generate.n_households`` households and their persons to the population folder.

    Without the model's household weight column: the population carries no weight column (each household weighs
    its equal share of the population's households, :func:`population_households`, until ``calibrate`` writes
    ``weight``). The model's column, the training households' total spread over them (the holdout left out),
    kept the source weight's name beside ``weight`` in ``calibrated/`` and ``subset.parquet``, wrong by the
    calibration (a subset's ``db090`` summed to 55,628 where its ``weight`` summed to 350,109).
    """
    from .households import HouseholdSynthesizer
    from .scale.households import _generate

    gen = ctx.config["generate"]
    hs = HouseholdSynthesizer.load(ctx.input("model"))
    target = ctx.output("population")
    out = _generate(hs, int(gen["n_households"]), path=target, partition_by=gen.get("partition_by"),
                    households_per_file=int(gen.get("households_per_file", 1_000_000)), seed=ctx.seed("generate"),
                    progress=ctx.progress, with_weight=False)
    h, p = int(out["households"]["rows"]), int(out["persons"]["rows"])
    return {"rows": p, "households": h, "note": f"{h:,} households, {p:,} persons streamed to {target.name}/"}


def calibrate(ctx) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Household weights to the targets (person-level, or household-level by ``entity``), out of core."""
    import pyarrow.dataset as pads

    from .scale import rake_dataset, write_calibrated

    cfg, hid = ctx.config["calibrate"], ctx.config["model"]["household_id"]
    source = ctx.input("population")
    targets = ctx.targets["calibrate"]
    n = pads.dataset(source / "households", format="parquet", partitioning="hive").count_rows()
    share = _population_households(ctx) / n
    bounds = tuple(cfg["bounds"]) if cfg.get("bounds") else None
    res = rake_dataset(source / "households", targets, None, persons=source / "persons", household_id=hid,
                       method=cfg.get("method", "raking"), bounds=bounds, initial_weight=share)
    target = ctx.output("population")  # a folder, replaced whole: written beside it, then renamed
    partial = target.parent / f".{target.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    write_calibrated(res, source / "households", partial / "households", column=WEIGHT,
                     persons=source / "persons", persons_out=partial / "persons")
    check_written_weights(partial / "households", cfg, partial)
    for table in ("households", "persons"):  # each copy's marker, even without a schema file: microplex wrote it
        layout(partial / table).meta.mkdir(exist_ok=True)
    discard_folder(target)  # the previous copy; a folder of the user's there is refused, not removed
    os.replace(partial, target)
    res.report.to_csv(ctx.output("calibration_report"), index=False)
    err = float(res.summary["max_rel_error"])
    return {"targets": len(targets), "max_rel_error": err, "converged": bool(res.summary["converged"]),
            "passes": int(res.n_passes),
            "note": f"{n:,} household weights to {len(targets)} targets out of core in {res.n_passes} passes, "
                    f"max rel. error {err:.2e}"}


def read_persons(ctx) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    """The population's persons with their household's columns and ``weight`` (in memory)."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    path, hid = ctx.input("population"), ctx.config["model"]["household_id"]
    check_linked(path / "households", path / "persons")  # the calibrated copy's two folders, or generate's
    hh, persons = (pads.dataset(path / name, format="parquet", partitioning=hive_partitioning(path / name))
                   .to_table().to_pandas()
                   for name in ("households", "persons"))
    schema = pq.read_schema(ctx.input("train"))
    for frame in (hh, persons):  # hive partition columns come back as strings or categories
        cast_to_schema(frame, schema, ctx.config["generate"].get("partition_by", []))
    if WEIGHT not in hh.columns:  # as generated: each household carries an equal share
        hh[WEIGHT] = _population_households(ctx) / len(hh)
    persons = persons.drop(columns=[c for c in persons.columns if c in hh.columns and c != hid])
    return persons.merge(hh, on=hid, how="left", validate="many_to_one")


def check_written_weights(folder, cfg: Mapping[str, Any], partial) -> None:  # type: ignore[no-untyped-def]
    """Refuses (:func:`~microplex._pipeline_config.refuse_negative_weights`) a calibrated copy in ``folder`` whose
    weights go below 0, removing the unpublished copy ``partial``: only a linear calibration without bounds gives
    them, so only its copy is read (the weight column, batch by batch). ``partial`` and its side folder are removed
    on refusal."""
    if cfg.get("method", "raking") != "linear" or cfg.get("bounds"):
        return
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    n, lowest = 0, 0.0
    data = pads.dataset(folder, format="parquet", partitioning=hive_partitioning(folder))
    for batch in data.to_batches(columns=[WEIGHT]):
        w = batch.column(0)
        n += int(pc.sum(pc.less(w, 0)).as_py() or 0)
        low = pc.min(w).as_py()
        lowest = min(lowest, low) if low is not None else lowest
    if n:  # the unpublished copy and its side folder (schema file) go
        for path in (partial, layout(partial).meta):
            shutil.rmtree(path, ignore_errors=True)
    refuse_negative_weights(n, lowest)
