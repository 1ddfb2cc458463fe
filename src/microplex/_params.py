"""Parameter checks shared by every estimator, function and CLI verb.

Each check returns the value in its canonical Python type or raises
:class:`~microplex.DataValidationError` with a scikit-learn style message that names the parameter
and shows what was expected and what was given:

>>> check_int(2.5, "epochs", low=1)
Traceback (most recent call last):
...
microplex._errors.DataValidationError: The 'epochs' parameter must be an int >= 1. Got 2.5 instead.

Booleans are not numbers here (``epochs=True`` is refused), integral floats are not ints
(``epochs=2.0`` is refused: a silently truncated ``2.7`` would be a wrong result), and floats must
be finite unless the check says otherwise. Numpy scalars are accepted and converted.
"""

from __future__ import annotations

import collections
import contextlib
import numbers
import os
import reprlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from ._errors import DataValidationError

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_int",
    "short_repr",
    "check_names",
    "check_seed",
    "duplicated",
    "flags",
    "memory_cap",
    "named",
    "shown",
    "to_python",
]

# Seeds feed numpy.random.SeedSequence and torch.manual_seed; both take non-negative ints < 2**64 (block seeds use all 64 bits).
_MAX_SEED = 2**64 - 1


def to_python(value: Any) -> Any:
    """``value`` with a numpy scalar (or 0-d array) converted to its Python scalar; anything else unchanged.

    For values shown in messages or written to JSON: ``np.int64(1)`` reads ``1``.

    >>> to_python(np.int64(1)), to_python(np.float32(0.5)), to_python("a")
    (1, 0.5, 'a')
    """
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


_SHORT = reprlib.Repr()
_SHORT.maxlevel = 3
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxset = _SHORT.maxfrozenset = _SHORT.maxdict = _SHORT.maxdeque = 8
_SHORT.maxstring = _SHORT.maxother = 78
_SHORT.maxlong = 78


def short_repr(value: Any, limit: int = 80) -> str:
    """The repr of ``value`` for a message: at most ``limit`` characters, built in bounded time and memory.

    ``repr(value)[:80]`` builds the whole repr first: a list of a YAML or JSON file that nests shared lists
    (a few hundred bytes of aliases) has a repr of gigabytes. Here containers are shown three levels deep, eight
    items each, strings to 78 characters, then cut to ``limit`` (an ellipsis shows the cut).

    >>> short_repr([[1, 2]] * 3)
    '[[1, 2], [1, 2], [1, 2]]'
    >>> nested = ["x" * 10] * 10
    >>> for _ in range(12):  # 10**13 strings: repr() would never finish
    ...     nested = [nested] * 10
    >>> short_repr(nested)
    '[[[[...], [...], [...], [...], [...], [...], [...], [...], ...], [[...], [......'
    """
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _got(value: Any) -> str:
    return short_repr(value)


#: The command-line flags of the parameters a verb passes to the library (``{"max_records": "--max-records"}``),
#: set by :func:`flags` while the command line runs it; empty for the Python API.
_FLAGS: ContextVar[Mapping[str, str]] = ContextVar("microplex_flags", default={})


@contextlib.contextmanager
def flags(given: Mapping[str, str]) -> Iterator[None]:
    """Within the block, messages name the parameters of ``given`` (``{"max_records": "--max-records"}``) by the
    command-line flag the user typed (:func:`shown`, :func:`named`); the command line runs each verb's library
    calls in it, so that "max_records=1 is below ..." reaches the user as "--max-records=1 is below ...".

    Parameters
    ----------
    given : mapping of str to str
        Python parameter name to the flag (``"--n"``) that gave its value.
    """
    token = _FLAGS.set(dict(given))
    try:
        yield
    finally:
        _FLAGS.reset(token)


def shown(name: str) -> str:
    """How a message names the parameter ``name``: itself, or within :func:`flags` the command-line flag that gave
    it.

    >>> shown("max_records")
    'max_records'
    >>> with flags({"max_records": "--max-records"}):
    ...     shown("max_records")
    '--max-records'
    """
    return _FLAGS.get().get(name, name)


def named(name: str) -> str:
    """How a message names ``name``: a command-line flag (``"--max-rows"``, or a parameter that one gave within
    :func:`flags`) as an option, anything else as a parameter.

    >>> named("max_rows"), named("--max-rows")
    ("The 'max_rows' parameter", "The '--max-rows' option")
    """
    name = shown(name)
    return f"The {name!r} {'option' if name.startswith('--') else 'parameter'}"


def _or_none(name: str, allow_none: bool) -> str:
    """The ``" or None"`` of an expected value where ``None`` is allowed, except for a command-line flag (``None``
    there is the option left out, not a value to give)."""
    return " or None" if allow_none and not shown(name).startswith("--") else ""


def _fail(name: str, expected: str, value: Any) -> DataValidationError:
    return DataValidationError(f"{named(name)} must be {expected}. Got {_got(value)} instead.")


def _bounds_text(low: float | None, high: float | None, low_inclusive: bool, high_inclusive: bool) -> str:
    parts = []
    if low is not None and high is not None:
        left, right = ("[" if low_inclusive else "("), ("]" if high_inclusive else ")")
        return f" in {left}{low:g}, {high:g}{right}"
    if low is not None:
        parts.append(f" {'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        parts.append(f" {'<=' if high_inclusive else '<'} {high:g}")
    return "".join(parts)


def _in_bounds(v: float, low, high, low_inclusive: bool, high_inclusive: bool) -> bool:
    if low is not None and (v < low or (v == low and not low_inclusive)):
        return False
    if high is not None and (v > high or (v == high and not high_inclusive)):
        return False
    return True


def check_int(
    value: Any,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """``value`` as an ``int`` within ``[low, high]``.

    >>> check_int(np.int64(3), "transforms", low=1)
    3
    >>> check_int(None, "threads", low=1, allow_none=True) is None
    True
    >>> check_int("lots", "n", low=0)
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'n' parameter must be an int >= 0. Got 'lots' instead.
    """
    expected = "an int" + _bounds_text(low, high, True, True) + _or_none(name, allow_none)
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise _fail(name, expected, value)
    v = int(value)
    if not _in_bounds(v, low, high, True, True):
        raise _fail(name, expected, value)
    return v


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    allow_none: bool = False,
) -> float | None:
    """``value`` as a finite ``float`` within the given bounds (ints are accepted).

    >>> check_float(0, "weight_decay", low=0.0)
    0.0
    >>> check_float(float("nan"), "learning_rate", low=0.0, low_inclusive=False)
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'learning_rate' parameter must be a finite float > 0. Got nan instead.
    """
    expected = "a finite float" + _bounds_text(low, high, low_inclusive, high_inclusive) + _or_none(name, allow_none)
    if value is None and allow_none:
        return None
    # int, float and numpy numbers only: a Fraction passed here was stored as given and failed in save (JSON)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise _fail(name, expected, value)
    try:
        v = float(value)
    except OverflowError:  # an int beyond float64 (10**400)
        raise _fail(name, expected, value) from None
    if not np.isfinite(v) or not _in_bounds(v, low, high, low_inclusive, high_inclusive):
        raise _fail(name, expected, value)
    return v


def check_bool(value: Any, name: str, *, allow_none: bool = False) -> bool | None:
    """``value`` as a ``bool``; only ``True``/``False`` (and numpy booleans) are accepted, and ``None``
    with ``allow_none``.

    >>> check_bool("no", "verbose")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'verbose' parameter must be a bool. Got 'no' instead.
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, bool | np.bool_):
        raise _fail(name, "a bool" + _or_none(name, allow_none), value)
    return bool(value)


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``.

    >>> check_choice("nsf", "flow", ("maf", "nsf"))
    'nsf'
    >>> check_choice("realnvp", "flow", ("maf", "nsf"))
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'flow' parameter must be one of 'maf', 'nsf'. Got 'realnvp' instead.
    """
    choices = tuple(choices)
    try:
        ok = any(type(value) is type(c) and value == c for c in choices)
    except Exception:  # noqa: BLE001 - an unhashable or odd object is simply not a choice
        ok = False
    if not ok:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def check_seed(value: Any, name: str = "seed", *, allow_none: bool = True) -> int | None:
    """A seed: a non-negative ``int`` below 2**64 (or ``None`` for fresh entropy when allowed).

    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'seed' parameter must be an int in [0, 2**64 - 1] or None. Got -1 instead.
    """
    expected = "an int in [0, 2**64 - 1]" + _or_none(name, allow_none)
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral) or not 0 <= int(value) <= _MAX_SEED:
        raise _fail(name, expected, value)
    return int(value)


def check_names(value: Any, name: str, *, allow_empty: bool = True) -> list[str]:
    """A sequence of distinct column names (strings), returned as a list.

    A single string is refused (``"age"`` is not ``["age"]``).

    >>> check_names(("age", "educ"), "condition_vars")
    ['age', 'educ']
    >>> check_names("age", "condition_vars")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'condition_vars' parameter must be a list of distinct column names (str). Got 'age' instead.
    """
    expected = ("a non-empty" if not allow_empty else "a") + " list of distinct column names (str)"
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray | tuple | list):
        raise _fail(name, expected, value)
    names = list(value)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise _fail(name, expected, value)
    if not names and not allow_empty:
        raise _fail(name, expected, value)
    return names


def duplicated(names: Iterable[Any]) -> list[Any]:
    """The names that ``names`` (a table's columns, a file's header or schema) holds more than once, each once, in
    the order of their text: what a message refusing two columns of one name lists.

    >>> duplicated(["age", "sex", "age", "w", "sex"]), duplicated(["age"])
    (['age', 'sex'], [])
    """
    counts = collections.Counter(names)
    return sorted((n for n, k in counts.items() if k > 1), key=str)


#: Memory assumed where the machine's physical memory cannot be read.
_FALLBACK_MEMORY_CAP = 2**34


def memory_cap() -> int:
    """Bytes a result held in memory may take: this machine's physical memory (``os.sysconf``),
    or 16 GiB where it cannot be read. Sizes are checked against it before allocating.

    >>> memory_cap() > 2**20
    True
    """
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return _FALLBACK_MEMORY_CAP
