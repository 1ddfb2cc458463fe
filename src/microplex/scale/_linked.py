"""Out-of-core calibration of linked households and persons datasets: one weight per household.

A household's row of the design counts its persons in every person-level target category and has a 1
in its own household-level categories (as :class:`microplex.calibration.Calibrator` with
``household_col``). The two datasets are read in pairs of files with the same relative path (as
:func:`microplex.scale.generate_household_dataset` writes them: the persons of a household file lie in
the persons file of the same path); every pass of the solver reads each pair once, aggregates its
persons to its households, and returns its share of the totals and of the sparse Gram matrix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from .._errors import DataValidationError
from .._stats import check_household_ids
from ..io import arrow_frame
from ..calibration.targets import Targets
from ._layout import layout, open_dataset
from ._manifest import _fail, read_json
from ._margins import _as_margins, _Codes, _Margins, check_text_partition_keys, initial_weights, union_forms

__all__ = ["LinkedCodes", "LinkedMargins", "linked_pairs", "linked_part", "check_linked", "write_link"]

#: The record, in the side folder of each folder of a linked calibrated copy (``.NAME.microplex/``), of the
#: calibration both folders hold: ``{"calibration": <64 hex>, "role": "households" or "persons"}``.
LINK_NAME = "_microplex_link.json"
_ROLES = ("households", "persons")


class LinkedCodes:
    """What a pair of files needs to build its design: the person and household margins' codes, not the targets.

    Shipped to Dask workers instead of :class:`LinkedMargins`, whose ``Target`` objects and labels every pass
    would otherwise carry (about 120 MB pickled at tract scale).
    """

    def __init__(self, person: _Codes | None, household: _Codes | None) -> None:
        self.person, self.household = person, household
        self.m_person = person.m if person is not None else 0

    @property
    def person_columns(self) -> list[str]:
        return self.person.columns if self.person is not None else []

    @property
    def household_columns(self) -> list[str]:
        return self.household.columns if self.household is not None else []

    def settle(self, held: dict[str, dict[Any, set[Any]]]) -> bool:
        """:meth:`_Codes.settle` of the person and household margins on the values ``held`` of every pair of files
        (:func:`linked_design`'s ``held``, united by :func:`union_linked_forms`): whether a pair must be coded again."""
        again = False
        for role, coder in (("person", self.person), ("household", self.household)):
            if coder is not None:
                again = coder.settle(held.get(role, {})) or again
        return again


def union_linked_forms(*parts: dict[str, dict[Any, set[Any]]]) -> dict[str, dict[Any, set[Any]]]:
    """:func:`~microplex.scale._margins.union_forms` of the person and of the household values of pairs of files."""
    return {role: union_forms(*(p.get(role, {}) for p in parts)) for role in ("person", "household")}


class LinkedMargins:
    """Person-level margins (counted over each household's persons) then household-level margins."""

    def __init__(self, margins: Mapping | Targets) -> None:
        if isinstance(margins, Targets):
            bad = [t.name for t in margins if t.entity not in ("person", "household")]
            if bad:
                raise DataValidationError(f"Targets {bad[:5]} have an entity other than 'person' or 'household'.")
            # each checked as the user gave it: re-labelled as person targets first, a refused household target
            # was said to have entity='person'
            by_entity = {e: Targets([t for t in margins if t.entity == e]) for e in ("person", "household")}
            parts = [_Margins(_as_margins(ts, e)) if len(ts) else None for e, ts in by_entity.items()]
        else:
            parts = [_Margins(_as_margins(margins)), None]
        self.person, self.household = parts
        used = [p for p in parts if p is not None]
        self.m_person = self.person.m if self.person is not None else 0
        self.totals = np.concatenate([p.totals for p in used])
        self.labels = [lab for p in used for lab in p.labels]
        if self.household is not None:
            self.labels = (self.labels[: self.m_person]
                           + [(f"households: {k}", c) for k, c in self.labels[self.m_person:]])
        self.targets = Targets([t for p in used for t in p.targets])
        self.coder = LinkedCodes(*(p.coder if p is not None else None for p in parts))

    @property
    def m(self) -> int:
        return len(self.totals)

    @property
    def person_columns(self) -> list[str]:
        return self.person.columns if self.person is not None else []

    @property
    def household_columns(self) -> list[str]:
        return self.household.columns if self.household is not None else []


def linked_pairs(households: str | os.PathLike, persons: str | os.PathLike) -> list[tuple[str, str, dict[str, Any]]]:
    """``(household file, persons file, partition keys)`` for every household file, paired by relative path.

    Raises :class:`DataValidationError` naming the files that have no partner.
    """
    import pyarrow.dataset as ds

    def files(path: Path) -> dict[str, tuple[str, dict[str, Any]]]:
        try:
            dataset = open_dataset(path)  # its *.parquet files; another file is refused, naming it
        except DataValidationError:
            raise
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise DataValidationError(f"Cannot read the Parquet dataset {str(path)!r}: {exc}") from exc
        out = {}
        for frag in dataset.get_fragments():
            rel = Path(frag.path).relative_to(path).as_posix() if path.is_dir() else ""
            out[rel] = (frag.path, ds.get_partition_keys(frag.partition_expression))
        return out

    h_root, p_root = Path(os.fspath(households)), Path(os.fspath(persons))
    check_linked(h_root, p_root)
    if h_root.is_dir() != p_root.is_dir():
        raise DataValidationError(
            f"The households {str(h_root)!r} and persons {str(p_root)!r} must both be files or both be dataset folders."
        )
    h, p = files(h_root), files(p_root)
    alone = sorted(set(h) ^ set(p))
    if alone:
        raise DataValidationError(
            f"The households and persons datasets are not linked file by file: {alone[:5]} "
            f"{'has' if len(alone) == 1 else 'have'} no file of the same relative path in the other dataset "
            "(the persons of a household file must lie in the persons file of the same path)."
        )
    return [(h[rel][0], p[rel][0], h[rel][1]) for rel in sorted(h)]


def link_id(entries: list[tuple[str, str, str]]) -> str:
    """The id of a linked calibrated copy: the SHA-256 of its data files' ``(role, relative path, SHA-256)``,
    households then persons, each by path (the same bytes written, the same id)."""
    digest = hashlib.sha256()
    for role in _ROLES:
        for _, rel, sha in sorted(e for e in entries if e[0] == role):
            digest.update(f"{role}\0{rel}\0{sha}\n".encode())
    return digest.hexdigest()


def write_link(folder: Path, calibration: str, role: str) -> None:
    """Records in the side folder of ``folder`` (one half of a linked calibrated copy) the copy's id and its role."""
    from ..io import write_text_atomic

    meta = layout(folder).meta
    meta.mkdir(parents=True, exist_ok=True)
    write_text_atomic(json.dumps({"calibration": calibration, "role": role}), meta / LINK_NAME)


def remove_link(folder: Path) -> None:
    """Removes the record :func:`write_link` wrote for ``folder`` (that of a stopped call, or of a folder not
    published)."""
    record = layout(folder).meta / LINK_NAME
    if record.is_file() and not record.is_symlink():
        record.unlink()


def read_link(folder: Path) -> dict[str, str] | None:
    """The checked record of :func:`write_link` beside ``folder``; ``None`` when it has none (no calibrated copy
    of a linked pair)."""
    record = layout(folder).meta / LINK_NAME
    if not record.exists() and not record.is_symlink():
        return None
    what = f"the calibrated copy {str(folder)!r} and its side folder"
    link = read_json(record, what)
    if (not isinstance(link, dict) or set(link) != {"calibration", "role"} or link["role"] not in _ROLES
            or not isinstance(link["calibration"], str) or not re.fullmatch("[0-9a-f]{64}", link["calibration"])):
        raise _fail(record, "must hold {\"calibration\": 64 hex digits, \"role\": \"households\" or \"persons\"}", what)
    return link


def check_linked(households: Path, persons: Path) -> None:
    """Refuses a households and a persons dataset that are not the two folders of one linked calibrated copy
    when either is such a folder (its side folder holds a :data:`LINK_NAME` record): the households of one
    ``write_calibrated`` call beside the persons of another (a call stopped between publishing its two folders,
    then an earlier call's persons given) would pair one calibration's household weights with another's."""
    links = read_link(households), read_link(persons)
    for link, folder, role in zip(links, (households, persons), _ROLES, strict=True):
        if link is not None and link["role"] != role:
            raise DataValidationError(
                f"{str(folder)!r} holds the {link['role']} of a calibrated copy (its side folder's {LINK_NAME}), "
                f"not the {role}: give the households folder as the dataset and the persons folder as 'persons'.")
    if links[0] is None and links[1] is None or links[0] is not None and links[1] is not None \
            and links[0]["calibration"] == links[1]["calibration"]:
        return

    def said(link: dict[str, str] | None, role: str) -> str:
        return (f"the {role}' records copy {link['calibration'][:12]}..." if link is not None
                else f"the {role}' records none (no half of a calibrated copy)")

    raise DataValidationError(
        f"The households folder {str(households)!r} and the persons folder {str(persons)!r} were not written "
        f"together by one write_calibrated call: {said(links[0], 'households')}, {said(links[1], 'persons')} "
        f"(their side folders' {LINK_NAME}). A call stopped between publishing its two folders, or the folders of "
        "two calls, leave such a pair: one calibration's household weights beside another's persons. Give the two "
        "folders of one call (repeat the call into new folders).")


def _read(path: str, wanted: list[str], keys: dict[str, Any], what: str) -> pd.DataFrame:
    names = pq.read_schema(path).names
    table = pq.read_table(path, columns=[c for c in wanted if c in names])
    frame = arrow_frame(table, f"the {what} file {path!r}")
    frame = frame.assign(**{k: v for k, v in keys.items() if k not in frame.columns})
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise DataValidationError(f"The {what} file {path!r} lacks the columns {missing}; it has {names[:20]}.")
    return frame


def linked_part(
    pair: tuple[str, str, dict[str, Any]], lm: LinkedCodes, household_id: str, weight_col: str | None, initial: float,
    forms: bool = False,
) -> tuple:
    """The design (households x targets) and initial weights of one pair of files (see :func:`linked_design`); with
    ``forms``, also the values the numbered categories may find there (:func:`linked_design`'s ``held``).

    A person-margin column is read from the persons file when it has it (each person's own value, as
    :func:`linked_design` and ``Calibrator(household_col=)`` take it), else from the households file.
    """
    h_path, p_path, keys = pair
    h_names = set(pq.read_schema(h_path).names) | set(keys)
    p_names = set(pq.read_schema(p_path).names) | set(keys)  # the pair lies in the same partition folders
    # a column in both files (the households' reference person's sex beside each person's own) was read from the
    # households: the solve counted persons by their household's value, the written weights by their own
    from_h = [c for c in lm.person_columns if c in h_names and c not in p_names and c != household_id]
    hh = _read(h_path, list(dict.fromkeys([household_id, *lm.household_columns, *from_h]
                                          + ([weight_col] if weight_col else []))), keys, "households")
    pp = _read(p_path, [household_id] + [c for c in lm.person_columns if c not in from_h and c != household_id], keys,
               "persons")
    if not forms:
        return linked_design(hh, pp, lm, household_id, weight_col, initial, (h_path, p_path))
    held: dict[str, dict[Any, set[Any]]] = {}
    return (*linked_design(hh, pp, lm, household_id, weight_col, initial, (h_path, p_path), held), held)


def linked_design(
    hh: pd.DataFrame, pp: pd.DataFrame, lm: LinkedCodes, household_id: str, weight_col: str | None, initial: float,
    where: tuple[str, str] = ("households", "persons"), held: dict[str, dict[Any, set[Any]]] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Households x targets: each household's persons counted in the person-level categories (person columns
    that only the households have are taken from their household), then its household-level categories.

    ``held``, when given, receives under ``"person"`` and ``"household"`` the values of the persons and households
    coded that the numbers and numbered categories may find, and what they found (:meth:`_Codes.codes`' ``held``),
    for :meth:`LinkedCodes.settle` on every file."""
    for frame, what in ((hh, "households"), (pp, "persons")):
        if household_id not in frame.columns:
            raise DataValidationError(f"The {what} data lack the household id column {household_id!r}.")
        check_household_ids(frame[household_id], household_id, what)  # 1 and '1': two households, silently
    ids = pd.Index(hh[household_id])
    if not ids.is_unique:
        raise DataValidationError(
            f"Household ids {household_id!r} repeat within the households {where[0]!r}: "
            f"{ids[ids.duplicated()].tolist()[:5]}."
        )
    pos = ids.get_indexer(pp[household_id])
    if (pos < 0).any():
        raise DataValidationError(
            f"The persons {where[1]!r} have persons of households {pp[household_id][pos < 0].unique().tolist()[:5]} "
            f"that are not in the households {where[0]!r}."
        )
    n = len(hh)
    blocks = []
    if lm.person is not None:
        pp = pp.assign(**{c: hh[c].to_numpy()[pos] for c in lm.person_columns
                          if c not in pp.columns and c in hh.columns})
        codes = lm.person.codes(pp, held.setdefault("person", {}) if held is not None else None)
        r, k = np.nonzero(codes >= 0)
        blocks.append(sp.csr_matrix((np.ones(len(r)), (pos[r], codes[r, k])), shape=(n, lm.m_person)))
    if lm.household is not None:
        codes = lm.household.codes(hh, held.setdefault("household", {}) if held is not None else None)
        r, k = np.nonzero(codes >= 0)
        blocks.append(sp.csr_matrix((np.ones(len(r)), (r, codes[r, k])), shape=(n, lm.household.m)))
    x = sp.csr_matrix(sp.hstack(blocks)) if len(blocks) > 1 else blocks[0]
    x.sum_duplicates()
    return x, initial_weights(hh, weight_col, initial)


def _id_range(path: str, household_id: str, keys: dict[str, Any]) -> tuple[Any, Any] | None:
    """The smallest and largest household id of the households file ``path`` from its row groups' Parquet
    statistics (its footer, no data read), or from the column when a row group has none (or the ids are not
    integers or text, or are a partition key); ``None`` when the file has no id."""
    import pyarrow as pa
    import pyarrow.compute as pc

    meta = pq.ParquetFile(path).metadata
    field = meta.schema.to_arrow_schema().field(household_id) if household_id in meta.schema.names else None
    kind = None if field is None else field.type.value_type if pa.types.is_dictionary(field.type) else field.type
    if kind is not None and (pa.types.is_integer(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        j = meta.schema.names.index(household_id)
        lows, highs = [], []
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            stats = group.column(j).statistics
            if group.num_rows == 0 or stats is not None and stats.has_null_count and stats.null_count == group.num_rows:
                continue  # no id (or only missing ones) in this row group
            if stats is None or not stats.has_min_max:
                break
            lows.append(stats.min)
            highs.append(stats.max)
        else:
            return (min(lows), max(highs)) if lows else None
    ids = _read(path, [household_id], keys, "households")[household_id].dropna()
    if not len(ids):
        return None
    if kind is None:  # a partition key: one value, compared as its text
        return str(ids.iloc[0]), str(ids.iloc[0])
    bounds = pc.min_max(pa.array(ids.to_numpy()))
    return bounds["min"].as_py(), bounds["max"].as_py()


def check_ids_across(pairs: list[tuple[str, str, dict[str, Any]]], household_id: str) -> None:
    """Refuses a household id held by two households files of ``pairs``: each file's rows would be a household
    of its own, with a weight of its own (a household's persons counted apart, its household targets twice).

    Files whose id ranges (:func:`_id_range`, from the Parquet statistics) do not overlap hold no id in common
    and are not read (:func:`~microplex.scale.generate_household_dataset` writes disjoint ranges); the ids of
    files whose ranges overlap are compared. The ids must have one Arrow type in every file
    (:func:`~microplex.scale.sources.check_same_schema`).

    Raises
    ------
    DataValidationError
        Naming the first id held by two files, and the two files.
    """
    from .sources import check_same_schema

    files = [pair[0] for pair in pairs]
    if len(files) < 2:
        return
    check_same_schema(files, [household_id], "Households dataset")
    ranges = [(r, k) for k, pair in enumerate(pairs) if (r := _id_range(pair[0], household_id, pair[2])) is not None]
    ranges.sort(key=lambda item: item[0][0])
    groups, high = [], None
    for (lo, hi), k in ranges:  # runs of files whose ranges overlap
        if high is None or lo > high:
            groups.append([])
            high = hi
        groups[-1].append(k)
        high = max(high, hi)
    for group in (g for g in groups if len(g) > 1):
        held = {k: pd.unique(_read(files[k], [household_id], pairs[k][2], "households")[household_id].dropna())
                for k in group}
        seen = pd.Index(np.concatenate([np.asarray(v, dtype=object) for v in held.values()]))
        twice = seen[seen.duplicated()]
        if len(twice):
            value = twice[0]
            value = value.item() if isinstance(value, np.generic) else value
            two = [files[k] for k in group if value in set(held[k].tolist())][:2]
            more = f" ({len(twice) - 1} more ids are in more than one file)" if len(twice) > 1 else ""
            raise DataValidationError(
                f"Household id {value!r} of column {household_id!r} is in two households files, {two[0]!r} and "
                f"{two[1]!r}{more}: each file's row would be a household of its own, with a weight of its own. A "
                "household's row must be in one households file, its persons in the persons file of the same path.")


def rake_linked(
    households: str | os.PathLike, persons: str | os.PathLike, margins: Mapping | Targets, household_id: str,
    weight_col: str | None, initial: float, run, **kw: Any,
):
    """The body of :func:`microplex.scale.rake_dataset` with ``persons=``: one pass over the pairs per evaluation."""
    import dask

    from ..calibration.operator import PartitionedOperator, add_parts, part_point
    from .calibrate import _Passes, _solve, _tree

    if not isinstance(household_id, str) or not household_id:
        raise DataValidationError(
            f"The 'household_id' parameter must name the household id column (a non-empty str) when 'persons' is "
            f"given. Got {household_id!r} instead.")
    if not isinstance(persons, str | os.PathLike) or not os.fspath(persons):
        raise DataValidationError(f"The 'persons' parameter must be a non-empty str or path-like. Got {persons!r} instead.")
    if weight_col is not None and weight_col == household_id:
        raise DataValidationError(
            f"The 'weight_col' and 'household_id' parameters are both {household_id!r}: the household ids would be "
            "the initial weights; name the weight column, or leave 'weight_col' out (equal initial weights).")
    lm = LinkedMargins(margins)
    pairs = linked_pairs(households, persons)
    check_text_partition_keys(households, [lm.coder.person, lm.coder.household])  # the persons' folders are theirs
    if pairs:  # each file is read with its own schema: a later file storing a column as strings would miscode
        from .sources import check_same_schema

        wanted = {
            "Households dataset": [household_id, *lm.household_columns, *lm.person_columns]
            + ([weight_col] if weight_col else []),
            "Persons dataset": [household_id, *lm.person_columns],
        }
        for k, (label, cols) in enumerate(wanted.items()):
            check_same_schema([pair[k] for pair in pairs], cols, label)
        check_ids_across(pairs, household_id)
    def coded(forms: bool = False) -> list:
        at_lm = dask.delayed(lm.coder)  # one task of the graph: the codes, not the targets, and not in every pair's task
        return [dask.delayed(linked_part)(pair, at_lm, household_id, weight_col, initial, forms) for pair in pairs]

    def point(part, lam, distance, bnds):
        return part_point(part, lam, distance, bnds, True)

    # numbers and codes '015' kept with 15 find their records among every pair's values, collected in the first pass;
    # where a pair found a number elsewhere ("015" in its file, "15" in another), the pass is made again, pinned
    passes = _Passes(run, coded, lambda: [(r[:2], r[2]) for r in coded(True)], union_linked_forms, lm.coder.settle)

    def reduce(lam, distance, bnds, need_potential):
        return passes(lambda ps: _tree([dask.delayed(point)(p, dask.delayed(lam), distance, bnds) for p in ps],
                                       add_parts))

    op = PartitionedOperator(lm.m, reduce)
    first = op.at(np.zeros(lm.m), kw["dist"], kw["bounds"])
    w0, n_units = op.last["total_weight"], op.last["n_units"]
    result = _solve(op, lm, first.achieved, w0, n_units, first, n_cells=0, passes0=passes.again, weight_col=weight_col,
                    initial_weight=initial, **kw)
    result.household_id = household_id
    return result


def linked_weights(result, households: pd.DataFrame, persons: pd.DataFrame) -> np.ndarray:
    """Calibrated weights of the households in ``households`` (their persons in ``persons``), shape (n,)."""
    x, d = linked_design(households, persons, result._margins.coder, result.household_id, result.weight_col,
                         result.initial_weight)
    return d * result.start_scale * result.distance.inverse(x @ result.lam, result.solve_bounds)


def write_linked(result, households, persons, out, persons_out, column: str, scale: float,
                 write) -> tuple[int, str]:
    """:func:`microplex.scale.write_calibrated` of a household calibration: both datasets, pair by pair, into the
    folders ``out`` and ``persons_out`` (its temporaries; it gives them the schema files and the link records).
    ``write(table, path)`` writes an Arrow table and returns the SHA-256 of the bytes it wrote; each file keeps its
    columns' Arrow types (:func:`~microplex.scale._calibrated_copy.with_weights`). Returns the number of households
    and the copy's id (:func:`link_id`)."""
    from ._calibrated_copy import with_weights

    n, entries = 0, []
    h_root, p_root = Path(os.fspath(households)), Path(os.fspath(persons))
    pairs = linked_pairs(households, persons)
    check_ids_across(pairs, result.household_id)  # two weights written for one household otherwise
    for h_path, p_path, keys in pairs:
        labels = [f"the {role} file {f!r}" for f, role in ((h_path, "households"), (p_path, "persons"))]
        tables = [pq.read_table(f) for f in (h_path, p_path)]
        hh, pp = (arrow_frame(t, label) for t, label in zip(tables, labels, strict=True))
        full_h = hh.assign(**{k: v for k, v in keys.items() if k not in hh.columns})
        full_p = pp.assign(**{k: v for k, v in keys.items() if k not in pp.columns})
        w = linked_weights(result, full_h, full_p) * scale
        w_p = w[pd.Index(hh[result.household_id]).get_indexer(pp[result.household_id])]
        rel_h = Path(h_path).relative_to(h_root) if h_root.is_dir() else Path(h_root.name)
        rel_p = Path(p_path).relative_to(p_root) if p_root.is_dir() else Path(p_root.name)
        copies = (with_weights(tables[0], hh, column, w, labels[0]),
                  with_weights(tables[1], pp, column, w_p, labels[1]))
        entries.append(("households", rel_h.as_posix(), write(copies[0], Path(os.fspath(out)) / rel_h)))
        entries.append(("persons", rel_p.as_posix(), write(copies[1], Path(os.fspath(persons_out)) / rel_p)))
        n += len(hh)
    return n, link_id(entries)
