"""One reproducible job from sources to a calibrated, evaluated population.

A pipeline file (TOML or YAML) declares the stages; :func:`run_pipeline` runs

    sources -> fuse -> fit -> generate -> calibrate -> sparsify -> evaluate

writing every stage's output under ``output`` with a manifest (inputs' hashes, settings, seeds,
package version). A re-run with the same file skips the stages whose manifest still matches, so
an interrupted run resumes after the last finished stage and an unchanged run reproduces the same
files. See ``docs/reference/pipeline.md`` for the file reference.

Where things are:

* :mod:`microplex._pipeline_config`: the file's schema and checks, and the output-path checks;
* :mod:`microplex._pipeline_stages`: the stages, one table (``STAGE_TABLE``) in which each stage
  declares the artifacts it reads and writes by name, and the stage functions;
* :mod:`microplex._pipeline_manifest`: a stage's manifest (skip and resume) and atomic writes;
* this module: loading a file, and the runner, which checks everything, binds each stage's inputs
  to the outputs earlier stages declared, and runs the stages in order.

Seeds: the file's one ``seed`` is spawned, each stage drawing from its own named child of
``numpy.random.SeedSequence(seed)`` (``split``, ``fit``, ``generate``, ``sparsify``,
``evaluate``, ``fuse``).

Adding a stage: write its function ``def _name(ctx: StageContext) -> dict`` in
:mod:`microplex._pipeline_stages` (read ``ctx.input(artifact)``, write ``ctx.output(artifact)``,
draw from ``ctx.seed(stream)``), add one ``Stage(name, function, inputs=..., outputs=...,
settings=..., seeds=...)`` entry at its place in ``STAGE_TABLE`` and, when the stage has settings,
its section in :data:`microplex._pipeline_config.SCHEMA`. Nothing else changes: the runner plans,
checks, fingerprints and runs it like the others.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from ._errors import DataValidationError, MicroplexError
from ._params import check_bool
from ._pipeline_config import MANIFESTS, check_public, plan_paths, validate_config
from ._pipeline_inputs import check_target_columns
from ._pipeline_manifest import (Manifest, Writes, check_removable, discard_folder, read_verified, remove_orphans,
                                 written_by_microplex)
from ._pipeline_stages import (FUSION_TABLES, STAGE_TABLE, PlannedStage, StageContext, bound_text, external_inputs,
                               output_files, plan, stage_seeds)
from .io import (check_rows_fit_disk, check_rows_fit_memory, file_sha256, read_public_metadata, read_targets,
                 resolve_path, write_text_atomic)

__all__ = ["load_pipeline", "run_pipeline", "PipelineResult", "STAGES"]

logger = logging.getLogger(__name__)

#: Stages in the order they run; all but ``fit`` and ``generate`` are optional (the table:
#: :data:`microplex._pipeline_stages.STAGE_TABLE`).
STAGES = tuple(stage.name for stage in STAGE_TABLE)
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
        for key in ("fusion_bounds", "widest_bound", "rows", "train_households", "fit_epochs", "fit_loss",
                    "fit_val_loss", "privacy_spent", "max_target_error", "kept_records", "heldout_median_p90",
                    "membership_auc", "report"):
            if key in s:
                value = s[key]
                if isinstance(value, dict):  # privacy_spent: {"epsilon": ..., "delta": ...}
                    value = ", ".join(f"{k} {v:.4g}" for k, v in value.items())
                lines.append(f"  {key}: {value}")
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
            from ._files import load_yaml

            config = load_yaml(text)  # safe (no tags that build Python objects); a key given twice is refused
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
    # Everything is checked before anything is written: settings, the stage plan, every input and
    # output path, the record counts, then the targets files are read.
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
    planned = plan(config, base, out)
    plan_paths(inputs, out, output_files(config, {"summary.json": "summary", MANIFESTS: "manifests"}))
    _check_kinds(planned)
    _check_sizes(config, out)
    seed = int(config.get("seed", 0))
    external = external_inputs(config, base)
    read: dict[Path, str] = {}  # each file read up front -> the hash of the bytes read (what the manifests record)
    targets = {name.split(".")[0]: _read_hashed(path, read_targets, read)
               for name, path in external.items() if name.endswith(".targets")}
    check_target_columns(config, targets)  # each column a target names, one the population will have
    if "evaluate" in targets and config["evaluate"].get("areas"):  # each area column fixed by some held-out cell
        from .evaluation.areas import check_area_columns

        check_area_columns(targets["evaluate"], config["evaluate"]["areas"], "'evaluate.areas'")
    if "model.public" in external:  # a DP fit's public metadata, read (as untrusted data) before any work
        targets["public"] = _read_hashed(external["model.public"], read_public_metadata, read)
        check_public(config, targets["public"])
    from .scale._lock import OutputLock

    out.mkdir(parents=True, exist_ok=True)
    # One run at a time per output folder (a second is refused naming the first; a killed run's lock is
    # taken over once its process is provably gone), and what a killed run left half-written is removed.
    with OutputLock(out, out / MANIFESTS, writer="microplex pipeline run"):
        _remove_summary(out)
        remove_orphans([out, out / MANIFESTS, *(p.parent for step in planned for o, p in step.outputs.items()
                                                if o not in step.folders)])
        _remove_stale_outputs(out, planned, list(inputs.values()))
        result = _run_stages(planned, config, base, out, seed, targets, read, force, progress, inputs)
        write_text_atomic(json.dumps(result.summary, indent=1, default=str), out / "summary.json")
    return result


def _remove_summary(out: Path) -> None:
    """Removes the last run's ``summary.json`` as a run starts (it is written again when the run ends): a run
    that fails leaves none, not the figures of an earlier run beside the outputs its stages replaced (rows 1,000
    beside a synthetic.parquet of 1,500). A folder of that name is left for the final write to refuse."""
    summary = out / "summary.json"
    if summary.is_symlink() or summary.is_file():
        summary.unlink()


def _read_hashed(path: Path, reader: Callable[[Path], Any], read: dict[Path, str]) -> Any:
    """``reader(path)``, noting in ``read`` the SHA-256 of the bytes it read.

    The files read up front (targets, held-out cells, public metadata) are used by stages that start
    minutes later; their manifests record this hash, not the file's hash when the stage starts, so a file
    edited meanwhile is not recorded as used (the next run sees the edit and runs the stage again). The
    file is hashed before and after the read: a file that changed in between (another program writing it),
    or that differs from an earlier read of the same path, raises a :class:`DataValidationError`.
    """
    if not path.is_file():
        return reader(path)  # absent or a folder: the reader says so
    before = file_sha256(path)
    value = reader(path)
    if file_sha256(path) != before or read.get(path, before) != before:
        raise DataValidationError(
            f"The input file {str(path)!r} changed while the pipeline read it; run the pipeline again once the file "
            "is written.")
    read[path] = before
    return value


def _run_stages(planned: list[PlannedStage], config: dict[str, Any], base: Path, out: Path, seed: int,
                targets: dict[str, Any], read: Mapping[Path, str], force: bool, progress: bool,
                inputs: Mapping[str, Path]) -> PipelineResult:
    """Runs (or skips) each planned stage in order; the result with the run's summary. ``read``: the hash of
    each file read up front, recorded as read (:func:`_read_hashed`); ``inputs``: the files the pipeline file
    names (:func:`_inputs`, checked at the start), checked again where a stage finds one missing."""
    result = PipelineResult(output=out)
    figures: dict[str, dict[str, Any]] = {}
    for step in planned:
        name = step.stage.name
        seeds = stage_seeds(seed, step.stage)
        settings = {**{s: config.get(s) for s in step.stage.settings}, "seed": seed, "seeds": seeds,
                    **(step.stage.derived(config, targets) if step.stage.derived is not None else {})}
        paths = step.input_paths()
        for what, path in inputs.items():  # a file the pipeline names, moved or replaced by a pipe during the run
            if path in paths:  # before it is hashed (a pipe's hash never ends), skipped stage or not
                _check_input(path, what, stage=name)
        absent = [p for p in paths if not p.exists()]
        if absent:  # the plan binds every other input to an earlier output: a gap is a bug in the stage table
            raise RuntimeError(f"Stage {name!r} reads {[str(p) for p in absent]}, which no earlier stage wrote.")
        manifest = Manifest(out, name, settings, paths, list(step.outputs.values()), read)
        record = None if force else manifest.is_done()
        if record is not None:
            logger.info("Stage %s is up to date; skipped.", name)
            result.stages[name] = {"status": "skipped", "seconds": 0.0, **record.get("figures", {})}
            figures[name] = record.get("figures", {})
            continue
        t0 = time.perf_counter()
        if force or manifest.restarts():  # a folder streamed in place by an attempt of other settings: not resumed
            for o in step.in_place:
                discard_folder(step.outputs[o], _rename_hint(step, o))
        manifest.start()
        writes = Writes()
        ctx = StageContext(config, base, out, progress, step.inputs, seeds, targets,
                           write=lambda o, step=step, writes=writes: (
                               step.outputs[o] if o in step.folders else writes(step.outputs[o])),
                           name=name, hashes=manifest.input_hashes)
        try:
            try:
                figures[name] = step.stage.run(ctx)
            except (MicroplexError, OSError) as exc:  # which stage of the run failed: a note (the CLI prints it)
                written = _output_written(ctx, step, exc)
                if written is not None:  # a full disk's error names no file, or a temporary one
                    exc.add_note(f"writing the {written!r} output {str(step.outputs[written])!r}")
                exc.add_note(f"in the pipeline stage [{name}]")
                raise
            unwritten = sorted(set(step.outputs) - ctx.written)
            if unwritten:
                raise RuntimeError(f"Stage {name!r} did not write its declared outputs {unwritten}.")
            writes.commit()
        finally:
            writes.discard()
        seconds = time.perf_counter() - t0
        manifest.finish(seconds, figures[name])
        result.stages[name] = {"status": "ran", "seconds": seconds, **figures[name]}
    result.summary = _summary(figures, out, seed)
    return result


def _output_written(ctx: StageContext, step: PlannedStage, exc: Exception) -> str | None:
    """The output a stage was writing when ``exc`` stopped it: for an ``OSError``, the output it last asked for
    (:attr:`StageContext.writing`), unless the error names one of the stage's inputs (a read's error)."""
    if not isinstance(exc, OSError) or ctx.writing is None or ctx.writing not in step.outputs:
        return None
    if isinstance(exc.filename, str | bytes | os.PathLike):
        failed = Path(os.fsdecode(exc.filename)).resolve()
        if any(failed == src or src in failed.parents for src in (p.resolve() for p in step.input_paths())):
            return None
    return ctx.writing


def _remove_stale_outputs(out: Path, planned: list[PlannedStage], inputs: list[Path]) -> None:
    """Removes what an earlier run wrote that this run does not: the outputs of a stage that no longer runs
    (its section taken out of the file), and its record, and the outputs a stage that still runs wrote under
    another name or kind (a renamed ``evaluate.report``, a population folder that is now a file), so that no
    stale ``subset.parquet`` or ``first.html`` sits beside the new outputs. The record is untrusted: one that fails
    its checksum (an edited record, :func:`~microplex._pipeline_manifest.read_verified`) counts as absent and
    removes nothing; only paths inside the output folder that are no output of this run, no input and not in
    ``.microplex`` are removed, and a folder only when microplex wrote it
    (:func:`~microplex._pipeline_manifest.written_by_microplex`)."""
    running = {step.stage.name for step in planned}
    keep = [p.resolve() for step in planned for p in step.outputs.values()] + [p.resolve() for p in inputs]
    manifests = (out / MANIFESTS).resolve()
    for stage in STAGE_TABLE:
        record_path = out / MANIFESTS / f"{stage.name}.json"
        if not record_path.is_file():
            continue
        why = "writes elsewhere now" if stage.name in running else "no longer runs"
        record = read_verified(record_path, stage.name)
        if record is None:  # unreadable or edited: nothing it lists is removed (its stage, if it runs, runs again)
            logger.warning("The manifest %s is unreadable or was edited; the files it lists are left as they are.",
                           record_path)
        listed = record.get("outputs") if record is not None else None
        for name in (listed if isinstance(listed, dict) else {}):
            path = Path(name) if isinstance(name, str) else None
            if path is None or not path.is_absolute() or path.is_symlink() or not path.exists():
                continue
            real = path.resolve()
            if real == out or out not in real.parents or real == manifests or manifests in real.parents \
                    or any(real == k or real in k.parents or k in real.parents for k in keep):
                continue
            if real.is_dir() and not written_by_microplex(real):  # replaced by a folder of the user's: kept
                logger.warning("Stage %s %s; its earlier output %s now holds files microplex did not write, "
                               "so it is left as it is.", stage.name, why, real)
                continue
            logger.info("Stage %s %s: removing its earlier output %s.", stage.name, why, real)
            if real.is_dir():
                discard_folder(real)
            else:
                real.unlink(missing_ok=True)
        if stage.name not in running:
            for marker in (record_path, out / MANIFESTS / f"{stage.name}.started.json"):
                marker.unlink(missing_ok=True)


def _rename_hint(step: PlannedStage, name: str) -> str:
    """How to give output ``name`` of ``step`` another place: its setting, when one names it."""
    setting = next((o.setting for o in step.stage.outputs if o.name == name and o.folder and o.setting), None)
    return f"choose another name ({setting!r}) or output folder" if setting else "choose another output folder"


def _check_kinds(planned: list[PlannedStage]) -> None:
    """Refuses an existing output of the other kind (a folder where a stage writes a file, or a file
    where it writes a folder), and an output folder that microplex did not write (a stage replaces its
    folder whole: the user's files in it were removed), before any work: found at the end, it failed a
    stage after its solve."""
    for step in planned:
        for name, path in step.outputs.items():
            folder = name in step.folders
            if folder:
                check_removable(path, _rename_hint(step, name))
            if path.is_symlink() or not path.exists() or path.is_dir() == folder:
                continue
            kind, wanted = ("file", "folder") if folder else ("folder", "file")
            raise DataValidationError(
                f"The output {str(path)!r} of [{step.stage.name}] is an existing {kind}; the stage writes a {wanted} "
                "there. Remove it or choose another output folder.")


def _check_sizes(config: Mapping[str, Any], out: Path) -> None:
    """Refuses record counts that cannot fit in memory (or, streamed, on disk) before any work."""
    gen, model = config["generate"], config["model"]
    if gen.get("n_households") is not None:  # a household pipeline: at least one person per household
        n_columns = len(model["household_vars"]) + len(model["person_vars"]) + 2
        check_rows_fit_disk(gen["n_households"], n_columns, out, "generate.n_households")
        if "sparsify" in config:  # [sparsify] reads the persons into memory
            check_rows_fit_memory(gen["n_households"], n_columns, "generate.n_households")
        return
    if gen.get("n") is None:
        return
    n_columns = len(model["targets"]) + len(model.get("conditions", [])) + 1
    if not gen.get("partition_by"):
        check_rows_fit_memory(gen["n"], n_columns, "generate.n")
        return
    check_rows_fit_disk(gen["n"], n_columns, out, "generate.n")
    if "sparsify" in config:  # [sparsify] reads the streamed population into memory
        check_rows_fit_memory(gen["n"], n_columns, "generate.n")


def _check_input(path: Path, what: str, stage: str | None = None) -> None:
    """Refuses the input ``path`` that the pipeline file names (``what``: the setting) if it is missing, or neither
    a regular file nor a folder (a named pipe or a device, hashed and read to its end, would never end; only its
    kind is looked at, it is never opened); ``stage``: the stage about to read it, after the checks at the start of
    the run passed it (it was moved, deleted or replaced since)."""
    if not path.exists():
        during = (f"; it was there when the run started: it was moved or deleted before the stage [{stage}] read it"
                  if stage else "")
        raise DataValidationError(f"Input file {str(path)!r} ({what}) does not exist{during}.")
    if not (path.is_file() or path.is_dir()):
        during = (f"; it was a file or a folder when the run started: it was replaced before the stage [{stage}] "
                  "read it" if stage else "")
        raise DataValidationError(
            f"Input file {str(path)!r} ({what}) is not a regular file or a folder (a named pipe or a device is never "
            f"read to its end){during}; give the path of a file or a dataset folder.")


def _inputs(config: Mapping[str, Any], base: Path) -> dict[str, Path]:
    """Every file the run reads (what names it -> path), each checked (:func:`_check_input`)."""
    inputs: dict[str, Path] = {}
    for i, src in enumerate(config["sources"]):
        inputs[f"[[sources]] #{i + 1} 'path'"] = resolve_path(src["path"], base)
    if config["generate"].get("conditions"):
        inputs["'generate.conditions'"] = resolve_path(config["generate"]["conditions"], base)
    for section in ("calibrate", "sparsify"):
        if config.get(section, {}).get("targets"):
            inputs[f"'{section}.targets'"] = resolve_path(config[section]["targets"], base)
    if config.get("evaluate", {}).get("heldout"):
        inputs["'evaluate.heldout'"] = resolve_path(config["evaluate"]["heldout"], base)
    if config["model"].get("public"):
        inputs["'model.public'"] = resolve_path(config["model"]["public"], base)
    if config.get("_file"):
        inputs["the pipeline file"] = Path(config["_file"])
    for what, path in inputs.items():
        _check_input(path, what)
    return inputs


def _summary(figures: Mapping[str, Mapping[str, Any]], out: Path, seed: int) -> dict[str, Any]:
    """The run's key figures (written to ``summary.json``)."""
    f = figures
    summary: dict[str, Any] = {"output": str(out), "microplex_version": __version__, "seed": seed}
    if "fuse" in f:  # the fusion's tables, and the widest range of correlations the data leave to the CIA
        summary |= {k: f["fuse"][k] for k in (*FUSION_TABLES, "bound_pairs") if k in f["fuse"]}
        if "widest_bound" in f["fuse"]:
            summary["widest_bound"] = bound_text(f["fuse"]["widest_bound"])
    if "generate" in f:
        summary["rows"] = f["generate"].get("rows")
    if "fit" in f:  # a household model reports its households, not one flow's epochs and loss
        if "epochs" in f["fit"]:
            summary["fit_epochs"] = f["fit"]["epochs"]
        if "loss" in f["fit"]:
            summary["fit_loss"] = round(float(f["fit"]["loss"]), 4)
        if "train_households" in f["fit"]:
            summary["train_households"] = f["fit"]["train_households"]
        if "val_loss" in f["fit"]:
            summary["fit_val_loss"] = round(float(f["fit"]["val_loss"]), 4)
        if "epsilon" in f["fit"]:  # a differentially private fit: what its accountant says it spent
            summary["privacy_spent"] = {"epsilon": f["fit"]["epsilon"], "delta": f["fit"]["delta"]}
    errors = [f[s]["max_rel_error"] for s in ("calibrate", "sparsify") if f.get(s, {}).get("max_rel_error") is not None]
    if errors:
        summary["max_target_error"] = float(errors[-1])
    if "sparsify" in f:
        summary["kept_records"] = f["sparsify"].get("kept")
    if "evaluate" in f:
        summary["report"] = f["evaluate"].get("report")
        if "membership_auc" in f["evaluate"]:
            summary["membership_auc"] = round(float(f["evaluate"]["membership_auc"]), 4)
        heldout = {k.removeprefix("heldout_"): v for k, v in f["evaluate"].items() if k.startswith("heldout_")}
        if heldout:  # evaluate.heldout: |relative error| over the held-out cells, per population
            summary["heldout_median_p90"] = ", ".join(
                f"{name} {v['median']:.3f} / {v['p90']:.3f}" for name, v in heldout.items())
    return summary
