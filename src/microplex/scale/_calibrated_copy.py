"""Writing a calibrated copy of a Parquet dataset: :func:`write_calibrated` (the weights of a
:class:`~microplex.scale.RakingResult` added to every file, one more pass over the data).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import DataValidationError
from .._params import check_float
from ._layout import hive_partitioning

if TYPE_CHECKING:
    from pathlib import Path

    from .calibrate import RakingResult


def write_calibrated(
    result: RakingResult, path: str | os.PathLike, out: str | os.PathLike, *, column: str = "weight", scale: float = 1.0,
    persons: str | os.PathLike | None = None, persons_out: str | os.PathLike | None = None,
) -> int:
    """Writes a copy of the Parquet dataset ``path`` to the new folder ``out`` with the calibrated weights.

    Every file is read once (one more pass), gets ``column`` (replaced if present) and is written to the
    same relative path under ``out`` (hive partition folders kept), atomically (a hidden temporary file
    renamed when complete). ``scale`` multiplies the weights written (e.g. the equal share each record
    of a dataset without a weight column represents, when it was calibrated on unit weights). Returns the
    number of records written.

    After a household calibration (``rake_dataset(..., persons=...)``), ``path`` is the households dataset
    and ``persons`` its persons: both are copied (to ``out`` and ``persons_out``), every person getting its
    household's weight; the number of households is returned.

    Before anything is written, :class:`~microplex.DataValidationError` names the path when a source
    does not exist (or holds no ``.parquet`` file), an output folder is an existing file, is not empty,
    cannot be created, lies inside a source dataset or holds one (a copy written into its own source
    would be read back as part of it), or when ``out`` and ``persons_out`` overlap.
    """
    from pathlib import Path

    import pyarrow.dataset as ds

    from .._cli_checks import check_output
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
    if linked:
        from ._linked import write_linked

        return write_linked(result, path, persons, out, persons_out, column, scale, _write_copy)
    src, dst = Path(os.fspath(path)), Path(os.fspath(out))
    dataset = ds.dataset(str(src), format="parquet", partitioning=hive_partitioning(src))
    n = 0
    for frag in dataset.get_fragments():
        frame = frag.to_table().to_pandas()
        keys = ds.get_partition_keys(frag.partition_expression)
        full = frame.assign(**{k: v for k, v in keys.items() if k not in frame.columns})
        frame[column] = result.weights(full) * scale
        _write_copy(frame, dst / (Path(frag.path).relative_to(src) if src.is_dir() else Path(src.name)))
        n += len(frame)
    copy_schema(src, dst, column)
    return n


def copy_schema(src: Path, dst: Path, column: str) -> None:
    """Gives the copy ``dst`` the schema file of its source ``src`` (with the float64 ``column``), so that its
    partition columns are read with their written types, as the source's are (without it, ``"01"`` was read back
    from the folder names as the number 1, and a reader casting it to text got ``"1"``). A source without a
    schema file leaves none (a stale one beside ``dst`` is removed): readers infer the types as for the source."""
    import pyarrow as pa

    from ._layout import _partitioning_and_schema, layout
    from .writer import write_common_metadata

    target = layout(dst)
    if target.legacy or not target.root.is_dir():
        return
    _, saved = _partitioning_and_schema(src)
    if saved is None:
        if target.schema.is_file() and not target.schema.is_symlink():
            target.schema.unlink()
        return
    at = saved.get_field_index(column)
    field = pa.field(column, pa.float64())
    target.meta.mkdir(parents=True, exist_ok=True)
    write_common_metadata(target.root, saved.set(at, field) if at >= 0 else saved.append(field))


def _write_copy(frame: pd.DataFrame, target) -> None:
    """Writes ``frame`` to ``target`` atomically (a hidden temporary file renamed when complete)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".tmp-microplex-{target.name}.partial"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, target)
