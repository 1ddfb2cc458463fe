"""A code written as an integer kept with its number (``county == '015' & county in {15}``): through
``Targets.to_frame`` / ``from_frame`` (and the targets files they make), and in ``rake_dataset`` over files that hold
``"15"`` and ``"015"`` apart."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets
from microplex.calibration.filters import NumberedCode, format_filter, parse_filter
from microplex.scale import rake_dataset, rake_frame


def _marked(filters: dict) -> dict:
    """The filter with each value paired with whether it is a NumberedCode (equality alone cannot tell)."""
    def mark(v):
        return (v, isinstance(v, NumberedCode))

    return {c: frozenset(map(mark, v)) if isinstance(v, frozenset) else v if isinstance(v, pd.Interval) else mark(v)
            for c, v in filters.items()}


_FILTERS = ["county == '015' & county in {15}", "county in {15} & county == '015'",
            "county == '015' & county in [10, 20]", "county in {'015', '013', 'x'} & county in {13, 15, 'x'}",
            "county in {'015', 15} & county in {15}", "county in {'015', '013'} & county in {'015', 13}",
            "county in {'15', '015'} & county in {'15', 15}", "month == '01' & month <= 6 & sex == 'f'",
            "county == '+15' & county == 15", "county == '015'", "county in {'015', '013'}"]


@pytest.mark.parametrize("flt", _FILTERS)
def test_to_frame_and_from_frame_keep_a_code_kept_with_its_number(flt, tmp_path: Path):
    """Before: ``to_frame`` wrote ``county == '015' & county in {15}`` as ``county == '015'``, read back as the plain
    code (not refused on a column holding "15" and "015"; the total went on the "015" records)."""
    t = Targets.from_frame(pd.DataFrame({"value": [4.0], "filter": [flt]}))
    frame = t.to_frame()
    t.to_frame().to_csv(tmp_path / "t.csv", index=False)
    t.to_frame().to_parquet(tmp_path / "t.parquet")
    for back in (Targets.from_frame(frame), Targets.from_csv(tmp_path / "t.csv"),
                 Targets.from_parquet(tmp_path / "t.parquet")):
        assert _marked(back[0].filters) == _marked(t[0].filters)
        assert back[0].name == t[0].name
    assert _marked(parse_filter(format_filter(t[0].filters, exact=True))) == _marked(t[0].filters)


def test_a_round_tripped_code_kept_with_its_number_is_refused_on_a_column_holding_both_forms():
    """Before: the original target was refused, the one read back from ``to_frame`` put the total 4 on the two
    "015" records (weights 2, 2) without a word."""
    rec = pd.DataFrame({"county": ["15"] * 3 + ["015"] * 2 + ["13"] * 5, "w": 1.0})
    t = Targets.from_frame(pd.DataFrame({"value": [4.0], "filter": ["county == '015' & county in {15}"]}))
    messages = []
    for targets in (t, Targets.from_frame(t.to_frame())):
        with pytest.raises(DataValidationError, match=r"column 'county'.*holds both '015' and '15'") as info:
            Calibrator(method="linear").fit(rec, targets, weight_col="w")
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    plain = Targets.from_frame(Targets.from_frame(pd.DataFrame({"value": [4.0], "filter": ["county == '015'"]}))
                               .to_frame())  # the code alone stays the code alone: the "015" records
    w = np.asarray(Calibrator(method="linear").fit(rec, plain, weight_col="w").weights, float)
    assert abs(w[3:5].sum() - 4.0) < 1e-9 and np.allclose(np.delete(w, [3, 4]), 1.0)


# -- rake_dataset: "15" in one file, "015" in another ------------------------------------------------------------
def _files(folder: Path, *frames: pd.DataFrame) -> Path:
    folder.mkdir()
    for k, f in enumerate(frames):
        f.to_parquet(folder / f"part-{k}.parquet")
    return folder


def _hive(folder: Path, whole: pd.DataFrame) -> Path:
    for value, group in whole.groupby("county"):
        (folder / f"county={value}").mkdir(parents=True)
        group.drop(columns="county").to_parquet(folder / f"county={value}" / "part-0.parquet")
    return folder


def _frame_message(frame: pd.DataFrame, t: Targets) -> str:
    with pytest.raises(DataValidationError) as info:
        rake_frame(frame, t, weight_col="w")
    return str(info.value)


def _refused_as_in_memory(folder: Path, a: pd.DataFrame, b: pd.DataFrame, t, max_cells: int) -> str:
    """``rake_dataset`` over the files ``a`` and ``b`` refuses ``t`` with ``rake_frame``'s message on the two
    concatenated; returns the message."""
    expected = _frame_message(pd.concat([a, b], ignore_index=True), t)
    with pytest.raises(DataValidationError) as info:
        rake_dataset(_files(folder, a, b), t, weight_col="w", max_cells=max_cells)
    assert str(info.value) == expected
    return expected


_A = pd.DataFrame({"county": ["15"] * 3 + ["13"] * 5, "sex": [1, 2] * 4, "w": 1.0})
_B = pd.DataFrame({"county": ["015"] * 2 + ["13"] * 2, "sex": [1, 2] * 2, "w": 1.0})


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
@pytest.mark.parametrize("margins", [{"county": {"015": 4}}, {("county", "sex"): {("015", 1): 4}}])
@pytest.mark.parametrize("layout", ["files", "hive"])
def test_rake_dataset_refuses_a_numbered_code_on_values_spread_over_files(max_cells, margins, layout, tmp_path):
    """The file without "15" alone accepted '015' under ``county in {13, 15}`` and the one without "015" ignored
    it. Before: the total 4 went on the two "015" records (achieved 4.0), where ``rake_frame`` on the same records
    refuses; now the same message."""
    t = Targets.from_margins(margins, filters="county in {13, 15}")
    whole = pd.concat([_A, _B], ignore_index=True)
    path = _files(tmp_path / "d", _A, _B) if layout == "files" else _hive(tmp_path / "d", whole)
    expected = _frame_message(whole, t)
    assert "holds both '015' and '15'" in expected
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataValidationError) as info:
            rake_dataset(path, t, weight_col="w", max_cells=max_cells)
    assert str(info.value) == expected


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_rake_dataset_refuses_a_numbered_code_whose_number_finds_several_padded_codes_over_files(max_cells, tmp_path):
    """"015" in one file, "0015" in another: the number 15 finds no one value. Before: accepted (achieved 4)."""
    a = pd.DataFrame({"county": ["015"] * 3 + ["013"] * 5, "w": 1.0})
    b = pd.DataFrame({"county": ["0015"] * 2 + ["013"] * 2, "w": 1.0})
    t = Targets.from_margins({"county": {"015": 4}}, filters="county in {13, 15}")
    expected = _refused_as_in_memory(tmp_path / "d", a, b, t, max_cells)
    assert "several codes of 15" in expected


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
@pytest.mark.parametrize("county", [["015", "013"], [15, 13]])
def test_rake_dataset_meets_a_numbered_code_where_its_number_finds_it_without_another_pass(max_cells, county, tmp_path):
    """Codes all written with zeros (or a numeric column): the code and its number meet on the same records, as in
    memory; the check reads the values in the first pass, no pass of its own (as many as the plain code's solve)."""
    a = pd.DataFrame({"county": [county[0]] * 3 + [county[1]] * 5, "w": 1.0})
    b = pd.DataFrame({"county": [county[0]] * 2 + [county[1]] * 2, "w": 1.0})
    path = _files(tmp_path / "d", a, b)
    t = Targets.from_margins({"county": {"015": 10}}, filters="county in {13, 15}")
    assert isinstance(t[0].filters["county"], NumberedCode)
    res = rake_dataset(path, t, weight_col="w", max_cells=max_cells)
    plain = rake_dataset(path, {"county": {"015": 10}}, weight_col="w", max_cells=max_cells)
    assert abs(res.report["achieved"].iloc[0] - 10.0) < 1e-9 and res.n_passes == plain.n_passes
    w = np.asarray(res.weights(b), float)
    assert np.allclose(w, [2.0, 2.0, 1.0, 1.0])


@pytest.mark.parametrize("entity", ["person", "household"])
def test_household_rake_dataset_refuses_a_numbered_code_on_values_spread_over_file_pairs(entity, tmp_path):
    """``rake_dataset(..., persons=)`` coded each pair of files alone. Before: accepted (achieved 6.0)."""
    h1 = pd.DataFrame({"hid": [1, 2, 3, 4], "county": ["15", "15", "13", "13"], "w": 1.0})
    h2 = pd.DataFrame({"hid": [5, 6, 7, 8], "county": ["015", "015", "13", "13"], "w": 1.0})
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    for k, h in enumerate((h1, h2)):
        h.to_parquet(tmp_path / "h" / f"part-{k}.parquet")
        h[["hid", "county"]].loc[h.index.repeat(2)].to_parquet(tmp_path / "p" / f"part-{k}.parquet")
    t = Targets.from_margins({"county": {"015": 6}}, filters="county in {13, 15}", entity=entity)
    expected = _frame_message(pd.concat([h1, h2], ignore_index=True),
                              Targets.from_margins({"county": {"015": 6}}, filters="county in {13, 15}"))
    with pytest.raises(DataValidationError) as info:
        rake_dataset(tmp_path / "h", t, weight_col="w", persons=tmp_path / "p", household_id="hid")
    assert str(info.value) == expected


# -- rake_dataset: a plain number asked of a text column holding "15" in one file and "015" in another -------------
def _same_as_frame(res, ref, parts: list[pd.DataFrame]) -> None:
    """``res`` (rake_dataset) has ``ref``'s (rake_frame on the concatenated ``parts``) initial and achieved totals,
    and the same weight for every record, each file's records weighted alone or in the whole frame."""
    assert np.allclose(res.report["initial"], ref.report["initial"])
    assert np.allclose(res.report["achieved"], ref.report["achieved"], atol=1e-8)
    whole = pd.concat(parts, ignore_index=True)
    w = np.asarray(ref.weights(whole), float)
    assert np.allclose(res.weights(whole), w, atol=1e-8)
    at = 0
    for part in parts:
        assert np.allclose(res.weights(part), w[at:at + len(part)], atol=1e-8)
        assert np.allclose(ref.weights(part), w[at:at + len(part)], atol=1e-8)
        at += len(part)


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
@pytest.mark.parametrize("margins", [{"county": {15: 6, "13": 9}},
                                     {("county", "sex"): {(15, 1): 3, (15, 2): 3, ("13", 1): 4, ("13", 2): 5}},
                                     {"county": {15: 6, "015": 4, "13": 9}}])
@pytest.mark.parametrize("layout", ["files", "hive"])
def test_rake_dataset_finds_a_number_on_the_values_of_every_file(max_cells, margins, layout, tmp_path):
    """15 asked of a county column holding "15" (file A, 3 records) and "015" (file B, 2 records) finds "15", as
    ``rake_frame`` on the concatenated records: initial 3. Before: each file found it alone, "15" in A and "015" in
    B, initial 5 (the total 6 spread over 5 records, weights 1.2 where rake_frame gives 2.0 and 1.0); with '015'
    listed too, file B refused "lists 15 and '015', which name the same records", which rake_frame accepts. The
    rake_frame result's weights of file B alone were those of B's own lookup too (2.0 on the "015" records)."""
    whole = pd.concat([_A, _B], ignore_index=True)
    path = _files(tmp_path / "d", _A, _B) if layout == "files" else _hive(tmp_path / "d", whole)
    ref = rake_frame(whole, margins, weight_col="w")
    fifteen = [(c[0] if isinstance(c, tuple) else c) == 15 for c in ref.report["category"]]  # the number, not '015'
    assert ref.report["initial"][fifteen].sum() == 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = rake_dataset(path, margins, weight_col="w", max_cells=max_cells)
    _same_as_frame(res, ref, [_A, _B])


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_rake_dataset_finds_no_record_for_a_number_whose_padded_codes_differ_over_files(max_cells, tmp_path):
    """"015" in one file, "0015" in another, no "15": the number 15 finds no one value, as in memory, and its total
    is refused with rake_frame's message. Before: each file found its own code, initial 5, achieved 6."""
    a = pd.DataFrame({"county": ["015"] * 3 + ["13"] * 5, "w": 1.0})
    b = pd.DataFrame({"county": ["0015"] * 2 + ["13"] * 2, "w": 1.0})
    margins = {"county": {15: 6, "13": 9}}
    _refused_as_in_memory(tmp_path / "d", a, b, margins, max_cells)


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_rake_dataset_refuses_a_number_and_its_padded_code_as_in_memory(max_cells, tmp_path):
    """Codes written with zeros in every file: 15 and '015' name the same records there, refused with rake_frame's
    message on the whole data (a file's own lookup is not refused alone, or the refusal left to the others)."""
    a = pd.DataFrame({"county": ["015"] * 3 + ["013"] * 5, "w": 1.0})
    b = pd.DataFrame({"county": ["013"] * 2 + ["017"] * 2, "w": 1.0})
    margins = {"county": {15: 6, "015": 4, "013": 9}}
    expected = _refused_as_in_memory(tmp_path / "d", a, b, margins, max_cells)
    assert "lists 15 and '015'" in expected


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_rake_dataset_pins_a_number_to_its_padded_code_without_another_pass(max_cells, tmp_path):
    """Codes all written with zeros: 15 finds "015" in every file, as in memory, in as many passes as '015'."""
    a = pd.DataFrame({"county": ["015"] * 3 + ["013"] * 5, "w": 1.0})
    b = pd.DataFrame({"county": ["015"] * 2 + ["013"] * 2, "w": 1.0})
    path = _files(tmp_path / "d", a, b)
    res = rake_dataset(path, {"county": {15: 10, 13: 9}}, weight_col="w", max_cells=max_cells)
    plain = rake_dataset(path, {"county": {"015": 10, "013": 9}}, weight_col="w", max_cells=max_cells)
    assert res.n_passes == plain.n_passes
    _same_as_frame(res, rake_frame(pd.concat([a, b], ignore_index=True), {"county": {15: 10, 13: 9}}, weight_col="w"),
                   [a, b])


@pytest.mark.parametrize("entity", ["person", "household"])
def test_household_rake_dataset_finds_a_number_on_the_values_of_every_file_pair(entity, tmp_path):
    """``rake_dataset(..., persons=)`` over two pairs of files, "15" in one and "015" in the other, gives what it
    gives on the same households and persons in one pair of files (where the lookup sees every value): 15 finds the
    "15" households only. Before: the "015" households too (initial 8 persons, 4 households, where one pair gives 4
    and 2)."""
    h1 = pd.DataFrame({"hid": [1, 2, 3, 4], "county": ["15", "15", "13", "13"], "w": 1.0})
    h2 = pd.DataFrame({"hid": [5, 6, 7, 8], "county": ["015", "015", "13", "13"], "w": 1.0})
    targets = Targets.from_margins({"county": {15: 6 if entity == "household" else 12, "13": 9 if entity ==
                                               "household" else 18}}, entity=entity)
    results = []
    for name, households in (("two", [h1, h2]), ("one", [pd.concat([h1, h2], ignore_index=True)])):
        (tmp_path / name / "h").mkdir(parents=True)
        (tmp_path / name / "p").mkdir()
        for k, h in enumerate(households):
            h.to_parquet(tmp_path / name / "h" / f"part-{k}.parquet")
            h[["hid", "county"]].loc[h.index.repeat(2)].to_parquet(tmp_path / name / "p" / f"part-{k}.parquet")
        results.append(rake_dataset(tmp_path / name / "h", targets, weight_col="w", persons=tmp_path / name / "p",
                                    household_id="hid"))
    two, one = results
    assert one.report["initial"].iloc[0] == (4.0 if entity == "person" else 2.0)
    assert np.allclose(two.report["initial"], one.report["initial"])
    assert np.allclose(two.report["achieved"], one.report["achieved"], atol=1e-8)
    persons = h2[["hid", "county"]].loc[h2.index.repeat(2)]
    assert np.allclose(two.weights(h2, persons), one.weights(h2, persons), atol=1e-8)


# -- rake_dataset: two categories of a crossed margin that name the same records only over the files --------------
_CROSSED = [  # (file A, file B, margins): no file holds both values a clashing category asks, the files together do
    ({"county": ["15"] * 3, "sex": [2] * 3}, {"county": ["13"] * 4, "sex": [1] * 4},
     {("county", "sex"): {(15, 1): 0, ("15", 1): 0, ("15", 2): 6, ("13", 1): 8}}),
    ({"county": ["015"] * 3, "sex": [2] * 3}, {"county": ["013"] * 4, "sex": [1] * 4},
     {("county", "sex"): {(15, 1): 0, ("015", 1): 0, ("015", 2): 6, ("013", 1): 8}}),
    ({"county": [1] * 3, "sex": ["m"] * 3}, {"county": [2] * 4, "sex": ["f"] * 4},
     {("county", "sex"): {("1", "f"): 0, ("01", "f"): 0, ("1", "m"): 6, ("2", "f"): 8}}),
]


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
@pytest.mark.parametrize("a, b, margins", _CROSSED, ids=["number-and-text", "number-and-padded", "texts-of-a-number"])
def test_rake_dataset_refuses_crossed_categories_that_name_the_same_records_over_the_files(a, b, margins, max_cells,
                                                                                          tmp_path):
    """(15, 1) and ("15", 1) name the same records on the concatenated files (one holds "15", the other the sex 1),
    which rake_frame refuses; each file alone finds one of the two values only. Before: rake_dataset accepted (the two
    totals of 0 achieved 0.0, the others met), with or without a number among the categories."""
    a, b = pd.DataFrame(a).assign(w=1.0), pd.DataFrame(b).assign(w=1.0)
    expected = _refused_as_in_memory(tmp_path / "d", a, b, margins, max_cells)
    assert "which name the same records" in expected


@pytest.mark.parametrize("max_cells", [2_000_000, 0])
def test_rake_dataset_names_the_first_categories_that_name_the_same_records_as_in_memory(max_cells, tmp_path):
    """(15, 1) and ("15", 1) name the same records over the two files, (13, 2) and ("13", 2) within file A: the refusal
    names the first pair, as rake_frame on the concatenated files does. Before: file A refused its own pair, "lists
    (13, np.int64(2)) and ('13', np.int64(2))"."""
    a = pd.DataFrame({"county": ["15", "13", "13"], "sex": [2, 2, 2], "w": 1.0})
    b = pd.DataFrame({"county": ["17"] * 4, "sex": [1] * 4, "w": 1.0})
    margins = {("county", "sex"): {(15, 1): 0, ("15", 1): 0, (13, 2): 1, ("13", 2): 1, ("17", 1): 4}}
    expected = _refused_as_in_memory(tmp_path / "d", a, b, margins, max_cells)
    assert "lists (15, np.int64(1)) and ('15', np.int64(1))" in expected


def test_household_rake_dataset_refuses_crossed_categories_that_name_the_same_records_over_file_pairs(tmp_path):
    """The linked path settles on every pair of files too. Before: accepted."""
    h1 = pd.DataFrame({"hid": [1, 2], "county": ["15", "15"], "w": 1.0})
    h2 = pd.DataFrame({"hid": [3, 4], "county": ["13", "13"], "w": 1.0})
    p1 = pd.DataFrame({"hid": [1, 1, 2, 2], "sex": [2, 2, 2, 2]})
    p2 = pd.DataFrame({"hid": [3, 3, 4, 4], "sex": [1, 1, 1, 1]})
    (tmp_path / "h").mkdir()
    (tmp_path / "p").mkdir()
    for k, (h, p) in enumerate(((h1, p1), (h2, p2))):
        h.to_parquet(tmp_path / "h" / f"part-{k}.parquet")
        p.to_parquet(tmp_path / "p" / f"part-{k}.parquet")
    margins = {("county", "sex"): {(15, 1): 0, ("15", 1): 0, ("15", 2): 4, ("13", 1): 4}}
    persons = pd.concat([p1, p2], ignore_index=True).merge(pd.concat([h1, h2]), on="hid")
    expected = _frame_message(persons, margins)
    with pytest.raises(DataValidationError) as info:
        rake_dataset(tmp_path / "h", margins, weight_col="w", persons=tmp_path / "p", household_id="hid")
    assert str(info.value) == expected
