"""The estimator contract shared by every microplex estimator (scikit-learn's, without the dependency).

An estimator's ``__init__`` stores its arguments unchanged, under their own names, and validates
nothing; ``fit`` checks them (:meth:`Estimator._check_params`), learns, stores the fitted state in
attributes ending in ``_`` and returns ``self``; every later method starts with
:func:`check_is_fitted`. On that basis the base class gives, once for every estimator:

* :meth:`~Estimator.get_params` read from the ``__init__`` signature (no hand-kept list),
* :meth:`~Estimator.set_params`, refusing unknown names with a :class:`~microplex.DataValidationError`
  (a ``ValueError``, as scikit-learn raises),
* a ``repr`` showing the parameters that differ from their defaults,
* :meth:`~Estimator._fit_from_scratch`, the context of the body of ``fit``: it starts without fitted
  state, and the previous fit is restored if the body fails (a fit is never half done),
* ``__sklearn_is_fitted__``, so :func:`sklearn.base.clone` and
  :func:`sklearn.utils.validation.check_is_fitted` work on microplex estimators.

>>> class Scaler(Estimator):
...     _fitted_attribute = "scale_"
...     def __init__(self, factor=1.0, *, center=True):
...         self.factor = factor
...         self.center = center
>>> Scaler(2.0)
Scaler(factor=2.0)
>>> Scaler().set_params(center=False).get_params()
{'factor': 1.0, 'center': False}
>>> Scaler().set_params(centre=False)
Traceback (most recent call last):
...
microplex._errors.DataValidationError: Invalid parameter 'centre' for estimator Scaler. Valid parameters are: ['factor', 'center'].
>>> check_is_fitted(Scaler())
Traceback (most recent call last):
...
microplex._errors.NotFittedError: This Scaler instance is not fitted yet. Call 'fit' with appropriate arguments before using this estimator.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from ._errors import DataValidationError, NotFittedError
from ._params import check_seed

__all__ = ["DEPRECATED", "Estimator", "check_is_fitted", "deprecated_random_state"]


class Estimator:
    """Base class of microplex estimators: parameters from the constructor signature.

    Subclasses set ``_fitted_attribute`` to an attribute that only a successful ``fit`` (or
    ``load``) sets, last, and implement ``_check_params`` (the checks of every parameter, called at
    the start of ``fit``, never in ``__init__``).
    """

    #: An attribute that a successful ``fit`` sets, last (the estimator is fitted when it exists).
    _fitted_attribute: ClassVar[str] = ""
    #: Private attributes that are fitted state too: removed and restored by :meth:`_fit_from_scratch` with
    #: those ending in ``_``.
    _fitted_private: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """Names of the ``__init__`` parameters, in signature order."""
        init = cls.__init__
        if init is object.__init__:
            return []
        names = []
        for p in inspect.signature(init).parameters.values():
            if p.name == "self" or p.kind == p.VAR_KEYWORD:
                continue
            if p.kind == p.VAR_POSITIONAL:  # pragma: no cover - a programming error of a subclass
                raise TypeError(f"{cls.__name__}.__init__ must not take *args: parameters are read from its signature.")
            names.append(p.name)
        return names

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor parameters, as given (scikit-learn's contract).

        Parameters
        ----------
        deep : bool, default=True
            Also return the parameters of parameters that are estimators, as ``name__param``.

        Returns
        -------
        dict of str to object
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Estimator:
        """Sets constructor parameters (``name__param`` for a parameter of a parameter); returns ``self``.

        Nothing is validated until ``fit``, as in the constructor; every name is checked before any
        is set, so a refused call sets nothing.

        Raises
        ------
        DataValidationError
            For names that are not parameters of this estimator (all of them named), and for
            ``name__param`` where ``name``'s value is not an estimator (a dict, a list, None: set the
            whole value) or, for a microplex estimator, has no parameter ``param``.
        """
        if not params:
            return self
        nested = self._nested_params(params)
        for key, value in params.items():
            if "__" not in key:
                setattr(self, key, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def _nested_params(self, params: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Checks every name given to :meth:`set_params` (those of a microplex estimator parameter too); returns the
        ``name__param`` ones grouped by ``name``."""
        valid = self.get_params(deep=True)
        unknown = [k for k in params if k.partition("__")[0] not in valid]
        if unknown:
            names = ", ".join(repr(k) for k in unknown)
            raise DataValidationError(
                f"Invalid parameter{'s' if len(unknown) > 1 else ''} {names} for estimator {type(self).__name__}. "
                f"Valid parameters are: {self._get_param_names()!r}."
            )
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if sub:
                nested.setdefault(name, {})[sub] = value
        for name, sub_params in nested.items():
            value = getattr(self, name)
            if isinstance(value, type) or not callable(getattr(value, "set_params", None)):
                key = f"{name}__{next(iter(sub_params))}"
                raise DataValidationError(
                    f"Invalid parameter {key!r} for estimator {type(self).__name__}: {name!r} is not an estimator "
                    f"(its value is of type {type(value).__name__}); set the whole value ({name}=...)."
                )
            if isinstance(value, Estimator):
                value._nested_params(sub_params)
        return nested

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted attributes: those ending in ``_`` (not dunders, not parameters) and ``_fitted_private``."""
        params = set(self._get_param_names())
        return {k: v for k, v in vars(self).items()
                if k in self._fitted_private or (k.endswith("_") and not k.startswith("__") and k not in params)}

    @contextlib.contextmanager
    def _fit_from_scratch(self) -> Iterator[None]:
        """The body of ``fit`` runs in this context, on this estimator without fitted state.

        Every fitted attribute (:meth:`_fitted_state`) is removed on entry: a refit keeps nothing of the
        previous fit, in memory or in a file saved after it, whatever the parameters now are. If the body
        raises (any exception, ``KeyboardInterrupt`` included), the attributes it set are removed and the
        previous ones restored (the same objects) before the exception propagates: a failed fit leaves the
        estimator as it was, fitted or not, never half-fitted. (A context, not a wrapper: the body's frames,
        and so its warnings' ``stacklevel``, are those of ``fit``.)

        >>> class Scaler(Estimator):
        ...     _fitted_attribute = "scale_"
        ...     def fit(self, x):
        ...         with self._fit_from_scratch():
        ...             self.scale_ = 1 / x
        ...             return self
        >>> s = Scaler().fit(2.0)
        >>> s.fit(0.0)
        Traceback (most recent call last):
        ...
        ZeroDivisionError: float division by zero
        >>> s.scale_
        0.5
        """
        previous = self._fitted_state()
        for k in previous:
            delattr(self, k)
        try:
            yield
        except BaseException:
            for k in self._fitted_state():
                delattr(self, k)
            self.__dict__.update(previous)
            raise

    def __repr__(self) -> str:
        defaults = {
            p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()
            if p.name != "self"
        }
        shown = []
        for name in self._get_param_names():
            value = getattr(self, name)
            default = defaults[name]
            if default is inspect.Parameter.empty or not _same(value, default):
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __sklearn_is_fitted__(self) -> bool:
        """Whether ``fit`` has succeeded (used by :func:`check_is_fitted` and scikit-learn)."""
        return bool(self._fitted_attribute) and hasattr(self, self._fitted_attribute)

    def __sklearn_tags__(self) -> Any:
        """scikit-learn (>= 1.6) tags: an estimator that needs ``fit`` (read by its ``check_is_fitted``)."""
        from sklearn.utils import Tags, TargetTags  # only scikit-learn calls this

        return Tags(estimator_type=None, target_tags=TargetTags(required=False), requires_fit=True)

    def _check_is_fitted(self) -> None:
        check_is_fitted(self)

    def _check_fitted_params(self, names: tuple[str, ...]) -> None:
        """Fitted, with the parameters ``names`` (those that drawing reads from the estimator) as they were
        fitted (``fitted_params_``): a ``set_params`` of one of them after ``fit`` describes another model than
        the fitted one, and than its file (which holds ``fitted_params_``). Equal values in another form (a
        tuple for a list) are the same."""
        self._check_is_fitted()
        now = self.get_params(deep=False)
        fitted = self.fitted_params_  # type: ignore[attr-defined]
        for k in names:
            if not _equal_values(now[k], fitted[k]):
                raise DataValidationError(
                    f"The {k!r} parameter was changed by set_params after fit (fitted with {fitted[k]!r:.80}, now "
                    f"{now[k]!r:.80}); the fitted model keeps the first. Set it back, or fit again.")

    def _check_params(self) -> Any:  # pragma: no cover - every estimator overrides it
        """Checks every constructor parameter; called first thing in ``fit``."""
        raise NotImplementedError


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter equals its default (identity, or equal values of the same type)."""
    if value is default:
        return True
    if type(value) is not type(default):
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - arrays and odd objects: not the default
        return False


def _equal_values(a: Any, b: Any) -> bool:
    """Whether two parameter values are equal: a tuple and a list of the same names are; numpy arrays compare by
    value; a string never equals a list."""
    if a is b:
        return True
    if a is None or b is None or isinstance(a, str) != isinstance(b, str):
        return False
    try:
        return bool(np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return False


def check_is_fitted(estimator: Any) -> None:
    """Raises :class:`~microplex.NotFittedError` unless ``estimator`` is fitted.

    The message is scikit-learn's. ``estimator`` is fitted when its ``__sklearn_is_fitted__()``
    says so.

    Raises
    ------
    NotFittedError
    """
    if not estimator.__sklearn_is_fitted__():
        raise NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with appropriate "
            "arguments before using this estimator."
        )


#: Default of a deprecated ``random_state`` argument: not given.
DEPRECATED = "deprecated"


def deprecated_random_state(
    seed: Any, random_state: Any, where: str, *, default: Any = 0, allow_none: bool = True, stacklevel: int = 3
) -> int | None:
    """The seed given as ``seed`` or as the deprecated ``random_state`` alias, checked.

    ``random_state`` is the former name of ``seed`` (in ``SparseCalibrator``, ``pmse``,
    ``fidelity_scores``, ``evaluate``, ``dcr`` and ``privacy_summary``); it still works for one
    release, with a :class:`FutureWarning` (attributed to the caller, ``stacklevel`` frames up),
    and is then removed. Its default is :data:`DEPRECATED` (not given). Giving both raises; the
    value is checked by :func:`~microplex._params.check_seed` under the name that was given.

    >>> deprecated_random_state(3, DEPRECATED, "pmse")
    3
    >>> deprecated_random_state(-1, DEPRECATED, "pmse")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'seed' parameter must be an int in [0, 2**64 - 1] or None. Got -1 instead.
    """
    if isinstance(random_state, str) and random_state == DEPRECATED:
        return check_seed(seed, "seed", allow_none=allow_none)
    if not (seed is default or (type(seed) is type(default) and seed == default)):
        raise DataValidationError(
            f"{where}: give 'seed' only ('random_state' is its deprecated alias). Got seed={seed!r} and "
            f"random_state={random_state!r}."
        )
    warnings.warn(
        f"{where}: 'random_state' is deprecated and will be removed in the next release; use 'seed' instead.",
        FutureWarning, stacklevel=stacklevel,
    )
    return check_seed(random_state, "random_state", allow_none=allow_none)
