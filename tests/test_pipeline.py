"""End to end: the bundled demo pipeline on a small size, resume, and bad pipeline files."""

import json
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from microplex import DataValidationError, Synthesizer
from microplex.pipeline import load_pipeline, run_pipeline

DEMO = Path(str(resources.files("microplex.datasets").joinpath("demo", "pipeline.toml")))
SMALL = {"generate.n": 3000, "model.epochs": 3, "sparsify.max_records": 500, "evaluate.max_rows": 3000}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run_pipeline(DEMO, overrides={"output": str(out), **SMALL}, progress=False)
    return out, result


def test_demo_pipeline_outputs(demo_run):
    out, result = demo_run
    assert [s for s in result.stages] == ["fit", "generate", "calibrate", "sparsify", "evaluate"]
    assert len(pd.read_parquet(out / "synthetic.parquet")) == 3000
    calibrated = pd.read_parquet(out / "calibrated.parquet")
    report = pd.read_csv(out / "calibration_report.csv")
    assert report["rel_error"].abs().max() < 1e-6
    assert calibrated["weight"].sum() == pytest.approx(15992, rel=1e-6)
    subset = pd.read_parquet(out / "subset.parquet")
    assert 0 < len(subset) <= 500
    assert (out / "report.html").stat().st_size > 10_000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 3000 and summary["max_target_error"] <= 0.005
    manifest = json.loads((out / ".microplex" / "fit.json").read_text())
    assert manifest["settings"]["seed"] == 0 and manifest["microplex_version"]


def test_rerun_skips_finished_stages_and_a_change_reruns_downstream(demo_run):
    out, _ = demo_run
    again = run_pipeline(DEMO, overrides={"output": str(out), **SMALL}, progress=False)
    assert {s["status"] for s in again.stages.values()} == {"skipped"}
    changed = run_pipeline(DEMO, overrides={"output": str(out), **SMALL, "sparsify.max_records": 400}, progress=False)
    assert changed.stages["calibrate"]["status"] == "skipped"
    assert changed.stages["sparsify"]["status"] == "ran"
    assert changed.stages["evaluate"]["status"] == "ran"


def test_an_interrupted_stage_resumes(demo_run, tmp_path):
    """(It relied on the test above having run with these settings: alone, sparsify ran again. Now it runs them
    first itself.)"""
    out, _ = demo_run
    settings = {"output": str(out), **SMALL, "sparsify.max_records": 400}
    run_pipeline(DEMO, overrides=settings, progress=False)
    (out / ".microplex" / "evaluate.json").unlink()
    resumed = run_pipeline(DEMO, overrides=settings, progress=False)
    assert resumed.stages["sparsify"]["status"] == "skipped"
    assert resumed.stages["evaluate"]["status"] == "ran"


@pytest.mark.parametrize(
    "text, match",
    [
        ("seed = 0\n", "needs a \\[\\[sources\\]\\] list"),
        ('[[sources]]\nname = "a"\npath = "x.csv"\n[model]\ntargets = ["y"]\n', "needs a \\[generate\\] section"),
        ('[[sources]]\nname = "a"\npath = "x.csv"\n[[sources]]\nname = "b"\npath = "y.csv"\n[model]\ntargets=["y"]\n[generate]\nn=1\n',
         "need a \\[fuse\\] section"),
        ('bogus = 1\n[[sources]]\nname = "a"\npath = "x.csv"\n', "Unknown key 'bogus' in the top level"),
    ],
)
def test_bad_pipeline_files_are_named(tmp_path, text, match):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(DataValidationError, match=match):
        load_pipeline(path)


def test_missing_input_file_is_named(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[[sources]]\nname = "a"\npath = "missing.csv"\n[model]\ntargets = ["y"]\n[generate]\nn = 10\n')
    with pytest.raises(DataValidationError, match="missing.csv"):
        run_pipeline(path, progress=False)


# -- trust: inputs never overwritten, every key and value checked, atomic outputs (issue 15) ------
import hashlib  # noqa: E402

import yaml  # noqa: E402

from microplex import MicroplexError  # noqa: E402
from microplex.evaluation.report import EvaluationReport  # noqa: E402


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _files(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.fixture
def tiny(tmp_path, cps1):
    """A folder with a 200-record source and a minimal valid pipeline dict (1 epoch)."""
    cps1.head(200)[["age", "marr", "re78"]].to_parquet(tmp_path / "train.parquet")
    config = {
        "_base": str(tmp_path), "output": "out", "seed": 0,
        "sources": [{"name": "cps", "path": "train.parquet"}],
        "model": {"targets": ["re78"], "conditions": ["age", "marr"], "epochs": 1},
        "generate": {"n": 50},
    }
    return tmp_path, config


def _write(folder, config, name="p.yaml"):
    path = Path(folder) / name
    path.write_text(yaml.safe_dump({k: v for k, v in config.items() if k != "_base"}))
    return path


def test_output_folder_holding_a_source_is_refused_and_the_source_kept(tiny):
    """`output = "."` beside the source: the fit stage overwrote train.parquet (400 -> 320 rows)."""
    folder, config = tiny
    before, listing = _digest(folder / "train.parquet"), _files(folder)
    with pytest.raises(DataValidationError, match=r"output folder .* holds the input .*train.parquet.*\[\[sources\]\] #1"):
        run_pipeline({**config, "output": "."}, progress=False)
    with pytest.raises(DataValidationError, match="holds the input"):
        run_pipeline(_write(folder, {**config, "output": "."}), progress=False)
    assert _digest(folder / "train.parquet") == before
    assert _files(folder) == sorted(listing + ["p.yaml"])


def test_output_folder_above_an_input_or_inside_one_is_refused(tiny):
    folder, config = tiny
    (folder / "data").mkdir()
    (folder / "train.parquet").rename(folder / "data" / "train.parquet")
    config = {**config, "sources": [{"name": "cps", "path": "data/train.parquet"}]}
    for output in (".", "data", str(folder.parent)):
        with pytest.raises(DataValidationError, match="holds the input"):
            run_pipeline({**config, "output": output}, progress=False)
    with pytest.raises(DataValidationError, match="is inside the input"):
        run_pipeline({**config, "output": "data/train.parquet/out"}, progress=False)
    assert _files(folder) == ["data", "data/train.parquet"]


@pytest.mark.parametrize("report", ["../escaped.html", "/tmp/microplex-escaped.html", "sub/../../escaped.html",
                                    "model.mpx", ".microplex/fit.json", "."])
def test_outputs_stay_inside_the_output_folder_and_apart(tiny, report):
    """Outputs are relative to the output folder: a report path escaped it or clobbered model.mpx."""
    folder, config = tiny
    config = {**config, "evaluate": {"report": report}}
    with pytest.raises(DataValidationError, match="evaluate.report"):
        run_pipeline(config, progress=False)
    assert _files(folder) == ["train.parquet"] and not Path("/tmp/microplex-escaped.html").exists()


@pytest.mark.parametrize("section, key, value, match", [
    ("generate", "dataset", ".calibrated.partial", "may not name a hidden file"),  # the calibrate stage's temporary
    ("evaluate", "report", ".population.microplex/r.html", "may not name a hidden file"),  # a dataset's side folder
    ("evaluate", "report", "sub/.r.html", "may not name a hidden file"),
    ("evaluate", "report", "report.pdf", "must end in .html or .htm"),
])
def test_output_names_are_not_hidden_side_files_and_a_report_is_html(tiny, section, key, value, match):
    """A generate.dataset named '.calibrated.partial' was removed by the calibrate stage, which writes there."""
    folder, config = tiny
    config = {**config, "generate": {**_STREAMED}, section: {**config.get(section, {}), key: value}}
    with pytest.raises(DataValidationError, match=rf"'{section}.{key}' setting {match}"):
        run_pipeline(config, progress=False)
    assert _files(folder) == ["train.parquet"]


@pytest.mark.parametrize(
    "section, key, likely",
    [("sources", "wieght", "weight"), ("model", "epoch", "epochs"), ("generate", "nn", "n"),
     ("calibrate", "methd", "method"), ("evaluate", "reprot", "report"), ("", "sed", "seed")],
)
def test_unknown_keys_name_the_section_and_the_likely_key(tiny, section, key, likely):
    """A `wieght` typo in [[sources]] silently fitted unweighted."""
    folder, config = tiny
    config = {**config, "calibrate": {"targets": "t.csv"}}
    if section == "sources":
        config["sources"] = [{**config["sources"][0], key: "re78"}]
    elif section:
        config[section] = {**config.get(section, {}), key: 1}
    else:
        config[key] = 1
    label = {"sources": r"\[\[sources\]\] #1", "": "the top level"}.get(section, rf"\[{section}\]")
    with pytest.raises(DataValidationError, match=rf"Unknown key '{key}' in {label}; did you mean '{likely}'\?"):
        run_pipeline(config, progress=False)
    assert _files(folder) == ["train.parquet"]


@pytest.mark.parametrize(
    "section, key, value, match",
    [("model", "holdout", -0.5, r"'model.holdout' parameter must be a finite float in \[0, 1\)"),
     ("model", "holdout", 1.0, "model.holdout"),
     ("model", "epochs", 0, r"'model.epochs' parameter must be 'auto' or an int in \[1, 10000000\]"),
     ("model", "epochs", 2.5, "model.epochs"),
     ("model", "flow", "realnvp", "'model.flow' parameter must be one of 'maf', 'nsf'"),
     ("model", "rounding", "yes", "'model.rounding' parameter must be a bool"),
     ("model", "targets", "re78", "'model.targets' parameter must be a non-empty list"),
     ("model", "targets", ["weight"], "'weight' is reserved"),
     ("model", "conditions", ["re78"], r"both model targets and conditions"),
     ("generate", "n", "lots", "'generate.n' parameter must be an int"),
     ("generate", "n", 0, "'generate.n' parameter must be an int"),
     ("generate", "n", 2.5, "'generate.n' parameter"),
     ("generate", "n", float("inf"), "'generate.n' parameter"),
     ("generate", "n", 10**300, "'generate.n' parameter"),
     ("generate", "n", 10**15, "asks for 1,000,000,000,000,000 records in memory"),
     ("generate", "population", -1, "'generate.population' parameter must be a finite float > 0"),
     ("generate", "rows_per_file", 10, "need 'partition_by'"),
     ("", "seed", -1, r"'seed' parameter must be an int in \[0, 2\*\*64 - 1\]"),
     ("", "seed", "0", "'seed' parameter"),
     ("", "output", 5, "'output' setting must be a non-empty string"),
     ("", "sources", [], r"\[\[sources\]\] must be a non-empty list"),
     ("", "model", "fast", r"\[model\] must be a table"),
     ("calibrate", "bounds", [5, 1], r"'calibrate.bounds' parameter must be \[lo, hi\]"),
     ("calibrate", "method", "magic", "'calibrate.method' parameter must be one of"),
     ("calibrate", "soft", "yes", "'calibrate.soft' parameter must be a bool"),
     ("sparsify", "max_records", 0, "'sparsify.max_records' parameter must be an int >= 1"),
     ("sparsify", "refine", "yes", "'sparsify.refine' parameter must be a bool"),
     ("evaluate", "max_rows", -3, "'evaluate.max_rows'"),
     ("evaluate", "conditions", ["educ"], "not model columns"),
     ("fuse", "base", "cps", r"\[fuse\] needs at least two"),
     # checked by the estimator's own parameter check, not after fit and generate ran
     ("sparsify", "tolerance", 5.0, r"'sparsify.tolerance' parameter must be a finite float in \(0, 1\)"),
     ("sparsify", "stratify", "zip", "'sparsify.stratify' parameter must be None, 'auto' or a list"),
     ("calibrate", "bounds", [2.0, 5.0], "'calibrate.bounds' parameter must contain 1"),
     ("model", "learning_rate", 1e308, r"'model.learning_rate' parameter must be a finite float in \(0, 1000\]"),
     ],
)
def test_bad_values_are_refused_before_any_work(tiny, section, key, value, match):
    folder, config = tiny
    (folder / "t.csv").write_text("aggregate,variable,filter,value\ncount,,,200\n")
    config = {**config, "calibrate": {"targets": "t.csv"}}
    if section:
        config[section] = {**config.get(section, {}), key: value}
    else:
        config[key] = value
    with pytest.raises(DataValidationError, match=match):
        run_pipeline(config, progress=False)
    assert _files(folder) == ["t.csv", "train.parquet"]


@pytest.mark.parametrize(
    "overrides, match",
    [({"generate.n": "lots"}, "'generate.n' parameter"), ({"model.holdout": -0.5}, "'model.holdout' parameter"),
     ({"model.wieght": "w"}, r"Unknown key 'wieght' in \[model\]"), ({"sources.weight": "w"}, "is not a table"),
     ({"seed.x": 1}, "'seed' is not a table"), ({"_base": "/"}, "dotted setting"), ({"model..epochs": 1}, "dotted")],
)
def test_overrides_are_checked_before_any_work(tiny, overrides, match):
    folder, config = tiny
    with pytest.raises(DataValidationError, match=match):
        run_pipeline(config, overrides=overrides, progress=False)
    assert _files(folder) == ["train.parquet"]


def test_a_bad_targets_file_fails_before_any_stage_writes(tiny):
    """A malformed targets file failed in [calibrate] after fit and generate had written their files."""
    folder, config = tiny
    (folder / "t.yaml").write_text("targets: [unclosed\n")
    with pytest.raises(DataValidationError, match=r"(?i)targets file .*t\.yaml"):
        run_pipeline({**config, "calibrate": {"targets": "t.yaml"}}, progress=False)
    assert _files(folder) == ["t.yaml", "train.parquet"]


def test_a_failing_stage_leaves_no_half_written_output(tiny, monkeypatch):
    """The evaluate stage wrote scores.csv and a partial report.html before its failure."""
    folder, config = tiny
    config = {**config, "generate": {"n": 150}, "evaluate": {"max_rows": 200}}

    def broken_to_html(self, path, **kwargs):
        Path(path).write_text("<html>half")
        raise MicroplexError("rendering failed")

    monkeypatch.setattr(EvaluationReport, "to_html", broken_to_html)
    with pytest.raises(MicroplexError, match="rendering failed"):
        run_pipeline(config, progress=False)
    out = folder / "out"
    assert not (out / "report.html").exists() and not (out / "scores.csv").exists()
    assert not list(out.rglob(".tmp-*"))
    assert not (out / ".microplex" / "evaluate.json").exists() and (out / ".microplex" / "generate.json").exists()


def test_a_tampered_manifest_reruns_its_stage(tiny):
    """A manifest with the right fingerprint but garbage 'outputs' raised a raw AttributeError."""
    folder, config = tiny
    run_pipeline(config, progress=False)
    manifest = folder / "out" / ".microplex" / "fit.json"
    record = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**record, "outputs": ["model.mpx"]}))
    again = run_pipeline(config, progress=False)
    assert again.stages["fit"]["status"] == "ran"
    manifest.write_bytes(b"\xff\xfe not json")
    assert run_pipeline(config, progress=False).stages["fit"]["status"] == "ran"


def test_stage_records_are_read_as_untrusted_json(tmp_path):
    """One reader for a stage's record and start marker (resume, restart, dropped stages): anything but a
    regular file of at most MAX_RECORD_BYTES holding a JSON object reads as no record."""
    from microplex._pipeline_manifest import MAX_RECORD_BYTES, read_record

    good = tmp_path / "good.json"
    good.write_text('{"fingerprint": "f", "outputs": {}}')
    assert read_record(good) == {"fingerprint": "f", "outputs": {}}
    cases = {"missing.json": None, "list.json": b"[1, 2]", "bytes.json": b"\xff\xfe not json",
             "deep.json": b"[" * 100_000, "big.json": b'{"a": "' + b"x" * MAX_RECORD_BYTES + b'"}'}
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        assert read_record(tmp_path / name) is None, name
    (tmp_path / "folder.json").mkdir()
    assert read_record(tmp_path / "folder.json") is None


@pytest.mark.parametrize("checksum", ["kept", "recomputed"])
def test_a_manifest_with_edited_figures_reruns_its_stage_and_its_figures_stay_out_of_the_summary(tiny, cps1, checksum):
    """figures.loss = "abc" crashed the run (ValueError); max_rel_error = 0, note = "FORGED" or epochs = {...}
    went unchecked into the summary. An edited record fails its checksum; one whose checksum is recomputed
    still fails the figure checks."""
    folder, _ = tiny
    config = _variants(folder, cps1)["calibrated"]
    first = run_pipeline(config, progress=False)
    manifests = folder / "out" / ".microplex"
    true_error = first.summary["max_target_error"]
    for stage, key, value in [("fit", "loss", "abc"), ("fit", "epochs", {"a": 1}), ("fit", "note", ["FORGED"]),
                              ("calibrate", "max_rel_error", "0"), ("calibrate", "max_rel_error", -1.0),
                              ("sparsify", "kept", 10**30), ("sparsify", "note", "x" * 5000),
                              ("evaluate", "heldout_x", {"cells": 1, "median": 0.0}), ("generate", "forged", 1)]:
        path = manifests / f"{stage}.json"
        record = json.loads(path.read_text())
        record["figures"] = {**record["figures"], key: value}
        if checksum == "recomputed":
            from microplex._pipeline_manifest import _checksum

            record["checksum"] = _checksum(record)
        path.write_text(json.dumps(record))
        again = run_pipeline(config, progress=False)
        assert again.stages[stage]["status"] == "ran", (stage, key)
        assert again.stages[stage].get(key) != value
        assert json.loads((folder / "out" / "summary.json").read_text()) == again.summary
    assert again.summary["max_target_error"] == true_error
    if checksum == "kept":  # a plausible figure (not refused by its type) is caught by the checksum
        for stage, key, value in [("calibrate", "max_rel_error", 0.0), ("calibrate", "note", "FORGED"),
                                  ("fit", "loss", 0.5)]:
            path = manifests / f"{stage}.json"
            record = json.loads(path.read_text())
            path.write_text(json.dumps({**record, "figures": {**record["figures"], key: value}}))
            again = run_pipeline(config, progress=False)
            assert again.stages[stage]["status"] == "ran" and again.stages[stage][key] != value
        assert again.summary["max_target_error"] == true_error
    assert {s["status"] for s in run_pipeline(config, progress=False).stages.values()} == {"skipped"}


def test_a_record_with_numpy_figures_is_read_back_as_done(tmp_path):
    """The evaluate stage reports numpy ints (held-out 'cells'): written as text they would fail the figure
    checks and the stage would run on every resume."""
    import numpy as np

    from microplex._pipeline_manifest import Manifest

    figures = {"report": "r.html", "note": "n", "heldout_synthetic": {"cells": np.int64(3), "median": np.float64(0.1),
                                                                      "p90": np.float32(0.5)}}
    manifest = Manifest(tmp_path, "evaluate", {"evaluate": {}}, [], [])
    manifest.finish(1.0, figures)
    record = manifest.is_done()
    assert record is not None and record["figures"]["heldout_synthetic"] == {"cells": 3, "median": 0.1, "p90": 0.5}
    assert Manifest(tmp_path, "evaluate", {"evaluate": {"max_rows": 5}}, [], []).is_done() is None


def test_missing_model_columns_are_named(tiny):
    folder, config = tiny
    config = {**config, "model": {**config["model"], "conditions": ["age", "educ"]}}
    with pytest.raises(DataValidationError, match=r"model columns \['educ'\] are not columns of source 'cps'"):
        run_pipeline(config, progress=False)
    config = {**config, "model": {**config["model"], "conditions": ["age"]},
              "sources": [{"name": "cps", "path": "train.parquet", "weight": "wt"}]}
    with pytest.raises(DataValidationError, match="weight column 'wt' of source 'cps'"):
        run_pipeline(config, progress=False)


# -- tampered pipeline files: one clear error each, nothing written ------------------------------
_SOURCE = '[[sources]]\nname = "cps"\npath = "train.parquet"\n'
_MODEL = '[model]\ntargets = ["re78"]\nconditions = ["age"]\nepochs = 1\n[generate]\nn = 50\n'


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("p.toml", b"output = \"\xff\xfe\"\n" + (_SOURCE + _MODEL).encode(), "is not UTF-8 text"),
        ("p.yaml", b"\xc3\x28: 1\n", "is not UTF-8 text"),
        ("p.toml", (_SOURCE + _MODEL + "[generate\n").encode(), "is not valid TOML"),
        ("p.yaml", b"sources: [\n", "is not valid YAML"),
        ("p.yaml", b"!!python/object/apply:os.system ['touch pwned']\n", "is not valid YAML"),
        ("p.yaml", b"model: !!python/name:os.system\n", "is not valid YAML"),
        ("p.yaml", b"- 1\n- 2\n", "must hold a table of settings. Got a list"),
        ("p.yaml", b"[" * 5000 + b"]" * 5000, "nested too deeply|not valid YAML"),
        ("p.toml", (_SOURCE + _MODEL.replace("n = 50", "n = 1e400")).encode(), "'generate.n' parameter"),
        ("p.toml", (_SOURCE + _MODEL.replace("epochs = 1", "epochs = 99999999999999999999")).encode(),
         "is not valid TOML|'model.epochs' parameter"),
        ("p.toml", (_SOURCE + _MODEL.replace("epochs = 1", "epochs = 10000000000")).encode(),
         "'model.epochs' parameter"),
        ("p.toml", (_SOURCE + _MODEL.replace('targets = ["re78"]', "targets = [[[1]]]")).encode(),
         "'model.targets' parameter"),
        ("p.toml", (_SOURCE + _MODEL + "[evaluate]\nreport = {a = {b = 1}}\n").encode(), "'evaluate.report' setting"),
        ("p.toml", (_SOURCE + "rename = {age = 3}\n" + _MODEL).encode(), r"'sources\[1\].rename' setting"),
        ("p.toml", (_SOURCE + 'dropna = "yes"\n' + _MODEL).encode(), r"'sources\[1\].dropna' setting must be true, false or a non-empty list of column names"),
        ("p.toml", (_SOURCE + _MODEL + "[evaluate]\nreport = \"../../escaped.html\"\n").encode(),
         "relative to the output folder"),
        ("p.toml", (_SOURCE + _MODEL + "[evaluate]\nreport = \"/tmp/escaped.html\"\n").encode(),
         "relative to the output folder"),
        ("p.toml", (_SOURCE + _MODEL.replace("n = 50", 'n = 50\npartition_by = ["age"]\ndataset = "../pop"')).encode(),
         "'generate.dataset' setting"),
        ("p.toml", ("_base = \"/\"\n" + _SOURCE + _MODEL).encode(), "Unknown key '_base'"),
        ("p.toml", (_SOURCE + _MODEL + "[fit]\nepochs = 3\n").encode(), "Unknown key 'fit' in the top level"),
        ("p.yaml", b"sources:\n  - {name: cps, path: train.parquet}\nmodel: {targets: [re78], 1: 2}\ngenerate: {n: 5}\n",
         r"Unknown key 1 in \[model\]"),
        ("p.yaml", b"sources:\n  - {name: cps, path: train.parquet}\nmodel: {targets: [re78]}\ngenerate: {n: .nan}\n",
         "'generate.n' parameter"),
        ("p.yaml", b"seed: 2026-01-01\nsources:\n  - {name: cps, path: train.parquet}\nmodel: {targets: [re78]}\n"
                   b"generate: {n: 5}\n", "'seed' parameter"),
        ("p.toml", b"x" * (2 << 20), "a pipeline file is at most"),
    ],
)
def test_tampered_pipeline_files_give_one_clear_error_and_write_nothing(tmp_path, cps1, name, content, match):
    cps1.head(50)[["age", "re78"]].to_parquet(tmp_path / "train.parquet")
    path = tmp_path / name
    path.write_bytes(content)
    listing = _files(tmp_path)
    with pytest.raises(DataValidationError, match=match):
        run_pipeline(path, progress=False)
    assert _files(tmp_path) == listing
    assert not Path("/tmp/escaped.html").exists() and not Path("pwned").exists()


@pytest.mark.parametrize(
    "text, key, lines",
    [("generate: {n: 2000}\ngenerate: {n: 50}\n", "generate", "4 and 5"),
     ("generate:\n  n: 2000\n  n: 50\n", "n", "5 and 6"),
     ("seed: 1\ngenerate: {n: 50}\nseed: 2\n", "seed", "4 and 6")],
)
def test_a_key_given_twice_in_a_yaml_pipeline_file_is_refused(tmp_path, text, key, lines):
    """A second 'n:', 'generate:' or 'seed:' silently replaced the first (TOML refuses the same)."""
    path = tmp_path / "p.yaml"
    path.write_text("sources:\n  - {name: cps, path: train.parquet}\nmodel: {targets: [re78]}\n" + text)
    with pytest.raises(DataValidationError,
                       match=rf"Pipeline file '.*p\.yaml' is not valid YAML: The key '{key}' is given twice \(lines {lines}\)"):
        load_pipeline(path)


def test_renames_that_clash_and_conditions_files_without_the_columns_are_named(tiny, cps1):
    folder, config = tiny
    clash = {**config, "sources": [{"name": "cps", "path": "train.parquet", "rename": {"marr": "age"}}],
             "model": {**config["model"], "conditions": ["age"]}}
    with pytest.raises(DataValidationError, match=r"gives several columns the names \['age'\]"):
        run_pipeline(clash, progress=False)
    cps1.head(20)[["age"]].to_parquet(folder / "cond.parquet")
    config = {**config, "generate": {"conditions": "cond.parquet"}}
    with pytest.raises(DataValidationError, match=r"lacks the model's condition columns \['marr'\]"):
        run_pipeline(config, progress=False)
    assert not (folder / "out" / "synthetic.parquet").exists()


def test_a_streamed_population_that_cannot_fit_on_disk_is_refused_up_front(tiny):
    folder, config = tiny
    config = {**config, "generate": {"n": 10**15, "partition_by": ["marr"]}}
    with pytest.raises(DataValidationError, match="'generate.n' parameter asks for 1,000,000,000,000,000 records"):
        run_pipeline(config, progress=False)
    assert _files(folder) == ["train.parquet"]


# -- the stage table: each stage reads the previous stage's declared output (issue 17) ------------
import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

import microplex._pipeline_stages as stages  # noqa: E402
from microplex._random import int_seed, named_child  # noqa: E402

_TARGETS = "aggregate,variable,filter,value\ncount,,marr == 0,100\ncount,,marr == 1,200\n"
_STREAMED = {"n": 150, "partition_by": ["marr"], "rows_per_file": 100}


def _variants(folder, cps1):
    """Pipeline dicts covering every branch of the table: plain, calibrated, streamed, fused, conditions."""
    (folder / "t.csv").write_text(_TARGETS)
    cps1.iloc[200:400][["age", "marr", "educ"]].to_parquet(folder / "donor.parquet")
    cps1.head(30)[["age", "marr"]].to_parquet(folder / "cond.parquet")
    model = {"targets": ["re78"], "conditions": ["age", "marr"], "epochs": 1}
    base = {"_base": str(folder), "output": "out", "seed": 0, "sources": [{"name": "cps", "path": "train.parquet"}],
            "model": model, "generate": {"n": 150}}
    return {
        "plain": base,
        "calibrated": {**base, "calibrate": {"targets": "t.csv"}, "sparsify": {"max_records": 100},
                       "evaluate": {"max_rows": 200}},
        "streamed": {**base, "generate": _STREAMED, "sparsify": {"targets": "t.csv"},
                     "evaluate": {"max_rows": 200, "pmse": False}},
        "streamed-evaluate": {**base, "generate": _STREAMED, "evaluate": {"max_rows": 200, "pmse": False}},
        "streamed-calibrated": {**base, "generate": _STREAMED, "calibrate": {"targets": "t.csv", "bounds": [0.2, 5.0]},
                                "sparsify": {"max_records": 100}, "evaluate": {"max_rows": 200, "pmse": False}},
        "conditions": {**base, "generate": {"conditions": "cond.parquet"}},
        "fused": {**base, "sources": base["sources"] + [{"name": "donor", "path": "donor.parquet"}],
                  "fuse": {"base": "cps", "shared": ["age", "marr"], "synthesizer": {"epochs": 1}},
                  "model": {**model, "targets": ["re78", "educ"]}},
    }


@pytest.mark.parametrize("variant", ["plain", "calibrated", "streamed", "streamed-evaluate", "streamed-calibrated",
                                     "conditions", "fused"])
def test_every_stage_input_is_an_input_file_or_an_earlier_declared_output(tiny, cps1, variant):
    folder, _ = tiny
    config = _variants(folder, cps1)[variant]
    out = folder / "out"
    planned = stages.plan(config, folder, out)
    available = {p for v in stages.external_inputs(config, folder).values() for p in (v if isinstance(v, tuple) else (v,))}
    population = None
    for step in planned:
        assert set(step.input_paths()) <= available, (step.stage.name, step.input_paths())
        if "population" in step.inputs:
            assert step.inputs["population"] == population, step.stage.name  # the last writer's file
        population = step.outputs.get("population", population)
        available |= set(step.outputs.values())
    expected = {"streamed": ["fit", "generate", "sparsify", "evaluate"], "fused": ["fuse", "fit", "generate"],
                "calibrated": ["fit", "generate", "calibrate", "sparsify", "evaluate"],
                "streamed-calibrated": ["fit", "generate", "calibrate", "sparsify", "evaluate"]}
    assert [s.stage.name for s in planned][:len(expected.get(variant, []))] == expected.get(variant, [])


@pytest.mark.parametrize("variant", ["streamed", "streamed-calibrated", "calibrated", "fused", "conditions"])
def test_each_stage_finds_its_declared_inputs_and_writes_its_declared_outputs(tiny, cps1, variant, monkeypatch):
    """Checked while running: before a stage its inputs exist, after it every declared output exists."""
    folder, _ = tiny
    config = _variants(folder, cps1)[variant]
    seen = []

    def watched(stage):
        def run(ctx):
            missing = [str(p) for v in ctx.inputs.values() for p in (v if isinstance(v, tuple) else (v,)) if not p.exists()]
            assert not missing, (stage.name, missing)
            seen.append(stage.name)
            return stage.run(ctx)
        return dataclasses.replace(stage, run=run)

    monkeypatch.setattr(stages, "STAGE_TABLE", tuple(watched(s) for s in stages.STAGE_TABLE))
    result = run_pipeline(config, progress=False)
    planned = stages.plan(config, folder, folder / "out")
    assert seen == [s.stage.name for s in planned] == list(result.stages)
    for step in planned:
        assert all(p.exists() for p in step.outputs.values()), step.stage.name


def test_sparsify_and_evaluate_read_a_streamed_population(tiny, cps1):
    """`partition_by` with [sparsify] and no [calibrate]: the stage read synthetic.parquet, which a streamed
    run never writes (then the combination was refused at validation); [evaluate] raised KeyError 'weight'."""
    folder, _ = tiny
    config = _variants(folder, cps1)["streamed"]
    result = run_pipeline(config, progress=False)
    out = folder / "out"
    assert (out / "population").is_dir() and not (out / "synthetic.parquet").exists()
    subset = pd.read_parquet(out / "subset.parquet")
    assert subset["marr"].dtype == cps1["marr"].dtype  # partition column read back with the training type
    totals = subset.groupby("marr")["weight"].sum()
    assert totals[0] == pytest.approx(100, rel=0.01) and totals[1] == pytest.approx(200, rel=0.01)
    assert result.summary["rows"] == 150 and (out / "report.html").exists()
    streamed = run_pipeline(_variants(folder, cps1)["streamed-evaluate"] | {"output": "out2"}, progress=False)
    assert pd.read_csv(folder / "out2" / "scores.csv").shape[0] > 0 and streamed.stages["evaluate"]["status"] == "ran"


def test_a_streamed_population_is_calibrated_out_of_core_then_sparsified_and_evaluated(tiny, cps1):
    """generate (streamed) -> calibrate (out of core, the Calibrator's solver) -> sparsify -> evaluate."""
    folder, _ = tiny
    result = run_pipeline(_variants(folder, cps1)["streamed-calibrated"], progress=False)
    out = folder / "out"
    assert (out / "population").is_dir() and (out / "calibrated").is_dir()
    assert not (out / "calibrated.parquet").exists() and not (out / "synthetic.parquet").exists()
    calibrated = pd.read_parquet(out / "calibrated")  # hive folders kept: marr comes back from the path
    assert len(calibrated) == 150
    totals = calibrated.groupby(calibrated["marr"].astype(int))["weight"].sum()
    assert totals[0] == pytest.approx(100, rel=1e-8) and totals[1] == pytest.approx(200, rel=1e-8)
    # bounds bound the ratio to the generated records' equal share, not to a unit weight
    config = _variants(folder, cps1)["streamed-calibrated"]
    from microplex._pipeline_inputs import _population_total

    share = _population_total(config, pd.read_parquet(out / "train.parquet"), pd.read_parquet(out / "holdout.parquet")) / 150
    assert share == pytest.approx(200 / 150, rel=1e-12)  # the source's 200 unweighted records
    ratio = calibrated["weight"] / share
    assert ratio.min() >= 0.2 - 1e-9 and ratio.max() <= 5.0 + 1e-9 and ratio.std() > 0
    report = pd.read_csv(out / "calibration_report.csv")
    assert report["rel_error"].abs().max() < 1e-8
    assert report["target"].tolist() == pytest.approx([100.0, 200.0])
    assert result.stages["calibrate"]["passes"] >= 1
    subset = pd.read_parquet(out / "subset.parquet")
    st = subset.groupby("marr")["weight"].sum()
    assert 0 < len(subset) <= 100 and st[0] == pytest.approx(100, rel=0.006) and st[1] == pytest.approx(200, rel=0.006)
    assert (out / "report.html").exists()


def test_soft_calibration_of_a_streamed_population_is_refused_before_any_work(tiny, cps1):
    folder, _ = tiny
    config = _variants(folder, cps1)["streamed-calibrated"]
    config = {**config, "calibrate": {**config["calibrate"], "soft": True}}
    with pytest.raises(DataValidationError, match=r"\[calibrate\] 'soft' is not available on a streamed"):
        run_pipeline(config, progress=False)
    assert not (folder / "out").exists()


def test_a_stage_that_skips_a_declared_output_is_an_error_and_a_new_stage_is_one_entry(tiny, monkeypatch):
    folder, config = tiny

    def export(ctx):
        pd.read_parquet(ctx.input("population")).head(5).to_csv(ctx.output("export"), index=False)
        return {"note": "5 rows"}

    extra = stages.Stage("export", export, inputs=("population",), outputs=(stages.Output("export", "export.csv"),),
                         enabled=lambda c: True)
    monkeypatch.setattr(stages, "STAGE_TABLE", stages.STAGE_TABLE + (extra,))
    result = run_pipeline(config, progress=False)
    assert result.stages["export"]["status"] == "ran" and len(pd.read_csv(folder / "out" / "export.csv")) == 5
    lazy = dataclasses.replace(extra, name="lazy", run=lambda ctx: {}, outputs=(stages.Output("lazy", "lazy.csv"),))
    monkeypatch.setattr(stages, "STAGE_TABLE", stages.STAGE_TABLE + (lazy,))
    with pytest.raises(RuntimeError, match=r"'lazy' did not write its declared outputs \['lazy'\]"):
        run_pipeline(config, progress=False)


# -- seeds spawned per stage: one seed, one stream per stage, byte-reproducible -------------------
_COMPARED = ("model.mpx", "train.parquet", "holdout.parquet", "synthetic.parquet", "calibrated.parquet",
             "subset.parquet", "scores.csv", "calibration_report.csv")


@pytest.mark.parametrize("variant", ["calibrated", "streamed"])
def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(tiny, cps1, variant):
    folder, _ = tiny
    config = _variants(folder, cps1)[variant]
    for output, seed in (("a", 7), ("b", 7), ("c", 8)):
        run_pipeline({**config, "output": output, "seed": seed}, progress=False)
    names = [n for n in _COMPARED if (folder / "a" / n).exists()]
    names += sorted(str(p.relative_to(folder / "a")) for p in (folder / "a" / "population").rglob("*.parquet"))
    assert len(names) >= 6
    for name in names:
        assert _digest(folder / "a" / name) == _digest(folder / "b" / name), name
    assert _digest(folder / "a" / "model.mpx") != _digest(folder / "c" / "model.mpx")
    assert _digest(folder / "a" / "train.parquet") != _digest(folder / "c" / "train.parquet")


def test_each_stage_draws_from_its_own_child_of_the_seed(tiny):
    folder, config = tiny
    run_pipeline({**config, "seed": 3}, progress=False)
    seeds = {}
    for stage in ("fit", "generate"):
        record = json.loads((folder / "out" / ".microplex" / f"{stage}.json").read_text())
        assert record["settings"]["seed"] == 3
        seeds.update(record["settings"]["seeds"])
    assert seeds == {s: int_seed(named_child(3, s)) for s in ("split", "fit", "generate")}
    assert len(set(seeds.values())) == 3 and 3 not in seeds.values()
    data = pd.read_parquet(folder / "train.parquet")  # the split is the 'split' stream's permutation
    order = np.random.default_rng(seeds["split"]).permutation(len(data))
    train = pd.read_parquet(folder / "out" / "train.parquet")
    pd.testing.assert_frame_equal(train, data.iloc[order[:160]].reset_index(drop=True))


@pytest.mark.parametrize("section, key", [("model", "person_vars"), ("generate", "n_households")])
def test_household_settings_without_a_household_id_are_refused_before_any_work(tiny, cps1, section, key):
    """Household settings in a flat pipeline get one clear error naming them, not 'Unknown key'."""
    folder, _ = tiny
    config = _variants(folder, cps1)["streamed-calibrated"]
    config = {**config, section: {**config[section], key: ["hid"] if key == "person_vars" else 10}}
    with pytest.raises(DataValidationError, match=rf"settings \['{section}.{key}'\] are household settings.*"
                                                  r"model.household_id"):
        run_pipeline(config, progress=False)
    assert not (folder / "out").exists()


def test_household_targets_on_a_streamed_population_are_refused_naming_the_target(tiny, cps1):
    folder, _ = tiny
    config = _variants(folder, cps1)["streamed-calibrated"]
    (folder / "th.csv").write_text("aggregate,variable,filter,value,entity\ncount,,marr == 0,100,household\n")
    config = {**config, "calibrate": {"targets": "th.csv"}}
    with pytest.raises(DataValidationError, match=r"person count targets on equality filters.*entity='household'"):
        run_pipeline(config, progress=False)


def test_a_damaged_streamed_population_is_not_skipped(tiny, cps1):
    """A part of the streamed population deleted (or replaced by another of another size) after a run: the
    folder's fingerprint was its manifest only, so every stage was skipped and a later calibration ran on the
    damaged folder, reporting success. Now generate runs again and its resume redoes the part (or names it)."""
    folder, _ = tiny
    config = _variants(folder, cps1)["streamed-calibrated"]
    run_pipeline(config, progress=False)
    out = folder / "out"
    parts = sorted((out / "population").rglob("part-*.parquet"))
    before = {p: p.read_bytes() for p in parts}
    parts[0].unlink()
    result = run_pipeline(config, progress=False)
    assert result.stages["generate"]["status"] == "ran"
    assert {p: p.read_bytes() for p in parts} == before  # the same part, redone
    assert result.stages["calibrate"]["status"] == "skipped"  # its input is the same again
    parts[0].write_bytes(before[parts[-1]] + b"\0")  # another size
    with pytest.raises(MicroplexError, match=r"truncated or replaced"):
        run_pipeline(config, progress=False)


def test_a_settings_change_regenerates_a_streamed_population(tiny, cps1):
    """The streamed population is written in place; a rerun with another generate.n (or model) failed with
    'holds another run' instead of generating the population the new settings ask for."""
    folder, _ = tiny
    config = {k: v for k, v in _variants(folder, cps1)["streamed-calibrated"].items() if k not in ("sparsify", "evaluate")}
    run_pipeline(config, progress=False)
    result = run_pipeline(config, overrides={"generate.n": 120}, progress=False)
    assert result.stages["generate"]["status"] == "ran" and result.summary["rows"] == 120
    calibrated = pd.read_parquet(folder / "out" / "calibrated")
    assert len(calibrated) == 120 and calibrated.groupby("marr")["weight"].sum().tolist() == pytest.approx([100, 200])
    result = run_pipeline(config, overrides={"model.epochs": 2}, progress=False)
    assert result.stages["fit"]["status"] == result.stages["generate"]["status"] == "ran"
    assert result.summary["rows"] == 150


def _part_times(folder):
    return {p: p.stat().st_mtime_ns for p in sorted((folder / "population").rglob("part-*.parquet"))}


def test_an_interrupted_generate_resumes_only_an_attempt_of_the_same_settings(tiny, cps1, monkeypatch):
    import microplex.scale as scale

    folder, _ = tiny
    config = {k: v for k, v in _variants(folder, cps1)["streamed"].items() if k != "evaluate"}
    real = scale.generate_dataset

    def interrupted(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # after the parts, before the stage's record

    monkeypatch.setattr(scale, "generate_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config, progress=False)
    out = folder / "out"
    first = _part_times(out)
    monkeypatch.setattr(scale, "generate_dataset", real)
    assert run_pipeline(config, progress=False).stages["generate"]["status"] == "ran"
    assert _part_times(out) == first  # resumed: every part kept
    monkeypatch.setattr(scale, "generate_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(config, overrides={"generate.n": 120}, progress=False)
    monkeypatch.setattr(scale, "generate_dataset", real)
    result = run_pipeline(config, overrides={"generate.n": 130}, progress=False)  # a third setting: regenerated
    assert result.summary["rows"] == 130 == len(pd.read_parquet(out / "population"))
    before = _part_times(out)
    assert run_pipeline(config, overrides={"generate.n": 130}, progress=False).stages["generate"]["status"] == "skipped"
    run_pipeline(config, overrides={"generate.n": 130}, force=True, progress=False)
    after = _part_times(out)
    assert after.keys() == before.keys() and all(after[p] != before[p] for p in after)  # force writes afresh


def test_the_model_file_does_not_depend_on_progress_bars(tiny):
    """`-q` (progress=False) wrote verbose=False into model.mpx: other bytes, so a rerun with bars regenerated the
    population (and a streamed one failed)."""
    folder, config = tiny
    run_pipeline(config, progress=False)
    quiet = (folder / "out" / "model.mpx").read_bytes()
    run_pipeline(config, progress=True, force=True)
    assert (folder / "out" / "model.mpx").read_bytes() == quiet


@pytest.mark.parametrize("variant, output, make", [
    ("calibrated", "calibrated.parquet", "folder"), ("streamed-calibrated", "population", "file"),
    ("calibrated", "report.html", "folder")])
def test_an_existing_output_of_the_other_kind_is_refused_before_any_work(tiny, cps1, variant, output, make):
    """calibrated.parquet left as a folder: the calibrate stage solved, then failed renaming onto it."""
    folder, _ = tiny
    config = _variants(folder, cps1)[variant]
    out = folder / "out"
    out.mkdir()
    (out / output).mkdir() if make == "folder" else (out / output).write_text("x")
    with pytest.raises(DataValidationError, match=rf"out/{output}' of \[\w+\] is an existing {make}"):
        run_pipeline(config, progress=False)
    assert sorted(p.name for p in out.iterdir()) == [output]


def test_one_run_at_a_time_per_output_folder_and_a_killed_runs_temporaries_are_removed(tiny):
    """Two runs on one output folder wrote beside each other; a run killed mid-stage left its temporaries
    (`.tmp-...-model.mpx`) in the output folder for good."""
    import json as _json
    import os

    from microplex import MicroplexError

    folder, config = tiny
    out = folder / "out"
    (out / ".microplex").mkdir(parents=True)
    orphan = out / ".tmp-0123456789ab-model.mpx"
    orphan.write_bytes(b"half")
    kept = out / ".tmp-notours.txt"
    kept.write_text("user file")
    lock = out / ".microplex" / "_microplex.lock"
    lock.write_text(_json.dumps({"pid": os.getpid(), "host": "elsewhere", "time": "now"}))  # a run on another host
    with pytest.raises(MicroplexError, match=r"being written by another microplex pipeline run"):
        run_pipeline(config, progress=False)
    assert orphan.exists() and not (out / "model.mpx").exists()  # nothing touched while another run holds it
    lock.unlink()
    run_pipeline(config, progress=False)
    assert not orphan.exists() and kept.exists() and not lock.exists()
    assert not [p for p in out.rglob(".tmp-*") if p != kept]


def test_a_stage_taken_out_of_the_file_leaves_no_stale_output(tiny, cps1):
    """[sparsify] removed from the file: its subset.parquet from the earlier run stayed beside the new outputs."""
    folder, _ = tiny
    config = _variants(folder, cps1)["calibrated"]
    run_pipeline(config, progress=False)
    out = folder / "out"
    assert (out / "subset.parquet").exists() and (out / "report.html").exists()
    (out / "mine.csv").write_text("a user's file\n")
    # a record naming files it did not write, its checksum recomputed (a checksum is no signature; one that fails
    # removes nothing: tests/test_s75_pipeline_records.py): only the stage's outputs in the output folder go
    from microplex._pipeline_manifest import _checksum

    record = out / ".microplex" / "evaluate.json"
    edited = json.loads(record.read_text())
    edited["outputs"].update({str(folder / "train.parquet"): "", str(out / "mine.csv") + "/..": "", "/etc/passwd": ""})
    edited["checksum"] = _checksum(edited)
    record.write_text(json.dumps(edited))
    config = {k: v for k, v in config.items() if k not in ("sparsify", "evaluate")}
    run_pipeline(config, progress=False)
    names = sorted(p.name for p in out.iterdir())
    assert names == [".microplex", "calibrated.parquet", "calibration_report.csv", "holdout.parquet", "mine.csv",
                     "model.mpx", "summary.json", "synthetic.parquet", "train.parquet"]
    assert sorted(p.name for p in (out / ".microplex").iterdir() if p.suffix == ".json" and ".started" not in p.name) \
        == ["calibrate.json", "fit.json", "generate.json"]
    assert (folder / "train.parquet").exists()


def test_model_rounding_reaches_the_synthesizer(tiny):
    """``model.rounding``: the pipeline's Synthesizer learns a rounding grid unless it is false."""
    folder, config = tiny
    on = run_pipeline(config, progress=False)
    off = run_pipeline({**config, "output": "off", "model": {**config["model"], "rounding": False}}, progress=False)
    grids = [Synthesizer.load(r.output / "model.mpx").rounded_vars_ for r in (on, off)]
    assert grids == [["re78"], []]
