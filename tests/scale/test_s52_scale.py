"""s52 real-data journey of the out-of-core path: defects found and their regression tests."""

import warnings

import numpy as np
import pandas as pd
import pytest

from microplex import Synthesizer
from microplex.scale import dataset_schema, generate_dataset, rake_dataset, write_calibrated


@pytest.fixture(scope="module")
def text_codes():
    """Area codes that look like numbers ("01", "02", "10"), stored as text, and a model of them."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"s": rng.choice(["01", "02", "10"], 300), "g": rng.choice(["a", "b"], 300),
                       "y": rng.normal(size=300)})
    return df, Synthesizer(["y"], ["s", "g"], epochs=1, verbose=False).fit(df, seed=0)


def test_a_calibrated_copy_keeps_the_partition_values_as_written(text_codes, tmp_path):
    """write_calibrated wrote no schema file for its copy: the copy's folder s=01 read back as the number 1
    (dataset_schema of the copy raised), and the pipeline's reader cast it to the training type as 1, not '01'."""
    from microplex._pipeline_inputs import _read_population

    df, synth = text_codes
    pop, copy, train = tmp_path / "pop", tmp_path / "calibrated", tmp_path / "train.parquet"
    generate_dataset(synth, n=300, path=pop, partition_by=["s"], rows_per_file=100, progress=False, seed=0)
    df.to_parquet(train)
    margins = {"s": {"01": 90.0, "02": 110.0, "10": 100.0}}
    write_calibrated(rake_dataset(pop, margins), pop, copy)
    class Context:
        config = {"generate": {"partition_by": ["s"]}, "model": {}, "sources": [{"name": "a"}]}

        def input(self, name):
            return copy if name == "population" else train

    read = _read_population(Context())
    assert read.groupby("s")["weight"].sum().to_dict() == pytest.approx(margins["s"], rel=1e-10)
    back = pd.read_parquet(copy, schema=dataset_schema(copy))
    assert back.groupby("s")["weight"].sum().to_dict() == pytest.approx(margins["s"], rel=1e-10)
    assert back["weight"].dtype == np.float64
    # the copy raked again, by its written values
    again = rake_dataset(copy, {"s": {"01": 80.0, "02": 120.0, "10": 100.0}}, "weight")
    assert again.report["achieved"].tolist() == pytest.approx([80.0, 120.0, 100.0], rel=1e-10)


def test_a_streamed_pipeline_calibrates_and_sparsifies_text_codes_as_written(text_codes, tmp_path):
    """generate (partitioned by s) -> calibrate -> sparsify: sparsify read the calibrated copy with s as the
    numbers 1, 2, 10 and refused the targets "s == '01'" ("no record has s == '01'")."""
    from microplex.pipeline import run_pipeline

    df, _ = text_codes
    df.to_parquet(tmp_path / "src.parquet")
    pd.DataFrame({"filter": ["s == '01'", "s == '02'", "s == '10'"], "value": [300.0, 200.0, 250.0]}).to_csv(
        tmp_path / "t.csv", index=False)
    (tmp_path / "p.toml").write_text(
        'output = "out"\n[[sources]]\nname = "a"\npath = "src.parquet"\n[model]\ntargets = ["y"]\n'
        'conditions = ["s", "g"]\nepochs = 1\n[generate]\nn = 1500\npartition_by = ["s"]\ndataset = "pop"\n'
        '[calibrate]\ntargets = "t.csv"\n[sparsify]\nmax_records = 100\ntolerance = 0.01\n')
    run_pipeline(tmp_path / "p.toml", progress=False)
    sub = pd.read_parquet(tmp_path / "out" / "subset.parquet")
    assert sub.groupby("s")["weight"].sum().to_dict() == pytest.approx({"01": 300.0, "02": 200.0, "10": 250.0},
                                                                       rel=0.011)
    cal = pd.read_parquet(tmp_path / "out" / "calibrated", schema=dataset_schema(tmp_path / "out" / "calibrated"))
    assert cal.groupby("s")["weight"].sum().to_dict() == pytest.approx({"01": 300.0, "02": 200.0, "10": 250.0},
                                                                       rel=1e-10)
    assert not any(p.name.endswith(".partial.microplex") for p in (tmp_path / "out").iterdir())


def test_a_range_category_in_a_margins_dict_is_refused_naming_it(tmp_path):
    """Targets.from_margins reads an Interval category as a range; rake_dataset / rake_frame match categories by
    equality, and refused {"age": {Interval(0, 40): ...}} with "its filter selects no record (closest achievable
    0)" although 40% of the records are in it. Now the message names the range and what to do."""
    from microplex import DataValidationError
    from microplex.scale import rake_frame

    frame = pd.DataFrame({"age": np.arange(100), "sex": np.tile([1, 2], 50)})
    frame.to_parquet(tmp_path / "d.parquet")
    margins = {"age": {pd.Interval(0, 40, closed="left"): 40.0, pd.Interval(40, 100, closed="left"): 60.0}}
    for call in (lambda: rake_frame(frame, margins), lambda: rake_dataset(tmp_path / "d.parquet", margins),
                 lambda: rake_frame(frame, {("sex", "age"): {(1, frozenset({1, 3})): 5.0}})):
        with pytest.raises(DataValidationError, match=r"lists the category .*matches categories by equality"):
            call()


@pytest.mark.parametrize("streamed", [True, False])
def test_evaluate_on_a_sample_of_the_population_scales_its_weights_to_the_population(text_codes, tmp_path, streamed):
    """evaluate reads at most max_rows records drawn at random but kept their weights: 1,000 of 3,000 calibrated
    records totalled a third of each target, and scores.csv reported calibration_rel_error 0.66-0.68 for a
    population meeting its targets to 1e-15. The sample's weights now stand for the population (rows / max_rows)."""
    from microplex.pipeline import run_pipeline

    df, _ = text_codes
    df.assign(s=df["s"].map({"01": "a", "02": "b", "10": "c"})).to_parquet(tmp_path / "src.parquet")
    pd.DataFrame({"filter": ["s == 'a'", "s == 'b'", "s == 'c'"], "value": [300.0, 200.0, 250.0]}).to_csv(
        tmp_path / "t.csv", index=False)
    stream = 'partition_by = ["s"]\ndataset = "pop"\n' if streamed else ""
    (tmp_path / "p.toml").write_text(
        'output = "out"\n[[sources]]\nname = "a"\npath = "src.parquet"\n[model]\ntargets = ["y"]\n'
        f'conditions = ["s", "g"]\nepochs = 1\n[generate]\nn = 3000\n{stream}'
        '[calibrate]\ntargets = "t.csv"\n[evaluate]\nmax_rows = 1000\npmse = false\n')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the privacy check of so small a model may warn
        run_pipeline(tmp_path / "p.toml", progress=False)
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    errors = scores.loc[scores["metric"] == "calibration_rel_error", "value"]
    assert len(errors) == 3 and errors.abs().max() < 0.1  # sampling error only (about 0.04 here)
