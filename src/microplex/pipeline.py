"""One reproducible job from sources to a calibrated, evaluated population.

A pipeline file (TOML or YAML) declares the stages; :func:`run_pipeline` runs

    sources -> fuse -> fit -> generate -> calibrate -> sparsify -> evaluate

writing every stage's output under ``output`` with a manifest (inputs' hashes, settings, seed,
package version). A re-run with the same file skips the stages whose manifest still matches, so
an interrupted run resumes after the last finished stage and an unchanged run reproduces the same
files. See ``docs/pipeline.md`` for the file reference.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from ._errors import DataValidationError
from .io import file_sha256, read_table, read_targets, resolve_path, write_parquet_atomic

__all__ = ["load_pipeline", "run_pipeline", "PipelineResult", "STAGES"]

logger = logging.getLogger(__name__)

#: Stages in the order they run; all but ``fit`` and ``generate`` are optional.
STAGES = ("fuse", "fit", "generate", "calibrate", "sparsify", "evaluate")
_SECTIONS = {"output", "seed", "sources", *STAGES, "model"}
_MANIFESTS = ".microplex"


@dataclass
class PipelineResult:
    """What a pipeline run produced.

    Attributes
    ----------
    output : Path
        The output folder.
    stages : dict of str to dict
        Per stage: ``status`` ("ran" or "skipped"), ``seconds`` and the stage's figures.
    summary : dict
        Rows, fit scores, maximum target error and the report path.
    """

    output: Path
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def summary_text(self) -> str:
        """A one-screen summary of the run."""
        s = self.summary
        lines = [f"microplex pipeline -> {self.output}"]
        for name, info in self.stages.items():
            lines.append(f"  {name:<10} {info['status']:<8} {info.get('seconds', 0):7.1f} s  {info.get('note', '')}")
        for key in ("rows", "fit_epochs", "fit_val_loss", "max_target_error", "kept_records", "report"):
            if key in s:
                lines.append(f"  {key}: {s[key]}")
        return "\n".join(lines)


def load_pipeline(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a pipeline file (``.toml``, ``.yaml`` or ``.yml``) into a validated dict.

    Relative paths in the file are resolved against the file's folder (stored as ``_base``).
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"Pipeline file {str(path)!r} does not exist.")
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataValidationError(f"Pipeline file {str(path)!r} is not valid TOML: {exc}") from exc
    elif path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text) or {}
    else:
        raise DataValidationError(f"Pipeline file {str(path)!r} must end in .toml, .yaml or .yml.")
    config["_base"] = str(path.resolve().parent)
    config.setdefault("output", f"{path.stem}-output")
    return _validate(config)


def _validate(config: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - _SECTIONS - {"_base"})
    if unknown:
        raise DataValidationError(f"Unknown pipeline sections {unknown}; expected some of {sorted(_SECTIONS)}.")
    sources = config.get("sources")
    if not sources or not isinstance(sources, list):
        raise DataValidationError("The pipeline needs a [[sources]] list with at least one source (name, path).")
    names = []
    for i, src in enumerate(sources):
        for key in ("name", "path"):
            if key not in src:
                raise DataValidationError(f"Source #{i + 1} needs a {key!r}.")
        names.append(src["name"])
    if len(set(names)) != len(names):
        raise DataValidationError(f"Source names must be unique. Got {names}.")
    if len(sources) > 1 and "fuse" not in config:
        raise DataValidationError(f"Several sources ({names}) need a [fuse] section naming the base.")
    model = config.get("model")
    if not model or not model.get("targets"):
        raise DataValidationError("The pipeline needs a [model] section with 'targets' (and usually 'conditions').")
    if "generate" not in config:
        raise DataValidationError("The pipeline needs a [generate] section with 'n' or 'conditions'.")
    if "sparsify" in config and "calibrate" not in config and "targets" not in config["sparsify"]:
        raise DataValidationError("[sparsify] needs 'targets' when there is no [calibrate] section.")
    return config


def _apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Sets dotted keys (``"generate.n"``) in a copy of ``config``."""
    config = copy.deepcopy(config)
    for key, value in (overrides or {}).items():
        node = config
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _validate(config)


class _Stage:
    """Runs one stage unless its manifest shows the same settings, inputs and outputs."""

    def __init__(self, out: Path, name: str, settings: dict[str, Any], inputs: list[Path], outputs: list[Path]):
        self.out, self.name, self.settings = out, name, settings
        self.inputs, self.outputs = inputs, outputs
        self.manifest = out / _MANIFESTS / f"{name}.json"
        payload = {
            "settings": settings,
            "inputs": {str(p): _output_hash(p) for p in inputs},
            "microplex_version": __version__,
        }
        self.input_hashes = payload["inputs"]
        self.fingerprint = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def is_done(self) -> dict[str, Any] | None:
        if not self.manifest.exists():
            return None
        try:
            record = json.loads(self.manifest.read_text())
        except json.JSONDecodeError:
            return None
        if record.get("fingerprint") != self.fingerprint:
            return None
        for p in self.outputs:
            if not p.exists() or record["outputs"].get(str(p)) != _output_hash(p):
                return None
        return record

    def finish(self, seconds: float, figures: dict[str, Any]) -> None:
        record = {
            "stage": self.name,
            "fingerprint": self.fingerprint,
            "settings": self.settings,
            "inputs": self.input_hashes,
            "outputs": {str(p): _output_hash(p) for p in self.outputs},
            "microplex_version": __version__,
            "seconds": round(seconds, 3),
            "figures": figures,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.manifest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str))
        os.replace(tmp, self.manifest)


def _output_hash(path: Path) -> str:
    """Hash of a stage file; for a streamed dataset folder, of its manifest."""
    from .scale.writer import MANIFEST_NAME

    if path.is_dir() and (path / MANIFEST_NAME).exists():
        return file_sha256(path / MANIFEST_NAME)
    return file_sha256(path) if path.exists() else ""


def run_pipeline(
    pipeline: str | os.PathLike | Mapping[str, Any],
    *,
    overrides: Mapping[str, Any] | None = None,
    force: bool = False,
    progress: bool = True,
) -> PipelineResult:
    """Runs a pipeline file (or an already loaded dict) stage by stage.

    Parameters
    ----------
    pipeline : path or dict
        A ``.toml``/``.yaml`` file, or the dict :func:`load_pipeline` returns.
    overrides : dict, default=None
        Dotted keys to replace, e.g. ``{"generate.n": 2000, "model.epochs": 3}``.
    force : bool, default=False
        Re-run every stage even when its manifest matches.
    progress : bool, default=True
        Show progress bars.

    Returns
    -------
    PipelineResult
    """
    config = load_pipeline(pipeline) if not isinstance(pipeline, Mapping) else _validate(dict(pipeline))
    config = _apply_overrides(config, overrides)
    base = Path(config.get("_base", "."))
    out = resolve_path(config["output"], base)
    out.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    result = PipelineResult(output=out)
    ctx = _Context(config, base, out, seed, progress)

    plan: list[tuple[str, Callable[[], tuple[_Stage, Callable[[], dict[str, Any]]]]]] = []
    if len(config["sources"]) > 1:
        plan.append(("fuse", ctx.fuse))
    plan += [("fit", ctx.fit), ("generate", ctx.generate)]
    plan += [(s, getattr(ctx, s)) for s in ("calibrate", "sparsify", "evaluate") if s in config]
    for name, build in plan:
        stage, body = build()
        record = None if force else stage.is_done()
        if record is not None:
            logger.info("Stage %s is up to date; skipped.", name)
            result.stages[name] = {"status": "skipped", "seconds": 0.0, **record.get("figures", {})}
            ctx.figures[name] = record.get("figures", {})
            continue
        t0 = time.perf_counter()
        figures = body()
        seconds = time.perf_counter() - t0
        stage.finish(seconds, figures)
        ctx.figures[name] = figures
        result.stages[name] = {"status": "ran", "seconds": seconds, **figures}
    result.summary = ctx.summary()
    (out / "summary.json").write_text(json.dumps(result.summary, indent=1, default=str))
    return result


class _Context:
    """Builds each stage: its settings, inputs, outputs and body."""

    def __init__(self, config: dict[str, Any], base: Path, out: Path, seed: int, progress: bool) -> None:
        self.config, self.base, self.out, self.seed, self.progress = config, base, out, seed, progress
        self.figures: dict[str, dict[str, Any]] = {}
        self.sources = {s["name"]: s for s in config["sources"]}

    # -- helpers ---------------------------------------------------------------------------
    def _source_frame(self, name: str) -> pd.DataFrame:
        src = self.sources[name]
        df = read_table(src["path"], self.base)
        if src.get("rename"):
            df = df.rename(columns=src["rename"])
        if src.get("columns"):
            df = df[list(src["columns"]) + ([src["weight"]] if src.get("weight") else [])]
        if src.get("dropna", True):
            model = self.config["model"]
            needed = [c for c in list(model["targets"]) + list(model.get("conditions", [])) if c in df.columns]
            df = df.dropna(subset=needed).reset_index(drop=True)
        return df

    def _training_source(self) -> tuple[Path, str | None]:
        """The table the model is fitted on and its weight column."""
        if len(self.config["sources"]) > 1:
            base = self.config["fuse"]["base"]
            return self.out / "fused.parquet", self.sources[base].get("weight")
        src = self.config["sources"][0]
        return resolve_path(src["path"], self.base), src.get("weight")

    def _population_file(self) -> Path:
        for stage, name in (("sparsify", "subset.parquet"), ("calibrate", "calibrated.parquet")):
            if stage in self.config:
                return self.out / name
        return self._generated()

    def _generated(self) -> Path:
        gen = self.config["generate"]
        return self.out / (gen.get("dataset", "population") if gen.get("partition_by") else "synthetic.parquet")

    def _targets(self, section: str):
        """(Targets, path) of ``section``, falling back on ``[calibrate]``'s targets file."""
        spec = self.config[section].get("targets") or self.config.get("calibrate", {}).get("targets")
        path = resolve_path(spec, self.base)
        if not path.exists():
            raise DataValidationError(f"Targets file {str(path)!r} of [{section}] does not exist.")
        return read_targets(path), path

    # -- stages ----------------------------------------------------------------------------
    def fuse(self):
        from .fusion import Source, fuse

        cfg = self.config["fuse"]
        inputs = [resolve_path(s["path"], self.base) for s in self.config["sources"]]
        target = self.out / "fused.parquet"
        stage = _Stage(self.out, "fuse", {"fuse": cfg, "sources": self.config["sources"], "seed": self.seed}, inputs, [target])

        def body() -> dict[str, Any]:
            sources = [Source(self._source_frame(n), name=n, weight_col=s.get("weight")) for n, s in self.sources.items()]
            fused = fuse(
                sources, base=cfg["base"], shared=cfg.get("shared"), n_imputations=int(cfg.get("n_imputations", 1)),
                seed=self.seed, synthesizer_params={"verbose": self.progress, **cfg.get("synthesizer", {})},
            )
            write_parquet_atomic(fused.data, target)
            return {"rows": len(fused.data), "note": f"{len(fused.data):,} fused records"}

        return stage, body

    def fit(self):
        from .synthesis import Synthesizer

        model = self.config["model"]
        data_path, weight = self._training_source()
        holdout_path, model_path = self.out / "holdout.parquet", self.out / "model.mpx"
        train_path = self.out / "train.parquet"
        stage = _Stage(self.out, "fit", {"model": model, "seed": self.seed, "weight": weight,
                                         "sources": self.config["sources"]}, [data_path],
                       [model_path, train_path, holdout_path])

        def body() -> dict[str, Any]:
            if len(self.config["sources"]) > 1:
                data = pd.read_parquet(data_path)
            else:
                data = self._source_frame(self.config["sources"][0]["name"])
            share = float(model.get("holdout", 0.2))
            order = np.random.default_rng(self.seed).permutation(len(data))
            cut = int(round((1 - share) * len(data)))
            train, holdout = data.iloc[order[:cut]], data.iloc[order[cut:]]
            params = {k: v for k, v in model.items() if k not in ("targets", "conditions", "holdout")}
            synth = Synthesizer(model["targets"], model.get("conditions", []), verbose=self.progress, **params)
            synth.fit(train, weight_col=weight, seed=self.seed)
            synth.save(model_path)
            write_parquet_atomic(train, train_path)
            write_parquet_atomic(holdout, holdout_path)
            h = synth.history_
            return {"epochs": int(len(h)), "val_loss": float(h["val_loss"].min()),
                    "train_rows": len(train), "note": f"{len(h)} epochs on {len(train):,} records"}

        return stage, body

    def generate(self):
        from .synthesis import Synthesizer

        gen = self.config["generate"]
        model_path, train_path = self.out / "model.mpx", self.out / "train.parquet"
        inputs = [model_path, train_path]
        if gen.get("conditions"):
            inputs.append(resolve_path(gen["conditions"], self.base))
        target = self._generated()
        stage = _Stage(self.out, "generate", {"generate": gen, "seed": self.seed}, inputs, [target])

        def body() -> dict[str, Any]:
            synth = Synthesizer.load(model_path)
            weight = self._training_source()[1]
            train = pd.read_parquet(train_path)
            share = float(self.config["model"].get("holdout", 0.2))
            total = train[weight].sum() if weight else len(train)
            population = float(gen.get("population", total / (1 - share)))
            conditions = read_table(gen["conditions"], self.base) if gen.get("conditions") else None
            n = int(float(gen["n"])) if gen.get("n") is not None else None
            if gen.get("partition_by"):
                from .scale import generate_dataset

                generate_dataset(synth, conditions=conditions, n=n, path=target, partition_by=gen["partition_by"],
                                 rows_per_file=int(gen.get("rows_per_file", 5_000_000)), seed=self.seed,
                                 progress=self.progress)
                return {"rows": n, "note": f"{n:,} records streamed to {target.name}/"}
            synthetic = synth.generate(conditions, seed=self.seed) if conditions is not None else synth.sample(n, seed=self.seed)
            synthetic["weight"] = population / len(synthetic)
            write_parquet_atomic(synthetic, target)
            return {"rows": len(synthetic), "note": f"{len(synthetic):,} records"}

        return stage, body

    def calibrate(self):
        from .calibration import Calibrator

        cfg = self.config["calibrate"]
        targets, targets_path = self._targets("calibrate")
        source, target = self._generated(), self.out / "calibrated.parquet"
        report_path = self.out / "calibration_report.csv"
        stage = _Stage(self.out, "calibrate", {"calibrate": cfg}, [source, targets_path], [target, report_path])

        def body() -> dict[str, Any]:
            if source.is_dir():
                raise DataValidationError(
                    "[calibrate] on a streamed (partitioned) population is not supported by the pipeline; "
                    "use microplex.scale.rake_dataset for out-of-core raking."
                )
            records = pd.read_parquet(source)
            bounds = tuple(cfg["bounds"]) if cfg.get("bounds") else None
            calibrator = Calibrator(method=cfg.get("method", "raking"), bounds=bounds, soft=bool(cfg.get("soft", False)))
            res = calibrator.fit(records, targets, weight_col="weight")
            records["weight"] = np.asarray(res.weights, dtype=float)
            report = res.report()
            report.to_csv(report_path, index=False)
            write_parquet_atomic(records, target)
            summary = {k: _plain(v) for k, v in res.summary.items()}
            return {"targets": len(targets), "max_rel_error": summary.get("max_rel_error"),
                    "converged": summary.get("converged"),
                    "note": f"{len(targets)} targets, max rel. error {summary.get('max_rel_error', float('nan')):.2e}"}

        return stage, body

    def sparsify(self):
        from .calibration import SparseCalibrator

        cfg = self.config["sparsify"]
        targets, targets_path = self._targets("sparsify")
        source = self.out / ("calibrated.parquet" if "calibrate" in self.config else "synthetic.parquet")
        target = self.out / "subset.parquet"
        stage = _Stage(self.out, "sparsify", {"sparsify": cfg, "seed": self.seed}, [source, targets_path], [target])

        def body() -> dict[str, Any]:
            records = pd.read_parquet(source)
            params = {k: v for k, v in cfg.items() if k != "targets"}
            res = SparseCalibrator(**params).fit(records, targets, weight_col="weight")
            weights = np.asarray(res.weights, dtype=float)
            subset = records.assign(weight=weights)[weights > 0].reset_index(drop=True)
            write_parquet_atomic(subset, target)
            summary = {k: _plain(v) for k, v in res.summary.items()}
            return {"kept": len(subset), "max_rel_error": summary.get("max_rel_error"),
                    "note": f"kept {len(subset):,} of {len(records):,} records"}

        return stage, body

    def evaluate(self):
        from .evaluation import evaluate

        cfg = self.config["evaluate"]
        model = self.config["model"]
        population = self._population_file()
        train_path, holdout_path = self.out / "train.parquet", self.out / "holdout.parquet"
        report_path = self.out / cfg.get("report", "report.html")
        scores_path = self.out / "scores.csv"
        inputs = [population, train_path, holdout_path]
        targets = self._targets("calibrate") if "calibrate" in self.config else None
        if targets is not None:
            inputs.append(targets[1])
        stage = _Stage(self.out, "evaluate", {"evaluate": cfg}, inputs, [report_path, scores_path])

        def body() -> dict[str, Any]:
            weight = self._training_source()[1]
            columns = list(model.get("conditions", [])) + list(model["targets"])
            synthetic = pd.read_parquet(population)
            train, holdout = pd.read_parquet(train_path), pd.read_parquet(holdout_path)
            sample = int(cfg.get("max_rows", 50_000))
            if len(synthetic) > sample:
                synthetic = synthetic.sample(sample, random_state=self.seed)
            keep = columns + ([weight] if weight else [])
            report = evaluate(
                train[keep], synthetic[columns + ["weight"]], weight_col=weight, synthetic_weight_col="weight",
                targets=None if targets is None else targets[0],
                holdout_df=holdout[keep], conditions=cfg.get("conditions"),
            )
            report.scores.to_csv(scores_path, index=False)
            report.to_html(report_path)
            return {"report": str(report_path), "note": f"report at {report_path.name}"}

        return stage, body

    def summary(self) -> dict[str, Any]:
        f = self.figures
        summary: dict[str, Any] = {"output": str(self.out), "microplex_version": __version__, "seed": self.seed}
        if "generate" in f:
            summary["rows"] = f["generate"].get("rows")
        if "fit" in f:
            summary["fit_epochs"] = f["fit"].get("epochs")
            summary["fit_val_loss"] = round(float(f["fit"].get("val_loss", float("nan"))), 4)
        errors = [f[s]["max_rel_error"] for s in ("calibrate", "sparsify") if f.get(s, {}).get("max_rel_error") is not None]
        if errors:
            summary["max_target_error"] = float(errors[-1])
        if "sparsify" in f:
            summary["kept_records"] = f["sparsify"].get("kept")
        if "evaluate" in f:
            summary["report"] = f["evaluate"].get("report")
        return summary


def _plain(v: Any) -> Any:
    """JSON-friendly scalar."""
    return v.item() if hasattr(v, "item") else v
