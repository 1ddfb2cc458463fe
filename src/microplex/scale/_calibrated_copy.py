"""Writing a calibrated copy of a Parquet dataset: :func:`write_calibrated` (the weights of a
:class:`~microplex.scale.RakingResult` added to every file, one more pass over the data).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from .._errors import DataValidationError, MicroplexError
from .._params import check_float, duplicated
from ..io import arrow_frame, pandas_metadata
from ._layout import layout, open_dataset
from ._linked import remove_link, write_link

if TYPE_CHECKING:
    from .calibrate import RakingResult


def write_calibrated(
    result: RakingResult, path: str | os.PathLike, out: str | os.PathLike, *, column: str = "weight", scale: float = 1.0,
    persons: str | os.PathLike | None = None, persons_out: str | os.PathLike | None = None,
) -> int:
    """Writes a copy of the Parquet dataset ``path`` to the new folder ``out`` with the calibrated weights.

    Every file is read once (one more pass), gets the float64 ``column`` (replaced if present) and is written to
    the same relative path under ``out`` (hive partition folders kept); its other columns keep the Arrow types the
    source file stores them with (a pandas index with a name kept as a column, as
    :func:`~microplex.io.read_table` reads it), so the copy reads back as the source does. The copy is written into a hidden
    temporary folder beside ``out`` (``.tmp-<hex>-NAME``), renamed onto ``out`` when complete: a reader
    never finds a part of it under ``out``, and an interrupted call leaves no ``out`` (its temporary is
    removed, or, after a kill, by the next call). The call holds the lock ``.NAME.microplex/_microplex.lock``
    (as ``generate_dataset``): a second call writing to the same folder meanwhile raises
    :class:`~microplex.MicroplexError` naming the first. ``scale`` multiplies the weights written (e.g. the
    equal share each record of a dataset without a weight column represents, when it was calibrated on unit
    weights). Returns the number of records written.

    After a household calibration (``rake_dataset(..., persons=...)``), ``path`` is the households dataset
    and ``persons`` its persons: both are copied (to ``out`` and ``persons_out``), every person getting its
    household's weight; the number of households is returned. The two folders are renamed into place one after
    the other; both side folders record one id, the SHA-256 of the data files written (``_microplex_link.json``),
    and the linked readers refuse two folders that are not the halves of one copy (a call stopped between the two
    renames, its households then given with another call's persons).

    Before anything is written, :class:`~microplex.DataValidationError` names the path when a source
    does not exist (or holds no ``.parquet`` file, or another file than ``*.parquet``, as
    :func:`rake_dataset` refuses it), an output folder is an existing file, is not empty,
    cannot be created, lies inside a source dataset or holds one (a copy written into its own source
    would be read back as part of it), or when ``out`` and ``persons_out`` overlap. A ``path`` found to hold another
    number of records (households) than ``result`` calibrated (changed since, or another dataset) raises it before
    the copy is published (:func:`_check_same_units`).
    """
    from .._cli_checks import check_output
    from ._lock import OutputLock
    from .sources import parquet_files

    if not isinstance(column, str) or not column:
        raise DataValidationError(f"The 'column' parameter must be a column name (a non-empty str). Got {column!r} instead.")
    scale = check_float(scale, "scale", low=0.0, low_inclusive=False)
    linked = result.household_id is not None
    if linked != (persons is not None) or (persons is None) != (persons_out is None):
        raise DataValidationError(
            "Give 'persons' and 'persons_out' exactly when the result calibrated households "
            f"(rake_dataset(..., persons=...)); this result {'did' if linked else 'did not'}."
        )
    for name, source in (("path", path), ("persons", persons)):
        if source is not None:
            if not isinstance(source, str | os.PathLike) or not os.fspath(source):
                raise DataValidationError(
                    f"The {name!r} parameter must be a non-empty str or path-like. Got {source!r} instead.")
            parquet_files(source, "Parquet dataset")
    sources = [Path(os.fspath(s)) for s in (path, persons) if s is not None]
    for name, folder in (("out", out), ("persons_out", persons_out)):
        if folder is None:
            continue
        if not isinstance(folder, str | os.PathLike) or not os.fspath(folder):
            raise DataValidationError(f"The {name!r} parameter must be a non-empty str or path-like. Got {folder!r} instead.")
        dst = check_output(Path(os.fspath(folder)), name, sources, folder=True)
        if dst.exists() and any(dst.iterdir()):
            raise DataValidationError(f"The output folder {str(dst)!r} is not empty; expected a new or empty folder.")
    if persons_out is not None:
        a, b = Path(os.fspath(out)).resolve(), Path(os.fspath(persons_out)).resolve()
        if a == b or a in b.parents or b in a.parents:
            raise DataValidationError(
                f"The 'out' {str(out)!r} and 'persons_out' {str(persons_out)!r} folders overlap; the copies of the "
                "households and of the persons need separate folders.")
    finals = [Path(os.path.realpath(os.fspath(f))) for f in (out, persons_out) if f is not None]
    with ExitStack() as stack:
        locks = []
        for dst in finals:  # one writer per folder, whatever name (a link) reaches it
            dst.parent.mkdir(parents=True, exist_ok=True)
            locks.append(stack.enter_context(OutputLock(dst, layout(dst).meta, writer="write_calibrated call")))
            if dst.exists() and any(dst.iterdir()):  # a copy finished since the check above
                raise DataValidationError(
                    f"The output folder {str(dst)!r} is not empty; expected a new or empty folder.")
            _remove_temporaries(dst)  # those of a killed call: no call writes them now
            remove_link(dst)  # a killed call's record, its folder never published
        temps: list[Path] = []
        published: list[Path] = []
        try:
            for dst in finals:
                temps.append(_temp_folder(dst))
            if linked:
                from ._linked import write_linked

                n, calibration = write_linked(result, path, persons, temps[0], temps[1], column, scale, _write_copy)
            else:
                n = _write_single(result, Path(os.fspath(path)), temps[0], column, scale)
            _check_same_units(result, path, n)
            for src, dst in zip(sources, finals, strict=True):
                copy_schema(src, dst, column)  # beside the final name: read with the copy once it is there
            if linked:  # the two folders are published one after the other: a reader pairs them by this id
                for dst, role in zip(finals, ("households", "persons"), strict=True):
                    write_link(dst, calibration, role)
            for tmp, dst in zip(temps, finals, strict=True):
                _publish(tmp, dst)
                published.append(dst)
        except BaseException:
            for tmp in temps:
                shutil.rmtree(tmp, ignore_errors=True)
            for dst in finals:
                if dst not in published:
                    remove_link(dst)
            raise
    for lock in locks:  # the side folder the lock made, when no schema file was written into it
        if lock.created:
            try:
                lock.folder.rmdir()
            except OSError:
                pass
    return n


def _check_same_units(result: RakingResult, path: str | os.PathLike, n: int) -> None:
    """Refuses a copy of ``n`` records (households) when ``result`` calibrated another number (its summary's
    ``n_units``): the dataset at ``path`` changed since :func:`rake_dataset` read it (a file added, removed or
    replaced) or is another dataset, and its weights would not meet the targets. A part copied into a folder
    written by pandas after the solve was copied with weights, 193,519 records where 150,000 were calibrated, and a
    margin of 5,000 came out at 10,000, without a word. Raised before the copy is published."""
    expected = result.summary.get("n_units")
    if isinstance(expected, int | np.integer | float | np.floating) and np.isfinite(expected) and n != round(expected):
        what = "households" if result.household_id is not None else "records"
        raise DataValidationError(
            f"The dataset {os.fspath(path)!r} holds {n} {what}; the result calibrated {round(expected)}: it changed "
            "since rake_dataset read it (a file added, removed or replaced), or it is another dataset, and these "
            "weights would not meet the targets on it. Calibrate it again (rake_dataset) and write that result."
        )


def _write_single(result: RakingResult, src: Path, dst: Path, column: str, scale: float) -> int:
    """The calibrated copy of the dataset ``src`` (a file or a folder) written into the folder ``dst``."""
    import pyarrow.dataset as ds

    dataset = open_dataset(src)  # the files rake_dataset checked and read, no other
    n = 0
    for frag in dataset.get_fragments():
        table = frag.to_table()
        label = f"the Parquet file {frag.path!r}"
        frame = arrow_frame(table, label)
        keys = ds.get_partition_keys(frag.partition_expression)
        full = frame.assign(**{k: v for k, v in keys.items() if k not in frame.columns})
        weights = result.weights(full) * scale
        _write_copy(with_weights(table, frame, column, weights, label),
                    dst / (Path(frag.path).relative_to(src) if src.is_dir() else Path(src.name)))
        n += table.num_rows
    return n


def with_weights(table: pa.Table, frame: pd.DataFrame, column: str, weights: np.ndarray, label: str) -> pa.Table:
    """The copy of a source file: the columns of ``frame`` (``table``, the file as stored, read by
    :func:`~microplex.io.arrow_frame`: a pandas index stored as columns, one without a name left out) with the
    float64 ``column`` holding ``weights`` (in the place of a column of that name, else appended). A column the file
    stores keeps its data and Arrow type; one it does not (an index kept in the pandas metadata only) is converted
    from ``frame``. The pandas metadata describes ``frame`` without an index, as ``DataFrame.to_parquet`` wrote the
    copy before: written that way, pandas 3 stored text as ``large_string`` (a ``string`` column of the source,
    which the copy's schema file keeps, then differed from its files, and readers refused the copy). ``label``
    names the file in the :class:`~microplex.DataValidationError` raised when two of its columns share a name."""
    frame = frame.assign(**{column: np.asarray(weights, dtype=np.float64)})
    names = [str(c) for c in frame.columns]
    twice = duplicated(names)
    if twice:
        raise DataValidationError(
            f"{label[0].upper()}{label[1:]} stores the columns {twice[:5]} more than once (as columns or pandas "
            "index levels); a copy needs one column of each name. Rename them and write the file again.")
    stored = set(table.column_names) - {column}
    converted = pa.Table.from_pandas(frame[[c for c, name in zip(frame.columns, names, strict=True)
                                            if name not in stored and name != column]], preserve_index=False)
    fields, arrays = [], []
    for name in names:
        if name == column:
            fields.append(pa.field(column, pa.float64()))
            arrays.append(pa.array(frame[column].to_numpy(), pa.float64()))
        else:
            source = table if name in stored else converted
            fields.append(source.schema.field(name))
            arrays.append(source.column(name))
    metadata = pa.Schema.from_pandas(frame, preserve_index=False).metadata
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata=metadata))


def float_in_pandas_metadata(schema: pa.Schema, column: str, label: str) -> pa.Schema:
    """``schema`` whose pandas metadata (``b"pandas"``, when it has one) lists ``column`` as float64, in the place
    of an entry of that name, else appended (an entry left from a text column made pandas read the weights as
    text). Raises :class:`~microplex.DataValidationError` naming ``label`` when that metadata is damaged
    (:func:`~microplex.io.pandas_metadata`)."""
    pandas_meta = pandas_metadata(schema, label)
    if pandas_meta is None:
        return schema
    metadata = dict(schema.metadata)
    entries = pandas_meta["columns"]
    entry = {"name": column, "field_name": column, "pandas_type": "float64", "numpy_type": "float64",
             "metadata": None}
    same = [k for k, e in enumerate(entries) if e.get("field_name", e.get("name")) == column]
    if same:
        entries[same[0]] = entry
        entries[:] = [e for k, e in enumerate(entries) if k not in same[1:]]
    else:
        entries.append(entry)
    metadata[b"pandas"] = json.dumps(pandas_meta).encode()
    return schema.with_metadata(metadata)


#: A copy's temporary folder beside its output ``NAME``: ``.tmp-<12 hex>-NAME``.
_TEMP_PREFIX = ".tmp-"


def _temp_folder(dst: Path) -> Path:
    """Creates (exclusively) and returns a new hidden temporary folder ``.tmp-<hex>-NAME`` beside ``dst``."""
    for _ in range(100):
        tmp = dst.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{dst.name}"
        try:
            tmp.mkdir()
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
        return tmp
    raise MicroplexError(f"Cannot create a temporary folder beside {str(dst)!r}.")  # pragma: no cover


def _remove_temporaries(dst: Path) -> None:
    """Removes the temporary folders of ``dst`` that a killed call left (called while holding its lock)."""
    pattern = re.compile(re.escape(_TEMP_PREFIX) + "[0-9a-f]{12}-" + re.escape(dst.name))
    for entry in dst.parent.iterdir() if dst.parent.is_dir() else []:
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


def _publish(tmp: Path, dst: Path) -> None:
    """Renames the complete copy ``tmp`` onto ``dst`` (new, or an empty folder, which the rename replaces)."""
    try:
        os.rename(tmp, dst)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise DataValidationError(
            f"The output folder {str(dst)!r} was filled (or replaced by a file) while the copy was written; nothing "
            "was written into it. Choose a new or empty folder.") from None


def copy_schema(src: Path, dst: Path, column: str) -> None:
    """Gives the copy ``dst`` the schema file of its source ``src`` (with the float64 ``column``, which its pandas
    metadata lists as float64: :func:`float_in_pandas_metadata`), so that its partition columns are read with their
    written types, as the source's are (without it, ``"01"`` was read back from the folder names as the number 1,
    and a reader casting it to text got ``"1"``). A source without a schema file leaves none (a stale one beside
    ``dst`` is removed): readers infer the types as for the source."""
    from ._layout import _partitioning_and_schema
    from .writer import write_common_metadata

    target = layout(dst)
    if target.legacy:
        return
    _, saved = _partitioning_and_schema(src)
    if saved is None:
        if target.schema.is_file() and not target.schema.is_symlink():
            target.schema.unlink()
        return
    at = saved.get_field_index(column)
    field = pa.field(column, pa.float64())
    target.meta.mkdir(parents=True, exist_ok=True)
    schema = saved.set(at, field) if at >= 0 else saved.append(field)
    write_common_metadata(target.root, float_in_pandas_metadata(schema, column, f"the schema file of {str(src)!r}"))


def _write_copy(table: pa.Table, target: Path) -> str:
    """Writes ``table`` (its Arrow types as they are) to ``target`` atomically (a hidden temporary file renamed
    when complete); the SHA-256 of the bytes written."""
    import pyarrow.parquet as pq

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-microplex-{target.name}.partial"
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    data = buffer.getbuffer()
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
    return hashlib.sha256(data).hexdigest()
