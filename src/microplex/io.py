"""Reading tables and hashing files, shared by the command line and the pipeline."""

from __future__ import annotations

import contextlib
import csv
import decimal
import hashlib
import os
import re
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ._files import (DOT_MISSING, columns_hint, csv_text, dot_missing, empty_unnamed, formatted_numbers, integer_codes,
                     keep_none_labels, keep_padded_codes, numbers_from_text, other_separator, temp_beside, text_values)
from ._errors import DataValidationError, MicroplexError
from ._params import check_names, duplicated, memory_cap, named, short_repr, to_python
from .datasets import DATASETS, dataset_path

__all__ = [
    "read_table",
    "as_numbers",
    "text_columns",
    "read_targets",
    "read_public_metadata",
    "resolve_path",
    "file_sha256",
    "write_parquet_atomic",
    "write_text_atomic",
    "atomic_path",
    "check_replaceable",
    "check_rows_fit_memory",
    "check_rows_fit_disk",
]

# What the readers raise on a file whose content is not what its extension says (bad bytes, a
# truncated Parquet footer, a CSV that does not parse, an unreadable YAML document, a missing
# optional reader). Caught only around the read itself and re-raised as a DataValidationError
# that names the file; any other exception is a bug and propagates.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # includes pandas ParserError/EmptyDataError and UnicodeDecodeError
    pa.ArrowException,
    OSError,
    EOFError,
    ImportError,
    struct.error,  # a damaged Stata file
    zipfile.BadZipFile,  # a damaged Excel workbook
    KeyError,  # a zip archive named .xlsx that holds no workbook (pandas' engine lookup)
)

_READERS = {
    ".csv": pd.read_csv,
    ".txt": pd.read_csv,
    ".gz": pd.read_csv,  # compressed CSV, as pandas infers the compression from the suffix
    ".bz2": pd.read_csv,
    ".xz": pd.read_csv,
    ".zip": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".json": pd.read_json,
    ".feather": pd.read_feather,
    ".dta": pd.read_stata,
    ".xpt": lambda p: _read_readstat(p),  # SAS transport (not pandas' reader: it reads some zeros as 5.4e-79)
    ".sav": lambda p: _read_readstat(p),  # SPSS
    ".zsav": lambda p: _read_readstat(p),
    ".xlsx": pd.read_excel,
}


def resolve_path(path: str | os.PathLike, base: Path | None = None) -> Path:
    """Resolves ``bundled:<name>`` to a bundled dataset and relative paths against ``base``."""
    text = str(path)
    if text.startswith("bundled:"):
        name = text.split(":", 1)[1]
        if name not in DATASETS:
            raise DataValidationError(f"Unknown bundled dataset {name!r}; expected one of {sorted(DATASETS)}.")
        return Path(dataset_path(name))
    p = Path(text).expanduser()
    return p if p.is_absolute() or base is None else base / p


def read_table(path: str | os.PathLike, base: Path | None = None, *,
               numeric: Sequence[str] = (), text: Sequence[str] = ()) -> pd.DataFrame:
    """Reads CSV, Parquet (file or dataset folder) or anything pandas reads, by extension.

    A CSV file (also ``.gz``, ``.bz2``, ``.xz``, ``.zip``) is read as pandas reads it, but for what other tools
    write: a ``None`` cell of a text column is the text "None" (a category label;
    :func:`microplex._files.keep_none_labels`); a first column without a name that numbers the rows (R's row names,
    a pandas index) is dropped as row names, and so are columns without a name or a value (a spreadsheet's trailing
    ``,,``); data rows that all end with a delimiter the header lacks (``30,100.5,``) are read in their columns and
    rows of different widths refused (:func:`_trailing_delimiters`); a text column of numbers written with thousands
    separators or a currency sign (``"25,564.67"``, ``"$1,200"``) is read as numbers, and one of percentages
    (``"12.5%"``) as their fractions (0.125); a text column of numbers whose missing values are written ``.`` (a SAS
    or Stata export) or as spaces is read as numbers with those cells missing; a column of integer codes written
    with leading zeros (``013``, a county code; :func:`microplex._files.keep_padded_codes`) is read as its text, not
    as the numbers 13; a file that reads as one column holding ``;``, a tab or ``|`` (another separator) is refused.
    A Stata file's labelled columns are categories, except those whose labels name only some values (special codes
    of an income), read as numbers. A JSON file's strings of integers written with leading zeros (``"013"``) stay
    text (pandas reads them as 13), and so do an Excel file's text cells so written. An Excel header cell typed as a number (a year, 2019) names its column by its
    text, ``'2019'`` (:func:`_header_text`). Parquet ``decimal`` columns are read as float64; a dataset folder
    microplex wrote is read with its schema (partition codes ``"06"`` stay text); a dataset folder is read as its
    ``*.parquet`` files (:func:`_read_dataset`), and an entry that is none (a link to a folder, a broken link, another
    file) refused naming it. SAS transport (``.xpt``) and SPSS (``.sav``,
    ``.zsav``) files are read by pyreadstat (an optional package), not by pandas, whose transport reader misreads
    some zeros (see :func:`_read_readstat`). A Parquet or Feather file whose pandas metadata is damaged is refused
    naming the file (:func:`pandas_metadata`).

    ``numeric`` names columns read as numbers whatever the file writes: a file cannot tell integer amounts padded
    to a fixed width (``0009189``, a fixed-width export) from codes, and reads them as codes; named here, they are
    the numbers they write (9189). Their cells are numbers as written (leading zeros, surrounding spaces,
    thousands separators, a currency sign), missing or empty; any other cell is refused, and so is a name that is
    no column of the file (see :func:`as_numbers`).

    ``text`` names columns read as the text the file writes whatever its cells look like: a model's text
    categories (household sizes ``'1'``, ``'2'``, ``'3+'``; county codes ``'013'``) in a file whose cells of the
    column happen to be all numbers (``1``, ``2``; ``100``, ``245``), which pandas reads as the integers. A CSV
    file's cells are read as written (``013`` stays ``'013'``), a cell ``None`` the text "None" and empty cells
    missing; a JSON file's strings and an Excel file's text cells as written (pandas converts ``"1"`` and
    ``"013"`` to numbers), their numbers as their text (1 as ``'1'``, 2.5 as ``'2.5'``: a number cell of a
    spreadsheet holds no leading zero) and their empty cells missing. Names the file lacks are skipped (the caller
    checks the columns it needs); Parquet, Feather, Stata, SAS and SPSS files store each column's type and are
    read as stored (as streamed Parquet conditions are). A column named in both ``numeric`` and ``text`` is
    refused.

    Examples
    --------
    >>> read_table("bundled:cps1").shape
    (15992, 9)
    """
    numeric = check_names(list(numeric) if isinstance(numeric, pd.Index) else numeric, "numeric")
    text = check_names(list(text) if isinstance(text, pd.Index) else text, "text")
    both = [c for c in numeric if c in text]
    if both:
        raise DataValidationError(f"Columns named both as numbers and as text: {both}; name each as one of them.")
    p = resolve_path(path, base)
    if not p.exists():
        raise DataValidationError(f"Input file {str(p)!r} does not exist.")
    files = _table_files(p)
    reader = _read_dataset if p.is_dir() else _READERS.get(p.suffix.lower())
    if reader is None:
        raise DataValidationError(
            f"Cannot read {str(p)!r}: unknown extension {p.suffix!r} (expected one of {sorted(_READERS)})."
        )
    if reader in (_read_dataset, pd.read_parquet, pd.read_feather):
        _check_pandas_metadata(files)  # pyarrow failed on damaged metadata with a bare KeyError or TypeError
    csv_kwargs: dict[str, Any] = {}
    try:
        frame = _read_dataset(p, files) if reader is _read_dataset else reader(p)
        if reader is pd.read_csv and not frame.index.equals(pd.RangeIndex(len(frame))):
            csv_kwargs = _trailing_delimiters(p)
            if csv_kwargs:
                with warnings.catch_warnings():  # "Length of header ... does not match": the empty last fields
                    warnings.simplefilter("ignore", pd.errors.ParserWarning)
                    frame = reader(p, **csv_kwargs)
    except DataValidationError:
        raise
    except _READ_ERRORS as exc:
        raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"Cannot read {str(p)!r}: it does not hold a table.")
    if reader in (_read_dataset, pd.read_parquet, pd.read_feather):  # pandas' index of an id (set_index): a column
        frame = index_as_columns(frame, f"the table {str(p)!r}", _stored_names(files))
    if reader is pd.read_excel:  # a header cell typed as a number (a year, 2019): the column '2019', as a CSV's
        frame.columns = [_header_text(c) for c in frame.columns]
    names = _csv_header(p) if reader is pd.read_csv else list(frame.columns)
    empty = empty_unnamed(names, frame) if reader is pd.read_csv else []
    if empty:  # a spreadsheet's empty columns without a name (``a,b,,``): nothing to read
        keep = [c not in empty for c in frame.columns]
        names, frame = [n for n, k in zip(names, keep) if k], frame.loc[:, keep]
    _refuse_duplicated_names(names, p)
    sep = other_separator(names) if reader is pd.read_csv else None
    if sep is not None:
        raise DataValidationError(
            f"The table {str(p)!r} reads as one column {names[0][:60]!r}: it seems separated by {sep!r}, and "
            "microplex reads comma-separated files. Write it with commas (and decimal points), or read it with "
            f"pandas.read_csv(path, sep={sep!r}, decimal=...) and save it as Parquet.")
    if reader is pd.read_stata:
        frame = _partly_labelled_as_numbers(p, frame)
    if reader in (pd.read_json, pd.read_excel):
        raw = _raw_reader(p, reader)
        frame = _codes_as_written(frame, raw)
        frame = _cells_as_text(p, frame, text, raw)
    if reader is pd.read_csv and names and not names[0].strip() and _row_numbers(frame.iloc[:, 0]):
        frame = frame.iloc[:, 1:]  # row names (R's write.csv, pandas' to_csv): no column of the records
    if reader is pd.read_csv:  # a "None" category is no missing value (pandas reads it as one)
        try:
            frame = _as_text(p, frame, text, csv_kwargs)  # first: a cell None of such a column is the text "None"
            frame = keep_padded_codes(p, keep_none_labels(p, frame, read_kwargs=csv_kwargs), read_kwargs=csv_kwargs)
        except _READ_ERRORS as exc:
            raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
        frame = _text_numbers_as_numbers(frame, keep=text)
    return as_numbers(_decimals_as_floats(frame), numeric, f"the table {str(p)!r}")


def _trailing_delimiters(p: Path) -> dict[str, Any]:
    """``read_csv``'s options for the CSV file ``p`` whose first data row holds one field more than its header:
    pandas takes the rows' first field for row names. That is right for R's ``write.table`` (every row's name
    first, none in the header), wrong for rows that end with a delimiter (``30,100.5,``, a spreadsheet or hand
    export: every value moved one column left, ages read as the incomes and the incomes as missing) and for a
    row holding an unquoted separator (``30,1,200``: its 1 read as the age). Rows that all end with an empty
    field give ``{"index_col": False}`` (pandas' option for delimiters ending each line); rows that all hold
    one field more, some of them not empty at the end, are R's row names (no options); rows that hold
    different numbers of fields are refused, naming the first that differs."""
    from pandas.io.common import get_handle

    with get_handle(p, "r", encoding="utf-8", compression="infer") as handle:
        rows = csv.reader(handle.handle)
        width = len(next(rows, []))
        trailing = True
        for line, row in enumerate(rows, start=2):
            if not row:  # a blank line, which pandas skips
                continue
            if len(row) != width + 1:
                raise DataValidationError(
                    f"Cannot read {str(p)!r}: its header has {width} fields, its first data row {width + 1} and "
                    f"row {line} {len(row)}: a value holding an unquoted comma (write 1200 or \"1,200\") or a "
                    "row cut short; every row must have as many fields as the header.")
            trailing = trailing and not row[-1].strip()
    return {"index_col": False} if trailing else {}


def index_as_columns(frame: pd.DataFrame, label: str, stored: Sequence[Any] = ()) -> pd.DataFrame:
    """``frame``, as pandas (or pyarrow's ``to_pandas``) reads a Parquet or Feather file, with its index levels that
    have a name as columns, where the file's columns ``stored`` (its Arrow schema's names) place them (first when
    it does not name them), and any other index dropped.

    A file pandas wrote from ``df.set_index("pid")`` stores ``pid`` as a column (pyarrow, polars and R read it
    so) and names it the index in its pandas metadata; read back, ``pid`` is the index, which every output written
    with ``index=False`` dropped without a word (a sparsified subset no longer linked to its records). Ids that
    run without a gap (``1, 2, ..., n``) are a ``RangeIndex``, which pandas stores as metadata only (start, stop,
    step): a column here too. An index without a name (``__index_level_0__``, row numbers) is dropped. ``label``
    names the table in the error raised (:class:`DataValidationError`) when an index level's name is also a
    column's.

    Examples
    --------
    >>> frame = pd.DataFrame({"age": [30, 41]}, index=pd.Index([17, 4], name="pid"))
    >>> index_as_columns(frame, "the table 'x.parquet'").columns.tolist()
    ['pid', 'age']
    >>> index_as_columns(frame, "the table 'x.parquet'", stored=["age", "pid"]).columns.tolist()
    ['age', 'pid']
    """
    index = frame.index
    named = [n for n in index.names if n is not None]
    if not named:
        default = index.name is None and index.equals(pd.RangeIndex(len(frame)))
        return frame if default else frame.reset_index(drop=True)
    clash = sorted({str(n) for n in named if n in frame.columns or named.count(n) > 1})
    if clash:
        raise DataValidationError(
            f"{label[0].upper()}{label[1:]} stores a pandas index named {clash} beside a column (or another index "
            "level) of that name: its records would hold two columns of one name. Rename one (df.rename_axis(...), "
            "or df.reset_index(drop=True) to drop the index) and write or pass it again.")
    unnamed = [i for i, n in enumerate(index.names) if n is None]
    if unnamed:
        frame = frame.reset_index(level=unnamed, drop=True)
    frame = frame.reset_index()
    order = [c for c in stored if c in frame.columns]
    return frame[order + [c for c in frame.columns if c not in order]] if order else frame


def arrow_frame(table: pa.Table, label: str) -> pd.DataFrame:
    """``table`` (a Parquet file's, or a row group's, as pyarrow reads it) as pandas, a pandas index of the file
    (``df.set_index("pid")``) kept as columns where the file stores them (:func:`index_as_columns`), as
    :func:`read_table` reads a file; ``label`` names the table in the errors raised on a clash and on damaged
    pandas metadata (:func:`pandas_metadata`)."""
    pandas_metadata(table.schema, label)
    return index_as_columns(table.to_pandas(), label, table.column_names)


def pandas_metadata(schema: pa.Schema, label: str) -> dict[str, Any] | None:
    """The pandas metadata of ``schema`` (the JSON of its ``b"pandas"`` key, which pandas writes and pyarrow's
    ``to_pandas`` reads to rebuild the index and the dtypes), or ``None`` when it has none.

    Raises :class:`DataValidationError` naming ``label`` (what the schema is: ``"the Parquet file 'x.parquet'"``)
    when the metadata is damaged: no JSON object, without a list ``"columns"`` of objects with a ``"name"`` or
    a list ``"index_columns"`` of index levels (a stored column's name listed in ``"columns"``, or a
    ``RangeIndex``: an object of kind ``"range"`` with a ``"name"`` and integers ``"start"``, ``"stop"``,
    ``"step"``). pyarrow failed on such metadata with a bare ``JSONDecodeError``, ``KeyError`` or ``TypeError``;
    a file is untrusted, and which of its columns such metadata would make the index cannot be known.

    Examples
    --------
    >>> schema = pa.schema([("age", pa.int64())], metadata={b"pandas": b"{not json"})
    >>> pandas_metadata(schema, "the Parquet file 'x.parquet'")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The Parquet file 'x.parquet' stores damaged pandas metadata ...
    """
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return None
    import json

    def damaged(why: str) -> DataValidationError:
        return DataValidationError(
            f"{label[0].upper()}{label[1:]} stores damaged pandas metadata (the b'pandas' key of its Arrow schema "
            f"metadata: {why}), from which its index and column types cannot be read. Write the file again, or "
            "without that metadata (pyarrow: pq.write_table(table.replace_schema_metadata(None), path)).")

    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # not JSON (UnicodeDecodeError is a ValueError)
        raise damaged(f"no JSON ({str(exc)[:80]})") from None
    if not isinstance(meta, dict):
        raise damaged(f"a JSON {type(meta).__name__}, expected an object")
    columns, index = meta.get("columns"), meta.get("index_columns")
    if not isinstance(columns, list) or not all(isinstance(c, dict) and "name" in c for c in columns):
        raise damaged("its 'columns' is no list of objects with a 'name'")
    if not isinstance(index, list):
        raise damaged("its 'index_columns' is no list")
    listed = {c.get("field_name", c["name"]) for c in columns if isinstance(c.get("field_name", c["name"]), str)}
    for level in index:
        if isinstance(level, str):
            if level not in listed:
                raise damaged(f"the index column {level[:60]!r} is not in its 'columns'")
        elif not (isinstance(level, dict) and level.get("kind") == "range" and "name" in level
                  and all(type(level.get(k)) is int for k in ("start", "stop", "step")) and level["step"] != 0):
            raise damaged(f"the index level {str(level)[:80]} is neither a column's name nor a RangeIndex")
    return meta


#: The column names pandas gives the index levels without a name it stores in a Parquet or Feather file.
_UNNAMED_INDEX = re.compile(r"__index_level_\d+__")


def record_columns(names: Sequence[str]) -> list[str]:
    """The column names of a Parquet file (its Arrow schema's ``names``) that are columns of its records, as
    :func:`arrow_frame` reads them: ``names`` without the index levels that have no name, which pandas stores as
    ``__index_level_0__``, ``__index_level_1__`` (a two-level index, after a ``groupby`` or ``concat(keys=...)``),
    ... and :func:`index_as_columns` drops. An index level with a name is a column of the records.

    Examples
    --------
    >>> record_columns(["age", "pid", "__index_level_0__", "__index_level_1__"])
    ['age', 'pid']
    """
    return [n for n in names if not _UNNAMED_INDEX.fullmatch(n)]


def _table_files(p: Path) -> list[Path]:
    """The files the table at ``p`` is read from: ``p`` itself, or, for a dataset folder, its data files as the one
    listing of the folder names them (:func:`microplex.scale._layout.data_files`, which refuses another entry),
    listed once for every step of :func:`read_table` (the pandas metadata check, the index names, the read).

    Raises :class:`DataValidationError` for a folder without a data file: pyarrow reads it as a table of no columns
    (a folder holding only ``_SUCCESS`` or hidden files read as a frame of no rows and no columns)."""
    if not p.is_dir():
        return [p]
    from .scale._layout import data_files

    files = [Path(f) for f in data_files(p)]
    if not files:
        raise DataValidationError(
            f"Cannot read {str(p)!r}: it is a folder without any file it reads as data (*.parquet files; names "
            "starting with '.' or '_' are skipped); expected a table file or a Parquet dataset folder.")
    return files


def _file_schemas(files: list[Path], first: bool = False) -> list[tuple[Path, pa.Schema]]:
    """Each of the Parquet or Feather ``files`` (a table's, :func:`_table_files`) and its Arrow schema, read without
    its data (or of the first only); none for a file whose schema cannot be read here (the reader then raised already
    or reads it otherwise)."""
    import pyarrow.parquet as pq

    schemas = []
    for f in files[:1] if first else files:
        try:
            if f.suffix.lower() == ".feather":  # an Arrow IPC file: its schema without its data
                with pa.memory_map(str(f)) as source:
                    schemas.append((f, pa.ipc.open_file(source).schema))
            else:
                schemas.append((f, pq.read_schema(f)))
        except _READ_ERRORS:
            continue
    return schemas


def _stored_names(files: list[Path]) -> list[str]:
    """The column names the first of the Parquet or Feather ``files`` (a table's, :func:`_table_files`) stores, in
    their order; none when its schema cannot be read here (the reader then raised already or reads it otherwise)."""
    schemas = _file_schemas(files, first=True)
    return schemas[0][1].names if schemas else []


def _check_pandas_metadata(files: list[Path]) -> None:
    """Checks the column names (:func:`_refuse_duplicated_names`) and the pandas metadata (:func:`pandas_metadata`)
    of each of the Parquet or Feather ``files`` (a table's, :func:`_table_files`); a schema that cannot be read is
    left to the reader, which raises on it. Two columns of one name are refused here, before pyarrow's
    ``to_pandas`` fails on them with "Multiple matches for FieldRef.Name(marr) in age: int64 ...", naming no
    duplicate."""
    for f, schema in _file_schemas(files):
        _refuse_duplicated_names(schema.names, f)
        pandas_metadata(schema, f"the table {str(f)!r}")


def _refuse_duplicated_names(names: Sequence[Any], p: Path) -> None:
    """Raises :class:`DataValidationError` naming the table file ``p`` and the column names that ``names`` (its
    header or its stored schema's names) holds more than once."""
    twice = duplicated(str(n) for n in names)
    if twice:
        raise DataValidationError(f"The table {str(p)!r} has duplicated column names {twice}.")


def _read_dataset(p: Path, files: list[Path]) -> pd.DataFrame:
    """The Parquet dataset folder ``p`` as one table: exactly its data ``files``, as the library's listing of the
    folder names them (:func:`_table_files`: :func:`microplex.scale._layout.data_files`, which refuses, naming it, an
    entry that is no data file: a link to a folder, a broken link, a pipe, another file), each hive ``key=value``
    folder below ``p`` a column, as ``pandas.read_parquet`` reads a folder: typed by the schema microplex wrote
    beside it (:func:`_dataset_options`), else as pyarrow infers them (categories). ``pandas.read_parquet`` given the
    folder followed a link to a folder in it, and read its files as more records (117 rows of a dataset of 90) that no
    schema check had read; it skipped a broken link and a pipe unnamed."""
    import pyarrow.dataset as pads

    root = Path(os.path.abspath(p))
    options = _dataset_options(p)
    dataset = pads.dataset([os.path.abspath(f) for f in files], schema=options.get("schema"), format="parquet",
                           partition_base_dir=str(root),
                           partitioning=pads.HivePartitioning.discover(infer_dictionary=True))
    return dataset.to_table().to_pandas()


def _dataset_options(p: Path) -> dict[str, Any]:
    """The reading options of the dataset folder ``p`` (:func:`_read_dataset`): the schema microplex wrote beside it
    (:func:`microplex.scale.dataset_schema`) when it has one, so that partition values keep their type (codes
    ``"06"`` as text, not the integers 6; booleans, not the text ``"True"``); none for another folder."""
    from .scale._layout import check_finished, dataset_schema, layout

    check_finished(p)  # an interrupted generate_dataset run holds a part of the dataset only
    return {"schema": dataset_schema(p)} if layout(p).schema.is_file() else {}


def as_numbers(frame: pd.DataFrame, columns: Sequence[str], label: str) -> pd.DataFrame:
    """``frame`` with each of ``columns`` as numbers: a numeric column is kept, a text (or categorical) one is
    converted, its cells read as numbers as written (leading zeros, surrounding spaces, thousands separators, a
    currency sign: ``"0009189"`` is 9189, ``"$1,200"`` 1200), its missing cells missing (int64 without missing
    values, else float64, as a CSV reader gives). A column absent from ``frame`` or a cell that is no number is
    refused naming the column, the cell and ``label`` (what ``frame`` is: ``"the table 'x.csv'"``).

    >>> as_numbers(pd.DataFrame({"inc": ["0009189", "0000250", None]}), ["inc"], "a table")["inc"].tolist()
    [9189.0, 250.0, nan]
    """
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise DataValidationError(f"The columns {absent} to read as numbers are not columns of "
                                  f"{label}{columns_hint(absent, frame.columns)}.")
    converted = {}
    for c in columns:
        s = frame[c]
        if pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype):
            continue
        cells = pd.Series(s.astype(object).to_numpy(dtype=object), index=s.index)
        given = cells.notna().to_numpy()
        text = cells[given]
        bad = next((v for v in text if not isinstance(v, str | int | float | np.integer | np.floating)
                    or isinstance(v, bool | np.bool_)), None)
        if bad is not None:
            raise DataValidationError(f"Column {c!r} of {label}, to be read as numbers, holds "
                                      f"{type(bad).__name__} values ({bad!r:.40}).")
        written = text.astype(str).str.strip()
        written = written.where(written != "")  # an empty cell is a missing value, as a CSV reader reads it
        numbers = numbers_from_text(written, errors="coerce")
        bad = numbers.isna().to_numpy() & written.notna().to_numpy()
        if bad.any():
            raise DataValidationError(
                f"Column {c!r} of {label}, to be read as numbers, holds {int(bad.sum()):,} cells that are "
                f"no number (first: {text[bad].iloc[0]!r:.40}).")
        out = np.full(len(s), np.nan)
        out[given] = numbers.to_numpy(dtype=float)
        # integers as a CSV reader gives them: int64 when every cell is written as an integer and none is missing
        integers = not np.isnan(out).any() and not written.str.contains(r"[.eE%]", regex=True).any()
        converted[c] = out.astype(np.int64) if integers and np.all(np.abs(out) < 2.0 ** 53) else out
    if not converted:
        return frame
    frame = frame.copy(deep=False)  # the caller's frame keeps its columns
    for c, v in converted.items():  # not assign(): a table's column names may be numbers
        frame[c] = v
    return frame


def _read_readstat(p: Path) -> pd.DataFrame:
    """A SAS transport file (``.xpt``, versions 5 and 8) or an SPSS file (``.sav``, ``.zsav``) read by pyreadstat
    (an optional package: a clear error without it).

    Not pandas' ``read_sas``: it reads some zeros of a transport file as 5.397605e-79, the smallest IBM float
    (pandas-dev/pandas#50670; the Survey of Consumer Finances' files), and a zero income would no longer be a zero.
    Numbers are read as a CSV file's are: a column of integers without missing values as int64 (SAS and SPSS store
    every number as a double); a blank text cell is a missing value, as an empty CSV cell is (SAS writes a missing
    text value blank). SPSS user-defined missing values are missing values; a column whose value labels name every
    value it holds is categories (the labels, in the order of their codes), one whose labels name only some values
    (an income labelled only at ``-9 "Refused"``) its numbers, as for a Stata file; two codes of one label are
    refused.
    """
    try:
        import pyreadstat
    except ImportError:
        raise ImportError("reading SAS transport (.xpt) and SPSS (.sav) files needs the optional package pyreadstat "
                          "(pip install pyreadstat, or microplex's 'files' extra), which microplex does not install "
                          "by default") from None
    try:
        if p.suffix.lower() == ".xpt":
            frame, meta = pyreadstat.read_xport(str(p))
        else:  # codes, not labels: the labels are applied below, where they name every value
            frame, meta = pyreadstat.read_sav(str(p), apply_value_formats=False)
    except (pyreadstat.ReadstatError, pyreadstat.PyreadstatError) as exc:
        raise ValueError(str(exc) or "not a readable file") from None
    labels = getattr(meta, "variable_value_labels", None) or {}
    for c in frame.columns:
        s = frame[c]
        if c in labels and pd.api.types.is_numeric_dtype(s):
            codes = labels[c]
            if s.dropna().isin(list(codes)).all() and s.notna().any():
                names = [codes[k] for k in sorted(codes)]
                if len(set(names)) != len(names):
                    raise ValueError(f"column {c!r} has value labels that name two codes alike "
                                     f"({sorted({n for n in names if names.count(n) > 1})[:3]})")
                frame[c] = pd.Categorical(s.map(codes), categories=names)
                continue
        blank = None if pd.api.types.is_numeric_dtype(s) else s.map(lambda v: isinstance(v, str) and not v.strip())
        if blank is not None and blank.any():
            # a blank text cell: SAS's missing text, as an empty CSV cell is missing (the files write no other)
            frame[c] = s.where(~blank, None)
            continue
        if pd.api.types.is_float_dtype(s) and len(s) and s.notna().all():
            v = s.to_numpy()
            if np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.all(np.abs(v) < 2.0 ** 53):
                frame[c] = v.astype(np.int64)
    return frame


def _partly_labelled_as_numbers(p: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (a Stata file read with its value labels as categories) with each column whose labels name only
    some of its values read as its numbers instead.

    pandas makes every labelled column a categorical, and a column whose labels name only special codes (an
    income with ``-9 "Refused"``) became categories mixing those labels with every unlabelled number: ``evaluate``
    scored the income as categories and the Synthesizer refused the mix. Read as numbers, the codes are the values
    the file stores (``-9``): recode them as your survey's documentation says. Fully labelled columns stay
    categories.
    """
    partly = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
              and len({isinstance(v, str) for v in frame[c].cat.categories}) > 1]
    if not partly:
        return frame
    try:
        raw = pd.read_stata(p, columns=partly, convert_categoricals=False)
    except _READ_ERRORS as exc:
        raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
    return frame.assign(**{c: raw[c].to_numpy() for c in partly})


def _raw_reader(p: Path, reader: Any) -> Callable[[Sequence[str]], pd.DataFrame]:
    """A function of column names giving the JSON or Excel file ``p`` read again without pandas' conversions of
    those columns, once for every caller: a JSON file with ``dtype=False`` (its strings as written), an Excel file
    with its columns as objects, named by their header text (:func:`_header_text`)."""
    read: dict[tuple[str, ...], pd.DataFrame] = {}

    def raw(columns: Sequence[str]) -> pd.DataFrame:
        key = ()
        if key not in read:
            try:
                if reader is pd.read_json:
                    read[key] = pd.read_json(p, dtype=False)
                else:  # the columns named by their header text, as read_table names them
                    table = pd.read_excel(p, dtype=object)
                    table.columns = [_header_text(c) for c in table.columns]
                    read[key] = table
            except _READ_ERRORS as exc:
                raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
        return read[key]

    return raw


def _header_text(label: Any) -> Any:
    """A column's name as its header cell reads: an Excel header cell typed as a number, a date or a boolean (a
    year column ``2019``) is the column ``'2019'``, as a CSV header reads, so a command can name it (an integral
    number without a decimal point, a date at midnight as its day); a name that is text stays as it is.

    >>> _header_text(2019), _header_text(2019.0), _header_text(2019.5), _header_text(pd.Timestamp("2021-01-01"))
    ('2019', '2019', '2019.5', '2021-01-01')
    """
    import datetime

    if isinstance(label, str):
        return label
    if isinstance(label, float | np.floating) and np.isfinite(label) and float(label).is_integer():
        return str(int(label))
    if isinstance(label, datetime.datetime) and label.tzinfo is None and label.time() == datetime.time():
        return label.date().isoformat()
    return str(label)


def _codes_as_written(frame: pd.DataFrame, raw: Callable[[Sequence[str]], pd.DataFrame]) -> pd.DataFrame:
    """``frame`` (a JSON or Excel file read by pandas) with each column that pandas turned into numbers while the
    file writes its values as strings (text cells) of integers, some with leading zeros (``"013"``), as those
    strings: pandas converts a JSON string or an Excel text cell ``"013"`` to the number 13, so a county code
    written as text lost its zeros (the file's own type says it is text). Strings of plain numbers (``"12"``) are
    read as numbers, as pandas reads them and as a CSV file's cells are, and so is a column with a number cell.
    ``raw``: the file read without conversions (:func:`_raw_reader`)."""
    numeric = [c for c in frame.columns
               if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    if not numeric:
        return frame
    table = raw(numeric)
    padded = [c for c in numeric if c in table.columns and len(table[c]) == len(frame) and _text_codes(table[c])]
    for c in padded:  # not assign(): a JSON file's column names may be numbers
        frame[c] = table[c].to_numpy()
    return frame


def _text_codes(cells: pd.Series) -> bool:
    """Whether a JSON or Excel column read without conversions holds strings only (missing values aside), codes
    written with leading zeros (:func:`microplex._files.integer_codes`)."""
    present = cells.dropna()
    if not len(present) or not all(isinstance(v, str) for v in present):
        return False
    return bool(integer_codes(present.astype(str)))


def _as_text(p: Path, frame: pd.DataFrame, columns: Sequence[str], read_kwargs: dict[str, Any]) -> pd.DataFrame:
    """``frame``, read from the CSV file ``p`` with ``read_kwargs``, with each of ``columns`` it holds that pandas read
    as numbers or booleans as the text the file writes (``013`` is ``"013"``, ``1`` is ``"1"``: not the number's
    text); the cells pandas read as missing stay missing (:func:`microplex._files.keep_none_labels` then puts back
    those written ``None``)."""
    cols = [c for c in columns if c in frame.columns and not _all_text(frame[c])]
    if not cols:
        return frame
    raw = csv_text(p, cols, read_kwargs)
    return frame.assign(**{c: raw[c].astype(object).where(frame[c].notna().to_numpy()).to_numpy() for c in cols})


def _cells_as_text(p: Path, frame: pd.DataFrame, columns: Sequence[str],
                   raw: Callable[[Sequence[str]], pd.DataFrame]) -> pd.DataFrame:
    """``frame``, read from the JSON or Excel file ``p``, with each of ``columns`` it holds that pandas read as
    numbers or booleans as the text its cells hold: pandas converts a JSON string or an Excel text cell ``"1"`` to
    the number 1 (``"013"`` to 13); the column is read again without conversions (``raw``, :func:`_raw_reader`), its
    strings kept as written and its numbers as their text (:func:`_text_of`: 1 and 1.0 as ``"1"``, 2.5 as
    ``"2.5"``), its missing cells missing."""
    cols = [c for c in columns if c in frame.columns and not _all_text(frame[c])]
    if not cols:
        return frame
    table = raw(cols)
    for c in cols:  # not assign(): a JSON file's column names may be numbers
        if c not in table.columns or len(table[c]) != len(frame):  # not read alike: nothing to tell its cells by
            raise DataValidationError(f"Cannot read the column {c!r} of {str(p)!r} as text: a second reading "
                                      "gave another table.")
        frame[c] = np.array([_text_of(v) for v in table[c]], dtype=object)
    return frame


def _text_of(v: Any) -> Any:
    """A JSON or spreadsheet cell's value as text: a string as it is, a number as it is written (an integral one
    without a decimal point, as a spreadsheet shows 1 and a JSON file writes it), a boolean as ``"True"`` or
    ``"False"`` (as a CSV cell reads), a missing cell missing (NaN)."""
    if isinstance(v, str):
        return v
    if v is None or (not isinstance(v, (list, dict)) and pd.isna(v)):
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and np.isfinite(v):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def _all_text(s: pd.Series) -> bool:
    """Whether every value of ``s`` but the missing ones is a string (pandas read a column of booleans with a
    missing cell as objects)."""
    if isinstance(s.dtype, pd.StringDtype):
        return True
    return s.dtype == object and bool(s.dropna().map(lambda v: isinstance(v, str)).all())


def text_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that hold text: every value but the missing ones a string (codes ``'06'``, household
    sizes ``'3+'``), or a category of such labels.

    Another file of the same records (``evaluate``'s synthetic file and holdout) reads the columns of these names
    as text (:func:`read_table`'s ``text``): a small file that happens to lack the labels that are no number
    (``'3+'``) or to hold only codes without a leading zero (``36``, ``48``) would read them as integers.

    Examples
    --------
    >>> text_columns(pd.DataFrame({"state": ["06", "36"], "hh": ["1", None], "age": [30, 41]}))
    ['state', 'hh']
    """
    return [c for c in frame.columns
            if _all_text(frame[c]) or (isinstance(frame[c].dtype, pd.CategoricalDtype)
                                       and _all_text(pd.Series(frame[c].dtype.categories, dtype=object)))]


def stored_numbers_as_text(frame: pd.DataFrame, reference: pd.DataFrame, what: str,
                           reference_what: str) -> pd.DataFrame:
    """``frame`` with each column that is text in ``reference`` (:func:`text_columns`) but that ``frame`` holds as
    numbers read as its numbers' text, as :func:`read_table`'s ``text`` reads a CSV, JSON or Excel file's cells:
    ``evaluate``'s synthetic or holdout file stored as Parquet (or Feather, Stata) keeps the types it stores, so a
    column of codes written as the integers 1, 2 faces the real file's text ``'1'``, ``'2'``.

    A number is read as the text :func:`_text_of` writes (1 and 1.0 as ``'1'``, 2.5 as ``'2.5'``), missing values
    missing. That is safe only where every label of ``reference``'s column that reads as a number is written so
    (``'1'``, ``'10'``, ``'2.5'``; labels that are no number, ``'3+'``, may stand beside them): the number 1 is then
    the label ``'1'`` and no other. Where a label is written otherwise (``'01'``, ``' 1'``, ``'1.0'``), the number 1
    could stand for ``'1'`` or ``'01'``, and the column is refused rather than matched either way.

    Raises
    ------
    DataValidationError
        Naming the column, its type in ``what`` and in ``reference_what``, a label written otherwise, and how to
        store the codes.

    Examples
    --------
    >>> real = pd.DataFrame({"hh": ["1", "2", "3+"], "age": [30, 41, 52]})
    >>> stored_numbers_as_text(pd.DataFrame({"hh": [2, 1], "age": [33, 40]}), real, "syn", "real")["hh"].tolist()
    ['2', '1']
    """
    numbers = [c for c in text_columns(reference) if c in frame.columns and not pd.api.types.is_bool_dtype(frame[c])
               and (pd.api.types.is_integer_dtype(frame[c]) or pd.api.types.is_float_dtype(frame[c]))]
    if not numbers:
        return frame
    frame = frame.copy()
    for c in numbers:
        col = reference[c]
        labels = col.dtype.categories if isinstance(col.dtype, pd.CategoricalDtype) else col.dropna().unique()
        odd = next((v for v in labels if _written_otherwise(v)), None)
        if odd is not None:
            digits = [v for v in labels if isinstance(v, str) and v.isdigit()]
            width = {len(v) for v in digits}
            how = (f"df[{c!r}] = df[{c!r}].map('{{:0{width.pop()}d}}'.format), " if len(digits) == len(labels)
                   and len(width) == 1 else "")
            raise DataValidationError(
                f"The column {c!r} is stored as numbers ({frame[c].dtype}) in {what} but is text ({col.dtype}) in "
                f"{reference_what}, which writes the label {odd!r}: the number {_text_of(_number(odd))} there could stand "
                f"for {odd!r} or for {_text_of(_number(odd))!r}, so the codes cannot be matched. Store the column as text "
                f"written as {reference_what} writes it ({how}before writing the file), or write the codes of "
                f"{reference_what} as their numbers' text.")
        frame[c] = np.array([_text_of(v) for v in frame[c].to_numpy(dtype=object)], dtype=object)
    return frame


def _number(label: str) -> float | int | None:
    """The number a text label reads as (an integer exactly, ``'013'`` as 13), or None: a label that is no number,
    or NaN or infinite."""
    text = label.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    try:
        x = float(text)
    except ValueError:
        return None
    return x if np.isfinite(x) else None


def _written_otherwise(label: Any) -> bool:
    """Whether a text label reads as a number but is not written as :func:`_text_of` writes that number (``'01'``,
    ``' 1'``, ``'1.0'``, ``'+1'``), so that the number cannot tell which label it stands for."""
    if not isinstance(label, str):
        return False
    x = _number(label)
    return x is not None and _text_of(x) != label


def _text_numbers_as_numbers(frame: pd.DataFrame, keep: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` with each text column of numbers read as the numbers it holds: numbers written with thousands
    separators, a currency or a percent sign (``"25,564.67"``, ``"$1,200"``, ``"12.5%"``, as a spreadsheet exports
    them; :func:`microplex._files.formatted_numbers`; a percentage as its fraction), or plain numbers whose missing
    values are written ``.`` (a SAS or Stata export; SAS's special missing values ``.A``-``.Z``, ``._``) or as
    spaces (:func:`microplex._files.dot_missing`; those cells missing, and integer codes some of which are written
    with leading zeros (``013``) kept as codes as written). A column's distinct values are read once for both. The
    columns ``keep`` names (read as text on purpose) are left as they are."""
    for c in frame.columns:
        values = None if c in keep else text_values(frame[c])
        if values is None:
            continue
        if dot_missing(values):
            frame[c] = _dots_as_missing(frame[c])
        elif formatted_numbers(values):
            frame[c] = numbers_from_text(frame[c])
    return frame


def _dots_as_missing(s: pd.Series) -> np.ndarray:
    """A text column of numbers (or of integer codes written with leading zeros) with its missing-value marks
    (:data:`microplex._files.DOT_MISSING`) as missing values: float64, or the codes' stripped text."""
    marks = s.str.match(DOT_MISSING.pattern).fillna(False).to_numpy(dtype=bool)
    values = s.astype(object).where(~marks)
    present = values.dropna().astype(str)
    if integer_codes(present):  # codes with leading zeros: their text, stripped
        return present.str.strip().reindex(s.index).to_numpy(dtype=object)
    return pd.to_numeric(values).to_numpy(dtype=float)


def _row_numbers(s: pd.Series) -> bool:
    """Whether ``s`` numbers the rows 1..n (R's row names) or 0..n-1 (a pandas index written by ``to_csv``)."""
    if not pd.api.types.is_integer_dtype(s) or pd.api.types.is_bool_dtype(s) or s.hasnans:
        return False
    v = s.to_numpy()
    return len(v) > 0 and int(v[0]) in (0, 1) and bool((np.diff(v) == 1).all())


def _decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its columns of decimal numbers as float64. A Parquet ``decimal`` column (a SQL ``NUMERIC``
    exported by Spark, DuckDB or a database) is read by pandas as Python ``Decimal`` objects, which microplex does
    not model as numbers (the Synthesizer refuses them, ``evaluate`` too): on the command line there is no
    ``astype(float)`` to call, so the table's decimals are read as the numbers they are (float64: 15-17 significant
    digits, as every numeric statistic of microplex is computed)."""
    for c in frame.columns:
        s = frame[c]
        if s.dtype == object:
            values = s.dropna()  # not pd.unique: a nested column's lists or mappings are unhashable
            if len(values) and all(isinstance(v, decimal.Decimal) for v in values):
                frame[c] = s.astype(float)
    return frame


def _csv_header(p: Path) -> list[str]:
    """The column names of a CSV file as written (pandas renames a repeated name ``x`` to ``x.1``)."""
    try:
        row = pd.read_csv(p, header=None, nrows=1, dtype=str, keep_default_na=False)
    except _READ_ERRORS as exc:
        raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
    return [str(v) for v in row.iloc[0]] if len(row) else []


def _reason(exc: BaseException) -> str:
    """The first line of a reader's error message, with its type when the message is empty; for text that is not
    UTF-8, what to do."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, UnicodeDecodeError):
        reason += ("; the file is not UTF-8 text (an export in Latin-1 or a Windows code page?): save it as UTF-8, or "
                   "read it with pandas.read_csv(path, encoding='latin-1') (or its own encoding) and save it as "
                   "Parquet")
    return reason


def read_targets(path: str | os.PathLike, base: Path | None = None):
    """Reads calibration targets from CSV, Parquet or YAML, by extension (see ``Targets``)."""
    from .calibration import Targets

    p = resolve_path(path, base)
    if not p.exists():
        raise DataValidationError(f"Targets file {str(p)!r} does not exist.")
    if p.is_dir():
        raise DataValidationError(f"Targets file {str(p)!r} is a folder, not a file.")
    import yaml

    suffix = p.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            return Targets.from_yaml(p)
        if suffix in (".parquet", ".pq"):
            return Targets.from_parquet(p)
        return Targets.from_csv(p)
    except MicroplexError as exc:
        if str(p) in str(exc):
            raise
        raise DataValidationError(f"The targets file {str(p)!r} is invalid: {exc}") from exc
    except (*_READ_ERRORS, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        # A KeyError/TypeError/AttributeError here is a missing column or a wrongly shaped
        # document (a YAML list where a mapping is expected), i.e. bad file content.
        raise DataValidationError(f"Cannot read the targets file {str(p)!r}: {_reason(exc)}") from exc


#: Largest public-metadata file read (bytes): bounds and category lists are small; a larger file is refused unread.
MAX_PUBLIC_FILE_BYTES = 16 * 1024 * 1024
#: The sections of a public-metadata file and the Synthesizer parameter each becomes.
PUBLIC_SECTIONS = {"bounds": "public_bounds", "categories": "public_categories", "point_masses": "schema"}


def read_public_metadata(path: str | os.PathLike, base: Path | None = None) -> dict[str, Any]:
    r"""Reads a differential-privacy fit's public metadata (``microplex fit --public``) from YAML or JSON.

    The document is a mapping with the sections ``bounds`` (column: [low, high], the weight column's
    included), ``categories`` (column: [category, ...]) and ``point_masses`` (column: [value, ...]),
    all optional. Returns the Synthesizer keyword arguments they stand for: ``public_bounds``,
    ``public_categories`` and ``schema`` (a :class:`~microplex.VariableSpec` with the point masses
    for each column). The file is untrusted data: it is read with the safe YAML loader (JSON is
    YAML), its size is checked first, and any other shape raises a
    :class:`~microplex.DataValidationError` naming the file and the entry; the values themselves
    are checked by :meth:`Synthesizer.fit <microplex.Synthesizer.fit>` as for any caller.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "public.yaml"
    >>> _ = f.write_text("bounds: {re78: [0, 25564.67], age: [16, 55]}\npoint_masses: {re78: [0, 25564.67]}")
    >>> kwargs = read_public_metadata(f)
    >>> kwargs["public_bounds"], kwargs["schema"]["re78"].point_masses
    ({'re78': (0, 25564.67), 'age': (16, 55)}, (0.0, 25564.67))
    """
    import yaml

    from ._files import load_yaml
    from .synthesis.schema import VariableSpec

    p = resolve_path(path, base)
    if not p.is_file():
        raise DataValidationError(f"Public metadata file {str(p)!r} does not exist or is not a file.")
    if p.stat().st_size > MAX_PUBLIC_FILE_BYTES:
        raise DataValidationError(f"Public metadata file {str(p)!r} is larger than {MAX_PUBLIC_FILE_BYTES:,} bytes; "
                                  "it holds bounds and category lists, which are small.")
    try:
        doc = load_yaml(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as exc:
        raise DataValidationError(f"Cannot read the public metadata file {str(p)!r}: {_reason(exc)}") from exc

    def bad(what: str, got: Any) -> DataValidationError:
        return DataValidationError(f"The public metadata file {str(p)!r}: {what}. Got {short_repr(got)} instead.")

    if not isinstance(doc, dict) or not doc:
        raise bad("expected a mapping with some of the sections " + ", ".join(PUBLIC_SECTIONS), doc)
    unknown = [k for k in doc if k not in PUBLIC_SECTIONS]
    if unknown:
        raise bad(f"unknown section {unknown[0]!r}; expected some of {list(PUBLIC_SECTIONS)}", unknown[0])
    out: dict[str, Any] = {}
    for section, values in doc.items():
        if not isinstance(values, dict) or not values:
            raise bad(f"section {section!r} must map column names to lists", values)
        for column, entry in values.items():
            if not isinstance(column, str) or not column:
                raise bad(f"section {section!r} has a column name that is not text", column)
            if not isinstance(entry, list) or (section == "bounds" and len(entry) != 2):
                shape = "[low, high]" if section == "bounds" else "a list of values"
                raise bad(f"{section}.{column} must be {shape}", entry)
        if section == "bounds":
            out["public_bounds"] = {c: tuple(v) for c, v in values.items()}
        elif section == "categories":
            out["public_categories"] = {c: list(v) for c, v in values.items()}
        else:
            try:
                out["schema"] = {c: VariableSpec(point_masses=tuple(v)) for c, v in values.items()}
            except DataValidationError as exc:
                raise DataValidationError(f"The public metadata file {str(p)!r}, section 'point_masses': {exc}") from exc
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, or of every file under a folder (sorted by relative path)."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def check_replaceable(path: str | os.PathLike, name: str = "output") -> Path:
    """An output path that a file may be renamed onto: absent, or (through any link) a regular file.

    Every output is written to a temporary file and renamed onto its path, which replaces whatever
    is there: an existing device, pipe or socket (``-o /dev/null``) would be replaced by a regular
    file. Such a path raises a :class:`~microplex.DataValidationError` naming ``name`` instead.

    Examples
    --------
    >>> check_replaceable("/dev/null", "report")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: The 'report' output '/dev/null' is a device, pipe or socket, ...
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except OSError:  # absent (or unreadable: the write itself will say why)
        return path
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise DataValidationError(
            f"The {name!r} output {str(path)!r} is a device, pipe or socket, not a regular file: microplex writes "
            "its outputs to a temporary file renamed onto their path, which would replace it; give a file path.")
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffix) renamed onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left as it was, so a reader
    never sees a half-written file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> sorted(p.name for p in folder.iterdir())
    ['a.txt']
    """
    path = check_replaceable(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(path)  # 0666 minus the umask (mkstemp's 0600 would stay on the renamed file)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_one_type(df: pd.DataFrame, label: str) -> None:
    """Refuses (:class:`~microplex.DataValidationError`) a column of ``df`` (``label``: what it is) whose values mix
    types (text beside numbers, as a JSON file or a spreadsheet holds codes ``"A"``, ``5``): a Parquet column holds
    one type, and writing such a column failed inside pyarrow after the work was done. A column of lists or
    dicts (a Parquet list or struct column, nested JSON objects) is written as pyarrow writes it; one that pyarrow
    cannot write as one type (lists beside text) is refused."""
    from ._stats import family_firsts

    for col in df.columns:
        if df[col].dtype != object:
            continue
        try:
            distinct = pd.unique(df[col].dropna())
        except TypeError:  # unhashable cells: lists, arrays, dicts
            _check_nested(df[col], col, label)
            continue
        firsts: dict[str, Any] = {}  # ints beside floats are numbers, which one column holds
        for family, v in family_firsts(distinct).items():
            firsts.setdefault("number" if family in ("int", "float") else family, v)
        if len(firsts) > 1:
            shown = " and ".join(repr(to_python(v)) for v in list(firsts.values())[:2])
            raise DataValidationError(
                f"Column {col!r} of {label} mixes value types {sorted(firsts)} ({shown}); a column of the output "
                f"file holds one type: give it one (convert every value to str, df[{col!r}].astype(str), or recode the "
                "text codes as your data documents them).")


def _check_nested(values: pd.Series, col: Any, label: str) -> None:
    """Refuses (:class:`~microplex.DataValidationError`) the column ``col`` of ``label`` holding lists or dicts
    (``values``) when pyarrow cannot write it as one column type (lists beside text, a list of text beside one of
    numbers)."""
    try:
        pa.Array.from_pandas(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError, ValueError) as exc:
        kinds = sorted({type(v).__name__ for v in values.dropna()})
        raise DataValidationError(
            f"Column {col!r} of {label} holds values of types {kinds} that a column of the output file cannot hold "
            f"as one type ({str(exc).splitlines()[0][:120]}); give it one (every value a list of one type, or "
            f"df[{col!r}].astype(str)), or drop the column.") from None


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Writes ``df`` to ``path`` through a temporary file and a rename (a caller writing a table it read checks it
    first with :func:`check_one_type`: a column mixing value types fails inside pyarrow)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


def write_text_atomic(text: str, path: str | os.PathLike) -> Path:
    """Writes ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def size_text(n_bytes: float) -> str:
    """A byte count in the largest binary unit (KiB to TiB) it reaches, with 2 decimals below 10 of it and 1 above.

    >>> size_text(500_000), size_text(3 * 2**30), size_text(12.345 * 2**20), size_text(100)
    ('488.3 KiB', '3.00 GiB', '12.3 MiB', '100 bytes')
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n_bytes >= size:
            return f"{n_bytes / size:,.{2 if n_bytes < 10 * size else 1}f} {unit}"
    return f"{int(n_bytes):,} bytes"


def check_rows_fit_memory(n: int, n_columns: int, name: str) -> None:
    """Refuses an in-memory table of ``n`` rows that could not fit in this machine's memory.

    The estimate counts 8 bytes per value and a factor of 4 for the copies made while
    synthesizing; a table over the machine's physical memory raises before anything is allocated
    (stream it instead: ``generate_dataset``, ``microplex generate --stream``, ``partition_by``).
    """
    memory = memory_cap()
    need = int(n) * max(int(n_columns), 1) * 8 * 4
    if need > memory:
        raise DataValidationError(
            f"{named(name)} asks for {int(n):,} records in memory (~{size_text(need)}), more than this "
            f"machine's {size_text(memory)}; stream them to a Parquet dataset instead.")


def check_rows_fit_disk(n: int, n_columns: int, folder: str | os.PathLike, name: str) -> None:
    """Refuses to stream ``n`` rows to ``folder`` when even one byte per value exceeds its free space.

    A certain failure is refused before the first block is written (a Parquet value takes more
    than one byte, so this never refuses a run that could fit).
    """
    import shutil

    folder = Path(folder).resolve()
    existing = next((a for a in (folder, *folder.parents) if a.exists()), None)
    if existing is None:
        return
    free = shutil.disk_usage(existing).free
    need = int(n) * max(int(n_columns), 1)
    if need > free:
        raise DataValidationError(
            f"{named(name)} asks for {int(n):,} records, at least {size_text(need)} on disk; "
            f"{str(existing)!r} has {size_text(free)} free.")
