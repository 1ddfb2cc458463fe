"""Stream a :class:`~microplex.households.HouseholdSynthesizer`'s output as two linked Parquet datasets.

``path/households/`` holds one row per household, ``path/persons/`` one row per person; both are
ordinary microplex datasets (manifest, task markers, hive partitions) written with the machinery of
:func:`~microplex.scale.generate_dataset`. Households are synthesized in blocks of
``_BLOCK_HOUSEHOLDS``: block ``k`` is ``model.sample(rows, seed=s_k)`` with ``s_k`` the same
counter-keyed child of ``SeedSequence(seed)`` as ``generate_dataset``'s blocks, so the output depends
only on (model, ``n_households``, ``seed``, ``oversample``), never on the workers or files.

Ids are global: household ``i`` (0-based, in block order) gets id ``i + 1``, and its ``j``-th member
(1-based, oldest first) gets person id ``i * max_size + j`` (``max_size``: the largest training
household), unique across blocks, tasks and workers without any coordination. A task writes its
households and their persons (the same partition folders: partition columns are household columns,
copied onto the persons) and only then the markers of both datasets, so a resumed run redoes a task
unless both datasets finished it.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from .._errors import DataValidationError
from .._params import check_bool, check_int, check_names, check_seed
from ._lock import OutputLock
from .generate import _MAX_ROWS, _MAX_TASKS, _as_table, _block_seed, _run_all, _worker_model
from .writer import FORMAT_VERSION, _visible_entries, check_partition_names, finish_output, prepare_output, write_linked_task

__all__ = ["generate_household_dataset"]

logger = logging.getLogger(__name__)

#: Households per random block (part of the output format: changing it changes the draws).
_BLOCK_HOUSEHOLDS = 100_000
#: The two datasets under the output folder.
TABLES = ("households", "persons")


def _model_bytes(model) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def _columns(model, partition_by: list[str], with_weight: bool = True) -> tuple[list[str], list[str]]:
    """The columns of the households and of the persons datasets, in file order (without the model's weight
    column unless ``with_weight``)."""
    hid, weight = model.household_id, model.household_weight if with_weight else None
    households = [hid, *model.household_cols_] + ([weight] if weight else [])
    persons = [hid, model.person_id or "person_id", *model.person_vars] + ([weight] if weight else [])
    return households, persons + [c for c in partition_by if c not in persons]


def _check_args(model, n, partition_by, households_per_file, seed, oversample, path, progress, torch_threads, client):
    """Validates every argument of :func:`generate_household_dataset` (before any work or file)."""
    check_bool(progress, "progress")
    check_int(torch_threads, "torch_threads", low=1, allow_none=True)
    check_seed(seed, "seed", allow_none=False)
    check_int(oversample, "oversample", low=1, high=1000)
    per = check_int(households_per_file, "households_per_file", low=1)
    n = check_int(n, "n_households", low=0, high=_MAX_ROWS // max(int(model.max_size_), 1))
    if n == 0:  # as generate_dataset: no task, so no file and no schema (empty folders without columns)
        raise DataValidationError(
            "The 'n_households' parameter is 0: two streamed datasets of no record are empty folders, with no "
            "columns for a reader to find. Ask for at least one household.")
    if -(-n // per) > _MAX_TASKS:
        raise DataValidationError(
            f"The 'households_per_file' parameter ({per}) would cut {n} households into {-(-n // per)} files; "
            f"at most {_MAX_TASKS} are allowed. Use a larger households_per_file."
        )
    if not isinstance(path, str | os.PathLike) or not os.fspath(path) or "\x00" in os.fspath(path):
        raise DataValidationError(f"The 'path' parameter must be a non-empty str or path-like. Got {path!r} instead.")
    from .._cli_checks import check_output

    check_output(Path(os.fspath(path)), "path", [], folder=True)  # a file, or under one: named, not an OS error
    if client is not None and not callable(getattr(client, "submit", None)):
        raise DataValidationError(
            f"The 'client' parameter must be a dask.distributed.Client or None. Got {type(client).__name__} instead."
        )
    parts = [] if partition_by is None else [partition_by] if isinstance(partition_by, str) else check_names(
        partition_by, "partition_by")
    check_partition_names(parts)
    allowed = list(model.household_cols_)
    unknown = [c for c in parts if c not in allowed]
    if unknown or len(set(parts)) != len(parts):
        raise DataValidationError(
            f"partition_by must name distinct household columns; {unknown or parts} are not. Expected some of {allowed}."
        )
    return n, parts


def generate_household_dataset(
    model,
    n_households: int,
    *,
    path: str | os.PathLike,
    partition_by: Sequence[str] | str | None = None,
    households_per_file: int = 1_000_000,
    seed: int = 0,
    oversample: int = 5,
    client=None,
    progress: bool = True,
    torch_threads: int | None = 1,
) -> dict[str, dict[str, Any]]:
    """Streams ``n_households`` synthetic households and their persons to two linked Parquet datasets.

    Memory stays flat: households are drawn, given their persons and written one block (100,000
    households) at a time, with the guarantees of :func:`~microplex.scale.generate_dataset`: the same
    call gives the same bytes locally and on Dask, every file appears whole or not at all, and
    repeating an interrupted call finishes it.

    Parameters
    ----------
    model : HouseholdSynthesizer
        A fitted household synthesizer.
    n_households : int
        Number of households (an int >= 1, at most ``2**53 / max_size``).
    path : str or path-like
        Output folder: new, empty, or holding an unfinished run of this same call. It gets
        ``households/`` and ``persons/`` (and a lock file while the run writes). A path that is an
        existing file or lies under a file or an unwritable folder raises
        :class:`~microplex.DataValidationError` before any work.
    partition_by : list of str, default=None
        Household columns for hive partitioning of both datasets (``households/region=3/...`` and
        ``persons/region=3/...``: the persons of a household file lie in the persons file of the same
        relative path). Names must be plain directory names, as in ``generate_dataset``.
    households_per_file : int, default=1000000
        Households per task; each task writes one file per partition value in each dataset.
    seed : int, default=0
        Seeds every draw.
    oversample : int, default=5
        Candidate households per household kept (see :meth:`HouseholdSynthesizer.sample`).
    client : dask.distributed.Client, default=None
        Runs one task per file on the cluster (workers must see ``path``); ``None`` runs here.
    progress : bool, default=True
        Show a progress bar (households done).
    torch_threads : int or None, default=1
        Torch threads of a local run (restored afterwards; ``None`` keeps torch's setting). The
        values agree across thread counts to float32 rounding, the bytes only at the same count
        (Dask workers use one, as the default).

    Returns
    -------
    dict
        ``{"households": manifest, "persons": manifest}``, the manifests also written beside each
        dataset (:func:`~microplex.scale.read_manifest`); each records the id columns (``household_id``,
        ``person_id``) and the household ``weight`` column (the training total spread evenly over
        the ``n_households``).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from microplex.datasets import load_dataset
    >>> from microplex.households import HouseholdSynthesizer
    >>> df = load_dataset("eusilc")
    >>> df = df[df.db030 <= 300]
    >>> hs = HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090"], "db030", household_weight="db090",
    ...                           person_id="rb030", size_var="hsize", geography="db040", age_var="age",
    ...                           epochs=1).fit(df, seed=0)
    >>> out = tempfile.mkdtemp()
    >>> m = generate_household_dataset(hs, 500, path=out, households_per_file=200, seed=1, progress=False)
    >>> households, persons = pd.read_parquet(f"{out}/households"), pd.read_parquet(f"{out}/persons")
    >>> len(households), bool(len(persons) == households.hsize.sum() == m["persons"]["rows"])
    (500, True)
    >>> bool(households.db030.is_unique and persons.rb030.is_unique)
    True
    """
    return _generate(model, n_households, path=path, partition_by=partition_by,
                     households_per_file=households_per_file, seed=seed, oversample=oversample, client=client,
                     progress=progress, torch_threads=torch_threads)


def _generate(model, n_households, *, path, partition_by=None, households_per_file=1_000_000, seed=0, oversample=5,
              client=None, progress=True, torch_threads=1, with_weight: bool = True) -> dict[str, dict[str, Any]]:
    """:func:`generate_household_dataset`; without the model's household weight column unless ``with_weight``
    (the pipeline's populations carry none: it weighs each household itself). The draws are the same."""
    # scale does not import households (layering): a household model is what has its interface
    if not all(hasattr(model, a) for a in ("sample", "save", "load", "household_id", "person_vars", "_check_is_fitted")):
        raise DataValidationError(
            f"The 'model' parameter must be a fitted HouseholdSynthesizer. Got {type(model).__name__} instead.")
    model._check_is_fitted()
    n, parts = _check_args(model, n_households, partition_by, households_per_file, seed, oversample, path, progress,
                           torch_threads, client)
    model_bytes = _model_bytes(model)
    h_cols, p_cols = _columns(model, parts, with_weight)
    base = {
        "format_version": FORMAT_VERSION, "model_hash": hashlib.sha256(model_bytes).hexdigest(), "n": n,
        "seed": int(seed), "partition_by": parts, "rows_per_file": int(households_per_file),
        "block_rows": int(_BLOCK_HOUSEHOLDS), "oversample": int(oversample),
    }
    specs = ({**base, "table": "households", "columns": h_cols},
             {**base, "table": "persons", "linked_to": "households", "columns": p_cols})
    root = Path(os.path.realpath(path))  # links resolved: one lock per folder, whatever name reaches it
    with OutputLock(root):
        other = [e for e in _visible_entries(root) if e not in TABLES]
        if other:
            raise DataValidationError(
                f"Output path {str(root)!r} holds files other than {list(TABLES)} ({other[:5]}); refusing to write "
                "into it. Choose an empty or new directory."
            )
        done = [prepare_output(root / name, spec) for name, spec in zip(TABLES, specs, strict=True)]
        finished = done[0] & done[1]
        per = int(households_per_file)
        tasks = [(t, t * per, min((t + 1) * per, n)) for t in range(-(-n // per)) if t not in finished]
        bar = tqdm(total=n, initial=n - sum(b - a for _, a, b in tasks), unit="household", unit_scale=True,
                   desc="households", disable=not progress)

        def local(t: int, start: int, stop: int, on_rows: Callable[[int], None]) -> None:
            _run_task(model, specs, str(root), t, start, stop, on_rows)

        _run_all(tasks, local, client, torch_threads, bar,
                 dask_args=(_run_remote, lambda: model_bytes, base["model_hash"], type(model).load, specs, str(root)))
        extra = {"household_id": model.household_id, "person_id": model.person_id or "person_id",
                 "weight": model.household_weight if with_weight else None}
        return {name: finish_output(root / name, spec, extra) for name, spec in zip(TABLES, specs, strict=True)}


def _block(model, specs: tuple[dict, dict], k: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Households and persons of block ``k``, with global ids, the run's weight and partition columns."""
    spec_h, spec_p = specs
    b, n = spec_h["block_rows"], spec_h["n"]
    lo, hi = k * b, min((k + 1) * b, n)
    hh, persons = model.sample(hi - lo, seed=_block_seed(spec_h["seed"], k), oversample=spec_h["oversample"])
    hid, pid = model.household_id, model.person_id or "person_id"
    local = persons[hid].to_numpy(np.int64) - 1  # the block's households are numbered 1..rows in row order
    hh[hid] = np.arange(lo + 1, hi + 1, dtype=np.int64)
    persons[hid] = local + lo + 1
    member = persons.groupby(hid, sort=False).cumcount().to_numpy(np.int64) + 1
    persons[pid] = (local + lo) * int(model.max_size_) + member
    if model.household_weight:
        hh[model.household_weight] = persons[model.household_weight] = model.total_weight_ / n
    for c in spec_p["partition_by"]:
        if c not in persons.columns:
            persons[c] = hh[c].to_numpy()[local]
    return hh[spec_h["columns"]], persons[spec_p["columns"]]


def _run_task(model, specs, root: str, task: int, start: int, stop: int,
              on_rows: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Synthesizes households ``[start, stop)`` block by block and writes them and their persons as task ``task``."""
    spec_h = specs[0]
    b, hid = spec_h["block_rows"], model.household_id

    def tables() -> Iterator[tuple[pa.Table, pa.Table]]:
        for k in range(start // b, (stop - 1) // b + 1):
            hh, persons = _block(model, specs, k)
            ids = hh[hid].to_numpy()
            if ids[0] <= start or ids[-1] > stop:  # ids are 1-based row numbers
                hh = hh[(ids > start) & (ids <= stop)]
                p_ids = persons[hid].to_numpy()
                persons = persons[(p_ids > start) & (p_ids <= stop)]
            yield _as_table(hh, None), _as_table(persons, None)
            if on_rows is not None:
                on_rows(len(hh))

    infos = write_linked_task([Path(root) / name for name in TABLES], task, tables(), spec_h["partition_by"])
    return infos[0]


def _run_remote(model: bytes, key: str, load, specs, root, task, start, stop) -> dict[str, Any]:
    """Task body on a Dask worker; ``load`` is the model class's ``load`` (a reference, not pickled code)."""
    return _run_task(_worker_model(model, key, load), specs, root, task, start, stop)
