"""Condition sources that stream: rows ``[start, stop)`` of a conditions table on demand.

A source is a conditions table that need not fit in memory. :func:`generate_dataset`
asks it for row ranges (one block at a time, possibly on another machine), so every source
gives random access by global row index and the same rows for the same range every time.

- :class:`FrameSource` wraps an in-memory DataFrame.
- :class:`ParquetSource` reads a Parquet file or dataset of demographics by row group.
- :class:`CellCounts` expands counts per cell (e.g. persons per state x age x sex).
- :class:`Resample` draws a weighted resample (e.g. of the training conditions), block by
  block from counter-keyed seeds, so it is unbounded and needs no state.
- :class:`ModelConditions` draws the conditions from a fully synthetic model's condition model
  (``condition_model=True``, or any DP model with conditions), block by block from counter-keyed
  seeds: no training row is read.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import DataValidationError
from .._params import check_int, check_names, check_seed, duplicated
from .._random import block_sequence, int_seed
from .._stats import check_weights
from ..io import arrow_frame, file_sha256, index_as_columns, pandas_metadata, record_columns

__all__ = ["ConditionSource", "FrameSource", "ParquetSource", "CellCounts", "Resample", "ModelConditions",
           "as_source"]


class ConditionSource:
    """Base class of condition sources.

    Subclasses set ``columns`` (list of str) and ``n_rows`` (int, or ``None`` when unbounded)
    and implement :meth:`read` and :meth:`fingerprint`.
    """

    columns: list[str]
    n_rows: int | None

    def read(self, start: int, stop: int) -> pd.DataFrame:
        """Rows ``start`` to ``stop - 1`` as a DataFrame with a fresh ``RangeIndex``."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A hex digest that changes whenever the rows would change (used to resume runs)."""
        raise NotImplementedError

    def draw(self, synth, start: int, stop: int, chunk_size: int = 20_000) -> pd.DataFrame:
        """The rows ``[start, stop)`` a run of ``synth`` generates for: :meth:`read`'s (a source drawn by
        the model itself, :class:`ModelConditions`, draws them with ``synth``)."""
        return self.read(start, stop)

    def _check_range(self, start: int, stop: int) -> None:
        if start < 0 or stop < start or (self.n_rows is not None and stop > self.n_rows):
            raise DataValidationError(
                f"Rows [{start}, {stop}) are out of range for a source of {self.n_rows} rows."
            )


#: Largest number of rows a source may describe (exact in int64 and float64).
_MAX_ROWS = 2**53
#: Largest ``Resample`` block: one block of draws is held in memory.
_MAX_BLOCK_ROWS = 10_000_000


def _check_frame(frame: object, label: str) -> pd.DataFrame:
    """A DataFrame whose column names are distinct non-empty strings and whose columns Parquet can store."""
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"{label} must be a DataFrame. Got {type(frame).__name__} instead.")
    names = list(frame.columns)
    bad = [c for c in names if not isinstance(c, str) or not c]
    dup = duplicated(names)
    if bad or dup:
        raise DataValidationError(
            f"{label} must have distinct, non-empty string column names; "
            f"got {'non-string or empty names ' + repr(bad[:5]) if bad else 'duplicated names ' + repr(dup[:5])}."
        )
    try:
        pa.Schema.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError):
        for c in names:
            try:
                pa.Schema.from_pandas(frame[[c]], preserve_index=False)
            except (pa.ArrowException, TypeError, ValueError) as exc:
                raise DataValidationError(
                    f"Column {c!r} of {label} cannot be stored in Parquet ({str(exc)[:100]}); "
                    "give it one type (numbers, strings, booleans, dates or categories)."
                ) from None
        raise
    return frame


def _records(frame: object, label: str, what: str) -> pd.DataFrame:
    """``frame`` checked (:func:`_check_frame`) with its pandas index as a Parquet file of it is read
    (:func:`microplex.io.index_as_columns`): the levels with a name (``df.set_index("pid")``, ids) are columns
    after the frame's, the others (row numbers) dropped; a fresh ``RangeIndex``. ``what`` names the frame in the
    error raised when an index level is named as a column."""
    if isinstance(frame, pd.DataFrame):
        frame = index_as_columns(frame, what, list(frame.columns))
    return _check_frame(frame, label)


def _arrow_types(frame: pd.DataFrame) -> dict[str, pa.DataType]:
    """The Parquet type of every column, fixed for the whole source (a block of only missing
    values would otherwise get another type than the next block)."""
    schema = pa.Schema.from_pandas(frame, preserve_index=False)
    return {name: schema.field(name).type for name in frame.columns}


def _hash_frame(df: pd.DataFrame) -> str:
    h = hashlib.sha256()
    h.update(repr([(c, str(t)) for c, t in df.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


class FrameSource(ConditionSource):
    """Conditions from an in-memory DataFrame.

    Parameters
    ----------
    frame : DataFrame
        One row per record to synthesize.

    Examples
    --------
    >>> src = FrameSource(pd.DataFrame({"age": [20, 30, 40]}))
    >>> src.read(1, 3)["age"].tolist()
    [30, 40]
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        frame = _records(frame, "'conditions'", "the 'conditions' frame")
        self.arrow_types = _arrow_types(frame)
        self.frame = frame.reset_index(drop=True)  # a frame of its own: the caller's may change
        self.columns = [str(c) for c in frame.columns]
        self.n_rows = len(frame)

    def read(self, start: int, stop: int) -> pd.DataFrame:
        self._check_range(start, stop)
        return self.frame.iloc[start:stop].reset_index(drop=True)

    def fingerprint(self) -> str:
        return _hash_frame(self.frame)


class ParquetSource(ConditionSource):
    """Conditions from a Parquet file or a directory of Parquet files, read by row group.

    Files are taken in sorted path order (hidden ``.``/``_`` names skipped); only the row
    groups that overlap a requested range are read, so memory stays at about one row group.

    Parameters
    ----------
    path : str or path-like
        A ``.parquet`` file or a directory searched recursively for ``*.parquet``; a directory holding
        another file (a ``README.txt``, a ``data.parq``) is refused, naming it.
    columns : list of str, default=None
        Columns to read (all when ``None``).
    """

    def __init__(self, path: str | os.PathLike, columns: list[str] | None = None) -> None:
        if not isinstance(path, str | os.PathLike) or not os.fspath(path):
            raise DataValidationError(f"The 'path' parameter must be a non-empty str or path-like. Got {path!r} instead.")
        if columns is not None:
            columns = check_names(columns, "columns", allow_empty=False)
        self.path = str(Path(path))
        self.files = parquet_files(path, "Conditions")
        #: The hive partition keys of the folder names (``g=a/part.parquet``): columns the files do not store.
        self.partition_keys = list(dict.fromkeys(
            part.split("=", 1)[0] for f in self.files
            for part in Path(os.path.relpath(f, self.path)).parts[:-1] if "=" in part))
        schema = _read_schema(self.files[0])
        names = record_columns(schema.names)
        ranges = _metadata_index(schema, f"Parquet conditions {self.path!r}")
        if ranges and (columns is None or set(ranges) & set(columns)):
            raise DataValidationError(
                f"Parquet conditions {self.path!r} hold the pandas index {ranges} as metadata only (a RangeIndex: ids "
                "without a gap, as pandas writes df.set_index(...) of 1, 2, ..., n), no column of the file; read in "
                "row groups, it cannot be rebuilt. Write it as a column (df.reset_index().to_parquet(...)), or name "
                "the other columns.")
        if columns is not None:
            missing = [c for c in columns if c not in names]
            if missing:
                raise DataValidationError(f"Parquet conditions {self.path!r} lack columns {missing}; they have {names}.")
        self.columns = list(columns) if columns is not None else names
        if len(set(self.columns)) != len(self.columns) or not all(self.columns):
            raise DataValidationError(f"Parquet conditions {self.path!r} have duplicated or empty column names {self.columns}.")
        self.arrow_types = {c: schema.field(c).type for c in self.columns}
        check_same_schema(self.files, self.columns, "Parquet conditions")
        groups = []  # (file index, row group, rows)
        for i, f in enumerate(self.files):
            meta = pq.ParquetFile(f).metadata
            groups += [(i, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
        self._groups = groups
        self._starts = np.concatenate([[0], np.cumsum([g[2] for g in groups], dtype=np.int64)])
        self.n_rows = int(self._starts[-1])
        self._cache: tuple[int, pa.Table] | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = None
        return state

    def _group(self, k: int) -> pa.Table:
        cache = self._cache  # one read of the attribute: safe when worker threads share the source
        if cache is not None and cache[0] == k:
            return cache[1]
        i, g, _ = self._groups[k]
        table = pq.ParquetFile(self.files[i]).read_row_group(g, columns=self.columns)
        self._cache = (k, table)
        return table

    def read(self, start: int, stop: int) -> pd.DataFrame:
        self._check_range(start, stop)
        if stop == start:
            return self._frame(self._group(0).slice(0, 0))
        first = int(np.searchsorted(self._starts, start, side="right")) - 1
        last = int(np.searchsorted(self._starts, stop, side="left")) - 1
        parts = []
        for k in range(first, last + 1):
            lo = max(start - int(self._starts[k]), 0)
            hi = min(stop - int(self._starts[k]), self._groups[k][2])
            parts.append(self._group(k).slice(lo, hi - lo))
        return self._frame(pa.concat_tables(parts))

    def _frame(self, table: pa.Table) -> pd.DataFrame:
        """``table`` as pandas, its columns a pandas index of the file (``df.set_index("pid")``) kept as columns
        (:func:`microplex.io.arrow_frame`), as :func:`microplex.io.read_table` reads them."""
        return arrow_frame(table, f"the Parquet conditions {self.path!r}")

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for f in self.files:  # the bytes, not the size: a rewrite of equal size must not resume the old run
            h.update(os.path.relpath(f, self.path).encode())
            h.update(file_sha256(f).encode())
        h.update(repr((self.columns, [g[2] for g in self._groups])).encode())
        return h.hexdigest()


def parquet_files(path: str | os.PathLike, label: str) -> list[str]:
    """The Parquet files of ``path`` (a ``.parquet`` file, or a directory searched recursively for
    ``*.parquet``, hidden ``.``/``_`` names skipped: :func:`~microplex.scale._layout.data_files`), in sorted
    path order.

    Raises :class:`DataValidationError` (``label`` names what the path is) when ``path`` does not exist,
    holds no Parquet file or holds another file than ``*.parquet`` (a ``README.txt``, a ``data.parq``), or is a
    dataset an unfinished ``generate_dataset`` run is writing (:func:`~microplex.scale._layout.check_finished`).
    """
    from ._layout import check_finished, data_files

    root = Path(path)
    if root.is_dir():
        check_finished(root)  # an interrupted generate_dataset run: a part of the dataset only
        files = data_files(root, label)
    elif root.is_file():
        files = [str(root)]
    else:
        raise DataValidationError(f"{label} path {str(root)!r} does not exist.")
    if not files:
        raise DataValidationError(f"{label} path {str(root)!r} holds no .parquet files.")
    return [str(f) for f in files]


def check_same_schema(files: list[str], columns: list[str], label: str) -> list[str]:
    """Checks that every file of ``files`` has those of ``columns`` that the first file stores, with the
    first file's Parquet types (columns the first file does not store, such as hive partition keys, which
    live in the folder names, are not checked).

    Raises :class:`DataValidationError` naming the first file that lacks one of them or stores it as
    another type (a reader that trusts the first file's schema would silently misread it), that is
    not readable as Parquet, or whose pandas metadata is damaged (:func:`microplex.io.pandas_metadata`).
    Returns the names of the pandas indexes the files store as metadata only (a ``RangeIndex`` with a name,
    ``df.rename_axis("id")``: no column of a file), in the order first found.
    """
    first = None
    ranges: dict[str, None] = {}
    for f in files:
        other = _read_schema(f, label)
        if first is None:  # the first file's schema, read once
            first = other
            types = {c: first.field(c).type for c in dict.fromkeys(columns) if c in first.names}
        ranges.update(dict.fromkeys(_metadata_index(other, f"{label} file {f!r}")))
        differ = [c for c in types if c not in other.names or other.field(c).type != types[c]]
        if differ:
            raise DataValidationError(
                f"{label} file {f!r} differs from {files[0]!r} in columns {differ[:5]} "
                "(missing or of another type); every file must share the columns and types."
            )
    return list(ranges)


def _metadata_index(schema: pa.Schema, label: str) -> list[str]:
    """The names of the pandas index levels ``schema``'s pandas metadata stores as metadata only (a ``RangeIndex``
    with a name: start, stop and step, no column of the file); damaged metadata is refused naming ``label``
    (:func:`microplex.io.pandas_metadata`)."""
    entries = (pandas_metadata(schema, label) or {}).get("index_columns", [])
    return [str(e["name"]) for e in entries if isinstance(e, dict) and e["name"] is not None]


def _read_schema(file: str, label: str = "Conditions") -> pa.Schema:
    """The Arrow schema of the Parquet ``file``, its pandas metadata checked (:func:`microplex.io.pandas_metadata`);
    ``label`` (``"Conditions"``) names what the file is in the errors."""
    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataValidationError(f"{label} file {file!r} is not a readable Parquet file ({str(exc)[:100]}).") from None
    pandas_metadata(schema, f"{label} file {file!r}")
    return schema


class CellCounts(ConditionSource):
    """Conditions expanded from counts per cell, chunk by chunk.

    Row ``i`` of the expansion is the cell whose cumulative count first exceeds ``i``, so
    the cells appear in table order, each repeated ``count`` times, without materializing
    the expansion.

    Parameters
    ----------
    table : DataFrame
        One row per cell: the condition columns and a count column.
    count_col : str, default="count"
        Column with the non-negative integer number of records per cell.

    Examples
    --------
    >>> cells = pd.DataFrame({"state": ["CA", "NY"], "sex": [1, 2], "count": [2, 3]})
    >>> src = CellCounts(cells)
    >>> src.n_rows
    5
    >>> src.read(1, 4)["state"].tolist()
    ['CA', 'NY', 'NY']
    """

    def __init__(self, table: pd.DataFrame, count_col: str = "count") -> None:
        if not isinstance(count_col, str) or not count_col:
            raise DataValidationError(f"The 'count_col' parameter must be a non-empty str. Got {count_col!r} instead.")
        if isinstance(table, pd.DataFrame):
            table = _records(table, "The CellCounts table", "the CellCounts table")
        if not isinstance(table, pd.DataFrame) or count_col not in table.columns:
            got = list(table.columns) if isinstance(table, pd.DataFrame) else type(table).__name__
            raise DataValidationError(f"CellCounts needs a DataFrame with a {count_col!r} column. Got {got}.")
        counts = table[count_col]
        if not pd.api.types.is_numeric_dtype(counts.dtype) or counts.isna().any():
            raise DataValidationError(f"Count column {count_col!r} must be numeric without missing values.")
        values = counts.to_numpy(float)
        if not np.isfinite(values).all() or (values < 0).any() or (values != np.round(values)).any():
            raise DataValidationError(f"Count column {count_col!r} must hold non-negative integers.")
        if values.sum() > _MAX_ROWS:
            raise DataValidationError(
                f"Count column {count_col!r} sums to {values.sum():.3g} records; at most 2**53 are supported."
            )
        self.count_col = count_col
        self.cells = table.drop(columns=count_col).reset_index(drop=True)
        self.arrow_types = _arrow_types(self.cells)
        self.counts = values.astype(np.int64)
        self._ends = np.cumsum(self.counts)
        self.columns = [str(c) for c in self.cells.columns]
        self.n_rows = int(self._ends[-1]) if len(self._ends) else 0

    def read(self, start: int, stop: int) -> pd.DataFrame:
        self._check_range(start, stop)
        first = int(np.searchsorted(self._ends, start, side="right"))
        last = int(np.searchsorted(self._ends, stop, side="left"))
        if stop == start:
            return self.cells.iloc[0:0].reset_index(drop=True)
        idx = np.arange(first, last + 1)
        begins = np.maximum(self._ends[idx] - self.counts[idx], start)
        ends = np.minimum(self._ends[idx], stop)
        rows = np.repeat(idx, ends - begins)
        return self.cells.iloc[rows].reset_index(drop=True)

    def fingerprint(self) -> str:
        return _hash_frame(self.cells) + hashlib.sha256(self.counts.tobytes()).hexdigest()[:16]


class Resample(ConditionSource):
    """An unbounded weighted resample (with replacement) of a conditions table.

    Rows are drawn in blocks of ``block_rows``; block ``k`` uses a generator seeded from
    ``SeedSequence(seed, spawn_key=(1, k))``, so any row range can be drawn anywhere, and
    row ``i`` depends only on (``frame``, ``weights``, ``seed``, ``block_rows``).

    Parameters
    ----------
    frame : DataFrame
        Records to draw from (e.g. ``synth.training_conditions_``).
    weights : array-like of shape (len(frame),), default=None
        Non-negative draw weights (e.g. ``synth.training_weights_``); equal when ``None``.
    seed : int, default=0
    block_rows : int, default=100000

    Examples
    --------
    >>> src = Resample(pd.DataFrame({"x": [1, 2, 3]}), weights=[0, 0, 1], seed=3)
    >>> src.read(10, 14)["x"].tolist()
    [3, 3, 3, 3]
    """

    def __init__(self, frame: pd.DataFrame, weights=None, *, seed: int = 0, block_rows: int = 100_000) -> None:
        seed = check_seed(seed, "seed", allow_none=False)
        block_rows = check_int(block_rows, "block_rows", low=1, high=_MAX_BLOCK_ROWS)
        if not isinstance(frame, pd.DataFrame) or len(frame) == 0:
            raise DataValidationError("Resample needs a non-empty DataFrame to draw from.")
        frame = _records(frame, "The Resample frame", "the Resample frame")
        if weights is not None and np.ndim(weights) != 1:
            raise DataValidationError(f"Resample weights must be {len(frame)} numbers. Got {type(weights).__name__}.")
        w = check_weights(weights, len(frame), "Resample weights")
        self.arrow_types = _arrow_types(frame)
        self.frame = frame.reset_index(drop=True)  # a frame of its own: the caller's may change
        self.weights = w
        self.seed = int(seed)
        self.block_rows = int(block_rows)
        cdf = np.cumsum(w)
        self._cdf = cdf / cdf[-1]
        self.columns = [str(c) for c in frame.columns]
        self.n_rows = None

    def _block(self, k: int) -> np.ndarray:
        rng = np.random.default_rng(block_sequence(self.seed, 1, k))
        idx = np.searchsorted(self._cdf, rng.random(self.block_rows), side="right")
        return np.minimum(idx, len(self._cdf) - 1)

    def read(self, start: int, stop: int) -> pd.DataFrame:
        self._check_range(start, stop)
        b = self.block_rows
        idx = [
            self._block(k)[max(start - k * b, 0) : min(stop - k * b, b)]
            for k in range(start // b, (stop - 1) // b + 1)
        ] if stop > start else [np.zeros(0, dtype=np.int64)]
        return self.frame.iloc[np.concatenate(idx)].reset_index(drop=True)

    def fingerprint(self) -> str:
        extra = repr((self.seed, self.block_rows)).encode() + self.weights.tobytes()
        return _hash_frame(self.frame) + hashlib.sha256(extra).hexdigest()[:16]


class ModelConditions(ConditionSource):
    """Condition rows drawn from a fully synthetic model's condition model, an unbounded source.

    :func:`~microplex.scale.generate_dataset` uses it when ``conditions`` is None and the model
    keeps no training rows (``condition_model=True``): block ``k`` of ``block_rows`` rows is drawn by
    the model's condition model with a seed from ``SeedSequence(seed, spawn_key=(2, k))``, so row
    ``i`` depends only on (the model, ``seed``, ``block_rows``), on any worker. The rows are drawn
    by :meth:`draw` with the model (a worker's own copy); the source holds no model and no row.
    """

    def __init__(self, synth, *, seed: int = 0, block_rows: int = 100_000) -> None:
        from ..synthesis._conditions import draw_conditions

        if not hasattr(synth, "condition_model_"):
            raise DataValidationError("ModelConditions needs a Synthesizer fitted with condition_model=True.")
        self.seed = int(check_seed(seed, "seed", allow_none=False))
        self.block_rows = int(check_int(block_rows, "block_rows", low=1, high=_MAX_BLOCK_ROWS))
        self.columns = [str(c) for c in synth.condition_vars]
        self.n_rows = None
        # the columns' Parquet types, fixed per run (a few rows drawn apart from the blocks' stream 2)
        probe = draw_conditions(synth, 16, int_seed(block_sequence(self.seed, 3, 0)), 16, None)
        self.arrow_types = _arrow_types(probe[self.columns])
        self._last: tuple[int, pd.DataFrame] | None = None  # the last block drawn (a task reads a block in parts)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_last": None}  # shipped to workers without a drawn block

    def draw(self, synth, start: int, stop: int, chunk_size: int = 20_000) -> pd.DataFrame:
        """Rows ``start`` to ``stop - 1`` drawn by ``synth``'s condition model (whole blocks, then cut)."""
        self._check_range(start, stop)
        if stop == start:
            return pd.DataFrame(columns=self.columns)
        b = self.block_rows
        return pd.concat([self._block(synth, k, chunk_size).iloc[max(start - k * b, 0): min(stop - k * b, b)]
                          for k in range(start // b, (stop - 1) // b + 1)], ignore_index=True)

    def _block(self, synth, k: int, chunk_size: int) -> pd.DataFrame:
        from ..synthesis._conditions import draw_conditions

        last = self._last  # read once: a worker's threads may share this source
        if last is None or last[0] != k:
            b = self.block_rows
            block = draw_conditions(synth, b, int_seed(block_sequence(self.seed, 2, k)), min(chunk_size, b), None)
            last = self._last = (k, block[self.columns])
        return last[1]

    def read(self, start: int, stop: int) -> pd.DataFrame:
        raise DataValidationError("ModelConditions rows are drawn with the model: call draw(synth, start, stop).")

    def fingerprint(self) -> str:
        return hashlib.sha256(repr(("ModelConditions", self.seed, self.block_rows)).encode()).hexdigest()[:32]


def as_source(conditions, synth=None, seed: int = 0) -> ConditionSource:
    """Turns a DataFrame, a Parquet path or ``None`` (resample the training conditions) into a source."""
    if isinstance(conditions, ConditionSource):
        return conditions
    if isinstance(conditions, pd.DataFrame):
        return FrameSource(conditions)
    if isinstance(conditions, str | os.PathLike):
        return ParquetSource(conditions)
    if conditions is None and synth is not None and hasattr(synth, "condition_model_"):
        return ModelConditions(synth, seed=seed)  # fully synthetic: drawn by the condition model, block by block
    if conditions is None and synth is not None and not hasattr(synth, "training_conditions_"):
        # a DP Synthesizer without conditions keeps no training row: its records are drawn from empty rows
        return Resample(pd.DataFrame(index=pd.RangeIndex(1)), seed=seed)
    if conditions is None and synth is not None:
        return Resample(synth.training_conditions_, synth.training_weights_, seed=seed)
    raise DataValidationError(
        "'conditions' must be a ConditionSource, a DataFrame, a Parquet path or None. "
        f"Got {type(conditions).__name__} instead."
    )
