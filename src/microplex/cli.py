"""The ``microplex`` command line: a thin layer over the public API.

Exit status: 0 on success; 1 on any bad input (a bad option value, a missing or malformed file,
an output that would overwrite an input, or any :class:`~microplex.MicroplexError` the library
raises), with exactly one line ``error: <message>`` on stderr; 2 on an unexpected exception (a bug
in microplex), with one line ``error: internal error (<type>: <message>) ...``, which asks to
report it (``--verbose`` logs the traceback). Every option is checked before any work starts.

Every verb takes ``-q``/``--quiet`` (no progress bars, no summary line: only warnings and errors)
and ``-v``/``--verbose`` (log progress details and an internal error's traceback);
``microplex --version`` prints the version. ``python -m microplex`` and ``python -m microplex.cli`` run the
same command line (:func:`main`).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from . import __version__
from ._cli_checks import (
    EXIT_BAD_INPUT,
    EXIT_INTERNAL,
    PARQUET,
    OneLineCommand,
    OneLineGroup,
    check_has_records,
    check_input,
    check_output,
    check_weight_name,
    parse_bounds,
    parse_count,
    parse_epochs,
    parse_overrides,
    numeric_option,
    quiet_option,
    run_body,
    split_columns,
    verbose_option,
    writing,
)
from ._errors import DataValidationError, MicroplexError
from ._files import columns_hint, near_columns
from ._params import check_choice, check_float, check_int, check_seed
from .io import (as_numbers, atomic_path, check_one_type, check_rows_fit_disk, check_rows_fit_memory,
                 read_public_metadata, read_table, read_targets, stored_numbers_as_text, text_columns,
                 write_parquet_atomic)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["app", "main", "EXIT_BAD_INPUT", "EXIT_INTERNAL"]


#: The library parameters each verb passes, by the options that give them: the library's messages name the options
#: (``--max-records=1 is below ...``, not ``max_records=1``; :func:`microplex._params.flags`).
_FIT_FLAGS = {"target_vars": "--targets", "condition_vars": "--conditions", "flow": "--flow", "epochs": "--epochs",
              "epsilon": "--epsilon", "delta": "--delta", "condition_model": "--condition-model",
              "weight_col": "--weight", "seed": "--seed"}
_GENERATE_FLAGS = {"n": "--n", "conditions": "--conditions", "seed": "--seed", "rows_per_file": "--rows-per-file",
                   "partition_by": "--partition-by", "torch_threads": "--torch-threads"}
_CALIBRATE_FLAGS = {"targets": "--targets", "method": "--method", "bounds": "--bounds", "soft": "--soft",
                    "weight_col": "--weight", "household_col": "--household"}
_SPARSIFY_FLAGS = {"targets": "--targets", "max_records": "--max-records", "tolerance": "--tolerance",
                   "method": "--method", "weight_col": "--weight", "household_col": "--household"}
_EVALUATE_FLAGS = {"weight_col": "--weight", "synthetic_weight_col": "--synthetic-weight", "targets": "--targets",
                   "holdout_df": "--holdout", "conditions": "--conditions", "pmse": "--pmse", "attacks": "--attacks",
                   "quasi_identifiers": "--quasi-identifiers", "sensitive": "--sensitive"}


app = typer.Typer(help="microplex: calibrated synthetic population microdata.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=OneLineGroup, rich_markup_mode=None)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (every verb also takes -v)."),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the microplex version and exit."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command(cls=OneLineCommand)
def version() -> None:
    """Prints the microplex version (as ``microplex --version`` does)."""
    typer.echo(__version__)


@app.command(cls=OneLineCommand)
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline file (.toml or .yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set generate.n=1000."),
    force: bool = typer.Option(False, help="Re-run every stage even when its manifest matches."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Runs a pipeline: sources -> fuse -> fit -> generate -> calibrate -> sparsify -> evaluate."""
    def body(say: Callable[[str], None]) -> None:
        from .pipeline import run_pipeline

        check_input(pipeline, "pipeline")
        result = run_pipeline(pipeline, overrides=parse_overrides(set_), force=force, progress=not quiet)
        say(result.summary_text())

    run_body(body, quiet, verbose)


@app.command(cls=OneLineCommand)
def demo(
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: microplex-demo, or with "
                                                              "--geo microplex-demo-geo)."),
    rows: int | None = typer.Option(None, help="Synthetic population size (default: the pipeline's, 100,000 "
                                               "or with --geo 60,000). With --geo at least 26,558, so that every "
                                               "PUMA is sure of a record; fewer may leave one without (it depends "
                                               "on the seed), which is refused before the fit."),
    epochs: str | None = typer.Option(None, help="Training epochs: 'auto' (from the data size) or an int "
                                                 "(default: the pipeline's, 'auto' or with --geo 6)."),
    geo: bool = typer.Option(False, "--geo", help="The geography demo: census2000, a population for every PUMA, "
                                                  "state and PUMA controls, a subset per state, held-out cells."),
    force: bool = typer.Option(False, help="Re-run every stage."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Runs a bundled demo pipeline on real data (the same code path as 'run'): the CPS extract, or with
    --geo the census2000 extract by state and PUMA."""
    def body(say: Callable[[str], None]) -> None:
        from .pipeline import run_pipeline

        folder = "demo_geo" if geo else "demo"
        target = out if out is not None else Path(f"microplex-{folder.replace('_', '-')}")
        overrides: dict[str, object] = {"output": str(target.resolve())}
        if rows is not None:
            overrides["generate.n"] = check_int(rows, "--rows", low=1)
        if epochs is not None:
            overrides["model.epochs"] = parse_epochs(epochs)
        check_output(target, "out", [], folder=True)
        pipeline = Path(str(resources.files("microplex.datasets").joinpath(folder, "pipeline.toml")))
        say(f"Running the demo pipeline {pipeline} -> {target}")
        result = run_pipeline(pipeline, overrides=overrides, force=force, progress=not quiet)
        say(result.summary_text())

    run_body(body, quiet, verbose)


@app.command(cls=OneLineCommand)
def fit(
    data: Path = typer.Argument(..., help="Training records (.csv or .parquet)."),
    targets: str = typer.Option(..., help="Comma-separated target columns."),
    conditions: str = typer.Option("", help="Comma-separated condition columns."),
    categorical: str = typer.Option(
        "", help="Comma-separated targets or conditions modelled as categories whatever their type: codes written "
                 "as numbers (a PUMA, county or occupation code), which are otherwise modelled as numbers."),
    weight: str | None = typer.Option(None, help="Survey weight column."),
    numeric: str = numeric_option(),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.mpx)."),
    flow: str = typer.Option("maf", help="'maf' or 'nsf'."),
    epochs: str = typer.Option("auto", help="Training epochs: 'auto' (from the data size) or an int."),
    epsilon: float | None = typer.Option(
        None, help="Differential privacy: the budget epsilon of the whole fit (needs --delta and --public)."),
    delta: float | None = typer.Option(None, help="Differential privacy: delta, in (0, 1), e.g. 1e-5."),
    public: Path | None = typer.Option(
        None, help="Public metadata for a DP fit (.yaml or .json): bounds, categories and point masses of the "
                   "columns, the weight column's bound among the bounds."),
    condition_model: bool = typer.Option(
        False, "--condition-model", help="Fully synthetic: also model the conditions, keep no training row "
                                         "(the default with --epsilon)."),
    seed: int | None = typer.Option(
        None, help="Seed of the fit (default: 0 without --epsilon; with it a secret seed from the OS: a DP fit "
                   "with a known seed is not private)."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Fits a Synthesizer on a table and saves it (differentially private with --epsilon)."""
    def body(say: Callable[[str], None]) -> None:
        from ._pipeline_config import schema_params
        from .synthesis import Synthesizer

        target_vars, condition_vars = split_columns(targets, "targets"), split_columns(conditions, "conditions")
        if not target_vars:
            raise DataValidationError("The '--targets' option must name at least one column.")
        categorical_vars = split_columns(categorical, "categorical")
        numeric_vars = split_columns(numeric, "numeric")
        stray = [c for c in categorical_vars if c not in target_vars + condition_vars]
        if stray:
            raise DataValidationError(f"The '--categorical' columns {stray} are not among the --targets or "
                                      "--conditions; name model columns only.")
        check_choice(flow, "--flow", ("maf", "nsf"))
        n_epochs = parse_epochs(epochs)
        check_seed(seed, "--seed", allow_none=True)
        if weight is not None:
            check_weight_name(weight)
        dp_given = [o for o, v in (("--delta", delta), ("--public", public)) if v is not None]
        if epsilon is None and dp_given:
            raise DataValidationError(f"The option {dp_given[0]} needs differential privacy: give --epsilon too.")
        if epsilon is not None and (delta is None or public is None):
            raise DataValidationError("A differentially private fit (--epsilon) needs --delta and --public (the "
                                      "columns' public bounds and categories; see docs/privacy.md).")
        check_input(data, "data")
        check_input(public, "public")
        check_output(out, "out", [data, public], suffixes=(".mpx",))
        public_kwargs = read_public_metadata(public) if public is not None else {}
        df = check_has_records(read_table(data, numeric=numeric_vars), data, "data")
        missing = [c for c in target_vars + condition_vars + ([weight] if weight else []) if c not in df.columns]
        if missing:
            raise DataValidationError(
                f"The columns {missing} are not in {str(data)!r}{columns_hint(missing, df.columns)}.")
        public_kwargs = schema_params(categorical_vars, public_kwargs, "'--categorical'")
        synth = Synthesizer(target_vars, condition_vars, flow=flow, epochs=n_epochs, verbose=not quiet,
                            condition_model=True if condition_model else None, epsilon=epsilon, delta=delta,
                            **public_kwargs)
        synth.fit(df, weight_col=weight, seed="auto" if seed is None else seed)
        out.parent.mkdir(parents=True, exist_ok=True)  # as the other verbs do (check_output: it can be created)
        synth.set_params(verbose=False)  # as the pipeline saves it: the file must not depend on -q (the bars)
        with writing(out, "out"):
            synth.save(out)
        spent = "" if epsilon is None else (f"; privacy spent: epsilon {synth.privacy_['epsilon']:.4g}, "
                                            f"delta {synth.privacy_['delta']:.3g}")
        say(f"Fitted on {len(df):,} records in {len(synth.history_)} epochs{spent}; wrote {out}")

    run_body(body, quiet, verbose, flags=_FIT_FLAGS)


@app.command(cls=OneLineCommand)
def generate(
    model: Path = typer.Argument(..., help="Model file written by 'microplex fit'."),
    conditions: Path | None = typer.Option(None, help="Condition rows (.csv or .parquet)."),
    numeric: str = numeric_option(),
    n: int | None = typer.Option(None, "--n", parser=parse_count, metavar="<int>",
                                 help="Number of records, an int (1e9 is accepted); conditions resampled from the training "
                                      "records, or drawn from the model's condition model (fit --condition-model "
                                      "or --epsilon)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file, or a folder when streaming."),
    population: float | None = typer.Option(
        None, help="Total weight the records represent: adds a weight column, population / records each."),
    weight: str = typer.Option("weight", help="Name of the weight column --population writes."),
    partition_by: str = typer.Option("", help="Comma-separated partition columns: stream a dataset folder."),
    rows_per_file: int = typer.Option(5_000_000, help="Rows per Parquet file when streaming."),
    stream: bool = typer.Option(False, help="Stream to a Parquet dataset folder with flat memory."),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address: generate on that cluster."),
    torch_threads: int | None = typer.Option(
        None, help="Torch threads per process when streaming (default 1, as Dask workers: the same bytes)."),
    seed: int = typer.Option(0),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Synthesizes targets for given conditions, or samples n records (streamed for large n)."""
    def body(say: Callable[[str], None]) -> None:
        from .synthesis import Synthesizer
        from .synthesis._validation import check_no_targets, text_conditions

        if (conditions is None) == (n is None):
            raise DataValidationError("Give exactly one of --conditions or --n.")
        partitions = split_columns(partition_by, "partition-by")
        numeric_vars = split_columns(numeric, "numeric")
        if numeric_vars and conditions is None:
            raise DataValidationError("The '--numeric' option reads the --conditions file; it acts only with it.")
        streamed = bool(stream or partitions)
        check_int(rows_per_file, "--rows-per-file", low=1)
        check_int(torch_threads, "--torch-threads", low=1, allow_none=True)
        check_seed(seed, "--seed", allow_none=False)
        check_float(population, "--population", low=0.0, low_inclusive=False, allow_none=True)
        check_weight_name(weight)
        if population is not None and streamed:
            raise DataValidationError("The '--population' option writes a weight column, which a streamed dataset "
                                      "does not have (each record weighs population / n); drop --stream/--partition-by.")
        if population is not None and n == 0:
            raise DataValidationError("The '--population' option needs at least one record; got --n 0.")
        check_input(model, "model")
        check_input(conditions, "conditions")
        if not streamed and (scheduler or torch_threads is not None):
            given = [o for o, v in (("--scheduler", scheduler), ("--torch-threads", torch_threads)) if v]
            raise DataValidationError(f"The options {given} act only when streaming; add --stream or --partition-by.")
        check_output(out, "out", [model, conditions], folder=streamed, suffixes=PARQUET)
        synth = Synthesizer.load(model)
        n_columns = len(synth.target_vars) + len(synth.condition_vars)
        if population is not None and weight in (*synth.target_vars, *synth.condition_vars):
            raise DataValidationError(f"The '--weight' column {weight!r} is a model column; choose another name.")
        if streamed:
            if n is not None:
                check_rows_fit_disk(n, n_columns, out, "--n")
            from .scale import generate_dataset

            # Parquet conditions stream by row group; other formats are read into memory.
            cond = None
            if conditions is not None:
                parquet = conditions.is_dir() or conditions.suffix.lower() in (".parquet", ".pq")
                if parquet and numeric_vars:
                    raise DataValidationError(
                        "The '--numeric' option does not act on streamed Parquet conditions (their columns keep "
                        "their types); write those columns as numbers, or drop --stream/--partition-by.")
                cond = str(conditions) if parquet else read_table(conditions, numeric=numeric_vars,
                                                                  text=text_conditions(synth))
            client = None
            if scheduler:
                from dask.distributed import Client

                try:
                    client = Client(scheduler, timeout=30)
                except (OSError, ValueError, TypeError) as exc:  # includes TimeoutError: a bad or dead address
                    raise DataValidationError(f"Cannot connect to the Dask scheduler {scheduler!r}: {exc}") from exc
            with writing(out, "out"):
                generate_dataset(synth, conditions=cond, n=n, path=out, partition_by=partitions or None,
                                 rows_per_file=rows_per_file, seed=seed, client=client,
                                 torch_threads=1 if torch_threads is None else torch_threads, progress=not quiet)
            say(f"Wrote a Parquet dataset to {out}")
            return
        if n is not None:
            check_rows_fit_memory(n, n_columns, "--n")
        if conditions is not None:
            cond_df = read_table(conditions, numeric=numeric_vars, text=text_conditions(synth))
            missing = [c for c in synth.condition_vars if c not in cond_df.columns]
            if missing:
                raise DataValidationError(f"The conditions file {str(conditions)!r} lacks the model's condition "
                                          f"columns {missing}{columns_hint(missing, cond_df.columns)}.")
            check_no_targets(cond_df.columns, synth.target_vars)  # as streamed: their values would be replaced
            if population is not None and (len(cond_df) == 0 or weight in cond_df.columns):
                raise DataValidationError(f"The '--population' option needs condition rows and no {weight!r} column "
                                          f"in {str(conditions)!r}.")
        result = synth.generate(cond_df, seed=seed) if conditions else synth.sample(n, seed=seed)
        if population is not None:
            result[weight] = population / len(result)
        with writing(out, "out"):
            write_parquet_atomic(result, out)
        say(f"Wrote {len(result):,} records to {out}"
            + (f" (weight {weight!r}: {population:,.6g} in total)" if population is not None else ""))

    run_body(body, quiet, verbose, flags=_GENERATE_FLAGS)


def _warn_unit_weights(weight: str, data: Path, columns: pd.Index) -> None:
    """``calibrate`` and ``sparsify`` start every record from a weight of 1 when ``--weight`` names no column of
    the file: said in a warning, so that a misspelt weight column is not silently replaced by ones. A column that
    differs from the name only by spaces or case (``' weight'``, a header written ``age, weight``) is surely the
    weight: refused, naming it."""
    if near_columns([weight], columns):
        raise DataValidationError(f"The weight column {weight!r} is not in {str(data)!r}"
                                  f"{columns_hint([weight], columns)}; name it exactly with --weight, or write the "
                                  "header without spaces.")
    warnings.warn(f"The weight column {weight!r} is not in {str(data)!r}: every record starts from a weight of 1 "
                  "(name the file's weight column with --weight if it has one).", UserWarning, stacklevel=2)


@app.command(cls=OneLineCommand)
def calibrate(
    data: Path = typer.Argument(..., help="Records with initial weights (.csv or .parquet)."),
    targets: Path = typer.Option(..., help="Targets file (.csv, .parquet or .yaml)."),
    weight: str = typer.Option("weight", help="Initial weight column (created as 1 when absent)."),
    numeric: str = numeric_option(),
    method: str = typer.Option("raking", help="'linear', 'raking' or 'logit'."),
    bounds: str = typer.Option("", help="Weight-ratio bounds 'lo,hi', e.g. 0.2,5."),
    soft: bool = typer.Option(False, help="Penalize target misses instead of requiring them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file (weights replaced)."),
    report: Path | None = typer.Option(None, help="Write the per-target report (CSV)."),
    household: str | None = typer.Option(
        None, help="Household id column: records are persons, one weight per household (constant within it); "
                   "person targets count its persons, entity 'household' targets count households."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Reweights records so that weighted totals hit the targets."""
    def body(say: Callable[[str], None]) -> None:
        from ._pipeline_config import refuse_negative_weights
        from .calibration import Calibrator
        from .calibration.calibrator import far_miss_note

        check_choice(method, "--method", ("linear", "raking", "logit"))
        lo_hi = parse_bounds(bounds)
        check_weight_name(weight)
        numeric_vars = split_columns(numeric, "numeric")
        check_input(data, "data")
        check_input(targets, "targets")
        check_output(out, "out", [data, targets], suffixes=PARQUET)
        if report is not None:
            check_output(report, "report", [data, targets], suffixes=(".csv",), outputs={"out": out})
        df = check_has_records(read_table(data, numeric=numeric_vars), data, "data")
        check_one_type(df, f"{str(data)!r}")  # written back with the weights: refused before the solve
        if weight not in df.columns:
            _warn_unit_weights(weight, data, df.columns)
            df[weight] = 1.0
        _check_household_column(household, df, data)
        result = Calibrator(method=method, bounds=lo_hi, soft=soft).fit(df, read_targets(targets), weight_col=weight,
                                                                         household_col=household)
        weights = np.asarray(result.result_.record_weights, dtype=float)  # persons carry their household's
        refuse_negative_weights(int((weights < 0).sum()), float(weights.min(initial=0.0)), "microplex calibrate")
        df[weight] = weights
        # Both files of this run or neither: the report is written to its temporary first and renamed onto
        # its path after the output is written (a failed output write leaves the old report beside the old output).
        with atomic_path(report) if report else contextlib.nullcontext() as tmp:
            if tmp is not None:
                with writing(report, "report"):
                    result.report().to_csv(tmp, index=False)
            with writing(out, "out"):
                write_parquet_atomic(df, out)
        s = result.summary
        say(f"Calibrated {len(df):,} records: converged={s.get('converged')}, "
                   f"max rel. error {s.get('max_rel_error', float('nan')):.2e}{far_miss_note(s)}; wrote {out}")

    run_body(body, quiet, verbose, flags=_CALIBRATE_FLAGS)


def _check_household_column(household: str | None, df: pd.DataFrame, data: Path) -> None:
    """``--household`` names a column of the data file (the calibrators check its weights)."""
    if household is not None and household not in df.columns:
        raise DataValidationError(f"The '--household' column {household!r} is not in "
                                  f"{str(data)!r}{columns_hint([household], df.columns)}.")


@app.command(cls=OneLineCommand)
def sparsify(
    data: Path = typer.Argument(..., help="Candidate records with weights (.csv or .parquet)."),
    targets: Path = typer.Option(..., help="Targets file (.csv, .parquet or .yaml)."),
    weight: str = typer.Option("weight", help="Weight column (created as 1 when absent)."),
    numeric: str = numeric_option(),
    max_records: int | None = typer.Option(None, help="Most records to keep."),
    tolerance: float = typer.Option(0.005, help="Relative target tolerance."),
    method: str = typer.Option("l0", help="'l0' or 'l1'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file (kept records only)."),
    household: str | None = typer.Option(
        None, help="Household id column: keep whole households; records are persons, one weight per household "
                   "(constant within it); person targets count its persons, entity 'household' targets count "
                   "households."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Keeps a small subset of records, reweighted to still hit the targets."""
    def body(say: Callable[[str], None]) -> None:
        from .calibration import SparseCalibrator

        check_int(max_records, "--max-records", low=1, allow_none=True)
        check_float(tolerance, "--tolerance", low=0.0, low_inclusive=False)
        check_choice(method, "--method", ("l0", "l1"))
        check_weight_name(weight)
        numeric_vars = split_columns(numeric, "numeric")
        check_input(data, "data")
        check_input(targets, "targets")
        check_output(out, "out", [data, targets], suffixes=PARQUET)
        df = check_has_records(read_table(data, numeric=numeric_vars), data, "data")
        check_one_type(df, f"{str(data)!r}")  # written back with the weights: refused before the solve
        if weight not in df.columns:
            _warn_unit_weights(weight, data, df.columns)
            df[weight] = 1.0
        _check_household_column(household, df, data)
        result = SparseCalibrator(max_records=max_records, tolerance=tolerance, method=method).fit(
            df, read_targets(targets), weight_col=weight, household_col=household)
        w = np.asarray(result.result_.record_weights, dtype=float)  # persons carry their household's
        kept = df.assign(**{weight: w})[w > 0].reset_index(drop=True)
        with writing(out, "out"):
            write_parquet_atomic(kept, out)
        s = result.summary
        units = "" if household is None else f" ({kept[household].nunique():,} households)"
        say(f"Kept {len(kept):,} of {len(df):,} records{units}, max rel. error "
                   f"{s.get('max_rel_error', float('nan')):.2e}; wrote {out}")

    run_body(body, quiet, verbose, flags=_SPARSIFY_FLAGS)


@app.command(cls=OneLineCommand)
def evaluate(
    real: Path = typer.Argument(..., help="Real records (.csv or .parquet)."),
    synthetic: Path = typer.Argument(..., help="Synthetic records (.csv or .parquet)."),
    report: Path = typer.Option(Path("report.html"), help="HTML report to write."),
    weight: str | None = typer.Option(None, help="Weight column of the real records."),
    synthetic_weight: str | None = typer.Option(None, help="Weight column of the synthetic records."),
    numeric: str = numeric_option(),
    holdout: Path | None = typer.Option(None, help="Held-out real records for the privacy checks."),
    conditions: str = typer.Option("", help="Comma-separated columns for subgroup fidelity."),
    targets: Path | None = typer.Option(None, help="Targets file for the calibration fit."),
    pmse: bool = typer.Option(True, "--pmse/--no-pmse",
                              help="Fit the real-vs-synthetic classifier (pMSE; at most 20,000 rows a side)."),
    max_rows: int | None = typer.Option(
        None, "--max-rows", metavar="<int>",
        help="Score a random sample of at most this many rows of the synthetic and holdout files; the real "
             "(training) file is read whole, so that copies of its records are found (the synthetic file is scored "
             "in full with --targets, so that totals stay exact); the privacy figures are then the sample's, and say so."),
    model: Path | None = typer.Option(
        None, help="The model file the synthetic records come from (.mpx): its conditions are set apart and not "
                   "judged, its settings and training are shown."),
    attacks: bool = typer.Option(
        False, "--attacks", help="Run the privacy attacks (needs --holdout): membership inference and, with "
                                 "quasi-identifiers, attribute disclosure."),
    quasi_identifiers: str | None = typer.Option(
        None, help="Comma-separated columns an attacker knows (default: --conditions; empty: no attribute "
                   "disclosure). With --attacks."),
    sensitive: str | None = typer.Option(
        None, help="Comma-separated columns whose disclosure is measured (default: every other column). "
                   "With --attacks."),
    quiet: bool = quiet_option(),
    verbose: bool = verbose_option(),
) -> None:
    """Scores a synthetic file against real data, writes an HTML report and prints the key numbers."""
    def body(say: Callable[[str], None]) -> None:
        from .evaluation import evaluate as run_evaluation
        from .evaluation._verdict import key_numbers, synthetic_sample

        check_int(max_rows, "--max-rows", low=1, allow_none=True)

        subgroups = split_columns(conditions, "conditions")
        numeric_vars = split_columns(numeric, "numeric")
        given = [o for o, v in (("--quasi-identifiers", quasi_identifiers), ("--sensitive", sensitive)) if v is not None]
        if given and not attacks:
            raise DataValidationError(f"The option {given[0]} acts only with --attacks.")
        if attacks and holdout is None:
            raise DataValidationError("The '--attacks' option needs --holdout: the attacks compare the synthetic "
                                      "file's risk with fresh records'.")
        qids = None if quasi_identifiers is None else split_columns(quasi_identifiers, "quasi-identifiers")
        secret = None if sensitive is None else split_columns(sensitive, "sensitive")
        for path, name in ((real, "real"), (synthetic, "synthetic"), (holdout, "holdout"), (targets, "targets"),
                           (model, "model")):
            check_input(path, name)
        check_output(report, "report", [real, synthetic, holdout, targets, model], suffixes=(".html", ".htm"))
        fitted = None
        if model is not None:
            from .synthesis import Synthesizer

            fitted = Synthesizer.load(model)
        # --numeric names columns of the real file; the synthetic and holdout files' of those names are read alike,
        # and so are the real file's text columns (a holdout without the label '3+' reads 1 and 2 as text, not int64;
        # a Parquet file storing them as integers, as their text where that cannot match '01' to 1)
        real_df = check_has_records(read_table(real, numeric=numeric_vars), real, "real")
        text = text_columns(real_df)
        syn_df = check_has_records(read_table(synthetic, text=text), synthetic, "synthetic")
        syn_df = stored_numbers_as_text(syn_df, real_df, f"the synthetic file {str(synthetic)!r}",
                                        f"the real file {str(real)!r}")
        syn_df = as_numbers(syn_df, [c for c in numeric_vars if c in syn_df.columns], f"the table {str(synthetic)!r}")
        for col, name, frame, which in ((weight, "weight", real_df, "real"),
                                        (synthetic_weight, "synthetic-weight", syn_df, "synthetic")):
            if col is not None and col not in frame.columns:
                raise DataValidationError(f"The '--{name}' column {col!r} is not in the {which} "
                                          f"file{columns_hint([col], frame.columns)}.")
        bad = [c for c in subgroups if c not in real_df.columns]
        if bad:
            raise DataValidationError(f"The '--conditions' columns {bad} are not in the real "
                                      f"file{columns_hint(bad, real_df.columns)}.")
        if fitted is not None:
            bad = [c for c in (*fitted.target_vars, *fitted.condition_vars) if c not in real_df.columns]
            if bad:
                raise DataValidationError(f"The '--model' columns {bad} are not in the real file: is it the model "
                                          "these records come from?")
        columns = [c for c in real_df.columns if c != weight]
        # a synthetic weight that is also a real column is named by evaluate (not selected twice here)
        syn_cols = columns + ([synthetic_weight] if synthetic_weight and synthetic_weight not in columns else [])
        missing = [c for c in syn_cols if c not in syn_df.columns]
        if missing:
            raise MicroplexError(f"The synthetic file lacks columns {missing} of the real file.")
        # as evaluate() refuses them: a column only the synthetic file has would be dropped, and when it is the
        # synthetic weights (the 'weight' column sparsify and calibrate write) the records were scored unweighted
        extra = [c for c in syn_df.columns if c not in syn_cols]
        if extra:
            hint = (f"; if {extra[0]!r} holds the synthetic records' weights, pass --synthetic-weight {extra[0]}"
                    if synthetic_weight is None and getattr(syn_df[extra[0]].dtype, "kind", "") in ("i", "u", "f")
                    else "")
            raise DataValidationError(
                f"The synthetic file has columns {extra} that the real file's scored columns lack (they would be "
                f"dropped, unscored){hint}; otherwise drop them from the synthetic file.")
        holdout_df = stored_numbers_as_text(check_has_records(read_table(holdout, text=text), holdout, "holdout"),
                                            real_df, f"the holdout file {str(holdout)!r}",
                                            f"the real file {str(real)!r}") if holdout else None
        if holdout_df is not None:
            holdout_df = as_numbers(holdout_df, [c for c in numeric_vars if c in holdout_df.columns],
                                    f"the table {str(holdout)!r}")
        sampled: dict[str, str] = {}
        if max_rows is not None:
            def cap(frame, name):
                if frame is None or len(frame) <= max_rows:
                    return frame
                sampled[f"{name} rows scored"] = f"a random sample of {max_rows:,} of {len(frame):,} (--max-rows)"
                return frame.sample(n=max_rows, random_state=0)

            # the training file stays whole: a record is a copy when it equals any training record, and the DCR,
            # the attacks and the holdout check measure distances to the closest one (as the pipeline's evaluate)
            syn_df = syn_df if targets else cap(syn_df, "synthetic")
            holdout_df = cap(holdout_df, "holdout")
            for line in sampled.items():
                say(f"{line[0]}: {line[1]}")
        sample = synthetic_sample(sampled)  # None: the whole synthetic file is scored
        if attacks and sample:
            warnings.warn(
                f"The privacy figures are computed on the synthetic sample ({sample}): the "
                "membership AUC sees only the training records whose copies were drawn, and understates the risk "
                "of a file that copies them (0.96 whole, 0.61 from a quarter of it); run --attacks without "
                "--max-rows for the whole file's.", UserWarning, stacklevel=2)
        rep = run_evaluation(
            real_df, syn_df[syn_cols], weight_col=weight, synthetic_weight_col=synthetic_weight,
            targets=read_targets(targets) if targets else None,
            holdout_df=holdout_df, conditions=subgroups or None, pmse=pmse, progress=not quiet,
            attacks=attacks, quasi_identifiers=qids, sensitive=secret,
        )
        with writing(report, "report"), atomic_path(report) as tmp:
            rep.to_html(tmp, model=fitted, provenance=sampled)
        for line in key_numbers(rep, given=list(fitted.condition_vars) if fitted is not None else (),
                                sample=sample):
            say(line)
        say(f"Wrote {report} ({len(rep.scores)} scores)")

    run_body(body, quiet, verbose, flags=_EVALUATE_FLAGS)


def main() -> None:
    """Runs the command line as the ``microplex`` console script does (``python -m microplex``, ``python -m microplex.cli``).

    The program name in the usage and help lines is ``microplex`` whichever way it was started.
    """
    app(prog_name="microplex")


if __name__ == "__main__":
    main()
