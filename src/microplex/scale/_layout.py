"""Where a dataset's files live: the data folder holds only Parquet files, the rest sits beside it.

A dataset written to ``path`` (``generate_dataset``, each of ``generate_household_dataset``'s two
tables) is two folders::

    pop/                                    data only: hive partitions of part-NNNNNN.parquet files
      state=CA/part-000003.parquet
    .pop.microplex/                         everything else, hidden beside it
      _microplex_manifest.json              run spec (seed, model hash, ...), status, files
      _microplex_tasks/task-000003.json     one marker per finished task (its files and rows)
      _common_metadata                      the full Arrow schema, partition columns' types included
      _microplex.lock                       while a run writes
      .tmp-microplex-*.partial              files being written, renamed into pop/ when complete

so every reader reads ``pop/`` as a folder: ``polars.scan_parquet`` refuses a folder holding any
file that is not Parquet (a ``.json`` manifest, even in a hidden subfolder), pyarrow, pandas and
Dask read it, DuckDB globs it. The side folder is hidden so that a reader of the folder *above*
(pyarrow and pandas skip names starting with ``.``) does not meet JSON files either.

Folders written before this layout hold the same files inside the data folder
(``pop/_microplex_manifest.json``, ...): :func:`layout` finds them there, so such a folder still
resumes, and :func:`read_manifest` and :func:`dataset_schema` still read it. Everything read back is
checked (:mod:`._manifest`): it is data, not instructions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from .._errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "TASKS_DIR", "COMMON_METADATA_NAME", "Layout", "layout",
           "check_side_folder", "check_finished", "check_unlisted", "is_side_folder", "read_manifest", "dataset_schema",
           "hive_partitioning", "text_partition_keys", "dask_read_options", "dask_files", "cast_to_schema",
           "data_files", "dataset_parts", "open_dataset"]

#: Version of the manifest, the markers and the seed derivation; bumped on incompatible changes.
#: (Moving these files beside the data folder changed where they are, not what they hold.)
FORMAT_VERSION = 1
MANIFEST_NAME = "_microplex_manifest.json"
TASKS_DIR = "_microplex_tasks"
COMMON_METADATA_NAME = "_common_metadata"
#: Suffix of the hidden side folder ``.NAME.microplex`` of a dataset ``NAME``.
SIDE_SUFFIX = ".microplex"


@dataclass(frozen=True)
class Layout:
    """The folders of one dataset: ``root`` (data files) and ``meta`` (manifest, markers, schema, lock,
    temporary files). ``meta == root`` for a folder written before the side folder existed."""

    root: Path
    meta: Path

    @property
    def manifest(self) -> Path:
        return self.meta / MANIFEST_NAME

    @property
    def tasks(self) -> Path:
        return self.meta / TASKS_DIR

    @property
    def schema(self) -> Path:
        return self.meta / COMMON_METADATA_NAME

    @property
    def legacy(self) -> bool:
        """Whether this is a folder of the earlier layout (everything inside the data folder)."""
        return self.meta == self.root


def layout(path: str | os.PathLike) -> Layout:
    """The layout of the dataset at ``path``: the earlier one when ``path`` holds a manifest, else the
    side folder ``.NAME.microplex`` beside it.

    >>> lay = layout("/data/pop")
    >>> lay.root.as_posix(), lay.meta.as_posix(), lay.manifest.name
    ('/data/pop', '/data/.pop.microplex', '_microplex_manifest.json')
    """
    root = Path(os.path.abspath(os.fspath(path)))
    old = root / MANIFEST_NAME
    if old.exists() or old.is_symlink():
        return Layout(root, root)
    if not root.name or root.name in (".", ".."):
        raise DataValidationError(f"The dataset path {str(root)!r} must name a folder (not a file system root).")
    return Layout(root, root.parent / f".{root.name}{SIDE_SUFFIX}")


def check_side_folder(root: Path, meta: Path) -> None:
    """Refuses a side folder ``meta`` of the dataset ``root`` that is a link or a file: markers, the
    lock and temporary files would be written through it."""
    if meta != root and (meta.is_symlink() or meta.exists() and not meta.is_dir()):
        raise DataValidationError(
            f"{str(meta)!r}, the side folder of the dataset {str(root)!r}, must be a directory (not a file or "
            "link). It was changed: delete it, or choose a new output directory."
        )


def is_side_folder(name: str) -> bool:
    """Whether ``name`` is a dataset's side folder (``.NAME.microplex``)."""
    return name.startswith(".") and name.endswith(SIDE_SUFFIX) and len(name) > len(SIDE_SUFFIX) + 1


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of the microplex dataset at ``path``, checked (it is read from a file).

    Parameters
    ----------
    path : str or path-like
        The dataset folder (what ``generate_dataset`` was given), in either layout.

    Returns
    -------
    dict
        ``format_version``, ``status`` (``"running"`` or ``"complete"``), ``spec`` (seed, model hash,
        ``n``, ...) and, when complete, ``rows`` and ``files`` (path, rows and bytes of each file, each checked
        to be in the folder with those bytes).

    Raises
    ------
    DataValidationError
        When ``path`` has no microplex manifest, or its manifest is not one this version wrote, or (complete) it
        lists a file that is not a regular file in the folder, or not of the bytes it records, or the folder holds
        data files it does not list (:func:`check_unlisted`).
    """
    lay = layout(path)
    manifest = _checked_manifest(lay)
    check_unlisted(lay, manifest)
    return manifest


def _checked_manifest(lay: Layout) -> dict[str, Any]:
    """The manifest of the dataset ``lay``, its structure and the files it lists checked (:func:`read_manifest`
    without the listing of the folder, which :func:`data_files` checks on the readers' one listing)."""
    from ._manifest import check_listed_files, check_manifest, read_json

    if not lay.manifest.exists() and not lay.manifest.is_symlink():
        raise DataValidationError(
            f"{str(lay.root)!r} is not a microplex dataset: there is no manifest at {str(lay.manifest)!r} "
            f"(nor at {str(lay.root / MANIFEST_NAME)!r}, where earlier versions wrote it)."
        )
    manifest = read_json(lay.manifest, "the output directory")
    check_manifest(lay.manifest, manifest, FORMAT_VERSION)
    check_listed_files(lay.manifest, manifest, lay.root, lay.tasks)
    return manifest


def check_unlisted(lay: Layout, manifest: dict[str, Any], parts: list[Path] | None = None) -> None:
    """Refuses the data files of the dataset folder ``lay.root`` (``parts``, its listing when the caller has one,
    else :func:`dataset_parts`) that its complete ``manifest`` does not list.

    Every reader takes the folder's ``*.parquet`` files (:func:`dataset_parts`), so a part copied in by hand
    (``part-000099.parquet``, a partition folder ``marr=2/``) was read as more records while the manifest told
    another size (``rake_dataset`` calibrated 32,983 records of a 30,000-record run, without a word). The run
    that wrote the folder refuses such files before it says complete (:func:`~.writer.finish_output`); this is
    the same check for a folder changed after it finished. A running manifest lists no files: its readers refuse
    it anyway (:func:`check_finished`).
    """
    if manifest.get("status") != "complete":
        return
    root, path = lay.root, lay.manifest
    listed = {entry["path"] for entry in manifest["files"]}
    found = dataset_parts(root)[0] if parts is None else parts
    # the listing's paths are as the caller gave the folder (relative to the working directory, say); ``root`` is
    # absolute (:func:`layout`)
    unlisted = [rel for rel in (Path(os.path.abspath(p)).relative_to(root).as_posix() for p in found)
                if rel not in listed]
    if unlisted:
        more = f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""
        raise DataValidationError(
            f"The dataset folder {str(root)!r} holds data files that its manifest {str(path)!r} does not list: "
            f"{unlisted[:5]}{more}. Every reader would read them as more records of the dataset (of "
            f"{manifest['rows']} rows in {len(listed)} files): move them out of the folder (or give them a name "
            "starting with '_'); if the manifest was edited instead, repeating the call that wrote the folder lists "
            "its files again."
        )


def check_finished(path: str | os.PathLike) -> None:
    """Refuses the dataset at ``path`` when its microplex manifest says a run is still writing it (or was
    interrupted): its folder then holds only the parts of the tasks finished so far, which every reader would
    take for the whole population (``read_table`` returned 400 of 1,000 rows, ``microplex calibrate`` weighted
    7,000 of 12,000 records, exit 0). A file, or a folder without a microplex manifest (written by pandas,
    pyarrow or ``write_calibrated``), passes.

    Raises
    ------
    DataValidationError
        Naming the folder, its status and how many tasks finished, when the manifest's status is not
        ``"complete"``; or when the manifest is not one this version wrote (:func:`read_manifest`).
    """
    lay = layout(path)
    if not lay.root.is_dir() or not (lay.manifest.exists() or lay.manifest.is_symlink()):
        return
    manifest = _checked_manifest(lay)
    if manifest["status"] == "complete":
        return
    spec = manifest["spec"]
    n, per = spec.get("n"), spec.get("rows_per_file")
    total = (f" of {-(-n // per)}" if isinstance(n, int) and isinstance(per, int) and not isinstance(n, bool)
             and not isinstance(per, bool) and n >= 0 and per > 0 else "")
    done = len(list(lay.tasks.glob("task-*.json"))) if lay.tasks.is_dir() else 0
    raise DataValidationError(
        f"{str(lay.root)!r} holds an unfinished generate_dataset run (status {manifest['status']!r}, {done}{total} "
        "tasks finished): its files are part of the dataset only. Repeat the call that wrote it to finish it "
        "(a rerun resumes), then read it."
    )


def dataset_schema(path: str | os.PathLike) -> pa.Schema:
    """The full Arrow schema of the dataset at ``path``, partition columns' types included.

    Readers infer a partition column's type from the folder names (pandas makes it categorical);
    give them this schema to keep the written types::

        pd.read_parquet("pop", schema=dataset_schema("pop"))

    Raises :class:`~microplex.DataValidationError` when the dataset has no schema file (a folder
    written by an earlier version), the file is not a Parquet schema, or it does not describe the
    dataset's files: the file is untrusted data, and a schema edited to call a column of hours
    timestamps made readers given it return dates. Every column of the first data file must be in
    the schema with its type, and the schema's other columns must be the file's partition keys.
    """
    lay = layout(path)
    file = lay.schema
    if not file.is_file() or file.is_symlink():
        raise DataValidationError(
            f"The dataset {str(lay.root)!r} has no schema file {str(file)!r} (a folder from an earlier version, "
            "or not a microplex dataset); read it without a schema."
        )
    try:
        schema = pq.read_schema(file)
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) on garbage
        raise DataValidationError(f"{str(file)!r} is not a Parquet schema file ({str(exc)[:80]}).") from None
    _check_schema(schema, lay.root, file)
    return schema


def _first_part(root: Path) -> Path | None:
    """The first data file of the dataset (as :func:`dataset_parts` lists them), found without listing the whole
    dataset."""
    return next((p for p in _dataset_entries(root) if _is_part(p)), None)


def _check_schema(schema: pa.Schema, root: Path, file: Path) -> None:
    """Refuses a schema file that does not describe the data files (see :func:`dataset_schema`)."""
    part = _first_part(root) if root.is_dir() else None
    if part is None:
        return
    try:
        stored = pq.read_schema(part)
    except (OSError, ValueError) as exc:
        raise DataValidationError(f"{str(part)!r} is not a Parquet file ({str(exc)[:80]}).") from None
    keys = [seg.split("=", 1)[0] for seg in part.relative_to(root).parent.parts if "=" in seg]
    bad = [f"{f.name}: {f.type} in the files" for f in stored
           if f.name not in schema.names or not schema.field(f.name).type.equals(f.type)]
    extra = sorted(set(schema.names) - set(stored.names) - set(keys))
    missing = sorted(set(keys) - set(schema.names))
    if bad or extra or missing or len(schema.names) != len(set(schema.names)):
        raise DataValidationError(
            f"The schema file {str(file)!r} does not describe the dataset's files (it was edited, or belongs to "
            f"another dataset): columns {bad[:5] + extra[:5] + missing[:5]} differ. Read the dataset without it, "
            "or write the dataset again."
        )


def data_files(root: Path, label: str = "Parquet dataset") -> list[str]:
    """The data files of the dataset folder ``root``: its ``*.parquet`` files at any depth, names (of files and
    folders) starting with ``.`` or ``_`` skipped, in sorted path order (paths under ``root`` as given;
    :func:`dataset_parts`). The one list every reader of a dataset folder takes: the schema checks, Dask, pyarrow,
    :func:`microplex.io.read_table` and the calibrated copy.

    Raises :class:`DataValidationError` naming the first other entry (``label`` names what the folder is): a
    ``README.txt`` or a ``data.parq`` there is read as Parquet by ``pandas.read_parquet`` and pyarrow, or makes
    them fail, and Dask reads ``*.parq`` and ``*.pq`` files too: taken by some readers and not by others, it
    was calibrated without its schema checked, or failed with a raw pyarrow error. A link to a folder is followed
    by pandas and pyarrow (its files were read as more records by them, and by no microplex reader); a broken link
    or a pipe is no data file. A microplex dataset's data files must all be listed by its complete manifest
    (:func:`check_unlisted`).
    """
    files, other = dataset_parts(root)
    if other:
        first, more = other[0], f" ({len(other) - 1} more entries are not)" if len(other) > 1 else ""
        rel = first.relative_to(root).as_posix()
        if first.is_file():
            raise DataValidationError(
                f"Cannot read the {label} folder {str(root)!r}: its file {rel!r} is not a .parquet file{more}. A "
                "dataset folder's readers take its *.parquet files (names starting with '.' or '_' skipped), and "
                "pandas and pyarrow would read this one as Parquet too: move it out of the folder, or rename it (to "
                "*.parquet if it is data, or to a name starting with '_')."
            )
        what = ("a link to a folder (pandas and pyarrow read the files it leads to; microplex's readers do not "
                "follow it)" if first.is_dir() else
                "a broken link" if first.is_symlink() else "not a regular file (a pipe, socket or device)")
        raise DataValidationError(
            f"Cannot read the {label} folder {str(root)!r}: its entry {rel!r} is {what}, not a .parquet file"
            f"{more}. A dataset folder holds folders and *.parquet files: move the data it stands for into the "
            "folder, or remove it (or give it a name starting with '_')."
        )
    lay = layout(root)
    if lay.manifest.exists() or lay.manifest.is_symlink():  # a microplex dataset: no file its manifest leaves out
        check_unlisted(lay, _checked_manifest(lay), files)
    return [str(f) for f in files]


def _dataset_entries(root: Path) -> Iterator[Path]:
    """Every entry of the dataset folder ``root`` that a reader of the folder meets, at any depth, folder by folder
    (a folder's entries in name order, then its sub-folders'): names (of files and folders) starting with ``.`` or
    ``_`` skipped, as readers skip them; folders descended into, not listed; every other entry listed: files, links
    (to a file, to a folder, or broken) and special files (a pipe). A link to a folder is listed, not descended into:
    pandas and pyarrow read the files it leads to.

    Raises :class:`DataValidationError` naming a folder below ``root`` (or ``root`` itself, when it exists) that
    cannot be listed: ``os.walk`` skipped it unnamed, and its files were missing from every reader's dataset. A
    ``root`` that is no folder lists nothing."""

    def unlisted(exc: OSError) -> None:
        folder = exc.filename if exc.filename is not None else root
        if Path(folder) == Path(root) and isinstance(exc, (FileNotFoundError, NotADirectoryError)):
            return
        raise DataValidationError(
            f"Cannot list the folder {str(folder)!r} of the dataset folder {str(root)!r}: {exc.strerror or exc}. "
            "Its files would be missing from the dataset: make it readable (or move it out of the dataset folder, "
            "or give it a name starting with '_')."
        ) from exc

    for folder, dirs, files in os.walk(root, onerror=unlisted):  # links to folders: in dirs, not descended into
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        links = [d for d in dirs if (here / d).is_symlink()]
        dirs[:] = [d for d in dirs if d not in links]
        yield from (here / name for name in sorted([f for f in files if not f.startswith((".", "_"))] + links))


def _is_part(path: Path) -> bool:
    """Whether the dataset entry ``path`` is a data file: a ``*.parquet`` regular file, or a link to one."""
    return path.name.endswith(".parquet") and path.is_file()


def dataset_parts(root: Path) -> tuple[list[Path], list[Path]]:
    """The entries of the dataset folder ``root`` at any depth, names (of files and folders) starting with ``.`` or
    ``_`` skipped, in sorted path order (paths under ``root`` as given): its data files (``*.parquet`` regular files,
    or links to such files) and its other entries (other files, links to folders, broken links, pipes).

    The one listing of a dataset folder. Readers take the data files: :func:`data_files` refuses the other entries
    (a reader would take or skip them otherwise than another), :func:`microplex.io.read_table` reads the data files
    (and checks their schemas). The resumable writer (:func:`microplex.scale.writer.finish_output`) refuses every
    entry, data file or not, that its run did not write: a reader would mix it into the dataset, or fail on it."""
    files, other = [], []
    for p in _dataset_entries(root):
        (files if _is_part(p) else other).append(p)
    return sorted(files), sorted(other)


def open_dataset(path: str | os.PathLike) -> Any:
    """The ``pyarrow.dataset`` of the Parquet file or dataset folder ``path``: the files :func:`data_files`
    lists (the first other file refused), partitioned as :func:`hive_partitioning` says below ``path`` only (a
    folder above it named ``run=7`` is no column)."""
    import pyarrow.dataset as pads

    root = Path(os.fspath(path))
    if not root.is_dir():
        return pads.dataset(str(root), format="parquet", partitioning=hive_partitioning(root))
    return pads.dataset(data_files(root), format="parquet", partitioning=hive_partitioning(root),
                        partition_base_dir=str(root))


def hive_partitioning(path: str | os.PathLike) -> Any:
    """The hive partitioning to open the dataset at ``path`` with (``pyarrow.dataset.dataset``, or Dask's
    ``read_parquet(dataset={"partitioning": ...})``): its partition columns typed as written, from its schema
    file (a category as its values' type), or, for a folder without one (written by pandas or pyarrow, or by
    an earlier version), every partition column as the text of its folder names; ``"hive"`` for a single
    file or a folder without partition folders.

    Read as text, ``state=01`` is ``"01"`` and ``flag=true`` is ``"true"``, as pandas shows the boolean
    (``pd.read_parquet`` shows ``"01"`` as the number 1; calibration margins find ``"01"`` by either key).
    Inferred from the names instead, ``"01"`` and ``"02"`` were the integers 1 and 2 and, read by Dask, all
    missing values: a margin on them "selected no record".
    """
    return _partitioning_and_schema(path)[0]


def _partitioning_and_schema(path: str | os.PathLike) -> tuple[Any, pa.Schema | None]:
    """:func:`hive_partitioning` and the dataset's schema file as read (``None`` without one)."""
    return _hive_setup(path)[:2]


def _hive_setup(
    path: str | os.PathLike, files: list[str] | None = None
) -> tuple[Any, pa.Schema | None, pa.Schema | None]:
    """:func:`hive_partitioning`, the schema file as read (``None`` without one) and the first data file's schema
    (``None`` for a single file or a folder without data files), from one listing of the folder (``files``, the
    folder's :func:`data_files` when the caller listed them already)."""
    import pyarrow.dataset as pads

    lay = layout(path)
    if not lay.root.is_dir():
        return "hive", None, None
    check_finished(lay.root)
    saved = dataset_schema(path) if lay.schema.is_file() and not lay.schema.is_symlink() else None
    dataset = pads.dataset(_absolute(lay.root, files), format="parquet", partitioning="hive",
                           partition_base_dir=str(lay.root))
    if not dataset.files:
        return "hive", saved, None
    stored = pq.read_schema(dataset.files[0])
    if saved is not None:
        keys = [pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                for f in saved if f.name not in stored.names]
    else:  # the folders' keys, each read as the text it holds (not as a type guessed from it)
        keys = [pa.field(name, pa.string()) for name in dataset.partitioning.schema.names if name not in stored.names]
    return (pads.partitioning(pa.schema(keys), flavor="hive") if keys else "hive"), saved, stored


def text_partition_keys(path: str | os.PathLike) -> list[str]:
    """The partition columns of the dataset at ``path`` read as the text of their folder names (those of a folder
    without a schema file, see :func:`hive_partitioning`)."""
    partitioning, saved = _partitioning_and_schema(path)
    return [] if isinstance(partitioning, str) or saved is not None else list(partitioning.schema.names)


def _absolute(root: Path, files: list[str] | None) -> list[str]:
    """The data files of the dataset folder ``root`` (absolute) as absolute paths: ``files`` (its
    :func:`data_files`, listed by the caller from the folder's path as given) or, when ``None``, a new listing."""
    return data_files(root) if files is None else [os.path.abspath(f) for f in files]


def dask_read_options(path: str | os.PathLike, files: list[str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``dask.dataframe.read_parquet`` of the dataset at ``path``: its partition columns
    typed as written (:func:`hive_partitioning`) and, with them, the stored categorical columns named. ``files``:
    the folder's :func:`data_files`, when the caller listed them already.

    Dask otherwise takes the categorical columns from the files' pandas metadata, which also names a
    categorical partition column; read with its written (non-dictionary) type, that column made
    ``read_parquet`` fail ("Not all columns are categoricals"). A categorical partition column is read as
    its categories' values (as text without a schema file).
    """
    partitioning, saved, stored = _hive_setup(path, files)  # the schema file read once
    if not Path(os.fspath(path)).is_dir():
        return {}
    # partitions below the folder only: Dask read a folder above it named ``run=7`` as a column ``run``
    base = {"partition_base_dir": str(layout(path).root)}
    if isinstance(partitioning, str):
        return {"dataset": base}
    keys = set(partitioning.schema.names)
    categories = [f.name for f in (saved if saved is not None else stored)
                  if pa.types.is_dictionary(f.type) and f.name not in keys]
    return {"dataset": {"partitioning": partitioning, **base}, "categories": categories}


def dask_files(path: str | os.PathLike, files: list[str] | None = None) -> str | list[str]:
    """What ``dask.dataframe.read_parquet`` reads of the dataset at ``path`` (with :func:`dask_read_options`): the
    file, or the files of the folder :func:`data_files` lists, as absolute paths. Given the folder, Dask read its
    ``*.parq`` and ``*.pq`` files and its hidden ones (``.backup.parquet``, ``_old/part-0.parquet``), which the
    schema checks, pyarrow and pandas skip. ``files``: the folder's :func:`data_files`, when the caller listed them
    already."""
    root = layout(path).root
    return _absolute(root, files) if root.is_dir() else str(root)


def cast_to_schema(frame: pd.DataFrame, schema: pa.Schema, columns: Iterable[str]) -> None:
    """Cast ``frame``'s ``columns`` in place to their types in the Arrow ``schema`` (a column either lacks is
    left as it is); a dictionary type becomes a pandas categorical of its values' type (``to_pandas_dtype``
    has no dictionary types: a categorical training column failed the pipeline's population readers)."""
    for column in columns:
        if column not in schema.names or column not in frame.columns:
            continue
        kind = schema.field(column).type
        if pa.types.is_dictionary(kind):
            frame[column] = frame[column].astype(kind.value_type.to_pandas_dtype()).astype("category")
        else:
            frame[column] = frame[column].astype(kind.to_pandas_dtype())
