"""A DP condition model from noisy two-way tables on a tree (MST-style), in place of DP-SGD.

A fully synthetic DP Synthesizer draws its conditions from a condition model. DP-SGD learns little
of how the conditions go together on a small data set: on workinghours (2,700 records, ten
conditions) the condition model's DP-SGD runs at noise multiplier 15 and draws owned ~ mortgage at
correlation 0.04 against the data's 0.72 (session 37, ``benchmarks/results/dp.md``). Marginal-based
DP synthesizers (McKenna et al.'s MST, the winner of NIST's 2018 challenge) measure a few
low-order tables with the Gaussian mechanism instead, each cell a count of hundreds of records
against noise of tens, and keep what they measured.

With more than one condition, the condition model here (``Synthesizer._condition_tree``, set by
:func:`._conditions.fit_condition_model`) keeps its DP statistics release (the public encoders and
quantile maps of :func:`._dp.fit_public_encoders`) and spends its ``"training"`` share on a tree
instead of DP-SGD:

1. **Codes.** Each condition becomes one discrete column: a categorical condition its category;
   a numeric one its point-mass state, or, in a continuous segment, its bin
   (:func:`segment_edges`): bins of equal standard normal probability of its encoded score (the
   encoders' quantile maps send the noisy histogram to standard normal scores, so the bins split
   its mass evenly), an integer's moved to half-integers so that no integer is cut between two;
   :func:`tree_bins` of them, as many as the tables' noise allows. A discretization from the
   released statistics: no further budget.
2. **Selection** (a third of the share). The tree's edges are chosen as MST chooses them: Kruskal's
   algorithm, each edge drawn by the exponential mechanism among the pairs that join two
   components, scored by how far the pair's weighted table is from independence
   (:func:`pair_score`, sensitivity :data:`SCORE_SENSITIVITY`).
3. **Measurement** (two thirds). The tables of the chosen edges, released at once by the Gaussian
   mechanism (L2 sensitivity ``sqrt(edges)``), each then projected onto the non-negative tables of
   its noisy total (:func:`project_table`).
4. **Sampling.** The root's codes from its table's margin, every other column's given its parent's
   from the parent-child table (a tree-structured graphical model; MST's estimation would also
   make the noisy tables agree on the columns they share, which this does not). A numeric condition's score is then drawn uniformly in probability within its bin and
   decoded by its encoder, so the released marginal within a bin is the statistics' histogram's.

The exponential mechanism of parameter ``eps`` (``exp(eps * score / (2 * sensitivity))``) is
``eps^2 / 8``-zCDP (Cesar and Rogers 2021, bounded range), whose RDP curve ``alpha * eps^2 / 8`` is
that of the Gaussian mechanism of noise multiplier ``2 / eps``: :func:`tree_mechanisms` records it
so, and the accountant (:mod:`._accountant`) composes it with the rest unchanged.

References
----------
McKenna, Miklau, Sheldon. Winning the NIST Contest: A scalable and general approach to
differentially private synthetic data (Journal of Privacy and Confidentiality, 2021).
Cesar, Rogers. Bounding, Concentrating, and Truncating: Unifying Privacy Loss Composition for
Data Analytics (ALT 2021).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from scipy.special import ndtr, ndtri

from .._errors import DataValidationError
from .transforms import CategoricalEncoder, ContinuousEncoder

if TYPE_CHECKING:
    from ._segment import _Segment
    from .synthesizer import Synthesizer

__all__ = ["PARTS", "SELECTION_SHARE", "TREE_BINS", "ConditionTree", "applies", "draw_conditions", "fit_tree",
           "project_table", "tree_bins", "tree_mechanisms"]

#: The selection's share of the tree's zCDP budget (MST: a third, the other thirds on one-way
#: marginals, which the statistics release gives here, and on the tables).
SELECTION_SHARE = 1.0 / 3.0
#: Fewest and most bins of a numeric condition's continuous segment.
TREE_BINS = (2, 32)
#: Metadata key and tensor prefix of a condition tree in a model file.
KEY = "condition_tree"
#: The parts of ``privacy_["mechanisms"]`` of a tree.
PARTS = ("tree_selection", "tree_tables")


def applies(conditions: int) -> bool:
    """Whether a DP condition model of ``conditions`` columns is a tree (two or more; one column
    has no dependence to model, and keeps DP-SGD's flow)."""
    return conditions >= 2


def tree_bins(n: int, noise_sd: float) -> int:
    """Bins of each continuous segment of a numeric condition: the most (within :data:`TREE_BINS`)
    at which a table of two such conditions holds about ``2 * noise_sd`` records a cell on ``n``
    records (public), ``floor(sqrt(n / (2 noise_sd)))``.

    Examples
    --------
    >>> tree_bins(1_284, 15.0), tree_bins(12_794, 5.0), tree_bins(100, 50.0)
    (6, 32, 2)
    """
    lo, hi = TREE_BINS
    return int(np.clip(math.floor(math.sqrt(n / (2.0 * max(noise_sd, 1e-12)))), lo, hi))


def tree_mechanisms(part: dict[str, Any], edges: int) -> list[dict[str, Any]]:
    """The selection's and the tables' entries of ``privacy_["mechanisms"]`` from the tree's part
    ``part`` (a one-shot Gaussian of noise multiplier ``sigma``, planned by
    :func:`._dp_plan._plan_one`: zCDP ``rho = 1 / (2 sigma^2)``): the selection, ``edges`` draws
    of the exponential mechanism of parameter ``sqrt(8 rho_s / edges)`` (recorded as Gaussian steps
    of noise multiplier ``2 / eps``, the same RDP), and the tables, one Gaussian release of
    multiplier ``1 / sqrt(2 rho_t)`` and L2 sensitivity ``sqrt(edges)``, with ``rho_s`` and
    ``rho_t`` the :data:`SELECTION_SHARE` and the rest of ``rho``. Their RDP adds up to the
    part's."""
    from ._dp_plan import mechanism  # here: _dp_plan imports _dp, which imports this module (via _conditions)

    rho = 1.0 / (2.0 * float(part["noise_multiplier"]) ** 2)
    eps = math.sqrt(8.0 * SELECTION_SHARE * rho / edges)
    sigma_t = 1.0 / math.sqrt(2.0 * (1.0 - SELECTION_SHARE) * rho)
    delta = float(part["delta"])  # divided as the part's rho
    select = mechanism(PARTS[0], 2.0 / eps, 1.0, edges, 1.0, delta * SELECTION_SHARE)
    tables = mechanism(PARTS[1], sigma_t, 1.0, 1, math.sqrt(edges), delta * (1.0 - SELECTION_SHARE))
    return [dict(select, mechanism="exponential"), tables]


def segment_edges(enc: ContinuousEncoder, bins: int) -> list[np.ndarray]:
    """The inner bin edges, in normal scores (ascending), of each continuous segment of ``enc``.

    A continuous segment's ``bins`` bins have equal standard normal probability: its quantile map
    sends the statistics' noisy histogram to normal scores, so they split that histogram's mass
    evenly. An integer segment's edges are those moved to the nearest half-integer below (then
    deduplicated): a bin holds whole integers, one or several, and an integer that holds much of
    the mass (12 years of schooling) gets a bin of its own instead of being cut between two."""
    out = []
    for seg in enc.segments:
        z = ndtri(np.arange(1, bins) / bins)
        if enc.integer:
            half = np.unique(np.floor(seg.decode(z)) + 0.5)
            half = half[seg.contains(seg.sign * half)]
            z = np.unique(seg.encode(half)) if len(half) else np.zeros(0)
        out.append(np.asarray(z, dtype=float))
    return out


def code_sizes(synth: Synthesizer, bins: int) -> list[int]:
    """The number of codes of each condition (see :func:`column_codes`)."""
    return [enc.n_states if isinstance(enc, CategoricalEncoder)
            else len(enc.point_masses) + sum(len(e) + 1 for e in segment_edges(enc, bins))
            for enc in (synth.encoders_[n] for n in synth.target_vars)]


def column_codes(synth: Synthesizer, data: pd.DataFrame, bins: int) -> np.ndarray:
    """Each record's code of each condition (N, columns): its category, its point-mass state, or
    the first code of its continuous segment (after the point masses and the segments before)
    plus its bin in the segment (:func:`segment_edges`)."""
    cols = []
    for name in synth.target_vars:
        enc = synth.encoders_[name]
        if isinstance(enc, CategoricalEncoder):
            cols.append(enc.states(data[name]))
            continue
        state, u = enc.encode(data[name].to_numpy(float))  # an integer's own score: inside its bin
        if (state < 0).any():  # public encoders cover the clipped values; a defect, not the data's
            raise DataValidationError(f"Condition {name!r}: {int((state < 0).sum())} values fall outside every "
                                      "state of its public encoder.")
        code = state.copy()
        first = len(enc.point_masses)
        for i, edges in enumerate(segment_edges(enc, bins)):
            on = state == len(enc.point_masses) + i
            code[on] = first + np.searchsorted(edges, u[on], side="right")
            first += len(edges) + 1
        cols.append(code)
    return np.stack(cols, axis=1).astype(np.int64)


def decode_codes(enc: ContinuousEncoder, codes: np.ndarray, bins: int, rng: np.random.Generator,
                 bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Values of a numeric condition from its codes: a point mass as it is; in a segment's bin a
    score uniform in standard normal probability between the bin's edges, decoded (an integer
    rounds to one of the bin's integers).

    ``bounds``: a DP model's public bounds ``(lo, hi)`` of a float condition (:func:`._generation._public_range`).
    The score is then drawn within the part of its bin that decodes inside them (:func:`_inside_probability`):
    the segment's distribution truncated to the bounds, exactly. The encoder's logit runs between the bounds
    widened by 1e-4 of their width, and the outer bins' normal tails reach into that margin (with
    ``standardize="moments"``, 0.23-0.35% of the draws of a value log-uniform in (1, 999), bounds (0, 1000));
    clipped to the bound, they made a point mass there that the data never had. A bin wholly outside the bounds
    (a noisy count of no record) draws in the nearest bin's part inside them."""
    k = len(enc.point_masses)
    state, u = np.where(codes < k, codes, 0), np.zeros(len(codes))
    first = k
    p = rng.random(len(codes))
    for i, edges in enumerate(segment_edges(enc, bins)):
        on = (codes >= first) & (codes <= first + len(edges))
        b = codes[on] - first
        cut = np.r_[0.0, ndtr(edges), 1.0]
        if bounds is not None and not enc.integer:
            cut = np.clip(cut, *_inside_probability(enc, enc.segments[i], bounds))
            filled = np.flatnonzero(np.diff(cut) > 0)
            b = np.clip(b, filled[0], filled[-1])
        lo, hi = cut[b], cut[b + 1]
        u[on] = ndtri(np.clip(lo + p[on] * (hi - lo), 1e-12, 1 - 1e-12))
        state[on] = k + i
        first += len(edges) + 1
    return enc.decode(u, state)


def _inside_probability(enc: ContinuousEncoder, seg: _Segment, bounds: tuple[float, float]
                       ) -> tuple[float, float]:
    """The standard normal probabilities ``(p_lo, p_hi)`` of the scores of float segment ``seg`` of ``enc`` that
    decode inside ``bounds`` (a side at or beyond the segment's own bound: 0 or 1).

    Raises
    ------
    DataValidationError
        When no score of the segment decodes inside the bounds (an edited model file).
    """
    ya, yb = sorted((seg.sign * float(bounds[0]), seg.sign * float(bounds[1])))
    below = seg.lower is not None and ya <= seg.lower
    above = seg.upper is not None and yb >= seg.upper
    za = -np.inf if below else float(seg.encode(np.array([seg.sign * ya]))[0])
    zb = np.inf if above else float(seg.encode(np.array([seg.sign * yb]))[0])
    p_lo, p_hi = float(ndtr(za)), float(ndtr(zb))
    if not p_lo < p_hi:  # NaN too
        raise DataValidationError(f"Condition {enc.name!r}: no value of its continuous segment lies inside its "
                                  f"public bounds {tuple(bounds)} (an edited model file?).")
    return p_lo, p_hi


def _table(codes: np.ndarray, w: np.ndarray, a: int, b: int, sizes: list[int]) -> np.ndarray:
    t = np.zeros((sizes[a], sizes[b]))
    np.add.at(t, (codes[:, a], codes[:, b]), w)
    return t


#: Sensitivity of a pair's selection score (:func:`pair_score`) to adding or removing one record of
#: weight at most 1.
SCORE_SENSITIVITY = 4.0


def pair_score(table: np.ndarray) -> float:
    """How far a pair's weighted table ``T`` is from independence: ``|T - r c' / N|_1`` with ``r``,
    ``c`` its row and column sums and ``N`` its total.

    Adding a record of weight ``w <= 1`` in cell (i, j) moves ``T`` by ``w`` and the independence
    table ``r c' / N`` by at most ``3 w`` in L1 (``r c' (1 / (N + w) - 1 / N)`` by ``N w / (N + w)``,
    ``w (e_i c' + r e_j' + w e_i e_j') / (N + w)`` by at most ``2 w``), so the score moves by at most
    :data:`SCORE_SENSITIVITY`. MST scores against the model of its released one-way marginals
    instead (sensitivity 1); here the one-way shares of a numeric condition's bins are not released
    (its bins hold equal shares of the noisy histogram's mass, not of the data's: an integer's
    values fall unevenly), and a score against them would rank the pairs by those errors."""
    total = table.sum()
    if total <= 0:
        return 0.0
    return float(np.abs(table - np.outer(table.sum(axis=1), table.sum(axis=0)) / total).sum())


def pair_tables(codes: np.ndarray, sizes: list[int], w: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """The weighted table of every pair of columns ``(a, b)``, ``a < b``."""
    d = len(sizes)
    return {(a, b): _table(codes, w, a, b, sizes) for a in range(d) for b in range(a + 1, d)}


def select_edges(tables: dict[tuple[int, int], np.ndarray], d: int, eps: float,
                 rng: np.random.Generator) -> list[tuple[int, int]]:
    """A spanning tree's edges over ``d`` columns drawn as MST draws them: Kruskal's algorithm,
    each edge by the exponential mechanism (Gumbel noise on ``eps * score / (2 *
    SCORE_SENSITIVITY)``) among the pairs that join two components, scored by :func:`pair_score`
    of the pair's table in ``tables`` (:func:`pair_tables`)."""
    pairs = [(a, b) for a in range(d) for b in range(a + 1, d)]
    score = {e: pair_score(tables[e]) for e in pairs}
    comp = list(range(d))
    edges: list[tuple[int, int]] = []
    while len(edges) < d - 1:
        cand = [e for e in pairs if comp[e[0]] != comp[e[1]]]
        noisy = np.array([eps * score[e] / (2.0 * SCORE_SENSITIVITY) for e in cand]) + rng.gumbel(size=len(cand))
        a, b = cand[int(np.argmax(noisy))]
        edges.append((a, b))
        old, new = comp[b], comp[a]
        comp = [new if c == old else c for c in comp]
    return edges


class ConditionTree:
    """A tree-structured model of the conditions' codes: ``order`` (columns, the root first, each
    after its parent), ``parent`` (per column, -1 for the root), ``root`` (the root's code
    probabilities) and ``tables[j]`` (P(code of j | code of its parent), rows sum to 1), for
    columns of ``sizes`` codes; a numeric condition's continuous segments have ``bins`` bins."""

    def __init__(self, sizes: list[int], bins: int, order: list[int], parent: list[int], root: np.ndarray,
                 tables: dict[int, np.ndarray]) -> None:
        self.sizes, self.bins, self.order, self.parent = sizes, bins, order, parent
        self.root, self.tables = root, tables

    @classmethod
    def from_tables(cls, sizes: list[int], bins: int, edges: list[tuple[int, int]],
                    noisy: dict[tuple[int, int], np.ndarray]) -> ConditionTree:
        """The tree rooted at column 0 from the noisy tables of ``edges`` (each projected by
        :func:`project_table`; a parent code whose row is empty draws the child's margin in that
        table)."""
        d = len(sizes)
        adj: dict[int, list[tuple[int, np.ndarray]]] = {j: [] for j in range(d)}
        for (a, b) in edges:
            t = project_table(noisy[(a, b)])
            adj[a].append((b, t))
            adj[b].append((a, t.T))
        order, parent, tables = [0], [-1] * d, {}
        for j in order:  # breadth first
            for child, t in adj[j]:
                if child == order[0] or parent[child] != -1:
                    continue
                parent[child] = j
                order.append(child)
                tables[child] = _conditional(t)
        first = adj[0][0][1].sum(axis=1) if adj[0] else np.ones(sizes[0])
        root = first / first.sum() if first.sum() > 0 else np.full(sizes[0], 1.0 / sizes[0])
        return cls(sizes, bins, order, parent, root, tables)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` rows of codes (n, columns)."""
        out = np.zeros((n, len(self.sizes)), dtype=np.int64)
        out[:, self.order[0]] = _draw(np.broadcast_to(self.root, (n, len(self.root))), rng)
        for j in self.order[1:]:
            out[:, j] = _draw(self.tables[j][out[:, self.parent[j]]], rng)
        return out

    # -- serialization -------------------------------------------------------------------------------
    def to_parts(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        meta = {"sizes": list(self.sizes), "bins": int(self.bins), "order": list(self.order),
                "parent": list(self.parent)}
        tensors = {"root": torch.as_tensor(self.root, dtype=torch.float64)}
        tensors.update({f"table.{j}": torch.as_tensor(t, dtype=torch.float64) for j, t in self.tables.items()})
        return meta, tensors

    @classmethod
    def from_parts(cls, meta: Any, tensors: dict[str, torch.Tensor], synth: Synthesizer, label: str
                   ) -> ConditionTree:
        """The tree of condition model ``synth`` (encoders restored) from untrusted parts: a tree
        over its columns whose code counts are those its encoders give at the file's ``bins``, and
        probability tables of those shapes. Raises one DataValidationError naming ``label`` and the
        field."""
        def bad(what: str) -> DataValidationError:
            return DataValidationError(f"{label} is not a valid Synthesizer model file: field {KEY!r}: {what}.")

        if not isinstance(meta, dict) or sorted(meta) != ["bins", "order", "parent", "sizes"]:
            raise bad("expected a mapping of 'sizes', 'bins', 'order' and 'parent'")
        sizes, bins, order, parent = meta["sizes"], meta["bins"], meta["order"], meta["parent"]
        ints = (lambda v: isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v))
        if not (ints(sizes) and ints(order) and ints(parent) and isinstance(bins, int) and not isinstance(bins, bool)):
            raise bad("'sizes', 'order' and 'parent' must be lists of integers and 'bins' an integer")
        d = len(sizes)
        lo, hi = TREE_BINS
        if not (lo <= bins <= hi) or d != len(synth.target_vars) or sorted(order) != list(range(d)) or len(parent) != d:
            raise bad(f"{d} columns (expected {len(synth.target_vars)}), bins {bins} (expected {lo} to {hi}) and an "
                      "order of every column once")
        expected = code_sizes(synth, bins)
        if sizes != expected:
            raise bad(f"code counts {sizes}, expected {expected} from the condition model's encoders")
        seen = {order[0]}
        if parent[order[0]] != -1:
            raise bad("the first column of 'order' is the root (parent -1)")
        for j in order[1:]:
            if parent[j] not in seen:
                raise bad(f"column {j}'s parent {parent[j]} does not come before it in 'order'")
            seen.add(j)
        want = {"root": (sizes[order[0]],), **{f"table.{j}": (sizes[parent[j]], sizes[j]) for j in order[1:]}}
        got = {k: tuple(v.shape) for k, v in tensors.items()}
        if got != want:
            raise bad(f"tensors {sorted(got.items())}, expected {sorted(want.items())}")
        arrays = {k: v.detach().to(torch.float64).numpy().copy() for k, v in tensors.items()}
        for k, a in arrays.items():
            rows = a.reshape(-1, a.shape[-1])
            if not (np.isfinite(a).all() and (a >= 0).all() and np.allclose(rows.sum(axis=1), 1.0, atol=1e-9)):
                raise bad(f"tensor {k!r} must hold probabilities (finite, non-negative, each row summing to 1)")
        return cls(sizes, bins, order, parent, arrays["root"], {j: arrays[f"table.{j}"] for j in order[1:]})


def project_table(noisy: np.ndarray) -> np.ndarray:
    """The non-negative table nearest (least squares) to ``noisy`` with the same total: ``max(noisy
    - tau, 0)``, ``tau`` such that the cells sum to the noisy total (the Euclidean projection onto
    the scaled simplex; Duchi et al. 2008). Clipping at 0 alone keeps the positive noise of every
    empty cell (0.4 noise standard deviations each on average) and inflates the total; the
    projection takes that excess back from all cells evenly. A table whose total is not positive
    gives zeros."""
    y = noisy.ravel()
    total = float(y.sum())
    if total <= 0:
        return np.zeros_like(noisy)
    v = np.sort(y)[::-1]
    cum = np.cumsum(v) - total
    k = np.nonzero(v - cum / np.arange(1, len(v) + 1) > 0)[0][-1]
    tau = cum[k] / (k + 1)
    return np.maximum(noisy - tau, 0.0)


def _conditional(t: np.ndarray) -> np.ndarray:
    """Rows of ``t`` normalized to sum to 1; an empty row gets the table's column margin (or uniform)."""
    margin = t.sum(axis=0)
    margin = margin / margin.sum() if margin.sum() > 0 else np.full(t.shape[1], 1.0 / t.shape[1])
    rows = t.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(rows > 0, t / np.where(rows > 0, rows, 1.0), margin[None, :])
    return out / out.sum(axis=1, keepdims=True)


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One code per row of probabilities ``p`` (n, k) by the inverse CDF."""
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(p))[:, None] * cdf[:, -1:]
    return np.minimum((u > cdf).sum(axis=1), p.shape[1] - 1)


def fit_tree(synth: Synthesizer, data: pd.DataFrame, w: np.ndarray, mechanisms: list[dict[str, Any]],
             rng: np.random.Generator) -> ConditionTree:
    """The condition tree of ``synth`` (a condition model: its targets are the conditions; public
    encoders fitted) on ``data`` with record weights ``w`` (at most 1), spending ``mechanisms``
    (:func:`tree_mechanisms`: the selection's exponential mechanism recorded as the Gaussian
    multiplier ``2 / eps``, then the tables)."""
    select, measure = mechanisms
    noise_sd = measure["noise_multiplier"] * measure["sensitivity"]
    bins = tree_bins(len(data), noise_sd)
    sizes = code_sizes(synth, bins)
    codes = column_codes(synth, data, bins)
    tables = pair_tables(codes, sizes, w)  # read once: scored for the selection, then released
    edges = select_edges(tables, len(sizes), 2.0 / float(select["noise_multiplier"]), rng)
    noisy = {e: tables[e] + rng.normal(0.0, noise_sd, tables[e].shape) for e in edges}
    return ConditionTree.from_tables(sizes, bins, edges, noisy)


#: Rows drawn per block by :func:`draw_conditions` (memory bounded whatever ``n``; the same
#: draws whatever the caller's ``chunk_size``).
BLOCK_ROWS = 65_536


def draw_conditions(synth: Synthesizer, n: int, seed: int | None) -> pd.DataFrame:
    """``n`` rows drawn from the condition model ``synth``'s tree (``synth.condition_tree_``), in
    blocks of :data:`BLOCK_ROWS` from one generator seeded by ``seed``: codes, then each numeric
    condition's score uniform in probability within its bin, decoded."""
    rng = np.random.default_rng(seed)
    n = int(n)
    blocks = [_draw_block(synth, min(BLOCK_ROWS, n - start), rng) for start in range(0, max(n, 1), BLOCK_ROWS)]
    return blocks[0] if len(blocks) == 1 else pd.concat(blocks, ignore_index=True)


def _draw_block(synth: Synthesizer, n: int, rng: np.random.Generator) -> pd.DataFrame:
    from ._generation import _cast, _held_to_public_bounds, _public_range

    tree: ConditionTree = synth.condition_tree_
    codes = tree.sample(n, rng)
    out = {}
    for j, name in enumerate(synth.target_vars):
        enc = synth.encoders_[name]
        c = codes[:, j]
        values = enc.decode(c) if isinstance(enc, CategoricalEncoder) else _held_to_public_bounds(
            synth, name, decode_codes(enc, c, tree.bins, rng, _public_range(synth, name)))
        out[name] = _cast(values, synth.dtypes_[name], synth.kinds_[name], enc)
    return pd.DataFrame(out, index=pd.RangeIndex(n))
