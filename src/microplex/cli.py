"""The ``microplex`` command line: a thin layer over the public API."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from . import __version__
from ._errors import MicroplexError
from .datasets import load_dataset
from .synthesis import Synthesizer

app = typer.Typer(help="microplex: calibrated synthetic population microdata.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)

_DEMO_TARGETS = ["re74", "re75", "re78"]
_DEMO_CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]


def _read_table(path: Path) -> pd.DataFrame:
    """Reads CSV, Parquet or anything pandas reads, by extension."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise MicroplexError(f"Input file {str(path)!r} does not exist.")
    if suffix in (".parquet", ".pq") or path.is_dir():
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".gz"):
        return pd.read_csv(path)
    reader = {".json": pd.read_json, ".feather": pd.read_feather, ".dta": pd.read_stata,
              ".xlsx": pd.read_excel}.get(suffix)
    if reader is None:
        raise MicroplexError(f"Cannot read {str(path)!r}: unknown extension {suffix!r} (use .csv or .parquet).")
    return reader(path)


def _split(values: str) -> list[str]:
    return [v.strip() for v in values.split(",") if v.strip()]


def _run(fn) -> None:
    """Runs a command body; a microplex error becomes one clear line and exit code 1."""
    try:
        fn()
    except MicroplexError as exc:
        typer.secho(f"error: {exc}", err=True, fg="red")
        raise typer.Exit(1) from None


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def version() -> None:
    """Prints the microplex version."""
    typer.echo(__version__)


@app.command()
def demo(
    out: Path = typer.Option(Path("microplex-demo"), "--out", "-o", help="Output folder."),
    rows: int = typer.Option(100_000, help="Synthetic population size."),
    epochs: int = typer.Option(200, help="Maximum training epochs (early stopping ends sooner)."),
    flow: str = typer.Option("maf", help="'maf' or 'nsf'."),
    seed: int = typer.Option(0, help="Seed of the split, the fit and the samples."),
) -> None:
    """Fits on the bundled CPS extract and writes synthetic records plus a summary."""
    def body() -> None:
        from scipy.stats import ks_2samp

        out.mkdir(parents=True, exist_ok=True)
        data = load_dataset("cps1")
        order = np.random.default_rng(seed).permutation(len(data))
        cut = int(0.8 * len(data))
        train, holdout = data.iloc[order[:cut]], data.iloc[order[cut:]].reset_index(drop=True)
        typer.echo(f"Fitting a {flow.upper()} synthesizer on {len(train):,} CPS records "
                   f"({', '.join(_DEMO_TARGETS)} | {', '.join(_DEMO_CONDITIONS)}) ...")
        t0 = time.perf_counter()
        synth = Synthesizer(_DEMO_TARGETS, _DEMO_CONDITIONS, flow=flow, epochs=epochs).fit(train, seed=seed)
        fit_s = time.perf_counter() - t0
        synth.save(out / "model.mpx")
        t0 = time.perf_counter()
        population = synth.sample(rows, seed=seed + 1)
        gen_s = time.perf_counter() - t0
        population.to_parquet(out / "synthetic.parquet", index=False)
        check = synth.generate(holdout[_DEMO_CONDITIONS], seed=seed + 2)
        lines = ["| target | KS synthetic vs held-out | KS train vs held-out (floor) | zero share held-out | zero share synthetic |",
                 "|---|---|---|---|---|"]
        summary = {"fit_seconds": round(fit_s, 1), "epochs": int(len(synth.history_)),
                   "rows": rows, "rows_per_second": round(rows / gen_s), "targets": {}}
        for t in _DEMO_TARGETS:
            ks = ks_2samp(check[t], holdout[t]).statistic
            floor = ks_2samp(train[t], holdout[t]).statistic
            z_real, z_syn = (holdout[t] == 0).mean(), (check[t] == 0).mean()
            summary["targets"][t] = {"ks": round(ks, 4), "ks_floor": round(floor, 4),
                                     "zero_share_real": round(z_real, 4), "zero_share_synthetic": round(z_syn, 4)}
            lines.append(f"| {t} | {ks:.3f} | {floor:.3f} | {z_real:.3f} | {z_syn:.3f} |")
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        text = "\n".join([
            f"# microplex demo (seed {seed})", "",
            f"Fit: {fit_s:.1f} s, {len(synth.history_)} epochs. Generated {rows:,} records "
            f"at {rows / gen_s:,.0f} rows/s.", "", *lines, "",
        ])
        (out / "summary.md").write_text(text)
        typer.echo(text)
        typer.echo(f"Wrote {out / 'synthetic.parquet'}, {out / 'model.mpx'}, {out / 'summary.md'}")

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
        df = _read_table(data)
        synth = Synthesizer(_split(targets), _split(conditions), flow=flow, epochs=epochs)
        synth.fit(df, weight_col=weight, seed=seed).save(out)
        typer.echo(f"Fitted on {len(df):,} records in {len(synth.history_)} epochs; wrote {out}")

    _run(body)


@app.command()
def generate(
    model: Path = typer.Argument(..., help="Model file written by 'microplex fit'."),
    conditions: Path | None = typer.Option(None, help="Condition rows (.csv or .parquet)."),
    n: float | None = typer.Option(None, "--n", help="Number of records to sample (conditions resampled)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output Parquet file."),
    seed: int = typer.Option(0),
) -> None:
    """Synthesizes targets for given conditions, or samples n records."""
    def body() -> None:
        synth = Synthesizer.load(model)
        if (conditions is None) == (n is None):
            raise MicroplexError("Give exactly one of --conditions or --n.")
        result = synth.generate(_read_table(conditions), seed=seed) if conditions else synth.sample(int(n), seed=seed)
        result.to_parquet(out, index=False)
        typer.echo(f"Wrote {len(result):,} records to {out}")

    _run(body)

