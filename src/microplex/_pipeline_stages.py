"""The pipeline's stages as one table: what each stage reads, writes and draws, and its function.

:data:`STAGE_TABLE` (at the end of this module) lists the stages in the order they run. Each
:class:`Stage` declares, once:

* ``inputs``: the artifacts it reads, by name (``"model"``, ``"population"``; ``"name?"`` when
  optional);
* ``outputs``: the artifacts it writes, each an :class:`Output` (name -> file or folder in the
  output folder, and the setting that renames it, if any);
* ``settings``: the pipeline sections its manifest fingerprints; ``seeds``: its random streams,
  each the named child of the one pipeline seed (:func:`microplex._random.named_child`);
* ``derived``: what else the stage reads from the file or the targets files, as ``derived(config,
  targets) -> dict``, fingerprinted with its sections (the columns the targets filter on, which decide
  the rows ``fit`` and ``fuse`` drop; the starting weight of a dataset folder's records);
* ``enabled``: when it runs; ``run``: its function, ``run(ctx) -> figures``.

:func:`plan` binds names to paths: first the input files the pipeline file names (``sources``,
``table`` (the one source), ``conditions``, ``calibrate.targets``, ``sparsify.targets``), then,
stage by stage, each stage's outputs. A name written again is rebound, so a stage reads what the
last stage before it declared: ``population`` is ``synthetic.parquet`` (or the streamed dataset
folder) after [generate], ``calibrated.parquet`` after [calibrate], ``subset.parquet`` after
[sparsify]; ``table`` is the source, or ``fused.parquet`` after [fuse]. No stage computes another
stage's path, and a stage whose input nothing writes is refused before any work.

Adding a stage: write ``def _mystage(ctx: StageContext) -> dict`` (read ``ctx.input(name)``,
write ``ctx.output(name)``, draw from ``ctx.seed(stream)``, return the figures shown in the
summary), add one :class:`Stage` entry at its place in :data:`STAGE_TABLE`, and, when it has
settings, its section in :data:`microplex._pipeline_config.SCHEMA`.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from . import _pipeline_households as households
from ._errors import DataValidationError
from ._params import to_python
from ._pipeline_config import WEIGHT, refuse_negative_weights, schema_params, synthesizer_params
from ._pipeline_areas import (_POPULATIONS, _area_conditions, _check_targets_on, _heldout, _sparsify_by,
                              _split_within, area_streams, check_generate_by, check_geography)
from ._pipeline_inputs import (_read_population, _source_frame, _training_weight, base_records, dropped_columns,
                               filtered_columns, imputations, stage_population_total)
from ._pipeline_manifest import _output_hash, discard_folder
from ._random import int_seed, named_child
from .io import as_numbers, read_table, resolve_path

_T = TypeVar("_T")

__all__ = ["Output", "Stage", "StageContext", "PlannedStage", "STAGE_TABLE", "plan", "output_files", "FUSION_TABLES",
           "bound_text", "widest_bound"]

Artifact = Path | tuple[Path, ...]


@dataclass(frozen=True)
class Output:
    """One artifact a stage writes: its name, its file (or folder) and the setting that renames it.

    ``in_place``: a folder the stage streams into in place (not through a temporary renamed at the end),
    whose writer resumes an interrupted attempt of the same stage. The runner removes it before the
    stage runs when an earlier attempt had other settings, seeds or inputs, or under ``force``.
    """

    name: str
    file: str
    setting: str | None = None
    folder: bool = False
    in_place: bool = False
    when: Callable[[Mapping[str, Any]], bool] | None = None

    def file_in(self, config: Mapping[str, Any]) -> str:
        """The file name for ``config`` (the ``setting`` when given, else ``file``)."""
        if self.setting is None:
            return self.file
        section, key = self.setting.split(".")
        return config.get(section, {}).get(key, self.file)


@dataclass(frozen=True)
class Stage:
    """One row of the stage table (see the module docstring)."""

    name: str
    run: Callable[[StageContext], dict[str, Any]]
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    settings: tuple[str, ...] = ()
    seeds: tuple[str, ...] = ()
    enabled: Callable[[Mapping[str, Any]], bool] | None = None
    derived: Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]] | None = None

    def runs(self, config: Mapping[str, Any]) -> bool:
        """Whether the stage runs: its ``enabled`` test, else whether its section is in ``config``."""
        return self.enabled(config) if self.enabled is not None else self.name in config


@dataclass
class PlannedStage:
    """A stage with its inputs and outputs bound to paths."""

    stage: Stage
    inputs: dict[str, Artifact]
    outputs: dict[str, Path]
    folders: frozenset[str]
    in_place: frozenset[str] = frozenset()

    def input_paths(self) -> list[Path]:
        """Every input path, in declaration order (sources flattened)."""
        paths: list[Path] = []
        for value in self.inputs.values():
            paths.extend(value if isinstance(value, tuple) else (value,))
        return paths


@dataclass
class StageContext:
    """What a stage function sees: its inputs, where to write its outputs, its seeds."""

    config: dict[str, Any]
    base: Path
    out: Path
    progress: bool
    inputs: dict[str, Artifact]
    seeds: dict[str, int]
    targets: dict[str, Any]  # the files read up front: each section's targets, "public" (a DP fit's metadata)
    write: Callable[[str], Path]
    written: set[str] = field(default_factory=set)
    name: str = ""
    hashes: Mapping[str, str] = field(default_factory=dict)  # the stage's manifest: each input's hash at its start
    writing: str | None = None  # the output being written: the last asked for, until the stage asks for an input

    def read_input(self, path: Path, reader: Callable[[Path], _T]) -> _T:
        """``reader(path)`` of an input file the pipeline file names (a source, the conditions), refused when the
        file does not hold, after the read, the content the stage's manifest hashed at its start (``hashes``).

        The manifest records that hash: a file edited between the stage's start and its read would be recorded
        with the hash of content the stage did not use (and a rerun with that content put back skipped the stage).
        """
        self.writing = None
        value = reader(path)
        recorded = self.hashes.get(str(path))
        if recorded is not None and _output_hash(path) != recorded:
            raise DataValidationError(
                f"The input file {str(path)!r} changed after the stage [{self.name}] started (its record would name "
                "content the stage did not read); run the pipeline again once the file is written.")
        return value

    def input(self, name: str) -> Any:
        """The path (or paths) bound to input ``name``; ``None`` for an absent optional input (a stage reads an
        input once it has written the output it asked for before: ``writing`` is cleared)."""
        self.writing = None
        return self.inputs.get(name)

    def output(self, name: str) -> Path:
        """Where to write output ``name`` (a temporary renamed when the stage succeeds); the stage writes it
        there at once, and an ``OSError`` meanwhile (a full disk) is said to be writing it (``writing``)."""
        self.written.add(name)
        self.writing = name
        return self.write(name)

    def seed(self, stream: str) -> int:
        """The integer seed of ``stream``."""
        return self.seeds[stream]


def stage_seeds(seed: int, stage: Stage) -> dict[str, int]:
    """Each of the stage's streams: the named child of the pipeline seed, as an integer."""
    return {stream: int_seed(named_child(seed, stream)) for stream in stage.seeds}


def external_inputs(config: Mapping[str, Any], base: Path) -> dict[str, Artifact]:
    """The artifacts the pipeline file names (bound before the first stage)."""
    bound: dict[str, Artifact] = {}
    sources = tuple(resolve_path(s["path"], base) for s in config["sources"])
    bound["sources"] = sources
    if len(sources) == 1:
        bound["table"] = sources[0]
    if config["generate"].get("conditions"):
        bound["conditions"] = resolve_path(config["generate"]["conditions"], base)
    for section in ("calibrate", "sparsify"):
        if section in config:
            spec = config[section].get("targets") or config.get("calibrate", {}).get("targets")
            if not isinstance(spec, str):  # validate_config requires it: resolve_path(None) is a file 'None'
                raise RuntimeError(f"[{section}] has no targets file after the checks of the pipeline file.")
            bound[f"{section}.targets"] = resolve_path(spec, base)
    if config.get("evaluate", {}).get("heldout"):
        bound["evaluate.targets"] = resolve_path(config["evaluate"]["heldout"], base)
    if config["model"].get("public"):
        bound["model.public"] = resolve_path(config["model"]["public"], base)
    return bound


def _outputs(stage: Stage, config: Mapping[str, Any]) -> list[Output]:
    return [o for o in stage.outputs if o.when is None or o.when(config)]


def plan(config: Mapping[str, Any], base: Path, out: Path) -> list[PlannedStage]:
    """The stages that run, in order, each with its inputs and outputs bound to paths."""
    bound = external_inputs(config, base)
    planned = []
    for stage in STAGE_TABLE:
        if not stage.runs(config):
            continue
        inputs: dict[str, Artifact] = {}
        for name in stage.inputs:
            key = name.rstrip("?")
            if key in bound:
                inputs[key] = bound[key]
            elif not name.endswith("?"):
                raise DataValidationError(f"[{stage.name}] reads {key!r}, which no earlier stage of this pipeline writes.")
        outputs = {o.name: out / o.file_in(config) for o in _outputs(stage, config)}
        folders = frozenset(o.name for o in _outputs(stage, config) if o.folder)
        in_place = frozenset(o.name for o in _outputs(stage, config) if o.in_place)
        bound.update(outputs)
        if "population" in outputs and config.get("evaluate", {}).get("heldout"):
            bound[f"population@{stage.name}"] = outputs["population"]  # each population, for the held-out cells
        planned.append(PlannedStage(stage, inputs, outputs, folders, in_place))
    return planned


def output_files(config: Mapping[str, Any], reserved: Mapping[str, str]) -> dict[str, str]:
    """Every file or folder the stages write (relative to the output folder) -> what writes it.

    ``reserved`` holds the runner's own files. Two outputs with one name raise, naming the
    setting that chose the name.
    """
    files = dict(reserved)
    for stage in STAGE_TABLE:
        if not stage.runs(config):
            continue
        for o in _outputs(stage, config):
            name, what = o.file_in(config), o.setting or stage.name
            if name in files:
                raise DataValidationError(
                    f"The {what!r} setting {name!r} is also the output of [{files[name]}]; choose another name."
                    if o.setting else f"The output {name!r} of [{stage.name}] is also the output of [{files[name]}].")
            files[name] = what
    return files


# -- helpers --------------------------------------------------------------------------------------
def _streamed(config: Mapping[str, Any]) -> bool:
    return bool(config["generate"].get("partition_by"))


def _folder(config: Mapping[str, Any]) -> bool:
    """Whether the population is a dataset folder (streamed records, or households and persons)."""
    return _streamed(config) or households.is_households(config)


def _dropped_rows(config: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Any]:
    """What ``fit`` and ``fuse`` read from the targets files and other sections: the columns a target filters on
    (:func:`~microplex._pipeline_inputs.filtered_columns`) and the model columns whose missing values ``dropna``
    drops (:func:`~microplex._pipeline_inputs.dropped_columns`, which the area settings ``generate.by``,
    ``generate.partition_by``, ``sparsify.by`` and ``model.holdout_by`` decide). Without them, a target added or
    removed, or an area setting changed, reused a model (or fused table) of other rows."""
    filtered = filtered_columns(targets)
    return {"filtered_columns": sorted(filtered), "dropped_columns": dropped_columns(config, filtered)}


def _starting_weight(config: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, Any]:
    """What the records of a dataset folder weigh before calibration, besides the training and held-out tables
    (inputs): they carry no weight column, and :func:`~microplex._pipeline_inputs.stage_population_total` (or the
    households') gives each its share. Without it, a changed ``generate.population`` reused the earlier calibrated
    (or sparsified) weights."""
    if not _folder(config):  # a population file carries its weight column (its hash covers it)
        return {}
    return {"starting_weight": {"generate.population": config["generate"].get("population"),
                                "fuse.n_imputations": imputations(config),
                                "weight": _training_weight(config)}}


# -- the stages ------------------------------------------------------------------------------------
#: The tables of :class:`~microplex.fusion.FusionResult` that [fuse] writes beside ``fused.parquet``: artifact ->
#: file (``bounds``, ``diagnostics`` and ``shared_comparison``, in that order).
FUSION_TABLES = {"fusion_bounds": "fusion_bounds.csv", "fusion_diagnostics": "fusion_diagnostics.csv",
                 "fusion_shared": "fusion_shared.csv"}


def _fuse(ctx: StageContext) -> dict[str, Any]:
    from .fusion import Source, fuse

    cfg = ctx.config["fuse"]
    filtered = filtered_columns(ctx.targets)
    sources = [Source(ctx.read_input(p, lambda p, s=s: _source_frame(ctx.config, s, p, filtered)), name=s["name"],
                      weight_col=s.get("weight"))
               for s, p in zip(ctx.config["sources"], ctx.input("sources"), strict=True)]
    try:
        fused = fuse(sources, base=cfg["base"], shared=cfg.get("shared"),
                     n_imputations=int(cfg.get("n_imputations", 1)), seed=ctx.seed("fuse"),
                     synthesizer_params={"verbose": ctx.progress, **cfg.get("synthesizer", {})})
    except DataValidationError as e:
        reworded = _pipeline_hint(str(e), sources)
        if reworded is None:
            raise
        raise DataValidationError(reworded) from e
    fused.data.to_parquet(ctx.output("table"), index=False)
    tables = {"fusion_bounds": fused.bounds, "fusion_diagnostics": fused.diagnostics,
              "fusion_shared": fused.shared_comparison}
    for name, table in tables.items():
        _listed_as_json(table).to_csv(ctx.output(name), index=False)
    figures: dict[str, Any] = {"rows": len(fused.data), "bound_pairs": len(fused.bounds),
                               **{name: str(ctx.out / FUSION_TABLES[name]) for name in tables}}
    note = f"{len(fused.data):,} fused records"
    widest = widest_bound(fused.bounds)
    if widest is not None:
        figures["widest_bound"] = widest
        pairs = f"{len(fused.bounds)} pair{'s' if len(fused.bounds) != 1 else ''}"
        note += (f"; {pairs} never observed together, the widest {bound_text(widest)} in "
                 f"{FUSION_TABLES['fusion_bounds']}")
    else:
        note += f"; no numeric pair never observed together ({FUSION_TABLES['fusion_bounds']} has no row)"
    return {**figures, "note": note}


def _listed_as_json(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every cell that holds a list or tuple of columns (``predictors``, ``shared``) written as a
    JSON list (``["age", "marr"]``), the same text for the same columns, so the CSV reads back unambiguously."""
    def text(value: Any) -> Any:
        return json.dumps([str(v) for v in value], ensure_ascii=False) if isinstance(value, list | tuple) else value

    return table.apply(lambda column: column.map(text) if column.dtype == object else column)


def bound_text(bound: Mapping[str, Any]) -> str:
    """A row of the bounds (:func:`widest_bound`) as the run's summary shows it.

    >>> bound_text({"y": "b", "z": "c", "lower": -0.5, "cia": 0.2, "upper": 0.9, "fused": 0.18})
    'b x c [-0.500, 0.900] (cia 0.200, fused 0.180)'
    """
    return (f"{bound['y']} x {bound['z']} [{bound['lower']:.3f}, {bound['upper']:.3f}] (cia {bound['cia']:.3f}, "
            f"fused {bound['fused']:.3f})")


def widest_bound(bounds: pd.DataFrame) -> dict[str, Any] | None:
    """The row of :attr:`~microplex.fusion.FusionResult.bounds` with the widest range ``upper - lower`` (the
    first on a tie; rows of undefined width skipped) as ``{y, z, lower, cia, upper, fused}``, or ``None``
    when no row has a width.

    >>> widest_bound(pd.DataFrame({"y": ["a", "b"], "z": ["c", "c"], "lower": [0.1, -0.5], "cia": [0.3, 0.2],
    ...                            "upper": [0.6, 0.9], "fused": [0.31, 0.18]}))
    {'y': 'b', 'z': 'c', 'lower': -0.5, 'cia': 0.2, 'upper': 0.9, 'fused': 0.18}
    """
    width = (pd.to_numeric(bounds["upper"]) - pd.to_numeric(bounds["lower"])).dropna() if len(bounds) else None
    if width is None or width.empty:
        return None
    row = bounds.loc[width.idxmax()]
    return {"y": str(row["y"]), "z": str(row["z"]),
            **{k: float(row[k]) for k in ("lower", "cia", "upper", "fused")}}


# the Python remedy fusion's checks name (Source rename={...: {'categories': ...}}), which a pipeline file cannot
# give: its [[sources]] 'rename' is a table of column renames
_NAME = r"'[^']*'|\"[^\"]*\""  # a name as repr() writes it
_RENAME_HINT = re.compile(
    r"rename=\{(?P<src>" + _NAME + r"): \{'categories': \{(?P<col>" + _NAME + r"): \{\.\.\.\}\}\}\}"
)


def _pipeline_hint(message: str, sources: list) -> str | None:
    """``message`` with fusion's ``rename={...}`` remedy replaced by the pipeline file's own (None if it has none).

    Where the column holds text in some source and numbers in another, the remedy names ``numeric = [...]``
    under the text source's ``[[sources]]`` entry (number codes such as ``"08"``); otherwise a recode of the
    column in the file.
    """
    from .fusion._source import is_categorical

    m = _RENAME_HINT.search(message)
    if m is None:
        return None
    col = ast.literal_eval(m.group("col"))
    holders = [s for s in sources if col in s.data.columns]
    text = [s.name for s in holders if is_categorical(s.data[col])]
    src = ast.literal_eval(m.group("src"))
    recode = (f"a recode of column {col!r} in the file of source {src!r} (a pipeline's [[sources]] 'rename' "
              "renames columns only)")
    if text and len(text) < len(holders):
        names = " and ".join(repr(n) for n in text)
        hint = (f"numeric = {json.dumps([col])} under the [[sources]] entry of source {names} (its codes read as "
                f"numbers), or a recode of column {col!r} in that source's file")
    else:
        hint = recode
    return message[: m.start()] + hint + message[m.end():]


def _fit(ctx: StageContext) -> dict[str, Any]:
    from .synthesis import Synthesizer

    model = ctx.config["model"]
    if "fuse" in ctx.config:
        data = pd.read_parquet(ctx.input("table"))
    else:
        data = ctx.read_input(ctx.input("table"), lambda p: _source_frame(ctx.config, ctx.config["sources"][0], p,
                                                                          filtered_columns(ctx.targets)))
    if households.is_households(ctx.config):
        return households.fit(ctx, data)
    share = float(model.get("holdout", 0.2))
    rng = np.random.default_rng(ctx.seed("split"))
    # split by base record: with fuse.n_imputations, every copy of a record on one side (the held-out records are
    # records the model never saw) and the base records' share held out (the first copy holds them all, in order)
    n = base_records(ctx.config, data)
    if model.get("holdout_by"):
        kept, held = _split_within(data.iloc[:n].reset_index(drop=True), share, model["holdout_by"], rng)
        kept_rows, held_rows = kept.index.to_numpy(), held.index.to_numpy()
    else:
        order = rng.permutation(n)
        cut = int(round((1 - share) * n))
        kept_rows, held_rows = order[:cut], order[cut:]
    copies = n * np.arange(imputations(ctx.config))[:, None]  # row i * n + r: copy i of base record r
    train, holdout = data.iloc[(copies + kept_rows).ravel()], data.iloc[(copies + held_rows).ravel()]
    if len(train) < 2 or ("evaluate" in ctx.config and len(holdout) < 1):
        raise DataValidationError(
            f"The fit stage has {len(data)} usable records ({len(train)} to train, {len(holdout)} held out "
            "after 'model.holdout'); it needs at least 2 to train and 1 held out for [evaluate].")
    check_generate_by(ctx.config, train, _training_weight(ctx.config))  # 'generate.n' too small: refused before the fit
    params = synthesizer_params(model)
    # DP: the public metadata file (read up front, as the targets files), and the fit's noise from a seed the
    # operating system draws, used once and stored nowhere, unless 'model.secret_seed = false' (see docs/privacy.md)
    public = ctx.targets.get("public", {})
    secret = model.get("epsilon") is not None and model.get("secret_seed", True)
    synth = Synthesizer(model["targets"], model.get("conditions", []), verbose=ctx.progress, **params,
                        **schema_params(model.get("categorical", []), public, "'model.categorical'"))
    synth.fit(train, weight_col=_training_weight(ctx.config), seed=None if secret else ctx.seed("fit"))
    synth.set_params(verbose=False)  # saved as it is: the file must not depend on the progress bars (-q)
    synth.save(ctx.output("model"))
    train.to_parquet(ctx.output("train"), index=False)
    holdout.to_parquet(ctx.output("holdout"), index=False)
    h = synth.history_
    fig: dict[str, Any] = {"epochs": int(len(h))}
    if h["train_loss"].notna().any():  # a DP fit records no loss (a statistic of the data no mechanism covers)
        fig["loss"] = float(h["train_loss"].iloc[-1])
    if h["val_loss"].notna().any():  # a validation split (validation_fraction > 0)
        fig["val_loss"] = float(h["val_loss"].min())
    note = f"{len(h)} epochs on {len(train):,} records"
    if hasattr(synth, "privacy_"):  # a DP fit
        fig |= {"epsilon": float(synth.privacy_["epsilon"]), "delta": float(synth.privacy_["delta"])}
        note += (f"; differentially private, spent epsilon {fig['epsilon']:.4g}, delta {fig['delta']:.3g}"
                 + (" (secret seed)" if secret else ""))
    return {**fig, "train_rows": len(train), "note": note}


def _generate(ctx: StageContext) -> dict[str, Any]:
    from .synthesis import Synthesizer
    from .synthesis._validation import check_no_targets, text_conditions

    gen, config = ctx.config["generate"], ctx.config
    if households.is_households(config):
        return households.generate(ctx)
    synth = Synthesizer.load(ctx.input("model"))
    conditions = None
    if ctx.input("conditions"):
        text = text_conditions(synth)  # the model's text categories stay text in a CSV whose cells look like numbers
        conditions = as_numbers(ctx.read_input(ctx.input("conditions"), lambda path: read_table(path, text=text)),
                                gen.get("numeric", []),
                                f"the conditions file {gen['conditions']!r} (its 'generate.numeric' setting)")
    if conditions is not None:
        missing = [c for c in config["model"].get("conditions", []) if c not in conditions.columns]
        if missing:
            raise DataValidationError(
                f"The conditions file {gen['conditions']!r} ('generate.conditions') lacks the model's condition "
                f"columns {missing}.")
        check_no_targets(conditions.columns, config["model"]["targets"])  # as streamed: their values would be replaced
    n = int(gen["n"]) if gen.get("n") is not None else None
    if _streamed(config):
        from .scale import generate_dataset

        target = ctx.output("population")
        manifest = generate_dataset(synth, conditions=conditions, n=n, path=target, partition_by=gen["partition_by"],
                                    rows_per_file=int(gen.get("rows_per_file", 5_000_000)), seed=ctx.seed("generate"),
                                    progress=ctx.progress)
        rows = int(manifest["rows"])
        return {"rows": rows, "note": f"{rows:,} records streamed to {target.name}/"}
    seed = ctx.seed("generate")
    if gen.get("by"):  # every area gets its share of the records
        rng, seed = area_streams(seed)
        conditions = _area_conditions(synth.training_conditions_, np.asarray(synth.training_weights_, dtype=float),
                                      int(n), gen["by"], rng)
    synthetic = synth.generate(conditions, seed=seed) if conditions is not None else synth.sample(n, seed=seed)
    if len(synthetic) == 0:
        raise DataValidationError(f"The generate stage produced no records (conditions file {gen.get('conditions')!r}).")
    synthetic[WEIGHT] = stage_population_total(ctx) / len(synthetic)
    synthetic.to_parquet(ctx.output("population"), index=False)
    return {"rows": len(synthetic), "note": f"{len(synthetic):,} records"}


def _calibrate(ctx: StageContext) -> dict[str, Any]:
    from .calibration import Calibrator
    from .calibration.calibrator import far_miss_note

    cfg = ctx.config["calibrate"]
    targets = ctx.targets["calibrate"]
    if ctx.input("population").is_dir():
        return _calibrate_streamed(ctx)
    records = pd.read_parquet(ctx.input("population"))
    if cfg.get("geography"):  # the areas nest and the nested targets add up, before the solve
        check_geography(records, targets, list(cfg["geography"]))
    bounds = tuple(cfg["bounds"]) if cfg.get("bounds") else None
    calibrator = Calibrator(method=cfg.get("method", "raking"), bounds=bounds, soft=bool(cfg.get("soft", False)))
    res = calibrator.fit(records, targets, weight_col=WEIGHT)
    weights = np.asarray(res.weights, dtype=float)
    refuse_negative_weights(int((weights < 0).sum()), float(weights.min(initial=0.0)))  # before anything is written
    records[WEIGHT] = weights
    res.report().to_csv(ctx.output("calibration_report"), index=False)
    records.to_parquet(ctx.output("population"), index=False)
    summary = {k: to_python(v) for k, v in res.summary.items()}
    return {"targets": len(targets), "max_rel_error": summary.get("max_rel_error"),
            "converged": summary.get("converged"),
            "note": f"{len(targets)} targets, max rel. error {summary.get('max_rel_error', float('nan')):.2e}"
                    + far_miss_note(summary)}


def _calibrate_streamed(ctx: StageContext) -> dict[str, Any]:
    """Out-of-core calibration of a streamed dataset (``microplex.scale.rake_dataset``, the same solver
    as :class:`~microplex.Calibrator`), written as a calibrated copy of the dataset folder.

    The generated records carry no weight column: each starts from an equal share of the population
    total (``initial_weight``), so ``bounds`` bound the ratio of calibrated to generated weights.
    """
    import pyarrow.dataset as pads

    from .scale import rake_dataset, write_calibrated

    if households.is_households(ctx.config):
        return households.calibrate(ctx)
    cfg = ctx.config["calibrate"]
    source = ctx.input("population")
    targets = ctx.targets["calibrate"]
    rows = pads.dataset(source, format="parquet", partitioning="hive").count_rows()
    share = stage_population_total(ctx) / rows
    bounds = tuple(cfg["bounds"]) if cfg.get("bounds") else None
    res = rake_dataset(source, targets, None, method=cfg.get("method", "raking"), bounds=bounds, initial_weight=share,
                       geography=list(cfg["geography"]) if cfg.get("geography") else None)
    target = ctx.output("population")  # a folder, replaced whole: written beside it, then renamed
    partial = target.parent / f".{target.name}.partial"
    from .scale._layout import layout

    side, partial_side = layout(target).meta, layout(partial).meta  # the copy's schema file (partition types)
    for folder in (partial, partial_side):
        shutil.rmtree(folder, ignore_errors=True)
    write_calibrated(res, source, partial, column=WEIGHT)
    households.check_written_weights(partial, cfg, partial)  # a linear calibration's copy: none below 0
    partial_side.mkdir(exist_ok=True)  # the copy's marker, even without a schema file: microplex wrote it
    discard_folder(target)  # the previous copy; a folder of the user's there is refused, not removed
    os.replace(partial_side, side)  # the marker first: a copy is never left without it
    os.replace(partial, target)
    res.report.to_csv(ctx.output("calibration_report"), index=False)
    summary = {k: to_python(v) for k, v in res.summary.items()}
    return {"targets": len(targets), "max_rel_error": summary.get("max_rel_error"),
            "converged": summary.get("converged"), "passes": int(res.n_passes),
            "note": f"{len(targets)} targets out of core in {res.n_passes} passes, max rel. error "
                    f"{summary.get('max_rel_error', float('nan')):.2e}"}


def _sparsify(ctx: StageContext) -> dict[str, Any]:
    from .calibration import SparseCalibrator

    cfg = ctx.config["sparsify"]
    hid = ctx.config["model"].get("household_id")
    records = households.read_persons(ctx) if hid else _read_population(ctx)
    params = {k: v for k, v in cfg.items() if k != "targets"}
    if "random_state" in params and "seed" in params:
        raise DataValidationError("[sparsify] gives both 'seed' and the deprecated 'random_state'; keep 'seed'.")
    if "random_state" in params:  # the deprecated key of [sparsify]: a seed of its own
        warnings.warn("[sparsify] 'random_state' is deprecated; use 'seed'.", FutureWarning, stacklevel=2)
        params["seed"] = params.pop("random_state")
    params.setdefault("seed", ctx.seed("sparsify"))
    if "by" in params:  # one subset per area, each calibrated to its area's targets
        by = params.pop("by")
        weights, areas = _sparsify_by(records, ctx.targets["sparsify"], by, params, WEIGHT, hid)
        areas.rename(columns={"area": by}).to_csv(ctx.output("subset_areas"), index=False)
        summary = {"max_rel_error": float(areas["max_rel_error"].max())}
    else:
        res = SparseCalibrator(**params).fit(records, ctx.targets["sparsify"], weight_col=WEIGHT, household_col=hid)
        weights = np.asarray(res.result_.record_weights, dtype=float)
        summary = {k: to_python(v) for k, v in res.summary.items()}
    subset = records.assign(**{WEIGHT: weights})[weights > 0].reset_index(drop=True)
    subset.to_parquet(ctx.output("population"), index=False)
    return {"kept": len(subset), "max_rel_error": summary.get("max_rel_error"),
            "note": f"kept {len(subset):,} of {len(records):,} records"
                    + (f" in {len(areas)} areas of {by!r}" if cfg.get("by") else "")}


def _evaluate(ctx: StageContext) -> dict[str, Any]:
    from .evaluation import evaluate
    from .synthesis import Synthesizer

    cfg, model = ctx.config["evaluate"], ctx.config["model"]
    weight = _training_weight(ctx.config)
    columns = list(model.get("conditions", [])) + list(model["targets"])
    seed = ctx.seed("evaluate")
    synthetic = _read_population(ctx, max_rows=int(cfg.get("max_rows", 50_000)), seed=seed)
    rows = int(synthetic.attrs.get("population_rows", len(synthetic)))
    heldout = _heldout(ctx) if cfg.get("heldout") else None  # first: a bad cell fails before the long part
    # the training records were fused: the report shows the bounds (read first too)
    bounds = _read_bounds(ctx.input("fusion_bounds")) if ctx.input("fusion_bounds") is not None else None
    train, holdout = pd.read_parquet(ctx.input("train")), pd.read_parquet(ctx.input("holdout"))
    scored = [c for c in columns if c not in cfg.get("exclude", [])]
    keep = scored + ([weight] if weight else [])
    targets = ctx.targets.get("calibrate") if ctx.input("calibrate.targets") else None
    report = evaluate(
        train[keep], synthetic[scored + [WEIGHT]], weight_col=weight, synthetic_weight_col=WEIGHT,
        targets=None if cfg.get("exclude") else targets,
        holdout_df=holdout[keep], conditions=cfg.get("conditions"), pmse=cfg.get("pmse", True), seed=seed,
        progress=ctx.progress, attacks=bool(cfg.get("attacks", False)),
        quasi_identifiers=cfg.get("quasi_identifiers"), sensitive=cfg.get("sensitive"),
    )
    if cfg.get("exclude") and targets is not None:  # the targets may use the excluded columns
        _check_targets_on(report, synthetic, targets)
    report.scores.to_csv(ctx.output("scores"), index=False)
    figures: dict[str, Any] = {}
    if report.attacks is not None:  # evaluate.attacks: the membership-inference AUC (about 0.5: members not told apart)
        figures["membership_auc"] = float(report.attacks["membership_auc"])
    if heldout is not None:
        from .evaluation.areas import error_summary

        heldout.to_csv(ctx.output("heldout_errors"), index=False)
        report.heldout, report.areas = heldout, list(cfg.get("areas", []))
        for row in error_summary(heldout).itertuples():
            figures[f"heldout_{row.population}"] = {"cells": row.cells, "median": row.median, "p90": row.p90}
    # the model: its conditions are shown apart and not judged, its training is shown (as in the tutorial's report)
    sampled = {"synthetic records scored": f"a random sample of {len(synthetic):,} of the population's {rows:,} "
               "(evaluate.max_rows), weighted to stand for it"} if rows > len(synthetic) else None
    report.fusion_bounds = bounds
    model = Synthesizer.load(ctx.input("model"))  # read before the report is written (an error is the read's)
    report.to_html(ctx.output("report"), model=model, provenance=sampled)
    name = cfg.get("report", "report.html")
    return {"report": str(ctx.out / name), **figures, "note": f"report at {name}"}


def _read_bounds(path: Path) -> pd.DataFrame:
    """The bounds [fuse] wrote (``fusion_bounds.csv``), read back as untrusted data: the names as text, the
    correlations as numbers (:func:`~microplex.io.read_table`, which refuses any other cell naming its column), and
    the columns of :attr:`~microplex.fusion.FusionResult.bounds`, in order; any other file is refused, naming it."""
    from .fusion._report import BOUNDS_COLUMNS

    names, numbers = list(BOUNDS_COLUMNS[:5]), list(BOUNDS_COLUMNS[5:])
    try:
        table = read_table(path, text=names, numeric=numbers)
    except DataValidationError as e:
        e.add_note("run the pipeline with --force to fuse again")
        raise
    if list(table.columns) != list(BOUNDS_COLUMNS):
        raise DataValidationError(
            f"The fusion bounds {str(path)!r} have the columns {list(table.columns)}, not the {list(BOUNDS_COLUMNS)} "
            "that [fuse] writes; run the pipeline with --force to fuse again.")
    return table


#: The stages in the order they run (see the module docstring).
STAGE_TABLE: tuple[Stage, ...] = (
    Stage("fuse", _fuse, inputs=("sources",),
          outputs=(Output("table", "fused.parquet"), *(Output(name, file) for name, file in FUSION_TABLES.items())),
          settings=("fuse", "sources"), seeds=("fuse",), derived=_dropped_rows),
    Stage("fit", _fit, inputs=("table", "model.public?"),
          outputs=(Output("model", "model.mpx"), Output("train", "train.parquet"), Output("holdout", "holdout.parquet")),
          settings=("model", "sources"), seeds=("split", "fit"), enabled=lambda c: True, derived=_dropped_rows),
    Stage("generate", _generate, inputs=("model", "train", "holdout", "conditions?"),
          outputs=(Output("population", "synthetic.parquet", when=lambda c: not _folder(c)),
                   Output("population", "population", setting="generate.dataset", folder=True, in_place=True,
                          when=_folder)),
          settings=("generate", "model"), seeds=("generate",), enabled=lambda c: True),
    Stage("calibrate", _calibrate, inputs=("population", "calibrate.targets", "train", "holdout"),
          outputs=(Output("population", "calibrated.parquet", when=lambda c: not _folder(c)),
                   Output("population", "calibrated", folder=True, when=_folder),
                   Output("calibration_report", "calibration_report.csv")),
          settings=("calibrate",), derived=_starting_weight),
    Stage("sparsify", _sparsify, inputs=("population", "sparsify.targets", "train", "holdout"),
          outputs=(Output("population", "subset.parquet"),
                   Output("subset_areas", "subset_areas.csv", when=lambda c: bool(c["sparsify"].get("by")))),
          settings=("sparsify",), seeds=("sparsify",), derived=_starting_weight),
    Stage("evaluate", _evaluate, inputs=("population", "model", "train", "holdout", "calibrate.targets?", "evaluate.targets?",
                                         "fusion_bounds?",
                                         *(f"population@{s}?" for s in _POPULATIONS)),
          outputs=(Output("scores", "scores.csv"), Output("report", "report.html", setting="evaluate.report"),
                   Output("heldout_errors", "heldout_errors.csv", when=lambda c: bool(c["evaluate"].get("heldout")))),
          settings=("evaluate",), seeds=("evaluate",), derived=_starting_weight),
)
