"""The ``microplex`` command line: a thin layer over the public API."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import typer

from . import __version__
from ._errors import MicroplexError
from .io import read_table, read_targets, write_parquet_atomic

app = typer.Typer(help="microplex: calibrated synthetic population microdata.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _run(fn) -> None:
    """Runs a command body; a microplex or input error becomes one clear line and exit code 1."""
    try:
        fn()
    except (MicroplexError, OSError) as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _overrides(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise MicroplexError(f"--set expects KEY=VALUE (e.g. generate.n=1000). Got {item!r}.")
        key, value = item.split("=", 1)
        out[key.strip()] = _parse_value(value.strip())
    return out


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def version() -> None:
    """Prints the microplex version."""
    typer.echo(__version__)


@app.command()
def run(
    pipeline: Path = typer.Argument(..., help="Pipeline file (.toml or .yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override a setting, e.g. --set generate.n=1000."),
    force: bool = typer.Option(False, help="Re-run every stage even when its manifest matches."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Runs a pipeline: sources -> fuse -> fit -> generate -> calibrate -> sparsify -> evaluate."""
    def body() -> None:
        from .pipeline import run_pipeline

        result = run_pipeline(pipeline, overrides=_overrides(set_), force=force, progress=not quiet)
        typer.echo(result.summary_text())

    _run(body)


@app.command()
def demo(
    out: Path = typer.Option(Path("microplex-demo"), "--out", "-o", help="Output folder."),
    rows: int = typer.Option(100_000, help="Synthetic population size."),
    epochs: int = typer.Option(200, help="Maximum training epochs (early stopping ends sooner)."),
    force: bool = typer.Option(False, help="Re-run every stage."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Runs the bundled demo pipeline on the real CPS extract (the same code path as 'run')."""
    def body() -> None:
        from .pipeline import run_pipeline

        pipeline = Path(str(resources.files("microplex.datasets").joinpath("demo", "pipeline.toml")))
        overrides = {"output": str(out.resolve()), "generate.n": rows, "model.epochs": epochs}
        typer.echo(f"Running the demo pipeline {pipeline} -> {out}")
        result = run_pipeline(pipeline, overrides=overrides, force=force, progress=not quiet)
        typer.echo(result.summary_text())

    _run(body)


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
) -> None:
    """Fits a Synthesizer on a table and saves it."""
    def body() -> None:
        from .synthesis import Synthesizer

        df = read_table(data)
        synth = Synthesizer(_split(targets), _split(conditions), flow=flow, epochs=epochs)
        synth.fit(df, weight_col=weight, seed=seed).save(out)
        typer.echo(f"Fitted on {len(df):,} records in {len(synth.history_)} epochs; wrote {out}")

    _run(body)


@app.command()
def generate(
    model: Path = typer.Argument(..., help="Model file written by 'microplex fit'."),
    conditions: Path | None = typer.Option(None, help="Condition rows (.csv or .parquet)."),
    n: float | None = typer.Option(None, "--n", help="Number of records (e.g. 1e9); conditions resampled."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file, or a folder when streaming."),
    partition_by: str = typer.Option("", help="Comma-separated partition columns: stream a dataset folder."),
    rows_per_file: int = typer.Option(5_000_000, help="Rows per Parquet file when streaming."),
    stream: bool = typer.Option(False, help="Stream to a Parquet dataset folder with flat memory."),
    scheduler: str | None = typer.Option(None, help="Dask scheduler address: generate on that cluster."),
    torch_threads: int | None = typer.Option(None, help="Torch threads per process when streaming."),
    seed: int = typer.Option(0),
) -> None:
    """Synthesizes targets for given conditions, or samples n records (streamed for large n)."""
    def body() -> None:
        from .synthesis import Synthesizer

        synth = Synthesizer.load(model)
        if (conditions is None) == (n is None):
            raise MicroplexError("Give exactly one of --conditions or --n.")
        if stream or partition_by:
            from .scale import generate_dataset

            # Parquet conditions stream by row group; other formats are read into memory.
            cond = None
            if conditions is not None:
                parquet = conditions.is_dir() or conditions.suffix.lower() in (".parquet", ".pq")
                cond = str(conditions) if parquet else read_table(conditions)
            client = None
            if scheduler:
                from dask.distributed import Client

                client = Client(scheduler)
            generate_dataset(synth, conditions=cond, n=None if n is None else int(n), path=out,
                             partition_by=_split(partition_by) or None, rows_per_file=rows_per_file, seed=seed,
                             client=client, torch_threads=torch_threads)
            typer.echo(f"Wrote a Parquet dataset to {out}")
            return
        result = synth.generate(read_table(conditions), seed=seed) if conditions else synth.sample(int(n), seed=seed)
        write_parquet_atomic(result, out)
        typer.echo(f"Wrote {len(result):,} records to {out}")

    _run(body)


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
) -> None:
    """Reweights records so that weighted totals hit the targets."""
    def body() -> None:
        from .calibration import Calibrator

        df = read_table(data)
        if weight not in df.columns:
            df[weight] = 1.0
        lo_hi = tuple(float(b) for b in _split(bounds)) or None
        result = Calibrator(method=method, bounds=lo_hi, soft=soft).fit(df, read_targets(targets), weight_col=weight)
        df[weight] = np.asarray(result.weights, dtype=float)
        write_parquet_atomic(df, out)
        if report:
            result.report().to_csv(report, index=False)
        s = result.summary
        typer.echo(f"Calibrated {len(df):,} records: converged={s.get('converged')}, "
                   f"max rel. error {s.get('max_rel_error', float('nan')):.2e}; wrote {out}")

    _run(body)


@app.command()
def sparsify(
    data: Path = typer.Argument(..., help="Candidate records with weights (.csv or .parquet)."),
    targets: Path = typer.Option(..., help="Targets file (.csv, .parquet or .yaml)."),
    weight: str = typer.Option("weight", help="Weight column (created as 1 when absent)."),
    max_records: int | None = typer.Option(None, help="Most records to keep."),
    tolerance: float = typer.Option(0.005, help="Relative target tolerance."),
    method: str = typer.Option("l0", help="'l0' or 'l1'."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file (kept records only)."),
) -> None:
    """Keeps a small subset of records, reweighted to still hit the targets."""
    def body() -> None:
        from .calibration import SparseCalibrator

        df = read_table(data)
        if weight not in df.columns:
            df[weight] = 1.0
        result = SparseCalibrator(max_records=max_records, tolerance=tolerance, method=method).fit(
            df, read_targets(targets), weight_col=weight)
        w = np.asarray(result.weights, dtype=float)
        kept = df.assign(**{weight: w})[w > 0].reset_index(drop=True)
        write_parquet_atomic(kept, out)
        s = result.summary
        typer.echo(f"Kept {len(kept):,} of {len(df):,} records, max rel. error "
                   f"{s.get('max_rel_error', float('nan')):.2e}; wrote {out}")

    _run(body)


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
) -> None:
    """Scores a synthetic file against real data and writes an HTML report."""
    def body() -> None:
        from .evaluation import evaluate as run_evaluation

        real_df, syn_df = read_table(real), read_table(synthetic)
        columns = [c for c in real_df.columns if c != weight]
        syn_cols = columns + ([synthetic_weight] if synthetic_weight else [])
        missing = [c for c in syn_cols if c not in syn_df.columns]
        if missing:
            raise MicroplexError(f"The synthetic file lacks columns {missing} of the real file.")
        rep = run_evaluation(
            real_df, syn_df[syn_cols], weight_col=weight, synthetic_weight_col=synthetic_weight,
            targets=read_targets(targets) if targets else None,
            holdout_df=read_table(holdout) if holdout else None, conditions=_split(conditions) or None,
        )
        rep.to_html(report)
        typer.echo(f"Wrote {report} ({len(rep.scores)} scores)")

    _run(body)
