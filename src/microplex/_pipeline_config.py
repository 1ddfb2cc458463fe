"""The schema of a pipeline file: every section, every key, every value checked before any work.

A pipeline file is untrusted data. :func:`validate_config` walks it against :data:`SCHEMA` (one
table of allowed keys and value checks per section) and returns a checked copy, or raises a
:class:`~microplex.DataValidationError` naming the key and the section: an unknown key (with the
likely intended one: ``'wieght' in [[sources]] #1; did you mean 'weight'?``), a value of the wrong
type or range (the :mod:`microplex._params` messages), or settings that contradict each other.
The settings passed to an estimator (``[model]`` and ``[fuse.synthesizer]`` to the Synthesizer,
``[calibrate]`` to the Calibrator, ``[sparsify]`` to the SparseCalibrator) are then checked by
that estimator's own parameter check (:func:`_check_estimators`), so a pipeline accepts exactly the
values the stage will accept, the ranges defined once, and fails before any stage runs.
:func:`plan_paths` then checks every path the run will write (the stage table declares them) and
refuses any that is not inside the output folder or that is (or holds) one of the run's inputs.
"""

from __future__ import annotations

import datetime
import difflib
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from ._errors import DataValidationError
from ._params import check_bool, check_choice, check_float, check_int, check_names, check_seed
from ._params import short_repr as _got
from .synthesis._schedule import check_epochs

__all__ = ["SCHEMA", "validate_config", "plan_paths", "check_public", "synthesizer_params", "MANIFESTS"]

#: Hidden folder of the stage manifests inside the output folder.
MANIFESTS = ".microplex"
#: The synthetic weight column the generate stage adds; no model column may use the name.
WEIGHT = "weight"
# Largest record count: beyond 2**53 a float no longer holds every integer (and no run gets there).
_MAX_COUNT = 2**53

Check = Callable[[Any, str], Any]


# -- value checks (value, dotted name) -> checked value ----------------------------------------
def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        # YAML reads a plain 2024-01-01 as a date (a folder or file named by its date)
        quote = (f": YAML reads a plain {value.isoformat()} as a date; quote it (\"{value.isoformat()}\") for the text"
                 if isinstance(value, datetime.date) else "")
        raise DataValidationError(f"The {name!r} setting must be a non-empty string. Got {_got(value)} instead{quote}.")
    return value


def _int(low: int | None = None, high: int | None = None) -> Check:
    return lambda v, name: check_int(v, name, low=low, high=high)


def _float(low=None, high=None, low_inclusive=True, high_inclusive=True) -> Check:
    return lambda v, name: check_float(v, name, low=low, high=high, low_inclusive=low_inclusive,
                                       high_inclusive=high_inclusive)


def _choice(*choices: str) -> Check:
    return lambda v, name: check_choice(v, name, choices)


def _names(allow_empty: bool = True) -> Check:
    return lambda v, name: check_names(v, name, allow_empty=allow_empty)


def _count(value: Any, name: str) -> int:
    """A record count >= 1: an int, or an integral float such as ``1e6`` (TOML has no ``1_000_000e0``)."""
    expected = f"an int in [1, 2**53] (an integral float such as 1e6 is accepted). Got {_got(value)} instead."
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DataValidationError(f"The {name!r} parameter must be {expected}")
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif math.isfinite(float(value)) and float(value).is_integer():
        v = int(float(value))
    else:
        raise DataValidationError(f"The {name!r} parameter must be {expected}")
    if not 1 <= v <= _MAX_COUNT:
        raise DataValidationError(f"The {name!r} parameter must be {expected}")
    return v


def _bounds(value: Any, name: str) -> list[float]:
    """Weight-ratio bounds ``[lo, hi]``: two finite floats with ``0 <= lo < hi``."""
    ok = isinstance(value, list | tuple) and len(value) == 2
    if ok:
        try:
            lo = check_float(value[0], name, low=0.0)
            hi = check_float(value[1], name, low=0.0)
        except DataValidationError:
            ok = False
        else:
            ok = lo < hi
    if not ok:
        raise DataValidationError(
            f"The {name!r} parameter must be [lo, hi], two finite floats with 0 <= lo < hi. Got {_got(value)} instead.")
    return [float(value[0]), float(value[1])]


def _rename(value: Any, name: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and k and isinstance(v, str) and v
                                                 for k, v in value.items()):
        raise DataValidationError(
            f"The {name!r} setting must be a table of column renames {{old = \"new\"}}. Got {_got(value)} instead.")
    return dict(value)


def _combine(value: Any, name: str) -> dict[str, list[str]]:
    """New key columns ``{new = ["a", "b"]}``: each the listed columns' values joined with ``:``."""
    ok = isinstance(value, Mapping) and bool(value) and all(isinstance(k, str) and k.strip() for k in value)
    if ok:
        try:
            return {k: check_names(v, f"{name}.{k}", allow_empty=False) for k, v in value.items()}
        except DataValidationError:
            ok = False
    raise DataValidationError(
        f"The {name!r} setting must be a table of new key columns {{new = [\"a\", \"b\"]}}, each a list of "
        f"column names. Got {_got(value)} instead.")


def _stratify(value: Any, name: str) -> str | list[str]:
    return _text(value, name) if isinstance(value, str) else check_names(value, name, allow_empty=False)


def _dropna(value: Any, name: str) -> bool | list[str]:
    """``[[sources]] dropna``: true (rows missing a value the model does not draw), false, or a list of columns
    whose missing values drop their rows too (a target's, which the model would draw)."""
    if isinstance(value, bool):
        return value
    try:
        return check_names(value, name, allow_empty=False)
    except DataValidationError:
        raise DataValidationError(
            f"The {name!r} setting must be true, false or a non-empty list of column names. Got {_got(value)} "
            "instead.") from None


def _hidden(value: Any, name: str) -> list[int]:
    if not isinstance(value, list | tuple) or not value:
        raise DataValidationError(f"The {name!r} parameter must be a non-empty list of ints in [1, 65536]. "
                                  f"Got {_got(value)} instead.")
    return [check_int(v, name, low=1, high=65536) for v in value]


def _split(value: Any, name: str) -> dict[str, float]:
    """``model.budget_split``: a table of budget parts and their shares (the Synthesizer checks which parts)."""
    if not isinstance(value, Mapping) or not value or not all(isinstance(k, str) and k for k in value):
        raise DataValidationError(
            f"The {name!r} setting must be a table of budget parts and shares {{statistics = 0.2, training = 0.5, "
            f"conditions = 0.3}}. Got {_got(value)} instead.")
    return {k: check_float(v, f"{name}.{k}", low=0.0) for k, v in value.items()}


def _out_name(value: Any, name: str) -> str:
    """A file or folder name inside the output folder: relative, no ``..``, not the manifests folder."""
    text = _text(value, name)
    parts = PurePath(text).parts
    if PurePath(text).is_absolute() or text.startswith(("~", "\\")) or ":" in text or ".." in parts \
            or not parts or parts[0] in (".", MANIFESTS):
        raise DataValidationError(
            f"The {name!r} setting must be a path relative to the output folder that stays inside it "
            f"(no absolute path, no '..'). Got {_got(value)} instead.")
    hidden = [p for p in parts if p.startswith(".")]
    if hidden:  # the stages' own side files are hidden: .NAME.microplex, .NAME.partial, temporaries
        raise DataValidationError(
            f"The {name!r} setting may not name a hidden file or folder ({hidden[0]!r}: names starting with '.' "
            f"are the stages' own side files). Got {_got(value)} instead.")
    return text


def _report_name(value: Any, name: str) -> str:
    """``evaluate.report``: an output name ending in .html or .htm (the report is HTML)."""
    text = _out_name(value, name)
    if PurePath(text).suffix.lower() not in (".html", ".htm"):
        raise DataValidationError(f"The {name!r} setting must end in .html or .htm: the report is HTML. "
                                  f"Got {_got(value)} instead.")
    return text


# -- the schema -----------------------------------------------------------------------------------
#: ``Synthesizer`` parameters a pipeline may set (``[model]`` and ``[fuse.synthesizer]``).
SYNTHESIZER: dict[str, Check] = {
    "flow": _choice("maf", "nsf"),
    "transforms": _int(1, 64),
    "hidden_features": _hidden,
    "bins": _int(1, 4096),
    "point_mass_threshold": _float(0.0, 1.0),
    "max_point_masses": _int(0, 4096),
    "rounding": check_bool,
    "structural_zeros": check_bool,
    "epochs": lambda v, name: check_epochs(v, name, high=10**7),
    "batch_size": _int(1, 2**31),
    "learning_rate": _float(0.0, low_inclusive=False),
    "weight_decay": _float(0.0),
    "validation_fraction": _float(0.0, 0.5, high_inclusive=False),
    "patience": _int(1),
}

#: ``[model]`` settings of a differentially private fit (``Synthesizer(epsilon=...)``; not in ``[fuse.synthesizer]``):
#: the Synthesizer's DP parameters, ``public`` (the public metadata file, as ``microplex fit --public``) and
#: ``secret_seed`` (the fit's noise from the operating system instead of the pipeline seed; default true).
DP: dict[str, Check] = {
    "epsilon": _float(0.0, low_inclusive=False),
    "delta": _float(0.0, 1.0, low_inclusive=False, high_inclusive=False),
    "max_grad_norm": _float(0.0, low_inclusive=False),
    "budget_split": _split,
    "public": _text,
    "secret_seed": check_bool,
}

SCHEMA: dict[str, dict[str, Any]] = {
    "": {  # the top level; a dict value is a sub-table, a list value a list of tables
        "output": _text, "seed": lambda v, n: check_seed(v, n, allow_none=False),
        "sources": ["sources"], "fuse": "fuse", "model": "model", "generate": "generate",
        "calibrate": "calibrate", "sparsify": "sparsify", "evaluate": "evaluate",
    },
    "sources": {"name": _text, "path": _text, "weight": _text, "rename": _rename, "columns": _names(False),
                "dropna": _dropna, "combine": _combine, "numeric": _names(False)},
    "fuse": {"base": _text, "shared": _names(False), "n_imputations": _int(1, 1000), "synthesizer": "synthesizer"},
    "synthesizer": SYNTHESIZER,
    "model": {"targets": _names(False), "conditions": _names(), "holdout": _float(0.0, 1.0, high_inclusive=False),
              "household_id": _text, "household_vars": _names(False), "person_vars": _names(False),
              "person_id": _text, "size_var": _text, "geography": _text, "age_var": _text, "holdout_by": _text,
              "condition_model": check_bool, "categorical": _names(False), **SYNTHESIZER, **DP},
    "generate": {"n": _count, "conditions": _text, "numeric": _names(False), "population": _float(0.0, low_inclusive=False),
                 "partition_by": _names(False), "rows_per_file": _int(1), "dataset": _out_name,
                 "n_households": _count, "households_per_file": _int(1), "by": _text},
    "calibrate": {"targets": _text, "method": _choice("linear", "raking", "logit"), "bounds": _bounds,
                  "soft": check_bool, "geography": _names(False)},
    "sparsify": {"targets": _text, "max_records": _int(1), "tolerance": _float(0.0, low_inclusive=False),
                 "method": _choice("l0", "l1"), "bounds": _bounds, "random_state": check_seed, "seed": check_seed,
                 "stratify": _stratify, "force": check_bool, "refine": check_bool, "by": _text},
    "evaluate": {"report": _report_name, "conditions": _names(), "max_rows": _int(1), "pmse": check_bool,
                 "heldout": _text, "areas": _names(False), "exclude": _names(False), "attacks": check_bool,
                 "quasi_identifiers": _names(False), "sensitive": _names(False)},
}


def _label(section: str, index: int | None = None) -> str:
    if section == "":
        return "the top level"
    if index is not None:
        return f"[[{section}]] #{index + 1}"
    return f"[{section.replace('synthesizer', 'fuse.synthesizer')}]"


def _table(value: Any, section: str, index: int | None = None) -> dict[str, Any]:
    """Checks one table against ``SCHEMA[section]``; returns the checked copy."""
    label = _label(section, index)
    if not isinstance(value, Mapping):
        raise DataValidationError(f"{label[0].upper() + label[1:]} must be a table of settings. Got {_got(value)} instead.")
    allowed = SCHEMA[section]
    out: dict[str, Any] = {}
    for key, item in value.items():
        if section == "" and key == "_base":
            continue
        if not isinstance(key, str) or key not in allowed:
            hint = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6) if isinstance(key, str) else []
            guess = f"; did you mean {hint[0]!r}?" if hint else "."
            raise DataValidationError(
                f"Unknown key {key!r} in {label}{guess} Expected some of {sorted(allowed)}.")
        check = allowed[key]
        dotted = key if section == "" else (f"{section}[{index + 1}].{key}" if index is not None
                                            else f"{section.replace('synthesizer', 'fuse.synthesizer')}.{key}")
        if isinstance(check, list):
            if not isinstance(item, list) or not item:
                raise DataValidationError(
                    f"[[{key}]] must be a non-empty list of tables (name, path). Got {_got(item)} instead.")
            out[key] = [_table(t, check[0], i) for i, t in enumerate(item)]
        elif isinstance(check, str):
            out[key] = _table(item, check)
        else:
            out[key] = check(item, dotted)
    return out


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Checks every section, key and value of a pipeline dict; returns the checked copy (with ``_base``)."""
    checked = _table(config, "")
    _check_estimators(checked)
    if "_base" in config:
        if not isinstance(config["_base"], str | PurePath):
            raise DataValidationError(f"'_base' must be a folder path. Got {_got(config['_base'])} instead.")
        checked["_base"] = str(config["_base"])
    sources = checked.get("sources")
    if not sources:
        raise DataValidationError("The pipeline needs a [[sources]] list with at least one source (name, path).")
    names = []
    for i, src in enumerate(sources):
        for key in ("name", "path"):
            if key not in src:
                raise DataValidationError(f"Source #{i + 1} needs a {key!r}.")
        names.append(src["name"])
    if len(set(names)) != len(names):
        raise DataValidationError(f"Source names must be unique. Got {names}.")
    if len(sources) > 1 and "fuse" not in checked:
        raise DataValidationError(f"Several sources ({names}) need a [fuse] section naming the base.")
    if "fuse" in checked:
        if len(sources) < 2:
            raise DataValidationError("[fuse] needs at least two [[sources]]; with one source remove [fuse].")
        if checked["fuse"].get("base") not in names:
            raise DataValidationError(
                f"The 'fuse.base' setting must name one of the sources {names}. Got {_got(checked['fuse'].get('base'))} instead.")
    if "calibrate" in checked and "targets" not in checked["calibrate"]:  # resolved, None would read a file 'None'
        raise DataValidationError("[calibrate] needs 'targets' (a targets file: .csv, .parquet, .yaml or .yml).")
    model = checked.get("model")
    if model and "household_id" in model:
        return _check_households(checked)
    if model and any(k in model for k in _HOUSEHOLD_MODEL) or any(k in checked.get("generate", {}) for k in _HOUSEHOLD_GEN):
        asked = [f"model.{k}" for k in _HOUSEHOLD_MODEL if k in (model or {})] + [
            f"generate.{k}" for k in _HOUSEHOLD_GEN if k in checked.get("generate", {})]
        raise DataValidationError(
            f"The settings {asked} are household settings; they need 'model.household_id' (the household id column "
            "of the source, whose rows are persons).")
    if not model or not model.get("targets"):
        raise DataValidationError("The pipeline needs a [model] section with 'targets' (and usually 'conditions').")
    both = sorted(set(model["targets"]) & set(model.get("conditions", [])))
    if both:
        raise DataValidationError(f"Columns {both} are both model targets and conditions.")
    _check_categorical(model, ("targets", "conditions"))
    if WEIGHT in model["targets"] or WEIGHT in model.get("conditions", []):
        raise DataValidationError(
            f"The model column name {WEIGHT!r} is reserved for the synthetic weight the pipeline adds; rename it "
            "with the source's 'rename' table.")
    _check_generate(checked)
    _check_dp(checked)
    _check_areas(checked)
    if "sparsify" in checked and "calibrate" not in checked and "targets" not in checked["sparsify"]:
        raise DataValidationError("[sparsify] needs 'targets' when there is no [calibrate] section.")
    if "evaluate" in checked:
        if model.get("holdout", 0.2) == 0:
            raise DataValidationError("[evaluate] needs held-out records: 'model.holdout' must be > 0.")
        columns = set(model["targets"]) | set(model.get("conditions", []))
        extra = [c for c in checked["evaluate"].get("conditions", []) if c not in columns]
        if extra:
            raise DataValidationError(
                f"The 'evaluate.conditions' setting names {extra}, which are not model columns {sorted(columns)}.")
    return checked


def _check_estimators(checked: dict[str, Any]) -> None:
    """Checks the settings each stage passes to an estimator with that estimator's parameter check.

    ``[model]`` and ``[fuse.synthesizer]``: :func:`microplex.synthesis._checks.check_synthesizer_params`
    (e.g. ``learning_rate`` in (0, 1000]); ``[calibrate]``: ``Calibrator._check_params`` (``bounds``
    must contain 1); ``[sparsify]``: ``SparseCalibrator._check_params`` (``tolerance`` in (0, 1),
    ``stratify`` 'auto' or a list of columns). The estimator's message names the setting by its
    dotted name (``'sparsify.tolerance'``).
    """
    from .calibration import Calibrator, SparseCalibrator
    from .synthesis import Synthesizer
    from .synthesis._checks import check_synthesizer_params

    def run(section: str, params: Mapping[str, Any], check: Callable[[], Any]) -> None:
        try:
            check()
        except DataValidationError as exc:
            message = str(exc)
            for key in params:
                message = message.replace(f"'{key}' parameter", f"'{section}.{key}' parameter")
            stage = {"model": "fit", "fuse.synthesizer": "fuse"}.get(section, section)
            raise DataValidationError(f"{message} (the {stage} stage's own check)") from None

    for section, table in (("model", checked.get("model") or {}),
                           ("fuse.synthesizer", (checked.get("fuse") or {}).get("synthesizer") or {})):
        params = {k: v for k, v in table.items() if k in SYNTHESIZER}
        if params:
            run(section, params, lambda params=params: check_synthesizer_params(Synthesizer(["x"], [], **params)))
    model = checked.get("model") or {}
    if "epsilon" in model and "delta" in model:  # the DP parameters with the others ('rounding = true' with epsilon)
        params = synthesizer_params(model)  # the public file is checked once read (check_public)
        columns = (list(model.get("targets") or ["x"]), list(model.get("conditions") or []))  # budget_split's parts
        run("model", params, lambda: Synthesizer(*columns, **params, public_bounds={c: (0, 1) for c in sum(
            columns, [])})._check_params())
    if "calibrate" in checked:
        cfg = checked["calibrate"]
        params = {k: cfg[k] for k in ("method", "bounds", "soft") if k in cfg}
        run("calibrate", params, lambda: Calibrator(**{**params, "bounds": tuple(cfg["bounds"]) if "bounds" in cfg
                                                      else None})._check_params())
    if "sparsify" in checked:
        cfg = checked["sparsify"]
        if "random_state" in cfg and "seed" in cfg:
            raise DataValidationError("[sparsify] gives both 'seed' and the deprecated 'random_state'; keep 'seed'.")
        params = {k: v for k, v in cfg.items() if k not in ("targets", "by")}
        if "random_state" in params:  # the stage passes the deprecated key as the seed
            params["seed"] = params.pop("random_state")
        run("sparsify", params, lambda: SparseCalibrator(**params)._check_params())


def synthesizer_params(model: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Synthesizer`` keyword arguments of a checked ``[model]`` table (columns and public file aside)."""
    return {k: v for k, v in model.items() if k in SYNTHESIZER or (k in DP and k not in ("public", "secret_seed"))
            or k == "condition_model"}


def _check_categorical(model: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """``model.categorical`` names model columns only (those of the settings ``keys``)."""
    columns = [c for k in keys for c in model.get(k, [])]
    stray = [c for c in model.get("categorical", []) if c not in columns]
    if stray:
        raise DataValidationError(
            f"The 'model.categorical' setting names {stray}, which are not model columns (" +
            ", ".join(f"'model.{k}'" for k in keys) + f") {columns}.")


def schema_params(categorical: Sequence[str], public: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The public metadata's Synthesizer keywords (``public``, as :func:`microplex.io.read_public_metadata`
    returns them; empty without DP) with the columns ``categorical`` (the setting ``where``: ``--categorical``,
    ``model.categorical``) declared categorical in their schema
    (:func:`microplex.synthesis.schema.declare_categorical`). With DP a column is categorical exactly when the
    public metadata lists its categories: a declared column it does not list is refused here, in the words of
    the setting the user wrote (the Synthesizer's own check names its 'schema')."""
    from .synthesis.schema import declare_categorical

    unlisted = [c for c in categorical if public and c not in public.get("public_categories", {})]
    if unlisted:
        raise DataValidationError(
            f"The {where} columns {unlisted} have no categories in the public metadata file: with differential "
            "privacy a column is categorical exactly when that file lists its categories (the codes it may take, "
            "under 'categories'; see docs/privacy.md).")
    return {**public, "schema": declare_categorical(public.get("schema"), categorical)}


def check_public(checked: Mapping[str, Any], public: Mapping[str, Any]) -> None:
    """A DP pipeline's public metadata (``model.public``, as :func:`microplex.io.read_public_metadata` returns it)
    checked with the model's columns and settings by the Synthesizer's own check, before any stage runs: a column
    without bounds or categories fails here, not after the earlier stages."""
    from .synthesis import Synthesizer
    from .synthesis._dp import check_public_columns

    model = checked["model"]
    columns = [*model["targets"], *model.get("conditions", [])]
    weight = checked["sources"][0].get("weight")  # the training weight (a DP pipeline has one source: no [fuse])
    try:
        synth = Synthesizer(model["targets"], model.get("conditions", []), **synthesizer_params(model),
                            **schema_params(model.get("categorical", []), public, "'model.categorical'"))
        p = synth._check_params()
        check_public_columns(p["dp"], columns, weight)
    except DataValidationError as exc:
        raise DataValidationError(f"{exc} (the fit stage's own check, with the public metadata file "
                                  f"'model.public' = {model['public']!r})") from None


#: [model] and [generate] settings of a household pipeline (``model.household_id`` set).
_HOUSEHOLD_MODEL = ("household_vars", "person_vars", "person_id", "size_var", "geography", "age_var")
_HOUSEHOLD_GEN = ("n_households", "households_per_file")


def _check_households(checked: dict[str, Any]) -> dict[str, Any]:
    """A household pipeline: fit, generate (households and persons), calibrate, sparsify; returns ``checked``."""
    model, gen = checked["model"], checked.get("generate")
    missing = [f"model.{k}" for k in ("household_vars", "person_vars") if k not in model]
    if gen is None or "n_households" not in gen:
        missing.append("generate.n_households")
    if missing:
        raise DataValidationError(f"A household pipeline ('model.household_id' set) needs the settings {missing}.")
    flat = [f"model.{k}" for k in ("targets", "conditions", "holdout_by", "condition_model") if k in model] + [
        f"generate.{k}" for k in ("n", "conditions", "population", "rows_per_file", "by") if k in gen]
    flat += ["sparsify.by"] if "by" in checked.get("sparsify", {}) else []
    flat += [f"model.{k}" for k in DP if k in model]  # HouseholdSynthesizer has no DP (no accountant composes it)
    flat += ["calibrate.geography"] if "geography" in checked.get("calibrate", {}) else []  # rake_dataset: persons
    flat += [f"[{s}]" for s in ("fuse", "evaluate") if s in checked]
    if flat:
        raise DataValidationError(
            f"The settings {flat} are not available in a household pipeline ('model.household_id' set): it fits "
            "household_vars and person_vars, generates 'generate.n_households' households, then calibrates and "
            "sparsifies them.")
    _check_categorical(model, ("household_vars", "person_vars"))
    if model.get("age_var") in model.get("categorical", []):
        raise DataValidationError(
            f"The 'model.categorical' setting names the 'model.age_var' column {model['age_var']!r}; an age is a "
            "number (the model draws the gaps between members' ages): leave it out of 'model.categorical'.")
    columns = [model["household_id"], *model["household_vars"], *model["person_vars"]]
    if WEIGHT in columns:
        raise DataValidationError(
            f"The model column name {WEIGHT!r} is reserved for the synthetic weight the pipeline adds; rename it "
            "with the source's 'rename' table.")
    if "calibrate" in checked and checked["calibrate"].get("soft"):
        raise DataValidationError("[calibrate] 'soft' is not available in a household pipeline (calibrated out of core).")
    if "sparsify" in checked and "calibrate" not in checked and "targets" not in checked["sparsify"]:
        raise DataValidationError("[sparsify] needs 'targets' when there is no [calibrate] section.")
    return checked


def _check_dp(checked: dict[str, Any]) -> None:
    """A differentially private fit (``model.epsilon``): its settings together, and nothing else in the run
    that would read the training data into a released file (see docs/privacy.md, "In a pipeline")."""
    model, gen = checked["model"], checked["generate"]
    if "epsilon" not in model:
        given = [f"model.{k}" for k in DP if k in model]
        if given:
            raise DataValidationError(
                f"The settings {given} are differential-privacy settings; they need 'model.epsilon' too.")
        return
    missing = [f"model.{k}" for k in ("delta", "public") if k not in model]
    if missing:
        raise DataValidationError(
            f"A differentially private fit ('model.epsilon') needs {missing}: 'delta' in (0, 1), e.g. 1e-5, and "
            "'public', the public metadata file (bounds of every numeric column, the source's weight among them, "
            "and categories of every categorical one; see docs/privacy.md).")
    if "fuse" in checked:
        raise DataValidationError(
            "'model.epsilon' is not available with [fuse]: a fused record carries several sources' respondents, "
            "so a guarantee for each fused record is none for each respondent, and the fusion is not private. Fit "
            "the DP model on one source.")
    if "by" in gen:
        raise DataValidationError(
            "'generate.by' resamples training condition rows area by area, which a differentially private model "
            "does not keep ('model.epsilon'): draw 'generate.n' records (their conditions from the DP condition "
            "model) or give 'generate.conditions'.")
    if "population" not in gen:
        raise DataValidationError(
            "'model.epsilon' needs 'generate.population', the total weight the synthetic records stand for: its "
            "default, the source's total weight, is a statistic of the training data that no DP mechanism covers. "
            "Give the published population total.")


def _check_areas(checked: dict[str, Any]) -> None:
    """The area settings: ``model.holdout_by`` and ``generate.by`` name a condition column, ``generate.by``
    draws ``generate.n`` records in memory, ``evaluate.areas`` needs ``evaluate.heldout``."""
    model, gen, ev = checked["model"], checked["generate"], checked.get("evaluate", {})
    conditions = model.get("conditions", [])
    for key, value in (("model.holdout_by", model.get("holdout_by")), ("generate.by", gen.get("by"))):
        if value is not None and value not in conditions:
            raise DataValidationError(
                f"The {key!r} setting names {value!r}, which is not one of the model's conditions {conditions}.")
    if gen.get("by") is not None and ("n" not in gen or "partition_by" in gen):
        raise DataValidationError(
            "The 'generate.by' setting draws 'generate.n' records area by area in memory: it needs 'n' and no "
            "'conditions' or 'partition_by'.")
    if model.get("condition_model") and conditions and "by" in gen:  # fully synthetic: no training condition row
        raise DataValidationError(
            "'model.condition_model' keeps no training condition row, which 'generate.by' resamples area by area: "
            "draw 'generate.n' records (their conditions from the condition model), or give 'generate.conditions'.")
    columns = list(model["targets"]) + list(conditions)
    excluded = ev.get("exclude", [])
    if [c for c in excluded if c not in columns] or not [c for c in columns if c not in excluded]:
        raise DataValidationError(
            f"The 'evaluate.exclude' setting must name model columns {columns} and leave at least one to score. "
            f"Got {excluded} instead.")
    given = [f"evaluate.{k}" for k in ("quasi_identifiers", "sensitive") if k in ev]
    if given and not ev.get("attacks"):
        raise DataValidationError(f"The settings {given} act only with 'evaluate.attacks = true'.")
    for key in ("quasi_identifiers", "sensitive"):
        bad = [c for c in ev.get(key, []) if c not in columns or c in excluded]
        if bad:
            raise DataValidationError(f"The 'evaluate.{key}' setting names {bad}, which are not scored model columns "
                                      f"{[c for c in columns if c not in excluded]}.")
    both = sorted(set(excluded) & set(ev.get("conditions", [])))
    if both:
        raise DataValidationError(f"The 'evaluate.conditions' {both} are excluded by 'evaluate.exclude'.")
    if "areas" in ev and "heldout" not in ev:
        raise DataValidationError("The 'evaluate.areas' setting needs 'evaluate.heldout' (the held-out cells).")
    if "heldout" in ev and "partition_by" in gen:
        raise DataValidationError(
            "The 'evaluate.heldout' setting totals every record of each population in memory; it is not available "
            "on a streamed population ('generate.partition_by').")


def _check_generate(checked: dict[str, Any]) -> None:
    gen = checked.get("generate")
    if gen is None:
        raise DataValidationError("The pipeline needs a [generate] section with 'n' or 'conditions'.")
    if "numeric" in gen and "conditions" not in gen:
        raise DataValidationError("[generate] 'numeric' names columns of the 'conditions' file to read as numbers; "
                                  "it acts only with 'conditions'.")
    streamed = "partition_by" in gen
    if not streamed:
        if ("n" in gen) == ("conditions" in gen):
            raise DataValidationError("[generate] needs exactly one of 'n' (records to sample) or 'conditions' (a file).")
        extra = sorted({"rows_per_file", "dataset"} & set(gen))
        if extra:
            raise DataValidationError(f"[generate] settings {extra} need 'partition_by' (a streamed dataset).")
        return
    if "n" not in gen and "conditions" not in gen:
        raise DataValidationError("[generate] needs 'n' or 'conditions'.")
    if "calibrate" in checked and checked["calibrate"].get("soft"):
        raise DataValidationError(
            "[calibrate] 'soft' is not available on a streamed (partitioned) population, which is calibrated out "
            "of core (microplex.scale.rake_dataset); remove 'soft' or 'generate.partition_by'.")


# -- paths ----------------------------------------------------------------------------------------
def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def plan_paths(inputs: Mapping[str, Path], out: Path, outputs: Mapping[str, str]) -> list[Path]:
    """Every output path of the run, checked before anything is written.

    ``inputs`` maps a description ("[[sources]] #1 'path'") to each input file the run reads;
    ``outputs`` maps each file or folder the run writes, relative to ``out``, to what writes it
    (:func:`microplex._pipeline_stages.output_files`). The
    output folder may not hold, equal or sit inside an input; each output resolves
    (:meth:`Path.resolve`, following links) inside the output folder, to no input and to no other
    output.
    """
    out = out.resolve()
    resolved = {what: Path(p).resolve() for what, p in inputs.items()}
    for what, p in resolved.items():
        if _within(p, out) or _within(out, p):
            relation = "holds" if _within(p, out) else "is inside"
            raise DataValidationError(
                f"The output folder {str(out)!r} {relation} the input {str(p)!r} ({what}); the pipeline would "
                "overwrite its own input. Choose an output folder that holds no input file.")
    if out.exists() and not out.is_dir():
        raise DataValidationError(f"The output folder {str(out)!r} is an existing file, not a folder.")
    existing = next((a for a in (out, *out.parents) if a.exists()), None)
    if existing is None or not existing.is_dir():
        raise DataValidationError(f"Cannot create the output folder {str(out)!r}: {str(existing)!r} is not a folder.")
    paths: list[Path] = []
    for name, what in outputs.items():
        p = (out / name).resolve()
        if not _within(p, out) or p == out:
            raise DataValidationError(f"The output {name!r} ({what}) resolves to {str(p)!r}, outside the output folder.")
        for desc, q in resolved.items():
            if p == q or _within(q, p):
                raise DataValidationError(f"The output {str(p)!r} ({what}) is the input {desc}; refusing to overwrite it.")
        for other in paths:
            if _within(p, other) or _within(other, p):
                raise DataValidationError(f"The outputs {str(p)!r} and {str(other)!r} overlap; give them distinct names.")
        paths.append(p)
    return paths


#: Who gives calibrated weights that are a population, with how to get weights of 0 or more there.
_NEGATIVE_REMEDY = {
    "[calibrate]": "give [calibrate] bounds with a lower bound of 0 or more (e.g. bounds = [0.2, 5]), or method = "
                   "\"raking\" or \"logit\"",
    "microplex calibrate": "pass --bounds with a lower bound above 0 (e.g. --bounds 0.2,5), or --method raking or "
                           "logit",
}


def refuse_negative_weights(n_negative: int, lowest: float, who: str = "[calibrate]") -> None:
    """Refuses a calibrated population with ``n_negative`` weights below 0 (the lowest ``lowest``), before it is
    written: the pipeline's ``[calibrate]`` stage and the ``microplex calibrate`` command (``who``) write a
    population, which ``sparsify``, ``calibrate`` and ``evaluate`` read as one, and a record of negative weight is
    no number of people. A linear calibration without a lower bound gives them (R survey's GREG weights); the
    pipeline refused them only at evaluate, after writing them, naming an internal frame, and the command wrote
    them without a word.

    Parameters
    ----------
    n_negative : int
        How many weights are below 0.
    lowest : float
        The lowest weight.
    who : {"[calibrate]", "microplex calibrate"}, default="[calibrate]"
        The stage or command, which the message names with its own options.

    Examples
    --------
    >>> refuse_negative_weights(0, 0.5)
    >>> refuse_negative_weights(2, -0.25, "microplex calibrate")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: microplex calibrate gave 2 negative weights (lowest -0.25); ...
    """
    if n_negative:
        raise DataValidationError(
            f"{who} gave {n_negative:,} negative weights (lowest {lowest:.6g}); a population's records must "
            "weigh 0 or more (sparsify and evaluate read the calibrated records as the population). A linear "
            f"calibration without a lower bound gives such weights: {_NEGATIVE_REMEDY[who]} (positive weights)."
        )
