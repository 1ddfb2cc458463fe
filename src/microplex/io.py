"""Reading tables and hashing files, shared by the command line and the pipeline."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from ._files import temp_beside
from ._errors import DataValidationError, MicroplexError
from ._params import memory_cap
from .datasets import DATASETS, dataset_path

__all__ = [
    "read_table",
    "read_targets",
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
)

_READERS = {
    ".csv": pd.read_csv,
    ".txt": pd.read_csv,
    ".gz": pd.read_csv,
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".json": pd.read_json,
    ".feather": pd.read_feather,
    ".dta": pd.read_stata,
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


def read_table(path: str | os.PathLike, base: Path | None = None) -> pd.DataFrame:
    """Reads CSV, Parquet (file or dataset folder) or anything pandas reads, by extension.

    Examples
    --------
    >>> read_table("bundled:cps1").shape
    (15992, 9)
    """
    p = resolve_path(path, base)
    if not p.exists():
        raise DataValidationError(f"Input file {str(p)!r} does not exist.")
    if p.is_dir() and not any(f.is_file() for f in p.rglob("*")):  # pyarrow reads it as a table of no columns
        raise DataValidationError(f"Cannot read {str(p)!r}: it is a folder without any file; expected a table file "
                                  "or a Parquet dataset folder.")
    reader = pd.read_parquet if p.is_dir() else _READERS.get(p.suffix.lower())
    if reader is None:
        raise DataValidationError(
            f"Cannot read {str(p)!r}: unknown extension {p.suffix!r} (expected one of {sorted(_READERS)})."
        )
    try:
        frame = reader(p)
    except _READ_ERRORS as exc:
        raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
    if not isinstance(frame, pd.DataFrame):
        raise DataValidationError(f"Cannot read {str(p)!r}: it does not hold a table.")
    names = _csv_header(p) if reader is pd.read_csv else list(frame.columns)
    duplicated = sorted({str(c) for c in names if names.count(c) > 1})
    if duplicated:
        raise DataValidationError(f"The table {str(p)!r} has duplicated column names {duplicated}.")
    return frame


def _csv_header(p: Path) -> list[str]:
    """The column names of a CSV file as written (pandas renames a repeated name ``x`` to ``x.1``)."""
    try:
        row = pd.read_csv(p, header=None, nrows=1, dtype=str, keep_default_na=False)
    except _READ_ERRORS as exc:
        raise DataValidationError(f"Cannot read {str(p)!r}: {_reason(exc)}") from exc
    return [str(v) for v in row.iloc[0]] if len(row) else []


def _reason(exc: BaseException) -> str:
    """The first line of a reader's error message, with its type when the message is empty."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Writes ``df`` to ``path`` through a temporary file and a rename."""
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
            f"The {name!r} parameter asks for {int(n):,} records in memory (~{need / 2**30:,.0f} GiB), more than this "
            f"machine's {memory / 2**30:,.0f} GiB; stream them to a Parquet dataset instead.")


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
            f"The {name!r} parameter asks for {int(n):,} records, at least {need / 2**30:,.0f} GiB on disk; "
            f"{str(existing)!r} has {free / 2**30:,.0f} GiB free.")
