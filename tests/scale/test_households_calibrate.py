"""Household calibration out of core: linked households and persons datasets, one weight per household,
person-level and household-level targets; the same weights as the in-memory Calibrator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from microplex import ConvergenceError, DataValidationError
from microplex.calibration import Calibrator, Targets
from microplex.scale import generate_household_dataset, rake_dataset

HID, PID, W = "db030", "rb030", "db090"


@pytest.fixture(scope="module")
def linked(hs, tmp_path_factory):
    root = tmp_path_factory.mktemp("linked")
    generate_household_dataset(hs, 600, path=root, partition_by=["db040"], households_per_file=250, seed=4,
                               progress=False)
    h = pd.read_parquet(root / "households")
    p = pd.read_parquet(root / "persons")
    for df in (h, p):
        df["db040"] = df["db040"].astype(str)
    p["old"] = (p["age"] >= 45).astype(int)
    return root, h, p


def _targets(h, p, seed=0):
    """Person counts region x sex and households by size, from household weights perturbed by a factor."""
    factor = pd.Series(np.random.default_rng(seed).uniform(0.8, 1.25, len(h)), index=h[HID])
    truth = h.set_index(HID)[W] * factor
    pw = p.assign(t=truth.reindex(p[HID]).to_numpy())
    person = Targets.from_margins({("db040", "rb090"): pw.groupby(["db040", "rb090"])["t"].sum().to_dict()})
    household = Targets.from_margins({"hsize": h.assign(t=truth.to_numpy()).groupby("hsize")["t"].sum().to_dict()},
                                     entity="household")
    return Targets(list(person) + list(household))


def _calibrator(h, p, targets, method, bounds):
    joined = p.drop(columns=[W, "db040"]).merge(h, on=HID)
    cal = Calibrator(method=method, bounds=bounds).fit(joined, targets, weight_col=W, household_col=HID)
    return cal.result_.weights.reindex(h[HID]).to_numpy()


@pytest.mark.parametrize("method, bounds", [("raking", None), ("linear", None), ("linear", (0.6, 1.7)),
                                            ("logit", (0.5, 2.0)), ("raking", (0.7, 1.5))])
def test_household_weights_match_the_in_memory_calibrator(linked, method, bounds):
    root, h, p = linked
    targets = _targets(h, p)
    res = rake_dataset(root / "households", targets, W, persons=root / "persons", household_id=HID,
                       method=method, bounds=bounds)
    ref = _calibrator(h, p, targets, method, bounds)
    persons = p.drop(columns=["db040"]).merge(h[[HID, "db040"]], on=HID)
    w = res.weights(h, persons)
    np.testing.assert_allclose(w, ref, rtol=1e-8)
    assert res.converged and res.summary["n_units"] == len(h) and res.n_passes >= res.n_iter
    # person-level targets are met by the household weights given to every member
    pw = persons.assign(w=pd.Series(w, index=h[HID]).reindex(persons[HID]).to_numpy())
    got = pw.groupby(["db040", "rb090"])["w"].sum()
    for t in list(targets)[:4]:
        assert got[(t.filters["db040"], t.filters["rb090"])] == pytest.approx(t.value, rel=1e-9)
    if bounds is not None:
        ratio = w / h[W].to_numpy()
        assert ratio.min() >= bounds[0] - 1e-9 and ratio.max() <= bounds[1] + 1e-9


def test_a_margins_dict_counts_persons_and_a_constant_initial_weight_works(linked):
    root, h, p = linked
    persons = p.drop(columns=["db040"]).merge(h[[HID, "db040"]], on=HID)
    counts = persons.groupby(["db040", "rb090"]).size() * 1.1
    margins = {("db040", "rb090"): counts.to_dict()}
    res = rake_dataset(root / "households", margins, persons=root / "persons", household_id=HID, initial_weight=2.0)
    joined = p.drop(columns=[W, "db040"]).merge(h.assign(d=2.0), on=HID)
    ref = Calibrator().fit(joined, margins, weight_col="d", household_col=HID).result_.weights.reindex(h[HID])
    np.testing.assert_allclose(res.weights(h, persons), ref.to_numpy(), rtol=1e-8)


def test_infeasible_and_non_converged_household_solves_raise(linked):
    root, h, p = linked
    targets = _targets(h, p)
    kw = dict(persons=root / "persons", household_id=HID)
    with pytest.raises(ConvergenceError, match="cannot be met within the bounds"):
        rake_dataset(root / "households", targets, W, bounds=(0.99, 1.01), **kw)
    with pytest.raises(ConvergenceError, match="did not converge"):
        rake_dataset(root / "households", targets, W, max_iter=1, **kw)
    twice = Targets([t for t in targets] + [t.__class__(t.value * 2, filters=t.filters, entity=t.entity, name="b")
                                            for t in list(targets)[:1]])
    with pytest.raises((ConvergenceError, DataValidationError)):
        rake_dataset(root / "households", twice, W, **kw)


def test_unlinked_or_bad_household_inputs_are_refused(linked, tmp_path):
    root, h, p = linked
    margins = {"rb090": {"male": 1.0, "female": 1.0}}
    with pytest.raises(DataValidationError, match="'household_id' parameter"):
        rake_dataset(root / "households", margins, persons=root / "persons")
    with pytest.raises(DataValidationError, match="not linked file by file"):
        rake_dataset(root / "households", margins, persons=root / "households" / "db040=Vienna", household_id=HID)
    # persons of households that the household file of the same path does not hold
    (tmp_path / "h").mkdir(), (tmp_path / "p").mkdir()
    h.iloc[:10].to_parquet(tmp_path / "h" / "part.parquet")
    p[p[HID].isin(h[HID].iloc[5:15])].to_parquet(tmp_path / "p" / "part.parquet")
    with pytest.raises(DataValidationError, match="not in the households"):
        rake_dataset(tmp_path / "h", margins, persons=tmp_path / "p", household_id=HID)
    with pytest.raises(DataValidationError, match="lacks the columns"):
        rake_dataset(root / "households", {"nope": {1: 1.0}}, persons=root / "persons", household_id=HID)


def test_write_calibrated_copies_both_datasets_with_the_household_weights(linked, tmp_path):
    from microplex.scale import write_calibrated

    root, h, p = linked
    targets = _targets(h, p, seed=1)
    res = rake_dataset(root / "households", targets, W, persons=root / "persons", household_id=HID)
    n = write_calibrated(res, root / "households", tmp_path / "h", column="cw", persons=root / "persons",
                         persons_out=tmp_path / "p")
    ch, cp = pd.read_parquet(tmp_path / "h"), pd.read_parquet(tmp_path / "p")
    assert n == len(ch) == len(h) and len(cp) == len(p)
    np.testing.assert_allclose(ch.set_index(HID)["cw"].reindex(h[HID]).to_numpy(),
                               _calibrator(h, p, targets, "raking", None), rtol=1e-8)
    assert (cp["cw"].to_numpy() == ch.set_index(HID)["cw"].reindex(cp[HID]).to_numpy()).all()
    got = cp.assign(db040=cp["db040"].astype(str)).groupby(["db040", "rb090"])["cw"].sum()
    for t in list(targets)[:6]:
        assert got[(t.filters["db040"], t.filters["rb090"])] == pytest.approx(t.value, rel=1e-9)
    with pytest.raises(DataValidationError, match="'persons' and 'persons_out'"):
        write_calibrated(res, root / "households", tmp_path / "h2")


def test_household_calibration_on_a_dask_cluster_gives_the_local_weights(linked):
    distributed = pytest.importorskip("dask.distributed")
    root, h, p = linked
    targets = _targets(h, p, seed=2)
    kw = dict(persons=root / "persons", household_id=HID, method="logit", bounds=(0.5, 2.0))
    local = rake_dataset(root / "households", targets, W, **kw)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dist = rake_dataset(root / "households", targets, W, client=client, **kw)
    persons = p.drop(columns=["db040"]).merge(h[[HID, "db040"]], on=HID)
    np.testing.assert_allclose(dist.weights(h, persons), local.weights(h, persons), rtol=1e-12)
    assert dist.n_passes == local.n_passes


def test_pair_tasks_do_not_carry_the_margins(linked, graph_client):
    """Each pair's task ships the margin codes and lambda by reference (one copy a pass, not one a file), and
    no task carries the targets themselves (120 MB pickled at tract scale)."""
    import pickle

    from microplex.scale._linked import LinkedMargins

    root, h, p = linked
    targets = _targets(h, p, seed=3)
    kw = dict(persons=root / "persons", household_id=HID)
    res = rake_dataset(root / "households", targets, W, client=graph_client, **kw)
    local = rake_dataset(root / "households", targets, W, **kw)
    np.testing.assert_array_equal(res.lam, local.lam)
    assert len(graph_client.task_bytes) == res.n_passes
    margins = LinkedMargins(targets)
    margins_bytes, coder_bytes = len(pickle.dumps(margins)), len(pickle.dumps(margins.coder))
    assert coder_bytes < margins_bytes / 2  # the codes without the targets and labels
    for sizes in graph_client.task_bytes:
        assert len(sizes) > 4 and max(sizes) < margins_bytes / 2  # no task carries the targets and labels


def test_a_household_or_persons_file_storing_a_column_as_another_type_is_refused(linked, tmp_path):
    """Each file was read with its own schema: a later file storing a margin column as strings fell out of
    its categories silently (as in rake_dataset without persons)."""
    root, h, p = linked
    first, second = h[HID].iloc[:100], h[HID].iloc[100:200]
    for name, hh, pp in (("one", h.astype({"hsize": str}), p), ("two", h, p.astype({"rb090": "category"}))):
        (tmp_path / name / "h").mkdir(parents=True), (tmp_path / name / "p").mkdir()
        for part, ids, hh_part, pp_part in (("a", first, h, p), ("b", second, hh, pp)):
            hh_part[hh_part[HID].isin(ids)].to_parquet(tmp_path / name / "h" / f"{part}.parquet")
            pp_part[pp_part[HID].isin(ids)].to_parquet(tmp_path / name / "p" / f"{part}.parquet")
    margins = {"hsize": h["hsize"].iloc[:200].value_counts().astype(float).to_dict()}
    with pytest.raises(DataValidationError, match=r"Households dataset file '.*b\.parquet' differs .* \['hsize'\]"):
        rake_dataset(tmp_path / "one" / "h", margins, persons=tmp_path / "one" / "p", household_id=HID)
    margins = {"rb090": p["rb090"].value_counts().astype(float).to_dict()}
    with pytest.raises(DataValidationError, match=r"Persons dataset file '.*b\.parquet' differs .* \['rb090'\]"):
        rake_dataset(tmp_path / "two" / "h", margins, persons=tmp_path / "two" / "p", household_id=HID)


def test_write_calibrated_refuses_overlapping_or_source_outputs(linked, tmp_path):
    from microplex.scale import write_calibrated

    root, h, p = linked
    res = rake_dataset(root / "households", _targets(h, p, seed=1), W, persons=root / "persons", household_id=HID)
    kw = dict(persons=root / "persons")
    with pytest.raises(DataValidationError, match=r"'out' .* and 'persons_out' .* folders overlap"):
        write_calibrated(res, root / "households", tmp_path / "c", persons_out=tmp_path / "c", **kw)
    with pytest.raises(DataValidationError, match=r"'out' .* and 'persons_out' .* folders overlap"):
        write_calibrated(res, root / "households", tmp_path / "c", persons_out=tmp_path / "c" / "p", **kw)
    with pytest.raises(DataValidationError, match=r"'persons_out' output .* would overwrite the input"):
        write_calibrated(res, root / "households", tmp_path / "h", persons_out=root / "persons" / "copy", **kw)
    assert not (tmp_path / "c").exists() and not (root / "persons" / "copy").exists()


def test_the_household_id_as_weight_column_is_refused(linked):
    """Before: the ids were taken as initial weights (report: initial totals that were sums of ids)."""
    root, h, p = linked
    with pytest.raises(DataValidationError, match=r"'weight_col' and 'household_id' parameters are both 'db030'"):
        rake_dataset(root / "households", {"rb090": {"male": 400.0, "female": 450.0}}, HID,
                     persons=root / "persons", household_id=HID)


def test_a_margin_on_the_household_id_counts_its_persons(linked):
    """Before: the persons were read with the id column twice (raw "Index data must be 1-dimensional")."""
    root, h, p = linked
    first = h[HID].iloc[0]
    n_persons = int((p[HID] == first).sum())
    margins = {HID: {first: 2.0 * n_persons}}
    res = rake_dataset(root / "households", margins, W, persons=root / "persons", household_id=HID)
    persons = p.drop(columns=["db040"]).merge(h[[HID, "db040"]], on=HID)
    w = pd.Series(res.weights(h, persons), index=h[HID])
    assert w[first] == pytest.approx(2.0, rel=1e-9)
