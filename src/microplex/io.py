"""Reading tables and hashing files, shared by the command line and the pipeline."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from ._errors import DataValidationError
from .datasets import DATASETS, dataset_path

__all__ = ["read_table", "read_targets", "resolve_path", "file_sha256", "write_parquet_atomic"]

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
    if p.is_dir():
        return pd.read_parquet(p)
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise DataValidationError(
            f"Cannot read {str(p)!r}: unknown extension {p.suffix!r} (expected one of {sorted(_READERS)})."
        )
    return reader(p)


def read_targets(path: str | os.PathLike, base: Path | None = None):
    """Reads calibration targets from CSV, Parquet or YAML, by extension (see ``Targets``)."""
    from .calibration import Targets

    p = resolve_path(path, base)
    if not p.exists():
        raise DataValidationError(f"Targets file {str(p)!r} does not exist.")
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return Targets.from_yaml(p)
    if suffix in (".parquet", ".pq"):
        return Targets.from_parquet(p)
    return Targets.from_csv(p)


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


def write_parquet_atomic(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Writes ``df`` to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
