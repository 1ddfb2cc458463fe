"""The ``microplex`` command line: a thin layer over the public API.

Exit status: 0 on success; 1 on any bad input (a bad option value, a missing or malformed file,
an output that would overwrite an input, or any :class:`~microplex.MicroplexError` the library
raises), with exactly one line ``error: <message>`` on stderr; 2 on an unexpected exception (a bug
in microplex), with one line ``error: internal error (<type>: <message>) ...``, which asks to
report it (``--verbose`` logs the traceback). Every option is checked before any work starts.

Every verb takes ``-q``/``--quiet`` (no progress bars, no summary line: only warnings and errors)
and ``-v``/``--verbose`` (log progress details and an internal error's traceback);
``microplex --version`` prints the version.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import typer
from typer.core import TyperGroup

try:  # recent typer ships its own copy of click; its usage errors are that copy's classes
    from typer._click import exceptions as _click_errors
except ImportError:  # pragma: no cover - typer on the real click
    from click import exceptions as _click_errors

from . import __version__
from ._errors import DataValidationError, MicroplexError
from ._params import check_choice, check_float, check_int, check_names, check_seed
from .io import atomic_path, check_rows_fit_disk, check_rows_fit_memory, read_table, read_targets, write_parquet_atomic

logger = logging.getLogger(__name__)

#: Exit status of a bad input and of an internal error.
EXIT_BAD_INPUT, EXIT_INTERNAL = 1, 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _UsageError(_click_errors.ClickException):
    """A command-line usage error shown as one ``error:`` line with the bad-input status."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None) -> None:  # noqa: D102 - click API
        typer.echo(f"error: {_one_line(self.format_message())}", err=True)


class _Group(TyperGroup):
    """Turns click's usage errors (bad option type, unknown option, missing argument) into one line."""

    def _one_line_usage(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except _click_errors.NoArgsIsHelpError:
            raise
        except _click_errors.UsageError as exc:
            raise _UsageError(exc.format_message()) from None

    def make_context(self, *args, **kwargs):  # noqa: D102 - click API
        return self._one_line_usage(lambda: super(_Group, self).make_context(*args, **kwargs))

    def invoke(self, ctx):  # noqa: D102 - click API
        return self._one_line_usage(lambda: super(_Group, self).invoke(ctx))


app = typer.Typer(help="microplex: calibrated synthetic population microdata.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False, cls=_Group, rich_markup_mode=None)


def _split(values: str, name: str = "columns") -> list[str]:
    """A comma list of column names: no empty item, no duplicate."""
    items = [v.strip() for v in values.split(",")] if values.strip() else []
    if any(not v for v in items) or len(set(items)) != len(items):
        raise DataValidationError(
            f"The '--{name}' option must be a comma-separated list of distinct column names. Got {values!r} instead.")
    return check_names(items, name)


def _quiet_option():
    return typer.Option(False, "--quiet", "-q", help="No progress bars and no summary (warnings and errors only).")


def _verbose_option():
    return typer.Option(False, "--verbose", "-v", help="Log progress details (and the traceback of an internal error).")


def _run(fn: Callable[[Callable[[str], None]], None], quiet: bool = False, verbose: bool = False) -> None:
    """Runs a command body: a bad input becomes one ``error:`` line and status 1, a bug status 2.

    ``fn`` receives ``say``, which prints a summary line unless ``quiet``.
    """
    try:
        if quiet and verbose:
            raise DataValidationError("The '--quiet' and '--verbose' options exclude each other; give one.")
        if verbose:
            logging.getLogger("microplex").setLevel(logging.INFO)
        fn((lambda text: None) if quiet else typer.echo)
    except (typer.Exit, typer.Abort, _click_errors.ClickException, KeyboardInterrupt):
        raise
    except (MicroplexError, OSError) as exc:
        typer.secho(f"error: {_one_line(exc) or type(exc).__name__}", err=True, fg="red")
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line, a distinct status, the traceback in the log
        logger.info("Internal error", exc_info=True)
        typer.secho(f"error: internal error ({type(exc).__name__}: {_one_line(exc)[:300]}); this is a bug in "
                    "microplex, please report it (--verbose shows the traceback).", err=True, fg="red")
        raise typer.Exit(EXIT_INTERNAL) from None


def _input(path: Path | None, name: str) -> Path | None:
    """An input file or folder that exists."""
    if path is not None and not path.exists():
        raise DataValidationError(f"The {name!r} input {str(path)!r} does not exist.")
    return path


def _output(path: Path, name: str, inputs: list[Path | None], *, folder: bool = False) -> Path:
    """An output path that is no input (nor inside one, nor holding one) and whose folder can be created."""
    target = path.expanduser().resolve()
    for src in inputs:
        if src is None:
            continue
        s = src.expanduser().resolve()
        if target == s or s in target.parents or (folder and target in s.parents):
            raise DataValidationError(
                f"The {name!r} output {str(path)!r} would overwrite the input {str(src)!r}; choose another path.")
    if not folder and target.is_dir():
        raise DataValidationError(f"The {name!r} output {str(path)!r} is a folder; give a file path.")
    if folder and target.exists() and not target.is_dir():
        raise DataValidationError(f"The {name!r} output {str(path)!r} is a file; give a folder path.")
    existing = next((a for a in target.parents if a.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK):
        raise DataValidationError(f"Cannot create the {name!r} output {str(path)!r}: {str(existing)!r} is not a "
                                  "writable folder.")
    return path


def _count(text: str) -> int:
    """``--n``: a record count in [0, 2**53], written as an int or an integral number such as ``1e9``."""
    stripped = str(text).strip()
    try:
        number = int(stripped) if stripped.lstrip("+-").isdigit() else float(stripped)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or not float(number).is_integer() or not 0 <= number <= 2**53:
        raise _UsageError(f"The '--n' option must be an int in [0, 2**53] (1e9 is accepted). Got {stripped!r} instead.")
    return int(number)


def _parse_value(text: str):
    """A ``--set`` value: an int, a float, true/false, a JSON list or table, else the string."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise DataValidationError(f"The --set value {text!r} is not a valid JSON list or table: {exc}") from exc
    return text


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise DataValidationError(f"--set expects KEY=VALUE (e.g. generate.n=1000). Got {item!r}.")
        key, value = item.split("=", 1)
        if key.strip() in out:
            raise DataValidationError(f"--set gives {key.strip()!r} twice.")
        out[key.strip()] = _parse_value(value.strip())
    return out


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


@app.command()
def version() -> None:
    """Prints the microplex version (as ``microplex --version`` does)."""
    typer.echo(__version__)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline file (.toml or .yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set generate.n=1000."),
    force: bool = typer.Option(False, help="Re-run every stage even when its manifest matches."),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Runs a pipeline: sources -> fuse -> fit -> generate -> calibrate -> sparsify -> evaluate."""
    def body(say: Callable[[str], None]) -> None:
        from .pipeline import run_pipeline

        _input(pipeline, "pipeline")
        result = run_pipeline(pipeline, overrides=_overrides(set_), force=force, progress=not quiet)
        say(result.summary_text())

    _run(body, quiet, verbose)


@app.command()
def demo(
    out: Path = typer.Option(Path("microplex-demo"), "--out", "-o", help="Output folder."),
    rows: int = typer.Option(100_000, help="Synthetic population size."),
    epochs: int = typer.Option(200, help="Maximum training epochs (early stopping ends sooner)."),
    force: bool = typer.Option(False, help="Re-run every stage."),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Runs the bundled demo pipeline on the real CPS extract (the same code path as 'run')."""
    def body(say: Callable[[str], None]) -> None:
        from .pipeline import run_pipeline

        check_int(rows, "rows", low=1)
        check_int(epochs, "epochs", low=1)
        _output(out, "out", [], folder=True)
        pipeline = Path(str(resources.files("microplex.datasets").joinpath("demo", "pipeline.toml")))
        overrides = {"output": str(out.resolve()), "generate.n": rows, "model.epochs": epochs}
        say(f"Running the demo pipeline {pipeline} -> {out}")
        result = run_pipeline(pipeline, overrides=overrides, force=force, progress=not quiet)
        say(result.summary_text())

    _run(body, quiet, verbose)


@app.command()
def fit(
    data: Path = typer.Argument(..., help="Training records (.csv or .parquet)."),
    targets: str = typer.Option(..., help="Comma-separated target columns."),
    conditions: str = typer.Option("", help="Comma-separated condition columns."),
    weight: str | None = typer.Option(None, help="Survey weight column."),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write (.mpx)."),
    flow: str = typer.Option("maf", help="'maf' or 'nsf'."),
    epochs: int = typer.Option(200, help="Maximum training epochs."),
    seed: int = typer.Option(0),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Fits a Synthesizer on a table and saves it."""
    def body(say: Callable[[str], None]) -> None:
        from .synthesis import Synthesizer

        target_vars, condition_vars = _split(targets, "targets"), _split(conditions, "conditions")
        if not target_vars:
            raise DataValidationError("The '--targets' option must name at least one column.")
        check_choice(flow, "flow", ("maf", "nsf"))
        check_int(epochs, "epochs", low=1)
        check_seed(seed, allow_none=False)
        _input(data, "data")
        _output(out, "out", [data])
        df = read_table(data)
        missing = [c for c in target_vars + condition_vars + ([weight] if weight else []) if c not in df.columns]
        if missing:
            raise DataValidationError(f"The columns {missing} are not in {str(data)!r}.")
        synth = Synthesizer(target_vars, condition_vars, flow=flow, epochs=epochs, verbose=not quiet)
        synth.fit(df, weight_col=weight, seed=seed).save(out)
        say(f"Fitted on {len(df):,} records in {len(synth.history_)} epochs; wrote {out}")

    _run(body, quiet, verbose)


@app.command()
def generate(
    model: Path = typer.Argument(..., help="Model file written by 'microplex fit'."),
    conditions: Path | None = typer.Option(None, help="Condition rows (.csv or .parquet)."),
    n: int | None = typer.Option(None, "--n", parser=_count, metavar="<int>",
                                 help="Number of records, an int (1e9 is accepted); conditions resampled."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file, or a folder when streaming."),
    population: float | None = typer.Option(
        None, help="Total weight the records represent: adds a weight column, population / records each."),
    weight: str = typer.Option("weight", help="Name of the weight column --population writes."),
    partition_by: str = typer.Option("", help="Comma-separated partition columns: stream a dataset folder."),
    rows_per_file: int = typer.Option(5_000_000, help="Rows per Parquet file when streaming."),
    stream: bool = typer.Option(False, help="Stream to a Parquet dataset folder with flat memory."),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address: generate on that cluster."),
    torch_threads: int | None = typer.Option(None, help="Torch threads per process when streaming."),
    seed: int = typer.Option(0),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Synthesizes targets for given conditions, or samples n records (streamed for large n)."""
    def body(say: Callable[[str], None]) -> None:
        from .synthesis import Synthesizer

        if (conditions is None) == (n is None):
            raise DataValidationError("Give exactly one of --conditions or --n.")
        partitions = _split(partition_by, "partition-by")
        streamed = bool(stream or partitions)
        check_int(rows_per_file, "rows_per_file", low=1)
        check_int(torch_threads, "torch_threads", low=1, allow_none=True)
        check_seed(seed, allow_none=False)
        check_float(population, "population", low=0.0, low_inclusive=False, allow_none=True)
        _check_weight_name(weight)
        if population is not None and streamed:
            raise DataValidationError("The '--population' option writes a weight column, which a streamed dataset "
                                      "does not have (each record weighs population / n); drop --stream/--partition-by.")
        if population is not None and n == 0:
            raise DataValidationError("The '--population' option needs at least one record; got --n 0.")
        _input(model, "model")
        _input(conditions, "conditions")
        _output(out, "out", [model, conditions], folder=streamed)
        synth = Synthesizer.load(model)
        n_columns = len(synth.target_vars) + len(synth.condition_vars)
        if population is not None and weight in (*synth.target_vars, *synth.condition_vars):
            raise DataValidationError(f"The '--weight' column {weight!r} is a model column; choose another name.")
        if streamed:
            if n is not None:
                check_rows_fit_disk(n, n_columns, out, "n")
            from .scale import generate_dataset

            # Parquet conditions stream by row group; other formats are read into memory.
            cond = None
            if conditions is not None:
                parquet = conditions.is_dir() or conditions.suffix.lower() in (".parquet", ".pq")
                cond = str(conditions) if parquet else read_table(conditions)
            client = None
            if scheduler:
                from dask.distributed import Client

                try:
                    client = Client(scheduler, timeout=30)
                except (OSError, ValueError, TypeError) as exc:  # includes TimeoutError: a bad or dead address
                    raise DataValidationError(f"Cannot connect to the Dask scheduler {scheduler!r}: {exc}") from exc
            generate_dataset(synth, conditions=cond, n=n, path=out, partition_by=partitions or None,
                             rows_per_file=rows_per_file, seed=seed, client=client, torch_threads=torch_threads,
                             progress=not quiet)
            say(f"Wrote a Parquet dataset to {out}")
            return
        if n is not None:
            check_rows_fit_memory(n, n_columns, "n")
        if conditions is not None:
            cond_df = read_table(conditions)
            missing = [c for c in synth.condition_vars if c not in cond_df.columns]
            if missing:
                raise DataValidationError(f"The conditions file {str(conditions)!r} lacks the model's condition "
                                          f"columns {missing}.")
            if population is not None and (len(cond_df) == 0 or weight in cond_df.columns):
                raise DataValidationError(f"The '--population' option needs condition rows and no {weight!r} column "
                                          f"in {str(conditions)!r}.")
        result = synth.generate(cond_df, seed=seed) if conditions else synth.sample(n, seed=seed)
        if population is not None:
            result[weight] = population / len(result)
        write_parquet_atomic(result, out)
        say(f"Wrote {len(result):,} records to {out}"
            + (f" (weight {weight!r}: {population:,.6g} in total)" if population is not None else ""))

    _run(body, quiet, verbose)


@app.command()
def calibrate(
    data: Path = typer.Argument(..., help="Records with initial weights (.csv or .parquet)."),
    targets: Path = typer.Option(..., help="Targets file (.csv, .parquet or .yaml)."),
    weight: str = typer.Option("weight", help="Initial weight column (created as 1 when absent)."),
    method: str = typer.Option("raking", help="'linear', 'raking' or 'logit'."),
    bounds: str = typer.Option("", help="Weight-ratio bounds 'lo,hi', e.g. 0.2,5."),
    soft: bool = typer.Option(False, help="Penalize target misses instead of requiring them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file (weights replaced)."),
    report: Path | None = typer.Option(None, help="Write the per-target report (CSV)."),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Reweights records so that weighted totals hit the targets."""
    def body(say: Callable[[str], None]) -> None:
        from .calibration import Calibrator

        check_choice(method, "method", ("linear", "raking", "logit"))
        lo_hi = _bounds(bounds)
        _check_weight_name(weight)
        _input(data, "data")
        _input(targets, "targets")
        _output(out, "out", [data, targets])
        if report is not None:
            _output(report, "report", [data, targets, out])
        df = read_table(data)
        if weight not in df.columns:
            df[weight] = 1.0
        result = Calibrator(method=method, bounds=lo_hi, soft=soft).fit(df, read_targets(targets), weight_col=weight)
        df[weight] = np.asarray(result.weights, dtype=float)
        if report:
            with atomic_path(report) as tmp:
                result.report().to_csv(tmp, index=False)
        write_parquet_atomic(df, out)
        s = result.summary
        say(f"Calibrated {len(df):,} records: converged={s.get('converged')}, "
                   f"max rel. error {s.get('max_rel_error', float('nan')):.2e}; wrote {out}")

    _run(body, quiet, verbose)


@app.command()
def sparsify(
    data: Path = typer.Argument(..., help="Candidate records with weights (.csv or .parquet)."),
    targets: Path = typer.Option(..., help="Targets file (.csv, .parquet or .yaml)."),
    weight: str = typer.Option("weight", help="Weight column (created as 1 when absent)."),
    max_records: int | None = typer.Option(None, help="Most records to keep."),
    tolerance: float = typer.Option(0.005, help="Relative target tolerance."),
    method: str = typer.Option("l0", help="'l0' or 'l1'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file (kept records only)."),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Keeps a small subset of records, reweighted to still hit the targets."""
    def body(say: Callable[[str], None]) -> None:
        from .calibration import SparseCalibrator

        check_int(max_records, "max_records", low=1, allow_none=True)
        check_float(tolerance, "tolerance", low=0.0, low_inclusive=False)
        check_choice(method, "method", ("l0", "l1"))
        _check_weight_name(weight)
        _input(data, "data")
        _input(targets, "targets")
        _output(out, "out", [data, targets])
        df = read_table(data)
        if weight not in df.columns:
            df[weight] = 1.0
        result = SparseCalibrator(max_records=max_records, tolerance=tolerance, method=method).fit(
            df, read_targets(targets), weight_col=weight)
        w = np.asarray(result.weights, dtype=float)
        kept = df.assign(**{weight: w})[w > 0].reset_index(drop=True)
        write_parquet_atomic(kept, out)
        s = result.summary
        say(f"Kept {len(kept):,} of {len(df):,} records, max rel. error "
                   f"{s.get('max_rel_error', float('nan')):.2e}; wrote {out}")

    _run(body, quiet, verbose)


@app.command()
def evaluate(
    real: Path = typer.Argument(..., help="Real records (.csv or .parquet)."),
    synthetic: Path = typer.Argument(..., help="Synthetic records (.csv or .parquet)."),
    report: Path = typer.Option(Path("report.html"), help="HTML report to write."),
    weight: str | None = typer.Option(None, help="Weight column of the real records."),
    synthetic_weight: str | None = typer.Option(None, help="Weight column of the synthetic records."),
    holdout: Path | None = typer.Option(None, help="Held-out real records for the privacy checks."),
    conditions: str = typer.Option("", help="Comma-separated columns for subgroup fidelity."),
    targets: Path | None = typer.Option(None, help="Targets file for the calibration fit."),
    quiet: bool = _quiet_option(),
    verbose: bool = _verbose_option(),
) -> None:
    """Scores a synthetic file against real data and writes an HTML report."""
    def body(say: Callable[[str], None]) -> None:
        from .evaluation import evaluate as run_evaluation

        subgroups = _split(conditions, "conditions")
        for path, name in ((real, "real"), (synthetic, "synthetic"), (holdout, "holdout"), (targets, "targets")):
            _input(path, name)
        _output(report, "report", [real, synthetic, holdout, targets])
        real_df, syn_df = read_table(real), read_table(synthetic)
        for col, name, frame, which in ((weight, "weight", real_df, "real"),
                                        (synthetic_weight, "synthetic-weight", syn_df, "synthetic")):
            if col is not None and col not in frame.columns:
                raise DataValidationError(f"The '--{name}' column {col!r} is not in the {which} file.")
        bad = [c for c in subgroups if c not in real_df.columns]
        if bad:
            raise DataValidationError(f"The '--conditions' columns {bad} are not in the real file.")
        columns = [c for c in real_df.columns if c != weight]
        syn_cols = columns + ([synthetic_weight] if synthetic_weight else [])
        missing = [c for c in syn_cols if c not in syn_df.columns]
        if missing:
            raise MicroplexError(f"The synthetic file lacks columns {missing} of the real file.")
        rep = run_evaluation(
            real_df, syn_df[syn_cols], weight_col=weight, synthetic_weight_col=synthetic_weight,
            targets=read_targets(targets) if targets else None,
            holdout_df=read_table(holdout) if holdout else None, conditions=subgroups or None,
        )
        with atomic_path(report) as tmp:
            rep.to_html(tmp)
        say(f"Wrote {report} ({len(rep.scores)} scores)")

    _run(body, quiet, verbose)


def _bounds(text: str) -> tuple[float, float] | None:
    """``--bounds "lo,hi"``: two finite floats with 0 <= lo < hi, or '' for none."""
    if not text.strip():
        return None
    parts = text.split(",")
    try:
        lo, hi = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
        raise DataValidationError(
            f"The '--bounds' option must be 'lo,hi', two finite numbers with 0 <= lo < hi. Got {text!r} instead.")
    return lo, hi


def _check_weight_name(weight: str) -> None:
    if not weight.strip():
        raise DataValidationError("The '--weight' option must be a column name. Got '' instead.")
