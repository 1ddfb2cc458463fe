"""Reading and writing the package's files: temporary files beside an output, and YAML documents.

:func:`temp_beside`: temporary files beside an output, created with the permissions of any other output.

:func:`tempfile.mkstemp` creates its file with mode 0600 whatever the umask, and a file written
through it and renamed onto its final name keeps that mode: a model or table would then be
readable by its owner only, unlike the report or the dataset folder written beside it.
:func:`temp_beside` creates the temporary file exclusively with mode 0666 minus the umask, as
``open(path, "w")`` does.

:func:`load_yaml`: the one reader of untrusted YAML documents (pipeline files, calibration targets):
safe tags only, and a key given twice in one mapping is an error (PyYAML keeps the last silently;
TOML refuses it), so that a second ``n:`` or ``targets:`` cannot replace the first unnoticed.

:func:`load_json`: the one reader of JSON documents from files (a model file's metadata, a dataset's manifest and
task markers, a pipeline's stage records, its lock): a key given twice in one object is an error, as in YAML
(``json.loads`` keeps the last silently).

:func:`load_yaml` reads booleans and numbers under YAML 1.2's rules (``yes`` is text, ``1e6`` a number), except that
``017`` and ``0o17`` are text, ``_`` may separate digits (``1_000``), ``0b101`` is 5 and a plain ``2024-01-01`` is a
date (YAML 1.1's timestamps are kept).

CSV tables as other tools write them, for every reader of CSV tables (data and targets files):
:func:`keep_none_labels` (a text column's ``None`` cells are the category "None", not missing values as pandas
reads them; built of :func:`csv_text`, :func:`none_candidates` and :func:`restore_none`), :func:`empty_unnamed` (a
spreadsheet's empty columns without a name), :func:`other_separator` (a file separated by ``;``, tabs or pipes,
which pandas reads as one column) and :func:`formatted_numbers` (numbers written with thousands separators or a
currency sign, which pandas reads as text).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from ._errors import DataValidationError

__all__ = ["codes_hint", "columns_hint", "csv_text", "DOT_MISSING", "dot_missing", "dot_missing_column",
           "dot_missing_fix", "empty_unnamed", "FORMATS", "formatted_number_column", "formatted_numbers", "IBM_TINY",
           "ibm_zeros", "integer_codes", "is_text", "keep_none_labels", "keep_padded_codes", "LEADING_ZERO", "load_json", "load_yaml", "MAX_ALIASED_NODES",
           "near_columns", "none_candidates", "numbers_from_text", "other_separator", "padded_integer",
           "padded_as_written", "restore_none", "temp_beside", "text_numbers_fix", "text_values", "zero_padded"]


def temp_beside(path: str | os.PathLike, prefix: str = ".tmp-") -> Path:
    """Creates an empty hidden file in ``path``'s folder (same suffix) and returns its path.

    The name is ``prefix`` + 12 random hex digits + the stem of ``path`` (cut to 40 characters) +
    its suffix; it is created exclusively (``O_EXCL``, never an existing file) with mode
    ``0o666 & ~umask``. The caller renames it onto ``path`` or removes it.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> tmp = temp_beside(folder / "model.mpx")
    >>> tmp.parent == folder, tmp.suffix, tmp.name.startswith(".tmp-"), tmp.stat().st_size
    (True, '.mpx', True, 0)
    """
    path = Path(path)
    folder = path.parent
    for _ in range(100):
        tmp = folder / f"{prefix}{uuid.uuid4().hex[:12]}-{path.stem[:40]}{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"Could not create a temporary file beside {str(path)!r}.")  # pragma: no cover


def load_json(text: str | bytes, what: str) -> Any:
    """The data of the JSON document ``text`` (read from ``what``, a file as the message names it); a key given
    twice in one object raises a :class:`~microplex.DataValidationError` naming ``what`` and the key.

    ``json.loads`` keeps the last of a key given twice, so that an edited ``metadata.json`` or manifest could
    hold two values of one field, the first shown by a reader that keeps the first and the second used. Text
    that is not JSON raises :class:`json.JSONDecodeError` (a :class:`ValueError`), as ``json.loads``: the callers
    name their file.

    Examples
    --------
    >>> load_json('{"n": 2000, "seed": 1}', "'m.json'")
    {'n': 2000, 'seed': 1}
    >>> load_json('{"n": 2000, "n": 50}', "'m.json'")
    Traceback (most recent call last):
    ...
    microplex._errors.DataValidationError: 'm.json' gives the key 'n' twice in one JSON object; a file microplex \
writes gives each key once.
    """
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise DataValidationError(f"{what} gives the key {key[:80]!r} twice in one JSON object; a file "
                                          "microplex writes gives each key once.")
            out[key] = value
        return out

    return json.loads(text, object_pairs_hook=unique)


def load_yaml(text: str) -> Any:
    r"""The data of the YAML document ``text``, read with the safe loader; duplicate keys refused.

    Only the standard YAML tags are read (no tag builds a Python object, as ``yaml.safe_load``). A
    key given twice in one mapping raises a :class:`yaml.constructor.ConstructorError` (a
    :class:`yaml.YAMLError`) whose first line names the key and both lines; the callers turn it into
    a :class:`~microplex.DataValidationError` naming their file. Keys merged in by ``<<:`` may be
    overridden, as YAML intends. Aliases (``*name``) may repeat at most :data:`MAX_ALIASED_NODES` nodes
    in all, and no node may hold itself: a few hundred bytes of nested aliases stand for billions of values
    (a :class:`yaml.composer.ComposerError`, before any value is built).

    Examples
    --------
    >>> load_yaml("n: 2000\nseed: 1")
    {'n': 2000, 'seed': 1}
    >>> load_yaml("n: 2000\nn: 50")
    Traceback (most recent call last):
    ...
    yaml.constructor.ConstructorError: The key 'n' is given twice (lines 1 and 2); give each key once.
      in "<unicode string>", line 2, column 1:
        n: 50
        ^
    """
    loader = _unique_key_loader()(text)  # a SafeLoader subclass: yaml.load(text, Loader=...) in steps
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_aliases(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


#: The most nodes that aliases (``*name``, ``<<: *name``) may add to a YAML document read by :func:`load_yaml`.
MAX_ALIASED_NODES = 100_000


def _check_aliases(root: Any) -> None:
    """Refuses a document whose aliases repeat more than :data:`MAX_ALIASED_NODES` nodes, or a node that holds
    itself (``&a [*a]``), as a :class:`yaml.composer.ComposerError` naming the line of the node.

    An alias is the node of its anchor again: ten lists each of ten aliases of the one before (about 600 bytes)
    stand for 10**8 strings, and every walk over the data (a check, a message's repr, a hash of the settings)
    takes minutes and gigabytes. The expanded size is counted once per distinct node, in time linear in the
    document's size."""
    from yaml import MappingNode, SequenceNode
    from yaml.composer import ComposerError

    def children(node: Any) -> list:
        if isinstance(node, SequenceNode):
            return node.value
        if isinstance(node, MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    size: dict[int, int] = {}  # id(node) -> nodes it stands for, expanded
    distinct = 0
    stack: list[tuple[Any, bool]] = [(root, False)]
    open_: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            open_.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in children(node))
            if size[id(node)] - distinct > MAX_ALIASED_NODES:
                raise ComposerError(
                    None, None, f"The aliases of this document repeat more than {MAX_ALIASED_NODES:,} nodes (the "
                    f"node ending here stands for {size[id(node)]:,}); a settings or targets file needs no such "
                    "repetition: write the values out.", node.end_mark)
            continue
        if id(node) in size:
            continue
        if id(node) in open_:
            raise ComposerError(None, None, "A node holds itself through an alias (as '&a [*a]'); write the "
                                "values out.", node.start_mark)
        open_.add(id(node))
        distinct += 1
        stack.append((node, True))
        stack.extend((c, False) for c in children(node) if id(c) not in size)


_LOADER: Any = None


def _unique_key_loader() -> Any:
    """The :class:`yaml.SafeLoader` subclass of :func:`load_yaml` (built once, on first use: yaml is imported lazily)."""
    global _LOADER
    if _LOADER is None:
        import yaml
        from yaml.constructor import ConstructorError

        class UniqueKeyLoader(yaml.SafeLoader):
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                if isinstance(node, yaml.MappingNode):
                    seen: dict[Any, int] = {}
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":
                            continue
                        key = self.construct_object(key_node, deep=deep)
                        try:
                            first = seen.get(key)
                        except TypeError:  # an unhashable key: the base constructor refuses it
                            continue
                        line = key_node.start_mark.line + 1
                        if first is not None:
                            raise ConstructorError(
                                None, None,
                                f"The key {key!r} is given twice (lines {first} and {line}); give each key once.",
                                key_node.start_mark)
                        seen[key] = line
                return super().construct_mapping(node, deep=deep)

        # YAML 1.2's rules for booleans and numbers in place of YAML 1.1's (PyYAML's): see load_yaml
        keep = {ch: [(tag, rx) for tag, rx in rules if tag not in _RESOLVED_AGAIN]
                for ch, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        UniqueKeyLoader.yaml_implicit_resolvers = {ch: rules for ch, rules in keep.items() if rules}
        for tag, pattern, first in _YAML12_RESOLVERS:
            UniqueKeyLoader.add_implicit_resolver(tag, re.compile(pattern, re.X), list(first))
        _LOADER = UniqueKeyLoader
    return _LOADER


_RESOLVED_AGAIN = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")

#: Plain scalars read as booleans and numbers (YAML 1.2's core schema, with ``_`` digit separators as PyYAML allows).
#: Not YAML 1.1's ``yes``/``no``/``on``/``off`` (text: ``NO`` is Norway), octal ``017`` (text, not 15: a code with
#: leading zeros keeps them) or base-60 ``1:20`` (text, not 80).
_YAML12_RESOLVERS = (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"""^(?:[-+]?(?:0|[1-9][0-9_]*)
                                  |[-+]?0x[0-9a-fA-F_]+
                                  |[-+]?0b[01_]+)$""", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                                    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                                    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                                    |[-+]?\.(?:inf|Inf|INF)
                                    |\.(?:nan|NaN|NAN))$""", "-+0123456789."),
)


def keep_none_labels(path: str | os.PathLike, frame: Any, columns: Any = None,
                     read_kwargs: dict[str, Any] | None = None) -> Any:
    r"""``frame``, read from the CSV file ``path`` by ``pandas.read_csv(path, **read_kwargs)``, with the cells
    written ``None`` in its text columns (among ``columns``; default: all) put back as the text ``"None"``.

    pandas reads a ``None`` cell as a missing value (since pandas 2.0), while in survey files it is a category
    label (education, insurance, disability: "None") and no common writer uses it for a missing value (pandas and
    Python's csv module write an empty cell, R writes ``NA``). Read as missing, the "None" row of a targets margin
    was a target over every record (its total calibrated the population total) and a data file's "None" records
    were refused or dropped as incomplete. A column is text when its values other than the missing ones are all
    strings, or it has none (pandas reads a column of empty and ``None`` cells as float NaN): in a numeric or
    boolean column ``None`` stays missing. Files read with the caller's ``dtype``, ``converters`` or missing-value
    options are left as pandas read them.

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = f.write_text("educ,n\nNone,None\nHS,2\n,3\n")
    >>> keep_none_labels(f, pd.read_csv(f)).to_dict("list")
    {'educ': ['None', 'HS', nan], 'n': [nan, 2.0, 3.0]}
    """
    kwargs = dict(read_kwargs or {})
    if {"dtype", "converters", "na_values", "keep_default_na", "na_filter"} & set(kwargs):
        return frame
    cols = none_candidates(frame, columns)
    if not cols:
        return frame
    return restore_none(frame, csv_text(path, cols, kwargs), cols)


def csv_text(path: str | os.PathLike, columns: list[Any] | None, read_kwargs: dict[str, Any]) -> Any:
    """The cells of ``columns`` of the CSV file ``path`` as written (text; no cell read as missing), read with the
    caller's other ``read_csv`` options so that its rows are those of the frame read with them (with a
    ``chunksize``, a reader of such frames). ``columns`` are columns of that frame; ``None``: every column the
    caller's options read, so that its rows, columns and index are those of ``pandas.read_csv(path,
    **read_kwargs)`` (an ``index_col``, ``usecols`` or ``header`` of the caller's included).

    The columns are chosen by a function of the name, not a list: pandas' ``usecols`` given every column of the
    header as a list does not take the rows' first field of a file with R's row names (each row one field more
    than the header) for the row names, so each column came with its left neighbour's cells (``zip`` the row
    names, ``inc`` the zips)."""
    import pandas as pd

    text = {"dtype": str, "keep_default_na": False, "na_values": []}
    if columns is None:
        return pd.read_csv(path, **{**read_kwargs, **text})
    wanted = set(columns)
    return pd.read_csv(path, **{**read_kwargs, "usecols": lambda c: c in wanted, **text})


def none_candidates(frame: Any, columns: Any = None) -> list[Any]:
    """The columns of ``frame`` (among ``columns``; default: all) where a missing value may be a ``None`` cell to put
    back (:func:`keep_none_labels`): text with missing cells, or nothing but missing cells (pandas: float NaN)."""
    import pandas as pd

    def is_text(s: Any) -> bool:
        if not s.hasnans:
            return False
        if s.isna().all():
            return True
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            return False
        if isinstance(s.dtype, pd.StringDtype):  # pandas' text dtype holds nothing but text
            return True
        return bool(s.dropna().map(lambda v: isinstance(v, str)).all())

    return [c for c in (frame.columns if columns is None else columns) if is_text(frame[c])]


def restore_none(frame: Any, raw: Any, columns: list[Any]) -> Any:
    """``frame`` with the missing cells of ``columns`` written ``None`` in ``raw`` (:func:`csv_text`) put back as
    the text "None"."""
    import pandas as pd

    out = frame.copy()
    for c in columns:
        none = (raw[c] == "None").to_numpy(dtype=bool) & out[c].isna().to_numpy()
        if none.any():
            if pd.api.types.is_numeric_dtype(out[c]):  # a column of nothing but missing cells and "None"
                out[c] = out[c].astype(object)
            out.loc[none, c] = "None"
    return out


#: A cell written with leading zeros (``013``, ``-07``, ``00``): a code as the file writes it, not the number pandas
#: reads (13). ``0``, ``0.5`` and ``-0.25`` are numbers.
LEADING_ZERO = re.compile(r"^[ \t\n\r\f\v]*[-+]?0[0-9]")  # ASCII spaces, not \s: pandas then matches in C

#: Cells of a CSV file's numeric columns read as text at once when looking for codes written with leading zeros
#: (:func:`keep_padded_codes`): the file is scanned in chunks of about this many cells, so that memory stays near
#: that of the table itself (a cell as Python text takes about 55 bytes, as a float64 8).
_SCAN_CELLS = 1 << 22
#: A numeric cell that is no integer (``0012.50``, ``1e3``): a column holding one is numbers, not codes.
_NOT_INTEGER = re.compile(r"[.eE]")


def integer_codes(cells: Any) -> bool | None:
    """Whether text ``cells`` (one column, as written) hold codes written with leading zeros: ``True`` when some
    cell is so written (:data:`LEADING_ZERO`), ``None`` when some cell has a decimal point or an exponent (numbers,
    whatever their zeros: codes are integers), ``False`` otherwise. The one test of :func:`keep_padded_codes` (CSV)
    and of JSON strings (:func:`microplex.io.read_table`)."""
    # patterns as text, not compiled: pandas then matches Arrow strings in C (a compiled pattern: a Python loop)
    if cells.str.contains(_NOT_INTEGER.pattern, regex=True).to_numpy(dtype=bool).any():
        return None
    return _some_padded(cells)


def _some_padded(cells: Any) -> bool:
    """Whether some of text ``cells`` is written with leading zeros (:data:`LEADING_ZERO`)."""
    return bool(cells.str.contains(LEADING_ZERO.pattern, regex=True).to_numpy(dtype=bool).any())


def zero_padded(raw: Any, columns: list[Any]) -> list[Any]:
    """The columns among ``columns`` of ``raw`` (cells as written, :func:`csv_text`) where some cell is written
    with leading zeros (:data:`LEADING_ZERO`)."""
    return [c for c in columns if _some_padded(raw[c])]


def padded_as_written(frame: Any, raw: Any, columns: list[Any]) -> Any:
    """``frame`` with ``columns`` as ``raw`` writes them (text, surrounding spaces stripped); the cells missing in
    ``frame`` (empty, ``NA``) stay missing."""
    if not columns:
        return frame
    return frame.assign(**{c: raw[c].str.strip().astype(object).where(frame[c].notna().to_numpy()).to_numpy()
                           for c in columns})


#: An integer numeral, with or without leading zeros (``013``, ``7``, ``-07``).
_INTEGER = re.compile(r"^\s*[-+]?[0-9]+\s*$")


def padded_integer(values: Any) -> str | None:
    """The first of ``values`` (distinct values of a column) written with leading zeros when every one is the text
    of an integer (``"013"``, ``"7"``) and some are so written; else ``None``: codes, or integer amounts padded to
    a fixed width (``"0009189"``; a file cannot tell them apart, :func:`keep_padded_codes` reads both as codes).

    >>> padded_integer(["0009189", "0012000", "7"])
    '0009189'
    >>> padded_integer(["13", "7"]) is None
    True
    """
    if not all(isinstance(v, str) and _INTEGER.match(v) for v in values):
        return None
    return next((v for v in values if LEADING_ZERO.match(v)), None)


def codes_hint(series: Any) -> str:
    """A sentence to add where a numeric column was expected and ``series`` holds text integers, some written with
    leading zeros (``"013"``: codes, as :func:`keep_padded_codes` reads them from a file); ``""`` otherwise.

    >>> import pandas as pd
    >>> codes_hint(pd.Series(["013", "105"]))[:60]
    " Its values are integers written with leading zeros ('013'),"
    """
    try:
        example = padded_integer(series.dropna().unique())
    except TypeError:  # unhashable cells
        return ""
    if example is None:
        return ""
    return (f" Its values are integers written with leading zeros ({example!r}), which microplex reads from CSV "
            "and JSON files as codes (text): convert them (pd.to_numeric; from a file: read_table's numeric, the "
            "command line's --numeric, a pipeline's numeric setting), or refit the model on the codes.")


def keep_padded_codes(path: str | os.PathLike, frame: Any, columns: Any = None,
                      read_kwargs: dict[str, Any] | None = None) -> Any:
    r"""``frame``, read from the CSV file ``path`` by ``pandas.read_csv(path, **read_kwargs)``, with each column
    (among ``columns``; default: all) that pandas read as numbers while some of its cells are written with leading
    zeros (``013``, a county or tract code) as the file's text.

    pandas reads ``"013"`` as the number 13: a code lost its zeros (a released file wrote county 13 where the
    survey wrote ``013``, which matches no geography file), and codes that differ only by their zeros (``01`` and
    ``001``) became one. Read as text, they stay the codes written; a target that asks for the number 13 still
    finds ``"013"`` (:func:`microplex.calibration.design.lookup_values`). The other cells of such a column are
    also its text (``"13"`` beside ``"013"``), and its missing cells stay missing. Codes are integers: a column
    with a cell written with a decimal point or an exponent (``0012.50``, a fixed-width export of amounts) stays
    numbers; only the cells pandas read as present are judged (a missing cell written ``None`` or ``NaN`` is no
    number with an exponent). (Integer amounts padded to a fixed width, ``0009189``, read as codes: the Synthesizer
    refuses such a target when its values are mostly one record's each and warns when they repeat,
    :func:`microplex.synthesis._validation.check_copied_categories`; name them in ``read_table``'s ``numeric``.)
    Files read with the caller's ``dtype`` or ``converters`` are left as pandas read them. The numeric columns are
    scanned as text in chunks (memory about that of the table read).

    Examples
    --------
    >>> import pandas as pd, tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = f.write_text("county,n,amount\n013,5,0012.5\n105,0.5,0300\n,3,7\n")
    >>> keep_padded_codes(f, pd.read_csv(f)).to_dict("list")
    {'county': ['013', '105', nan], 'n': [5.0, 0.5, 3.0], 'amount': [12.5, 300.0, 7.0]}
    """
    import pandas as pd

    kwargs = dict(read_kwargs or {})
    if {"dtype", "converters"} & set(kwargs):
        return frame
    # a column holding a number that is no integer (12.5) has a cell written with a decimal point: amounts
    numeric = [c for c in (frame.columns if columns is None else columns)
               if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               and _integral(frame[c])]
    if not numeric:
        return frame
    padded: set[Any] = set()
    amounts: set[Any] = set()  # a cell with a decimal point or an exponent: numbers, whatever their zeros
    chunk = max(1, _SCAN_CELLS // len(numeric))
    # only the cells pandas read as present: a missing value's token is no number (the "e" of None, -1.#IND)
    present = {c: frame[c].notna().to_numpy() for c in numeric}
    start = 0
    with csv_text(path, numeric, {**kwargs, "chunksize": chunk}) as reader:
        for raw in reader:
            rows = slice(start, start + len(raw))
            start += len(raw)
            for c in numeric:
                if c not in amounts:
                    found = integer_codes(raw[c][present[c][rows]])
                    if found is None:
                        amounts.add(c)
                    elif found:
                        padded.add(c)
            if len(amounts) == len(numeric):
                break
    codes = [c for c in numeric if c in padded and c not in amounts]  # the frame's order
    if not codes:
        return frame
    return padded_as_written(frame, csv_text(path, codes, kwargs), codes)


def _integral(series: Any) -> bool:
    """Whether every value of a numeric column is an integer (missing values aside)."""
    import numpy as np

    if series.dtype.kind in "iu":
        return True
    v = series.to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.isnan(v) | (v == np.floor(v))))


def columns_hint(names: list[Any], columns: Any) -> str:
    """What to add to "the columns ``names`` are not in the file": the file's columns that differ from a name only
    by surrounding spaces or case (a header written ``age, income``, read as ``' income'``), else the file's
    columns (the first 20).

    >>> columns_hint(["income"], ["age", " income"])
    " (the file writes 'income' as ' income': spaces or case)"
    >>> columns_hint(["wage"], ["age", "income"])
    "; the file's columns: ['age', 'income']"
    """
    near = near_columns(names, columns)
    if near:
        return f" (the file writes {', '.join(f'{n!r} as {c!r}' for n, c in near)}: spaces or case)"
    columns = [c for c in columns if isinstance(c, str)]
    return f"; the file's columns: {columns[:20]}" + (" ..." if len(columns) > 20 else "")


def near_columns(names: list[Any], columns: Any) -> list[tuple[Any, str]]:
    """``(name, column)`` for each of ``columns`` that differs from one of ``names`` only by surrounding spaces or
    case."""
    out = []
    for name in names:
        key = str(name).strip().casefold()
        out += [(name, c) for c in columns if isinstance(c, str) and c != name and c.strip().casefold() == key]
    return out


def empty_unnamed(names: list[str], frame: Any) -> list[Any]:
    """The columns of ``frame`` (read from a CSV file whose header holds ``names``, one per column) that have no
    name and no value: the empty columns a spreadsheet writes after (or between) the table's own (``a,b,,``),
    which pandas names ``Unnamed: 2`` and which carry nothing. Empty when the names and columns do not pair up.

    Examples
    --------
    >>> import pandas as pd
    >>> empty_unnamed(["a", "", ""], pd.DataFrame({"a": [1], "Unnamed: 1": [None], "Unnamed: 2": [3]}))
    ['Unnamed: 1']
    """
    if len(names) != frame.shape[1]:
        return []
    return [frame.columns[i] for i, n in enumerate(names) if not n.strip() and frame.iloc[:, i].isna().all()]


def other_separator(names: list[str]) -> str | None:
    """The separator a CSV file seems to use instead of commas, from its header ``names`` as pandas split them at
    commas: the header is one field holding ``;`` (a European spreadsheet's CSV, with decimal commas), a tab
    or ``|``; else ``None``. pandas reads such a file as one column (or, with decimal commas, as one column
    indexed by the rest), which was refused later as "missing columns" without saying why.

    Examples
    --------
    >>> other_separator(["age;income"]), other_separator(["age", "income"]), other_separator(["age"])
    (';', None, None)
    """
    if len(names) != 1:
        return None
    return next((sep for sep in (";", "\t", "|") if sep in str(names[0])), None)


#: A number as a spreadsheet formats it: maybe a sign and a currency sign, digits (in groups of three separated by
#: commas, the first group not starting with 0: ``"0,875"`` is a decimal comma, no thousands; or plain), maybe
#: decimals; or such a number without a sign in parentheses, a negative as accounting formats write it
#: (``"($1,243.56)"``).
_FORMATTED = re.compile(
    r"^(?P<open>\(?)(?P<sign>[-+]?)(?P<currency>[$£€]?)(?P<sign2>[-+]?)"
    r"(?P<digits>[1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?P<close>\)?)$")
#: A negative in parentheses (``"($1,243.56)"``): its inside, to be read with a minus sign.
_PARENTHESES = r"^\((.*)\)$"
#: A percentage as a spreadsheet exports it (``"12.5%"``, ``"-3%"``, ``"1,250%"``): the number 0.125.
_PERCENT = re.compile(r"^[-+]?(?:[1-9][0-9]{0,2}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?\s*%$")


def formatted_numbers(values: Any) -> str | None:
    """The first value written with thousands separators, a currency sign or a percent sign (``"25,564.67"``,
    ``"$1,200"``, ``"12.5%"``; the first negative in parentheses, ``"(200)"``, when there is one) when every one of
    ``values`` (text) is a number so written or a plain number, with at least one so written; else ``None``. A
    number without a sign in parentheses is a negative, as accounting formats write it (``"($1,243.56)"``,
    ``"(200)"`` beside ``"$1,000"``); parentheses alone do not make a column numbers (``"(1)"``, ``"(2)"``:
    labels). Percentages count only where every value is one (``"5"`` beside ``"5%"`` is 5 or 0.05: which one is
    not known).

    Such a column is numbers as a spreadsheet exports them (pandas reads them as text): modelled as categories,
    an income's every value became a category of its own, drawn as copies of training values. Codes never
    qualify: ``"013"`` has no separator, ``"1,2"`` no group of three.

    Examples
    --------
    >>> formatted_numbers(["25,564.67", "999.5", "-1,000"]), formatted_numbers(["$500", "-$20"])
    ('25,564.67', '$500')
    >>> formatted_numbers(["12.5%", "-3%", "100 %"]), formatted_numbers(["5%", "5"])
    ('12.5%', None)
    >>> formatted_numbers(["013", "015"]), formatted_numbers(["1,2"]), formatted_numbers(["$", "5"])
    (None, None, None)
    >>> formatted_numbers(["$500", "($1,243.56)"]), formatted_numbers(["(1)", "(2)"])
    ('($1,243.56)', None)
    """
    values = list(values)
    if values and all(isinstance(v, str) and v.strip().endswith("%") for v in values):
        return values[0] if all(_PERCENT.match(v.strip()) for v in values) else None
    first = negative = None
    for v in values:
        if not isinstance(v, str):
            return None
        m = _FORMATTED.match(v.strip())
        if m is None or (m["sign"] and m["sign2"]) or bool(m["open"]) != bool(m["close"]):
            return None
        if m["open"] and (m["sign"] or m["sign2"]):  # "(-5)": no accounting format
            return None
        if first is None and (m["currency"] or "," in m["digits"]):
            first = v
        if negative is None and m["open"]:
            negative = v
    # the first negative in parentheses, if any: the conversion advised (text_numbers_fix) then reads them
    return None if first is None else negative or first


def is_text(series: Any) -> bool:
    """Whether ``series`` is a text column: of dtype object, str or category (whatever its categories)."""
    import pandas as pd

    dtype = series.dtype
    return dtype == object or pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype)


def text_values(series: Any) -> Any:
    """The distinct values (missing ones aside) of a text column (:func:`is_text`); ``None`` for any other column.
    What :func:`formatted_number_column` and :func:`dot_missing_column` judge, read once by ``read_table`` for
    both."""
    import pandas as pd

    return pd.unique(series.dropna()) if is_text(series) else None


def formatted_number_column(series: Any) -> str | None:
    """:func:`formatted_numbers` of a column's values when it is a text column (:func:`text_values`); ``None`` for
    any other column. The one test behind ``read_table``'s conversion and the refusals of the Synthesizer, ``fuse``
    and ``evaluate``."""
    values = text_values(series)
    return None if values is None else formatted_numbers(values)


#: The smallest IBM float, 16 ** -65: what ``pandas.read_sas(format="xport")`` reads for some zeros of a SAS
#: transport file (pandas-dev/pandas#50670; the Survey of Consumer Finances' files). No survey holds it.
IBM_TINY = 16.0 ** -65


def ibm_zeros(values: Any, name: str) -> str | None:
    """The end of a refusal when numeric ``values`` (column ``name``) hold +-:data:`IBM_TINY`, zeros misread by
    pandas' SAS transport reader (a zero point mass would be drawn as tiny positive values, a zero share scored
    short); ``None`` otherwise.

    >>> ibm_zeros([0.0, 1.5], "income") is None
    True
    >>> ibm_zeros([16.0 ** -65, 1.5], "income")[:34]
    'holds 1 value of 5.397605e-79 (the'
    """
    import numpy as np

    count = int(np.count_nonzero(np.abs(np.asarray(values, dtype=float)) == IBM_TINY))
    if not count:
        return None
    return (f"holds {count:,} {'value' if count == 1 else 'values'} of {IBM_TINY:.7g} (the smallest IBM float), "
            "which pandas.read_sas(format='xport') reads for some zeros of a SAS transport file: read the file with "
            f"microplex.io.read_table (pyreadstat), or set them to 0 first: df[{name!r}] = "
            f"df[{name!r}].mask(df[{name!r}].abs() == 16.0 ** -65, 0.0).")


def numbers_from_text(s: Any, errors: str = "raise") -> Any:
    """The numbers of a text Series that :func:`formatted_numbers` accepts (separators and currency signs removed;
    a number in parentheses is its negative; a percentage is its fraction, ``"12.5%"`` the float nearest 0.125, as
    ``"7.2e-2"`` reads: not ``7.2 / 100``, which is 0.07200000000000001).

    >>> import pandas as pd
    >>> numbers_from_text(pd.Series(["$1,200.5", "-$20", " 3 "])).tolist()
    [1200.5, -20.0, 3.0]
    >>> numbers_from_text(pd.Series(["12.5%", "7.2%", "-3 %", None])).tolist()
    [0.125, 0.072, -0.03, nan]
    >>> numbers_from_text(pd.Series(["($1,243.56)", "(200)", "$5"])).tolist()
    [-1243.56, -200.0, 5.0]

    ``errors`` is :func:`pandas.to_numeric`'s (``"coerce"``: a cell that is no number becomes NaN).
    """
    import pandas as pd

    text = s.str.strip()
    percent = _all_percent(text)
    # a comma only as a thousands separator: "0,875" (a decimal comma) or "1,2,3" is no number written so
    misplaced = (text.str.contains(",", regex=False).fillna(False).astype(bool)
                 & ~text.str.match(_PERCENT if percent else _FORMATTED).fillna(False).astype(bool))
    if misplaced.any():
        if errors == "raise":
            raise ValueError(f"Unable to parse string {text[misplaced].iloc[0]!r}: a comma that separates no thousands")
        text = text.mask(misplaced)
    if percent:
        return pd.to_numeric(text.str.replace(r"[\s%,]", "", regex=True) + "e-2", errors=errors)
    text = text.str.replace(_PARENTHESES, r"-\1", regex=True)
    return pd.to_numeric(text.str.replace(r"[$£€,]", "", regex=True), errors=errors)


def _all_percent(text: Any) -> bool:
    """Whether every value of a text Series (missing values aside) is written with a percent sign."""
    present = text.dropna()
    return len(present) > 0 and bool(present.str.endswith("%").all())


def text_numbers_fix(col: str, example: str | None = None) -> str:
    """The conversion a caller is told to make for a column of formatted numbers (:func:`formatted_numbers`) whose
    first such value is ``example`` (a percentage: the fraction)."""
    if example is not None and example.strip().endswith("%"):
        return f"pd.to_numeric(df[{col!r}].str.replace(r'[\\s%,]', '', regex=True)) / 100"
    if example is not None and example.strip().startswith("("):  # a negative in parentheses
        return (f"pd.to_numeric(df[{col!r}].str.strip().str.replace(r'{_PARENTHESES}', r'-\\1', regex=True)"
                ".str.replace(r'[$£€,]', '', regex=True))")
    return f"pd.to_numeric(df[{col!r}].str.replace(r'[$£€,]', '', regex=True))"


#: A missing number as exports write it in text: ``.`` (SAS, Stata; SAS's special missing values ``.A``-``.Z``,
#: ``._``) or blank (spaces: a fixed-width or SPSS export), which pandas reads as text, not as a missing value.
DOT_MISSING = re.compile(r"^[ \t]*(\.[A-Za-z_]?)?[ \t]*$")
#: A number as a CSV reader reads it (no separators, currency or percent signs).
_PLAIN_NUMBER = re.compile(r"^[ \t]*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?[ \t]*$")


def dot_missing(values: Any) -> str | None:
    """The first missing-number mark (``"."``, ``".A"``, ``" "``: :data:`DOT_MISSING`) when every one of ``values``
    (the distinct text values of a column) is a plain number or such a mark, with at least one of each; else
    ``None``.

    A SAS or Stata export writes a missing number as ``.``, a fixed-width one as spaces, and pandas reads the column
    as text: modelled as categories, an income's every value became a category of its own, drawn as copies of
    training values.

    >>> dot_missing(["12.5", ".", "-3"]), dot_missing(["1", ".A", "2"]), dot_missing([".", "a"]), dot_missing(["."])
    ('.', '.A', None, None)
    >>> dot_missing(["1", "  ", "2"])
    '  '
    """
    first, number = None, False
    for v in values:
        if not isinstance(v, str):
            return None
        if DOT_MISSING.match(v):
            first = v if first is None else first
        elif _PLAIN_NUMBER.match(v):
            number = True
        else:
            return None
    return first if number else None


def dot_missing_column(series: Any) -> str | None:
    """:func:`dot_missing` of a text column's distinct values (:func:`text_values`); ``None`` for any other column.
    The one test behind ``read_table``'s conversion and the refusals of the Synthesizer, ``fuse`` and
    ``evaluate``."""
    values = text_values(series)
    return None if values is None else dot_missing(values)


def dot_missing_fix(col: str) -> str:
    """The conversion a caller is told to make for a column of numbers with missing values written ``.`` or blank."""
    return f"pd.to_numeric(df[{col!r}].replace(r'^\\s*(\\.[A-Za-z_]?)?\\s*$', None, regex=True))"


#: What :func:`formatted_numbers` finds, as refusals name it.
FORMATS = "thousands separators, a currency or a percent sign"
