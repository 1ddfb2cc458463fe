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
import tempfile
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
from ._params import check_bool
from ._pipeline_config import MANIFESTS, plan_paths, validate_config
from .io import check_rows_fit_disk, check_rows_fit_memory, file_sha256, read_table, read_targets, resolve_path, write_text_atomic

__all__ = ["load_pipeline", "run_pipeline", "PipelineResult", "STAGES"]

logger = logging.getLogger(__name__)

#: Stages in the order they run; all but ``fit`` and ``generate`` are optional.
STAGES = ("fuse", "fit", "generate", "calibrate", "sparsify", "evaluate")
_MANIFESTS = MANIFESTS
#: Largest pipeline file read (a config is a few hundred bytes; a bigger file is not one).
MAX_CONFIG_BYTES = 1 << 20


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

    Relative paths in the file are resolved against the file's folder (stored as ``_base``). The
    file is untrusted: it must be UTF-8, at most 1 MiB, parse with the safe loaders (no YAML tags
    that build Python objects) and hold only the keys and values of the schema in
    :mod:`microplex._pipeline_config`; anything else raises a :class:`DataValidationError` that
    names the file and the key.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"Pipeline file {str(path)!r} does not exist.")
    if not path.is_file():
        raise DataValidationError(f"Pipeline file {str(path)!r} is not a file.")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise DataValidationError(f"Pipeline file {str(path)!r} must end in .toml, .yaml or .yml.")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise DataValidationError(
            f"Pipeline file {str(path)!r} is {path.stat().st_size:,} bytes; a pipeline file is at most {MAX_CONFIG_BYTES:,}.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"Pipeline file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from exc
    kind = "TOML" if suffix == ".toml" else "YAML"
    try:
        if kind == "TOML":
            config = tomllib.loads(text)
        else:
            import yaml

            config = yaml.safe_load(text)  # safe: no tags that build Python objects
    except RecursionError as exc:
        raise DataValidationError(f"Pipeline file {str(path)!r} is nested too deeply to be a pipeline.") from exc
    except Exception as exc:  # noqa: BLE001 - only the parsers run here: any error is a malformed file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataValidationError(f"Pipeline file {str(path)!r} is not valid {kind}: {reason}") from exc
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise DataValidationError(f"Pipeline file {str(path)!r} must hold a table of settings. Got a {type(config).__name__}.")
    if "_base" in config:
        raise DataValidationError(f"Unknown key '_base' in the top level of {str(path)!r}.")
    config = {**config, "_base": str(path.resolve().parent), "_file": str(path.resolve())}
    config.setdefault("output", f"{path.stem}-output")
    return _validate(config)


def _validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """The checked copy of ``config`` (see :func:`microplex._pipeline_config.validate_config`)."""
    private = {k: config[k] for k in ("_base", "_file") if k in config}
    checked = validate_config({k: v for k, v in config.items() if k != "_file"})
    if "_file" in private:
        checked["_file"] = str(private["_file"])
    return checked


def _apply_overrides(config: dict[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Sets dotted keys (``"generate.n"``) in a copy of ``config``, then checks the result."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise DataValidationError(f"The 'overrides' parameter must be a dict of dotted keys. Got {overrides!r} instead.")
    config = copy.deepcopy(config)
    for key, value in (overrides or {}).items():
        parts = key.split(".") if isinstance(key, str) else []
        if not parts or not all(parts) or any(p.startswith("_") for p in parts):
            raise DataValidationError(f"An override key must be a dotted setting such as 'generate.n'. Got {key!r}.")
        node: Any = config
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(parts[: i + 1])
                raise DataValidationError(
                    f"Cannot set {key!r}: {where!r} is not a table (a list of tables such as [[sources]] cannot be "
                    "set with a dotted key; edit the file).")
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
        """The manifest record when the stage is up to date; ``None`` (run it) otherwise.

        A manifest is untrusted: an unreadable, oversized or wrongly shaped one means "not done",
        so the stage runs again and rewrites it.
        """
        if not self.manifest.is_file() or self.manifest.stat().st_size > MAX_CONFIG_BYTES:
            return None
        try:
            record = json.loads(self.manifest.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError):
            logger.warning("The manifest %s is unreadable; stage %s runs again.", self.manifest, self.name)
            return None
        if not isinstance(record, dict) or not isinstance(record.get("outputs"), dict) \
                or not isinstance(record.get("figures", {}), dict) or record.get("fingerprint") != self.fingerprint:
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
        write_text_atomic(json.dumps(record, indent=1, default=str), self.manifest)


class _Writes:
    """A stage's outputs, written to temporary files beside them and renamed together at the end.

    A stage body asks ``w(path)`` for the file to write instead of ``path``. When the body returns,
    :meth:`commit` renames every file onto its final name; :meth:`discard` (always called) removes
    what is left, so a failed stage leaves its previous outputs as they were and no half-written
    file. Only a streamed dataset folder is written in place, by ``generate_dataset``, which writes
    each part file atomically and resumes from its own manifest.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def __call__(self, final: Path) -> Path:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
        self._pending.append((Path(name), final))
        return Path(name)

    def commit(self) -> None:
        for tmp, final in self._pending:
            os.replace(tmp, final)

    def discard(self) -> None:
        for tmp, _ in self._pending:
            tmp.unlink(missing_ok=True)


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
    # Everything is checked before anything is written: settings, then every input and output path,
    # then the targets files are read.
    force, progress = check_bool(force, "force"), check_bool(progress, "progress")
    if isinstance(pipeline, Mapping):
        config = _validate(dict(pipeline))
    elif isinstance(pipeline, str | os.PathLike):
        config = load_pipeline(pipeline)
    else:
        raise DataValidationError(
            f"The 'pipeline' parameter must be a pipeline file path or a dict. Got {type(pipeline).__name__} instead.")
    config = _apply_overrides(config, overrides)
    base = Path(config.get("_base", "."))
    if config["output"].startswith("bundled:"):
        raise DataValidationError(f"The 'output' setting must be a folder path. Got {config['output']!r} instead.")
    out = (base / Path(config["output"]).expanduser()).resolve()
    inputs = _inputs(config, base)
    plan_paths(config, inputs, out)
    gen, model = config["generate"], config["model"]
    n_columns = len(model["targets"]) + len(model.get("conditions", [])) + 1
    if gen.get("n") is not None and not gen.get("partition_by"):
        check_rows_fit_memory(gen["n"], n_columns, "generate.n")
    elif gen.get("n") is not None:
        check_rows_fit_disk(gen["n"], n_columns, out, "generate.n")
    seed = int(config.get("seed", 0))
    result = PipelineResult(output=out)
    ctx = _Context(config, base, out, seed, progress)
    ctx.read_targets()
    out.mkdir(parents=True, exist_ok=True)

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
        writes = _Writes()
        try:
            figures = body(writes)
            writes.commit()
        finally:
            writes.discard()
        seconds = time.perf_counter() - t0
        stage.finish(seconds, figures)
        ctx.figures[name] = figures
        result.stages[name] = {"status": "ran", "seconds": seconds, **figures}
    result.summary = ctx.summary()
    write_text_atomic(json.dumps(result.summary, indent=1, default=str), out / "summary.json")
    return result


def _inputs(config: Mapping[str, Any], base: Path) -> dict[str, Path]:
    """Every file the run reads (what names it -> path), each checked to exist."""
    inputs: dict[str, Path] = {}
    for i, src in enumerate(config["sources"]):
        inputs[f"[[sources]] #{i + 1} 'path'"] = resolve_path(src["path"], base)
    if config["generate"].get("conditions"):
        inputs["'generate.conditions'"] = resolve_path(config["generate"]["conditions"], base)
    for section in ("calibrate", "sparsify"):
        if config.get(section, {}).get("targets"):
            inputs[f"'{section}.targets'"] = resolve_path(config[section]["targets"], base)
    if config.get("_file"):
        inputs["the pipeline file"] = Path(config["_file"])
    for what, path in inputs.items():
        if not path.exists():
            raise DataValidationError(f"Input file {str(path)!r} ({what}) does not exist.")
    return inputs


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
        label = f"source {name!r} ({src['path']})"
        if src.get("rename"):
            missing = [c for c in src["rename"] if c not in df.columns]
            if missing:
                raise DataValidationError(f"The 'rename' table of {label} names columns {missing} it lacks.")
            df = df.rename(columns=src["rename"])
            names = [str(c) for c in df.columns]
            clashes = sorted({c for c in names if names.count(c) > 1})
            if clashes:
                raise DataValidationError(f"The 'rename' table of {label} gives several columns the names {clashes}.")
        weight = [src["weight"]] if src.get("weight") else []
        if src.get("columns"):
            keep = list(dict.fromkeys(list(src["columns"]) + weight))
            missing = [c for c in keep if c not in df.columns]
            if missing:
                raise DataValidationError(f"The 'columns' of {label} name columns {missing} it lacks.")
            df = df[keep]
        if weight and weight[0] not in df.columns:
            raise DataValidationError(f"The weight column {weight[0]!r} of {label} is not one of its columns.")
        model = self.config["model"]
        model_columns = list(model["targets"]) + list(model.get("conditions", []))
        if len(self.config["sources"]) == 1:
            missing = [c for c in model_columns if c not in df.columns]
            if missing:
                raise DataValidationError(
                    f"The model columns {missing} are not columns of {label}; it has {[str(c) for c in df.columns][:20]}.")
        if src.get("dropna", True):
            needed = [c for c in model_columns if c in df.columns]
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

    def read_targets(self) -> None:
        """Reads every targets file up front, so that a bad one fails before any stage runs."""
        self._read_targets: dict[str, tuple[Any, Path]] = {}
        for section in ("calibrate", "sparsify"):
            if section in self.config:
                spec = self.config[section].get("targets") or self.config.get("calibrate", {}).get("targets")
                path = resolve_path(spec, self.base)
                self._read_targets[section] = (read_targets(path), path)

    def _targets(self, section: str):
        """(Targets, path) of ``section``, falling back on ``[calibrate]``'s targets file."""
        return self._read_targets[section]

    # -- stages ----------------------------------------------------------------------------
    def fuse(self):
        from .fusion import Source, fuse

        cfg = self.config["fuse"]
        inputs = [resolve_path(s["path"], self.base) for s in self.config["sources"]]
        target = self.out / "fused.parquet"
        stage = _Stage(self.out, "fuse", {"fuse": cfg, "sources": self.config["sources"], "seed": self.seed}, inputs, [target])

        def body(w: _Writes) -> dict[str, Any]:
            sources = [Source(self._source_frame(n), name=n, weight_col=s.get("weight")) for n, s in self.sources.items()]
            fused = fuse(
                sources, base=cfg["base"], shared=cfg.get("shared"), n_imputations=int(cfg.get("n_imputations", 1)),
                seed=self.seed, synthesizer_params={"verbose": self.progress, **cfg.get("synthesizer", {})},
            )
            fused.data.to_parquet(w(target), index=False)
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

        def body(w: _Writes) -> dict[str, Any]:
            if len(self.config["sources"]) > 1:
                data = pd.read_parquet(data_path)
            else:
                data = self._source_frame(self.config["sources"][0]["name"])
            share = float(model.get("holdout", 0.2))
            order = np.random.default_rng(self.seed).permutation(len(data))
            cut = int(round((1 - share) * len(data)))
            train, holdout = data.iloc[order[:cut]], data.iloc[order[cut:]]
            if len(train) < 2 or ("evaluate" in self.config and len(holdout) < 1):
                raise DataValidationError(
                    f"The fit stage has {len(data)} usable records ({len(train)} to train, {len(holdout)} held out "
                    "after 'model.holdout'); it needs at least 2 to train and 1 held out for [evaluate].")
            params = {k: v for k, v in model.items() if k not in ("targets", "conditions", "holdout")}
            synth = Synthesizer(model["targets"], model.get("conditions", []), verbose=self.progress, **params)
            synth.fit(train, weight_col=weight, seed=self.seed)
            synth.save(w(model_path))
            train.to_parquet(w(train_path), index=False)
            holdout.to_parquet(w(holdout_path), index=False)
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

        def body(w: _Writes) -> dict[str, Any]:
            synth = Synthesizer.load(model_path)
            weight = self._training_source()[1]
            train = pd.read_parquet(train_path)
            share = float(self.config["model"].get("holdout", 0.2))
            total = train[weight].sum() if weight else len(train)
            population = float(gen.get("population", total / (1 - share)))
            conditions = read_table(gen["conditions"], self.base) if gen.get("conditions") else None
            if conditions is not None:
                missing = [c for c in self.config["model"].get("conditions", []) if c not in conditions.columns]
                if missing:
                    raise DataValidationError(
                        f"The conditions file {gen['conditions']!r} ('generate.conditions') lacks the model's condition "
                        f"columns {missing}.")
            n = int(float(gen["n"])) if gen.get("n") is not None else None
            if gen.get("partition_by"):
                from .scale import generate_dataset

                generate_dataset(synth, conditions=conditions, n=n, path=target, partition_by=gen["partition_by"],
                                 rows_per_file=int(gen.get("rows_per_file", 5_000_000)), seed=self.seed,
                                 progress=self.progress)
                return {"rows": n, "note": f"{n:,} records streamed to {target.name}/"}
            synthetic = synth.generate(conditions, seed=self.seed) if conditions is not None else synth.sample(n, seed=self.seed)
            if len(synthetic) == 0:
                raise DataValidationError(f"The generate stage produced no records (conditions file {gen.get('conditions')!r}).")
            synthetic["weight"] = population / len(synthetic)
            synthetic.to_parquet(w(target), index=False)
            return {"rows": len(synthetic), "note": f"{len(synthetic):,} records"}

        return stage, body

    def calibrate(self):
        from .calibration import Calibrator

        cfg = self.config["calibrate"]
        targets, targets_path = self._targets("calibrate")
        source, target = self._generated(), self.out / "calibrated.parquet"
        report_path = self.out / "calibration_report.csv"
        stage = _Stage(self.out, "calibrate", {"calibrate": cfg}, [source, targets_path], [target, report_path])

        def body(w: _Writes) -> dict[str, Any]:
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
            report.to_csv(w(report_path), index=False)
            records.to_parquet(w(target), index=False)
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

        def body(w: _Writes) -> dict[str, Any]:
            records = pd.read_parquet(source)
            params = {k: v for k, v in cfg.items() if k != "targets"}
            res = SparseCalibrator(**params).fit(records, targets, weight_col="weight")
            weights = np.asarray(res.weights, dtype=float)
            subset = records.assign(weight=weights)[weights > 0].reset_index(drop=True)
            subset.to_parquet(w(target), index=False)
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

        def body(w: _Writes) -> dict[str, Any]:
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
                holdout_df=holdout[keep], conditions=cfg.get("conditions"), pmse=cfg.get("pmse", True),
            )
            report.scores.to_csv(w(scores_path), index=False)
            report.to_html(w(report_path))
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
