"""Stream a synthetic population of any size to a Parquet dataset, locally or on Dask.

The rows are cut into blocks of ``_BLOCK_ROWS``; block ``k`` is synthesized by
``synth.generate(conditions[kB:(k+1)B], seed=s_k)`` with ``s_k`` drawn from
``SeedSequence(seed, spawn_key=(0, k))``. Files (``rows_per_file`` rows, one task each) are
cut from that fixed sequence, so the rows depend only on (model, conditions, seed), never on
how many workers, tasks or files share the work.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from tqdm.auto import tqdm

from .._errors import DataValidationError
from .._params import check_bool, check_int, check_names, check_seed, named, shown
from .._random import block_sequence, int_seed
from ..synthesis._validation import check_no_targets
from ..synthesis.serialization import write_archive
from ._layout import layout
from ._lock import OutputLock
from .sources import ConditionSource, ParquetSource, as_source
from .writer import (FORMAT_VERSION, check_partition_names, discard_unstarted, finish_output, model_hash, prepare_output,
                     write_task)

__all__ = ["generate_dataset"]

logger = logging.getLogger(__name__)

#: Rows per random block (part of the output format: changing it changes the draws).
_BLOCK_ROWS = 100_000
#: ``chunk_size`` of ``Synthesizer.generate`` within a block (part of the format too); small
#: enough that glibc returns the sampler's buffers instead of fragmenting (flat RSS).
_CHUNK_ROWS = 20_000

_WORKER_MODELS: dict[str, Any] = {}


def _block_seed(seed: int, block: int) -> int:
    """The ``generate`` seed of block ``block``: counter-keyed child of ``SeedSequence(seed)``."""
    return int_seed(block_sequence(seed, 0, block), bits=64)


#: Largest ``n``: row numbers stay exact in int64 and float64 arithmetic.
_MAX_ROWS = 2**53
#: Most tasks (files per partition) of one run: each is a marker and a task object in memory.
_MAX_TASKS = 1_000_000


def _check_args(
    synth, source: ConditionSource, n, partition_by, rows_per_file, seed, path, progress, torch_threads, client
) -> tuple[int, list[str]]:
    """Validates every argument of :func:`generate_dataset` (before any work or file)."""
    check_bool(progress, "progress")
    check_int(torch_threads, "torch_threads", low=1, allow_none=True)
    check_seed(seed, "seed", allow_none=False)
    rows_per_file = check_int(rows_per_file, "rows_per_file", low=1)
    if not isinstance(path, str | os.PathLike) or not os.fspath(path) or "\x00" in os.fspath(path):
        raise DataValidationError(f"The 'path' parameter must be a non-empty str or path-like. Got {path!r} instead.")
    from .._cli_checks import check_output

    # A path under a file, in an unwritable folder, or inside (or holding) the Parquet conditions: refused here,
    # not as an OS error halfway (the side folder is created beside 'path', in its parent).
    check_output(Path(os.fspath(path)), "path", [Path(source.path)] if isinstance(source, ParquetSource) else [],
                 folder=True)
    if client is not None and not callable(getattr(client, "submit", None)):
        raise DataValidationError(
            f"The 'client' parameter must be a dask.distributed.Client or None. Got {type(client).__name__} instead."
        )
    names = source.columns
    if len(set(names)) != len(names) or not all(isinstance(c, str) and c for c in names):
        raise DataValidationError(f"{shown('conditions')!r} must have distinct, non-empty string column names. "
                                  f"Got {names[:20]}.")
    missing = [c for c in synth.condition_vars if c not in source.columns]
    if missing:
        keys = [c for c in missing if c in getattr(source, "partition_keys", ())]
        raise DataValidationError(
            f"{shown('conditions')!r} lacks the model's condition columns {missing}; it has {source.columns[:20]}."
            + (f" {keys} are partition keys of {source.path!r}, in its folder names ({keys[0]}=...): streamed "
               "Parquet conditions read only the columns the files store. Store them in the files too, or read the "
               "folder into memory (microplex.io.read_table; on the command line, without --stream)." if keys else "")
        )
    check_no_targets(source.columns, synth.target_vars)
    if n is None:
        if source.n_rows is None:
            raise DataValidationError(f"{named('n')} is required when the conditions source is unbounded.")
        n = source.n_rows
    n = check_int(n, "n", low=0, high=_MAX_ROWS)
    if n == 0:  # no task, so no file and no schema: readers found an empty folder without columns
        raise DataValidationError(
            f"{named('n')} is 0 (or {shown('conditions')!r} has no rows): a streamed dataset of no record is an empty "
            "folder, with no columns for a reader to find. Ask for at least one record, or use Synthesizer.generate "
            "for an empty table with its columns.")
    if source.n_rows is not None and n > source.n_rows:
        raise DataValidationError(f"{named('n')} ({n}) exceeds the {source.n_rows} rows of {shown('conditions')!r}.")
    if -(-n // rows_per_file) > _MAX_TASKS:
        raise DataValidationError(
            f"{named('rows_per_file')} ({rows_per_file}) would cut {shown('n')}={n} rows into "
            f"{-(-n // rows_per_file)} files; at most {_MAX_TASKS} are allowed. Use a larger {shown('rows_per_file')}."
        )
    if partition_by is None:
        parts = []
    elif isinstance(partition_by, str):
        parts = [partition_by]
    else:
        parts = check_names(partition_by, "partition_by")
    check_partition_names(parts)
    produced = list(source.columns) + list(synth.target_vars)
    unknown = [c for c in parts if c not in produced]
    if unknown:
        raise DataValidationError(
            f"{shown('partition_by')} columns {unknown} are not produced by the model or the conditions; "
            f"expected some of {produced}."
        )
    if len(set(parts)) != len(parts) or len(parts) == len(produced):
        raise DataValidationError(f"{shown('partition_by')} must name distinct columns and leave data columns. "
                                  f"Got {parts}.")
    for c in parts:
        if n and _all_missing(source, c, n):
            raise DataValidationError(
                f"Partition column {c!r} is missing in every row: a dataset partitioned only by missing values "
                f"cannot be read back (pyarrow cannot infer its type). Leave it out of {shown('partition_by')}."
            )
        if _may_be_missing(synth, c):
            raise DataValidationError(
                f"Partition column {c!r} may hold missing values (the model draws them as a state of their own): "
                "pandas cannot read a dataset partitioned by a column with missing values back ('Cannot yet unify "
                f"dictionaries with nulls'). Leave it out of {shown('partition_by')}, or give its missing values a "
                "value of their own before fitting."
            )
    return int(n), parts


def _may_be_missing(synth: Any, col: str) -> bool:
    """Whether the model may draw, or resample, missing values of the column ``col``: a target with a missing
    state, or a condition with missing values in training."""
    encoder = getattr(synth, "condition_encoder_", None)
    return col in getattr(synth, "missing_vars_", ()) or col in getattr(encoder, "missing", ())


def _all_missing(source: ConditionSource, col: str, n: int) -> bool:
    """Whether an in-memory source's column ``col`` is missing in every row it will give."""
    from .sources import CellCounts, FrameSource, Resample

    if isinstance(source, FrameSource) and col in source.frame.columns:
        return bool(source.frame[col].iloc[:n].isna().all())
    if isinstance(source, CellCounts) and col in source.cells.columns:
        return bool(source.cells[col][source.counts > 0].isna().all())
    if isinstance(source, Resample) and col in source.frame.columns:
        return bool(source.frame[col][source.weights > 0].isna().all())
    return False


def _run_task(
    synth,
    source: ConditionSource,
    spec: dict[str, Any],
    path: str,
    task: int,
    start: int,
    stop: int,
    on_rows: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Synthesizes rows ``[start, stop)`` block by block and writes them as task ``task``."""
    b, n, seed = spec["block_rows"], spec["n"], spec["seed"]

    def tables() -> Iterator[pa.Table]:
        for k in range(start // b, (stop - 1) // b + 1):
            lo, hi = k * b, min((k + 1) * b, n)
            rows = source.draw(synth, lo, hi, spec["chunk_rows"])
            out = synth.generate(rows, seed=_block_seed(seed, k), chunk_size=spec["chunk_rows"], threads=None)
            first, last = max(start, lo) - lo, min(stop, hi) - lo
            if (first, last) != (0, hi - lo):
                out = out.iloc[first:last]
            if list(out.columns) != spec["columns"]:  # the parts would fail the run's checks when it finishes
                raise DataValidationError(
                    f"The records of block {k} have columns {[str(c) for c in out.columns][:8]}; the run expected "
                    f"{spec['columns'][:8]}, the columns of the conditions source ({type(source).__name__}) and "
                    "the model's targets. Its read must give the columns it lists.")
            yield _as_table(out, getattr(source, "arrow_types", None))
            if on_rows is not None:
                on_rows(last - first)

    return write_task(path, task, tables(), spec["partition_by"])


def _as_table(frame, types: dict[str, pa.DataType] | None) -> pa.Table:
    """A block as an Arrow table, the source's columns in the source's types (fixed per run)."""
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        for name, typ in (types or {}).items():
            i = table.schema.get_field_index(name)
            if i >= 0 and table.schema.field(i).type != typ:
                table = table.set_column(i, table.schema.field(i).with_type(typ), table.column(i).cast(typ))
    except pa.ArrowException as exc:
        raise DataValidationError(f"A block of records cannot be stored in Parquet: {str(exc)[:200]}") from None
    return table


def _worker_model(model: bytes, key: str, load: Callable[[io.BytesIO], Any]) -> Any:
    """The model of a Dask worker: one torch thread, loaded once per process (keyed by its hash)."""
    torch.set_num_threads(1)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = load(io.BytesIO(model))
    return _WORKER_MODELS[key]


def _run_remote(model: bytes, key: str, source, spec, path, task, start, stop) -> dict[str, Any]:
    """Task body on a Dask worker."""
    from ..synthesis import Synthesizer

    return _run_task(_worker_model(model, key, Synthesizer.load), source, spec, path, task, start, stop)


def _model_bytes(synth) -> bytes:
    """The bytes of ``synth``'s model file, built in memory from its exported state."""
    buffer = io.BytesIO()
    write_archive(buffer, *synth._export_state())
    return buffer.getvalue()


def generate_dataset(
    synth,
    conditions: ConditionSource | Any = None,
    n: int | None = None,
    *,
    path: str | os.PathLike,
    partition_by: Sequence[str] | str | None = None,
    rows_per_file: int = 5_000_000,
    seed: int = 0,
    client=None,
    progress: bool = True,
    torch_threads: int | None = 1,
) -> dict[str, Any]:
    """Streams ``n`` synthetic records to a (hive-partitioned) Parquet dataset at ``path``.

    Memory stays flat: conditions are read and records synthesized and written one block
    (100,000 rows) at a time. Each file is written under a hidden temporary name and renamed
    when complete; re-running the same call after a crash skips the finished files.

    Parameters
    ----------
    synth : Synthesizer
        A fitted synthesizer.
    conditions : ConditionSource, DataFrame, str or path-like, default=None
        Conditions of the records: a source from :mod:`microplex.scale.sources`
        (``ParquetSource``, ``CellCounts``, ``Resample``, ``FrameSource``), a DataFrame, a
        Parquet file or directory, or ``None`` for a weighted resample of the training
        conditions (seeded by ``seed``). Extra columns are kept in the output, and so is a frame's pandas index
        with a name (a column after the frame's, as a Parquet file of it is read; an index without a name is
        dropped).
    n : int, default=None
        Number of records (an int >= 1: ``1e6`` is refused, not truncated; at most 2**53); defaults
        to every row of a bounded source (the first ``n`` rows are used otherwise). 0 is refused: a
        dataset of no record would be an empty folder without columns.
    path : str or path-like
        Output directory: new, empty, or holding an unfinished run of this same call. It gets
        only the Parquet files; the manifest, task markers, schema and lock go to the hidden
        folder ``.NAME.microplex`` beside it (:mod:`microplex.scale._layout`). One run writes
        into it at a time: the lock file ``_microplex.lock`` makes a second call refuse (see
        :mod:`microplex.scale._lock` for stale locks of killed runs). A path that is an existing
        file, lies under a file or an unwritable folder, or lies inside (or holds) the Parquet
        conditions raises :class:`~microplex.DataValidationError` before any work.
    partition_by : list of str, default=None
        Columns (conditions or targets) for hive partitioning (``path/state=CA/...``). Their
        names must be plain directory names (no ``/``, ``\\``, ``=``, NUL, no leading ``.`` or
        ``_``; refused otherwise); their values are percent-encoded as pyarrow does. Every file
        is checked to resolve inside ``path``.
    rows_per_file : int, default=5000000
        Rows per task; each task writes one file per partition value it meets.
    seed : int, default=0
        Seeds every draw; the same call gives the same rows whatever ``client`` is.
    client : dask.distributed.Client, default=None
        Runs one task per file on the cluster (the model is broadcast once; workers must
        see ``path`` and any Parquet conditions); ``None`` runs in this process.
    progress : bool, default=True
        Show a progress bar (rows done, rows/s, time left).
    torch_threads : int or None, default=1
        Torch threads of a local run (restored afterwards); ``None`` keeps torch's setting.
        Dask workers always use one. The values agree across thread counts to float32 rounding
        (the flow's matrix products add in another order: about 1e-6 relative, 0.006 on earnings
        of 1e4), the bytes only at the same count: at the default, a local run writes the bytes
        of a Dask run. On a busy machine 1 is also much faster than several (see
        ``benchmarks/results/scale.md``).

    Returns
    -------
    dict
        The manifest, also written to the side folder (read it with
        :func:`~microplex.scale.read_manifest`): ``spec`` (seed,
        model hash, n, ...), ``rows`` and ``files`` (path, rows and bytes of each file).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from microplex import Synthesizer
    >>> from microplex.datasets import load_dataset
    >>> df = load_dataset("cps1").sample(500, random_state=0)
    >>> synth = Synthesizer(["re78"], ["age", "black"], epochs=1, verbose=False).fit(df)
    >>> out = tempfile.mkdtemp()
    >>> manifest = generate_dataset(synth, n=1000, path=out, partition_by=["black"],
    ...                             rows_per_file=400, seed=7, progress=False)
    >>> manifest["rows"], len(pd.read_parquet(out))
    (1000, 1000)
    >>> sorted(pd.read_parquet(out).columns)
    ['age', 'black', 're78']
    """
    from ..synthesis import Synthesizer

    if not isinstance(synth, Synthesizer):
        raise DataValidationError(f"The 'synth' parameter must be a fitted Synthesizer. Got {type(synth).__name__} instead.")
    synth._check_is_fitted()
    check_seed(seed, "seed", allow_none=False)
    source = as_source(conditions, synth, seed)
    n, parts = _check_args(synth, source, n, partition_by, rows_per_file, seed, path, progress, torch_threads, client)
    mhash = model_hash(synth)
    spec = {
        "format_version": FORMAT_VERSION,
        "model_hash": mhash,
        "source": f"{type(source).__name__}:{source.fingerprint()}",
        "n": n,
        "seed": int(seed),
        "partition_by": parts,
        "rows_per_file": int(rows_per_file),
        "block_rows": int(_BLOCK_ROWS),
        "chunk_rows": int(min(_CHUNK_ROWS, _BLOCK_ROWS)),
        "columns": list(source.columns) + list(synth.target_vars),
    }
    _check_first_block(synth, source, n)
    path = os.path.realpath(path)  # links resolved: one lock (side folder) per folder, whatever name reaches it
    with OutputLock(path, layout(path).meta):
        return _generate_locked(synth, source, spec, path, n, rows_per_file, client, progress, torch_threads, mhash)


def _check_first_block(synth, source: ConditionSource, n: int) -> None:
    """The checks the first block's ``synth.generate`` makes of its conditions (values, types, categories), made
    before anything is written: bad conditions are refused without leaving a folder that holds a run (a folder the
    corrected call, another run, was refused). A source the model draws itself gives valid rows."""
    from .sources import ModelConditions

    if not isinstance(source, ModelConditions):
        synth._check_conditions(source.read(0, min(_BLOCK_ROWS, n)))


def _generate_locked(synth, source, spec, path, n, rows_per_file, client, progress, torch_threads, mhash):
    """The body of :func:`generate_dataset`, run while holding the output directory's lock. An attempt that
    started the run (wrote its manifest) and fails before finishing any task removes what it wrote
    (:func:`~microplex.scale.writer.discard_unstarted`), so that a corrected call starts afresh; one that finished
    a task keeps it for the repeated call to resume."""
    lay = layout(path)
    fresh = not (lay.manifest.exists() or lay.manifest.is_symlink())
    before = set(os.listdir(lay.root)) if lay.root.is_dir() else None
    done = prepare_output(path, spec)
    try:
        return _generate_prepared(synth, source, spec, path, n, rows_per_file, client, progress, torch_threads,
                                  mhash, done)
    except BaseException:
        if fresh:
            discard_unstarted(lay, before)
        raise


def _generate_prepared(synth, source, spec, path, n, rows_per_file, client, progress, torch_threads, mhash, done):
    """Runs the tasks not in ``done`` into the prepared output and finishes it."""
    tasks = [
        (t, t * rows_per_file, min((t + 1) * rows_per_file, n))
        for t in range(-(-n // rows_per_file))
        if t not in done
    ]
    skipped = n - sum(stop - start for _, start, stop in tasks)
    if done:
        logger.info("Resuming %s: %d finished tasks skipped.", path, len(done))
    bar = tqdm(total=n, initial=skipped, unit="row", unit_scale=True, desc="generate", disable=not progress)
    def local(t: int, start: int, stop: int, on_rows: Callable[[int], None]) -> None:
        _run_task(synth, source, spec, path, t, start, stop, on_rows)

    _run_all(tasks, local, client, torch_threads, bar,
             dask_args=(_run_remote, lambda: _model_bytes(synth), mhash, source, spec, path))
    return finish_output(path, spec, {"targets": list(synth.target_vars)})


def _run_all(tasks, local: Callable[..., Any], client, torch_threads: int | None, bar, *, dask_args: tuple) -> None:
    """Runs ``local(task, start, stop, bar.update)`` for every task here (with ``torch_threads``, restored
    afterwards), or on ``client`` through :func:`_run_dask` with ``dask_args`` (``remote``, a function giving
    the model bytes, the model hash, the source, the spec, the path)."""
    threads = torch.get_num_threads()
    if torch_threads is not None and client is None:
        torch.set_num_threads(torch_threads)
    try:
        if client is None:
            for t, start, stop in tasks:
                local(t, start, stop, bar.update)
        else:
            remote, model_bytes, *rest = dask_args
            _run_dask(client, remote, model_bytes(), *rest, tasks, bar)
    finally:
        bar.close()
        torch.set_num_threads(threads)


def _run_dask(client, remote: Callable[..., dict[str, Any]], model_bytes: bytes, mhash: str, source, spec, path, tasks,
              bar) -> None:
    """Runs ``remote(model, mhash, source, spec, path, task, start, stop)`` for every task on the cluster
    (the model bytes and the source broadcast once); on a failure, cancels what has not started."""
    from dask.distributed import as_completed, wait

    model = client.scatter(model_bytes, broadcast=True, hash=False)
    src = client.scatter(source, broadcast=True, hash=False)
    futures = [
        client.submit(remote, model, mhash, src, spec, path, t, start, stop, pure=False)
        for t, start, stop in tasks
    ]
    try:
        for future in as_completed(futures):
            info = future.result()
            bar.update(info["rows"])
    except BaseException:
        # A running task cannot be interrupted: let those finish (each writes whole files or
        # removes its temporaries) and cancel the rest, so no temporary outlives this call.
        running = {key for keys in client.processing().values() for key in keys}
        client.cancel([f for f in futures if f.key not in running])
        wait([f for f in futures if f.key in running])
        raise
