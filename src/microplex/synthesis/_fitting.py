"""Fitting a Synthesizer: parameters and columns checked, encoders fitted (or, with differential
privacy, built from public metadata and noisy statistics), the layout and pattern table built, then
the flow trained (a Synthesizer mixin; :meth:`Synthesizer.fit <microplex.synthesis.Synthesizer.fit>`
calls :meth:`_Fitting._fit` and restores the previous state when it raises).
"""

from __future__ import annotations

import copy
import secrets
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from .._errors import DataValidationError
from .._params import check_seed, to_python
from .._random import int_seed, named_child
from .._stats import storage_precision
from . import _conditions, _dp
from ._checks import check_effective_size
from ._dp_plan import dp_training_settings, plan, record_parts
from ._dp_margins import recalibrate_margins
from ._dp_rake import rake_pattern_head, rake_ruled_head
from ._dp_record import privacy_record
from ._dp_training import train_dp
from ._dp_tree import fit_tree, tree_mechanisms
from ._schedule import auto_epochs, check_epochs
from ._structure import fit_rules, rules_table
from ._validation import (check_column, check_copied_categories, check_frame, check_numbers_as_objects,
                          check_numbers_as_text, check_weights, integer_kind, missing_as_nan, round_declared_integer,
                          warn_missing_codes)
from .schema import VariableSpec, infer_kind
from .transforms import CategoricalEncoder, ConditionEncoder, ContinuousEncoder

if TYPE_CHECKING:
    from .synthesizer import Synthesizer


class _Fitting:
    """The body of :meth:`Synthesizer.fit` (a Synthesizer mixin)."""

    def _fit(self, data: pd.DataFrame, weight_col: str | None, epochs: int | str | None,
             seed: int | str | None) -> Synthesizer:
        p = self._check_params()
        self.fitted_params_ = copy.deepcopy(self.get_params(deep=False))  # what save() writes (see _state)
        epochs = None if epochs is None else check_epochs(epochs)
        if epochs is not None:  # fit's epochs override the constructor's: the file records those of this fit
            self.fitted_params_["epochs"] = epochs
        seed = fit_seed(seed, dp=p["dp"] is not None)
        if weight_col is not None and not isinstance(weight_col, str):
            raise DataValidationError(f"The 'weight_col' parameter must be a column name (str) or None. Got {weight_col!r} instead.")
        targets, conditions = p["target_vars"], p["condition_vars"]
        if weight_col in targets + conditions:
            raise DataValidationError(f"Weight column {weight_col!r} cannot also be a target or condition.")
        check_frame(data, targets + conditions + ([weight_col] if weight_col is not None else []), "data")
        w = check_weights(data, weight_col)
        # columns declared categorical (with DP: those with public categories) may hold numbers as objects (codes)
        declared = {n for n, spec in (p["schema"] or {}).items() if spec.kind == "categorical"} | set(
            p["dp"]["categories"] if p["dp"] else ())
        # _own_categories: set by HouseholdSynthesizer on its person models (the integer ages and age gaps it models as
        # categories itself, whose values a small sample holds once each: no ids, not judged as copied categories)
        own = getattr(self, "_own_categories", set())
        for name in targets + conditions:  # before any clipping: a missing or infinite value is refused, not clipped
            role = "target" if name in targets else "condition"
            # a target's missing values are a state of their own, a condition's a one-hot or indicator column
            # (not with DP: no mechanism counts them)
            check_column(data[name], name, role, missing=p["dp"] is None)
            # with DP a column's categories are public: judged on them, not on the values records hold (a refusal read
            # from the data told whether a record held the one category that is no number)
            public = p["dp"]["categories"].get(name) if p["dp"] else None
            check_numbers_as_text(data[name] if public is None else pd.Series(public, dtype=object), name, role)
            if name not in declared:
                check_numbers_as_objects(data[name], name, role)
            # drawn as categories seen in training; not with DP: its categories are public and drawn by noisy counts,
            # so no draw copies a record, and a refusal read from the data would tell whether one record holds a value
            if p["dp"] is None and (name in targets or p["condition_model"]):
                # a number is drawn as categories where declared so or where an integer target's few values make it
                # one (infer_kind)
                kind = (p["schema"] or {}).get(name, VariableSpec()).kind
                categorical = (name in declared and name not in own) or (
                    kind is None and infer_kind(data[name], role=role) == "categorical")
                check_copied_categories(data[name], name, role, w, "" if name in targets else
                                        "drawn by the condition model", categorical=categorical)
            warn_missing_codes(data[name], name, role)
        dp = p["dp"]
        if dp:  # public bounds applied and the budget checked before anything is fitted
            data, w = _dp.clip_to_public(data, w, weight_col, dp, targets + conditions)
            dp.update(dp_training_settings(self, len(data), p["epochs"] if epochs is None else epochs),
                      weighted=weight_col is not None)
            epochs = dp["epochs"]
            planned = plan(self, dp, len(data))
            # None: set by the training's noise; a condition tree (no DP-SGD) has none
            dp["max_grad_norm"] = planned["training"]["sensitivity"] if "training" in planned else None
        # with DP the weights are the records' data, read through the mechanisms only: a refusal of weights concentrated
        # on one record would tell so outside the accountant; the number of records (public) is still checked
        check_effective_size(np.ones(len(w)) if dp else w, None if dp else weight_col)
        dtypes = {name: str(data[name].dtype) for name in targets}
        missing = [n for n in targets + conditions if data[n].isna().any()]
        # kinds are inferred from the dtypes given (Int64 is integer); numeric columns' NA read as NaN
        given, data = data, missing_as_nan(data, missing)
        for name in missing:
            if not (data[name].notna().to_numpy() & (w > 0)).any():
                raise DataValidationError(
                    f"{'Target' if name in targets else 'Condition'} column {name!r} has no value on the records of "
                    "positive weight (every one is missing); drop it.")
        # a condition missing only on records of weight 0: the networks could not learn its missing input (it loaded
        # and drew from untrained weights), so those records are left out, as a target's state only they hold is
        weightless = [n for n in conditions if n in missing and not (data[n].isna().to_numpy() & (w > 0)).any()]
        if weightless:
            keep = data[weightless].notna().all(axis=1).to_numpy()
            given, data, w = given[keep].reset_index(drop=True), data[keep].reset_index(drop=True), w[keep]
        schema = dict(p["schema"] or {})
        for name in targets:  # a declared integer is modelled on whole numbers, as it is drawn (a warning if rounded)
            if schema.get(name, VariableSpec()).kind == "integer":
                data = round_declared_integer(data, name)
        # A condition is constant when the records the model learns from (of positive weight) hold one value: values
        # only records of weight 0 hold gave it a fallback scale and garbage draws. (A target's values of weight 0
        # are named by its encoder.)
        weighted = w > 0
        for name in targets + conditions:
            role = "target" if name in targets else "condition"
            values = data[name] if weighted.all() or role == "target" else data[name][weighted]
            # with DP the public categories or bounds give every column two values or more: a refusal read from
            # the data would tell whether one record holds the only other value (fitted, it is a noisy share)
            if not dp and values.nunique(dropna=False) < 2:  # a value and missing values are two states
                if (role == "target" and schema.get(name, VariableSpec()).kind == "integer"
                        and given[name].nunique(dropna=False) >= 2):  # rounded to one whole number
                    spread = given[name].to_numpy(float, na_value=np.nan)
                    raise DataValidationError(
                        f"Target column {name!r} is declared kind='integer' in the schema but its values are not "
                        f"whole numbers: they range from {to_python(np.nanmin(spread))!r} to "
                        f"{to_python(np.nanmax(spread))!r}, and rounded to whole numbers every one is "
                        f"{to_python(values.iloc[0])!r}; declare it 'continuous', or give it in a unit in which its "
                        "values are whole numbers.")
                clipped = bool(dp) and name in dp["bounds"]
                where = "" if values is data[name] or data[name].nunique() < 2 else " on the records of positive weight"
                raise DataValidationError(
                    f"{role.capitalize()} column {name!r} is constant{where} ({to_python(values.iloc[0])!r})"
                    + (f" after clipping to its public bounds {dp['bounds'][name]}; give bounds that hold its values"
                       if clipped else "; drop it or give it at least two distinct values") + "."
                )
            kind = schema.get(name, VariableSpec()).kind
            if kind in ("continuous", "integer") and (
                    not pd.api.types.is_numeric_dtype(data[name].dtype) or pd.api.types.is_bool_dtype(data[name].dtype)):
                raise DataValidationError(
                    f"{role.capitalize()} column {name!r} has kind {kind!r} in the schema but dtype "
                    f"{data[name].dtype}; only numeric columns can be {kind}."
                )

        if dp:
            mechanisms, shares = _dp.fit_public_encoders(
                self, data, w, dp, schema, np.random.default_rng(named_child(seed, "dp_statistics")),
                planned["statistics"])
            if p["condition_model"]:  # fitted first: the main model's conditions are standardized by it
                self.condition_model_ = _conditions.fit_condition_model(self, data, weight_col, epochs, seed,
                                                                        planned["scale"])
                _dp.standardize_conditions(self, seed)
        else:
            self.kinds_ = {}
            for name in targets + conditions:
                role = "target" if name in targets else "condition"
                declared = schema.get(name, VariableSpec()).kind
                kind = declared or infer_kind(given[name], role=role)
                if role == "condition" and kind == "integer":
                    kind = "continuous"
                elif kind == "integer":  # modelled on half units, which float64 resolves below 2**48
                    largest = float(np.nanmax(np.abs(data[name].to_numpy(float))))
                    kind = integer_kind(name, largest, declared == "integer")
                self.kinds_[name] = kind
            self.dtypes_ = dtypes
            self.n_features_in_ = len(conditions)
            # _known_categories: set by HouseholdSynthesizer on its inner models (categories no training row holds)
            self.condition_encoder_ = ConditionEncoder({n: self.kinds_[n] for n in conditions}).fit(
                data, w, getattr(self, "_known_categories", None))
            self.encoders_: dict[str, ContinuousEncoder | CategoricalEncoder] = {}
            for name in targets:
                if self.kinds_[name] == "categorical":  # the column as given (pandas' NA, not NaN)
                    self.encoders_[name] = CategoricalEncoder(name).fit(given[name])
                else:
                    enc = ContinuousEncoder(name, integer=self.kinds_[name] == "integer")
                    x = data[name].to_numpy(float)
                    self.encoders_[name] = enc.fit(
                        x, w, schema.get(name, VariableSpec()),
                        self.point_mass_threshold, self.max_point_masses, heap_threshold=self.heap_threshold,
                        max_heaps=int(self.max_heaps), min_heap_count=int(self.min_heap_count),
                        standardize=self.standardize, rounding=p["rounding"],
                        precision=storage_precision(x[w > 0], data[name].dtype),
                    )
        self._build_layout()

        rng = np.random.default_rng(seed)
        c = self.condition_encoder_.transform(data)
        self._check_encoded(data, c)
        states = self._discrete_states(data)
        self.patterns_ = self._pattern_table(states, None if dp else w)
        if len(self.patterns_) == 1 and not self.continuous_vars_:  # no network to train (torch: "empty parameter list")
            raise DataValidationError(
                f"Every target ({targets}) is constant on the records of positive weight: there is nothing to learn "
                "(the values that differ are held by records of weight 0 only). Drop such targets, or give the "
                "records of positive weight at least two distinct values.")
        if dp:
            _dp.check_pattern_grid(self)
        self._check_model_size(len(data))
        lookup = {tuple(p): i for i, p in enumerate(self.patterns_.tolist())}
        pattern = np.array([lookup.get(tuple(s), -1) for s in states.tolist()], dtype=np.int64)
        listed = pattern >= 0
        if not listed.all():  # records of weight 0 holding a state no record of positive weight holds: left out
            data, c, pattern, w = data[listed].reset_index(drop=True), c[listed], pattern[listed], w[listed]
        heap = self._heap_states(data)
        allowed = self._heap_allowed(pattern, heap)
        if not allowed.all():  # records of weight 0 with a flow value in a segment whose weighted values are all heaps
            data, c, pattern, w, heap = (data[allowed].reset_index(drop=True), c[allowed], pattern[allowed],
                                         w[allowed], heap[allowed])
        # structural zeros (._structure): target states a condition's category (or a numeric condition's tail) never
        # holds though the data expect some there; from every training record, before the networks (not with DP:
        # no mechanism counts them)
        enc = self.condition_encoder_
        self.structure_ = (fit_rules(c, list(enc.cells()), list(enc.numeric_columns()), pattern, self.patterns_, w)
                           if p["structural_zeros"] else None)
        self.structural_zeros_ = rules_table(self)
        if p["condition_model"]:  # fully synthetic: no training row is kept
            self._ranges = _dp.condition_ranges(self, dp) if dp else _conditions.condition_ranges(data, self, w)
        elif dp:  # DP without conditions (conditions need the condition model): no row or weight is kept either
            self._ranges = {}
        else:
            # in the dtypes given: missing_as_nan read a nullable Int64 or Float64 with missing values as float64,
            # so sample (which resamples these rows) drew such a condition as float64 where generate kept it.
            # Records of weight 0 are outside the population: sample never draws them, and the model file (which
            # stores these rows) keeps no copy of them
            positive = w > 0
            kept = data.loc[positive, conditions].reset_index(drop=True)
            self.training_conditions_ = kept.astype({n: given[n].dtype for n in conditions
                                                     if kept[n].dtype != given[n].dtype})
            self.training_weights_ = w[positive].copy()

        with torch.random.fork_rng(devices=[]):
            # a DP fit's networks start from a stream of their own: DP-SGD's sampling and noise must not be read
            # back from anything the file shows (train_dp draws them from the seed's child "dp_sgd")
            torch.manual_seed(int_seed(named_child(seed, "init")) if dp else seed)
            self.model_ = self._new_model()
            if dp and "tree" in planned:  # a DP condition model of several conditions: a tree instead of DP-SGD
                trained = tree_mechanisms(planned["tree"], len(targets) - 1)
                self.condition_tree_ = fit_tree(self, data, w, trained,
                                                np.random.default_rng(named_child(seed, "dp_tree")))
                self.history_ = pd.DataFrame({"epoch": [], "train_loss": [], "val_loss": []})  # no training
            elif dp:  # the pattern head starts at the noisy shares of the states
                _dp.init_prior(self, shares)
                train_dp(self, data, c, pattern, heap, w, rng, dp, seed, planned["training"]["noise_multiplier"])
                trained = [planned["training"]]
            else:
                self.model_.init_pattern_prior(
                    torch.as_tensor(np.bincount(pattern, weights=w, minlength=len(self.patterns_)) / w.sum())
                )
                if epochs is None:
                    epochs = p["epochs"]
                if epochs == "auto":
                    n_val = int(round(p["validation_fraction"] * int((w > 0).sum())))  # as holdout_split
                    epochs = auto_epochs(len(data) - n_val, early_stopping=n_val > 0 and p["patience"] is not None)
                self._train(data, c, pattern, heap, w, rng, epochs, seed)
                if self.structure_ is not None:  # the mass the rules take from ruled cells back to the states' rows
                    rake_ruled_head(self, c, pattern, w, seed)
        if p["condition_model"] and not dp:
            self.condition_model_ = _conditions.fit_condition_model(self, data, weight_col, epochs, seed)
        if dp and "tree" not in planned:  # post-processing: the pattern head's mean shares set to the noisy ones
            quantile = self.standardize == "quantile"  # recalibrated after the head: the truncation moves
            rake_pattern_head(self, shares, seed, truncated=not quantile)  # as released: truncated to the bounds
            if quantile:  # post-processing: the continuous marginals set to the noisy ones
                recalibrate_margins(self, seed)
        if dp:  # the main model's own mechanisms in the order of record_parts, then the condition model's
            own = {m["part"]: m for m in mechanisms + trained}
            self.privacy_ = privacy_record(dp, [own[k] for k in record_parts("tree" in planned)]
                                           + _dp.nested_mechanisms(self))
        return self


def fit_seed(seed: object, *, dp: bool) -> int:
    """The seed of a fit: ``"auto"`` is 0 without DP and a secret seed with it; ``None`` a secret seed
    (``secrets.randbits(64)``: a DP fit's noise must not be reproducible by whoever can guess its seed).

    >>> fit_seed("auto", dp=False), fit_seed(7, dp=True)
    (0, 7)
    """
    if isinstance(seed, str) and seed == "auto":
        seed = None if dp else 0
    try:
        checked = check_seed(seed, "seed")
    except DataValidationError:
        raise DataValidationError(
            f"The 'seed' parameter must be an int in [0, 2**64 - 1], None or 'auto'. Got {seed!r:.80} instead."
        ) from None
    return secrets.randbits(64) if checked is None else checked
