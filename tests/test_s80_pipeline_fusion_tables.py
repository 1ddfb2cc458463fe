"""The pipeline's [fuse] stage keeps what fusion reports: the FusionResult's ``bounds``, ``diagnostics`` and
``shared_comparison`` are written beside ``fused.parquet`` (``fusion_bounds.csv``, ``fusion_diagnostics.csv``,
``fusion_shared.csv``), recorded in the stage's manifest and the run's summary, named with the widest bound on
the command line's stage line and shown in the evaluation report (before: only ``fused.parquet`` and a row count
were kept, so a command-line user never saw the bounds docs/fusion.md says to report)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from microplex._errors import DataValidationError
from microplex.cli import app
from microplex.io import file_sha256
from microplex.pipeline import run_pipeline

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TABLES = ("fusion_bounds.csv", "fusion_diagnostics.csv", "fusion_shared.csv")


def _fused_config(folder, cps1, evaluate: bool = True) -> dict:
    """Base ``cps`` (age, marr, re78) and donor (age, marr, educ) sharing age and marr: ``educ`` is imputed, and
    (educ, re78) is the one pair of numeric variables no source observes together."""
    cps1.head(200)[["age", "marr", "re78"]].to_parquet(folder / "train.parquet")
    cps1.iloc[200:400][["age", "marr", "educ"]].to_parquet(folder / "donor.parquet")
    config = {"output": "out", "seed": 0,
              "sources": [{"name": "cps", "path": "train.parquet"}, {"name": "donor", "path": "donor.parquet"}],
              "fuse": {"base": "cps", "shared": ["age", "marr"], "synthesizer": {"epochs": 1}},
              "model": {"targets": ["re78", "educ"], "conditions": ["age", "marr"], "epochs": 1},
              "generate": {"n": 50}}
    if evaluate:
        config["evaluate"] = {"max_rows": 200, "pmse": False}
    return config


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory, cps1):
    """One fused pipeline with [evaluate], run through the command line."""
    folder = tmp_path_factory.mktemp("fused")
    (folder / "p.yaml").write_text(yaml.safe_dump(_fused_config(folder, cps1)))
    result = CliRunner().invoke(app, ["run", str(folder / "p.yaml")])
    assert result.exit_code == 0, result.output
    return folder / "out", result.output


def test_the_fuse_stage_writes_its_tables_beside_the_fused_records(fused_run):
    out, _ = fused_run
    bounds = pd.read_csv(out / "fusion_bounds.csv")
    assert list(bounds.columns) == ["y", "z", "y_source", "z_source", "shared", "lower", "cia", "upper", "fused",
                                    "auxiliary"]
    assert bounds[["y", "z", "y_source", "z_source", "shared"]].to_dict("records") == [
        {"y": "educ", "z": "re78", "y_source": "donor", "z_source": "cps", "shared": '["age", "marr"]'}]
    row = bounds.iloc[0]
    assert -1 <= row["lower"] <= row["cia"] <= row["upper"] <= 1 and row["upper"] - row["lower"] > 0.5
    assert bounds["auxiliary"].isna().all()
    fused = pd.read_parquet(out / "fused.parquet")  # no weight column: the base's weights are ones
    assert row["fused"] == pytest.approx(np.corrcoef(fused["educ"], fused["re78"])[0, 1], abs=1e-9)

    diagnostics = pd.read_csv(out / "fusion_diagnostics.csv")
    assert list(diagnostics.columns) == ["variable", "donor", "predictors", "auxiliary", "kind", "n_fit", "n_holdout",
                                         "ks", "tvd", "point_mass_error", "missing_error", "max_corr_error",
                                         "corr_true_imputed", "agreement", "log_lik"]
    assert diagnostics[["variable", "donor", "predictors", "auxiliary", "kind", "n_fit", "n_holdout"]].to_dict(
        "records") == [{"variable": "educ", "donor": "donor", "predictors": '["age", "marr"]', "auxiliary": "[]",
                        "kind": "numeric", "n_fit": 160, "n_holdout": 40}]
    assert 0 <= diagnostics.loc[0, "ks"] <= 1 and math.isfinite(diagnostics.loc[0, "log_lik"])

    shared = pd.read_csv(out / "fusion_shared.csv")
    assert list(shared.columns) == ["variable", "base", "donor", "kind", "smd", "ks", "tvd"]
    assert shared[["variable", "base", "donor", "kind"]].to_dict("records") == [
        {"variable": v, "base": "cps", "donor": "donor", "kind": "numeric"} for v in ("age", "marr")]


def test_the_manifest_summary_command_line_and_report_name_the_tables(fused_run):
    out, output = fused_run
    record = json.loads((out / ".microplex" / "fuse.json").read_text())
    for name in TABLES:  # hashed as the stage's other outputs: a file edited or removed reruns the stage
        assert record["outputs"][str(out / name)] == file_sha256(out / name)
    widest = record["figures"]["widest_bound"]
    bounds = pd.read_csv(out / "fusion_bounds.csv").iloc[0]
    assert (widest["y"], widest["z"]) == ("educ", "re78")
    assert [widest[k] for k in ("lower", "cia", "upper", "fused")] == [bounds[k] for k in ("lower", "cia", "upper",
                                                                                           "fused")]
    text = f"educ x re78 [{bounds['lower']:.3f}, {bounds['upper']:.3f}] (cia {bounds['cia']:.3f}, fused " \
           f"{bounds['fused']:.3f})"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["widest_bound"] == text and summary["bound_pairs"] == 1
    assert [summary[k] for k in ("fusion_bounds", "fusion_diagnostics", "fusion_shared")] == [str(out / n)
                                                                                            for n in TABLES]
    fuse_line = next(line for line in output.splitlines() if line.strip().startswith("fuse "))
    assert f"200 fused records; 1 pair never observed together, the widest {text} in fusion_bounds.csv" in fuse_line
    assert f"widest_bound: {text}" in output and f"fusion_bounds: {out / 'fusion_bounds.csv'}" in output
    html = (out / "report.html").read_text()
    section = html[html.index('<h2 id="fusion-bounds">Fusion bounds</h2>'):html.index('<h2 id="calibration">')]
    assert "<td>educ</td>" in section and "<td>re78</td>" in section and f"<td>{bounds['lower']:.3f}</td>" in section
    assert 'href="#fusion-bounds"' in html  # in the page's contents


def test_the_fusion_tables_are_byte_identical_for_one_seed(fused_run, tmp_path, cps1):
    out, _ = fused_run
    config = _fused_config(tmp_path, cps1, evaluate=False)
    run_pipeline({**config, "_base": str(tmp_path)}, progress=False)
    for name in TABLES:
        assert (tmp_path / "out" / name).read_bytes() == (out / name).read_bytes(), name


def test_a_removed_or_edited_fusion_table_reruns_the_fuse_stage(tmp_path, cps1):
    """As for ``fused.parquet``: a table removed or edited after the run makes [fuse] run again and write it as it
    was (the fused records too, byte for byte, so the fit is skipped); a run without [fuse] removes them."""
    config = {**_fused_config(tmp_path, cps1, evaluate=False), "_base": str(tmp_path)}
    run_pipeline(config, progress=False)
    out = tmp_path / "out"
    written = {name: (out / name).read_bytes() for name in TABLES}
    (out / "fusion_diagnostics.csv").unlink()
    again = run_pipeline(config, progress=False)
    assert again.stages["fuse"]["status"] == "ran" and again.stages["fit"]["status"] == "skipped"
    assert {name: (out / name).read_bytes() for name in TABLES} == written
    (out / "fusion_bounds.csv").write_text("y,z,lower,upper\nx,y,-1,1\n")
    edited = run_pipeline(config, progress=False)
    assert edited.stages["fuse"]["status"] == "ran" and edited.stages["fuse"]["widest_bound"]["y"] == "educ"
    assert (out / "fusion_bounds.csv").read_bytes() == written["fusion_bounds.csv"]
    skipped = run_pipeline(config, progress=False)
    assert skipped.stages["fuse"]["status"] == "skipped" and skipped.summary["bound_pairs"] == 1
    assert skipped.summary["widest_bound"].startswith("educ x re78 [")
    alone = {**config, "sources": config["sources"][:1], "model": {**config["model"], "targets": ["re78"]}}
    del alone["fuse"]
    run_pipeline(alone, progress=False)
    assert not any((out / name).exists() for name in (*TABLES, "fused.parquet"))


_WIDEST = {"y": "educ", "z": "re78", "lower": -0.9, "cia": 0.1, "upper": 0.9, "fused": 0.08}


@pytest.mark.parametrize("figures,valid", [
    ({"rows": 200, "note": "n", "bound_pairs": 1, "widest_bound": _WIDEST, "fusion_bounds": "/o/fusion_bounds.csv",
      "fusion_diagnostics": "/o/fusion_diagnostics.csv", "fusion_shared": "/o/fusion_shared.csv"}, True),
    ({"rows": 200, "note": "n", "bound_pairs": 0}, True),
    ({"rows": 200, "widest_bound": {**_WIDEST, "fused": float("nan")}}, True),  # no fused correlation defined
    ({"rows": 200, "bound_pairs": -1}, False),
    ({"rows": 200, "bound_pairs": 1.5}, False),
    ({"rows": 200, "widest_bound": {**_WIDEST, "lower": 0.95}}, False),  # lower above upper
    ({"rows": 200, "widest_bound": {**_WIDEST, "upper": 3.0}}, False),  # not a correlation
    ({"rows": 200, "widest_bound": {**_WIDEST, "lower": float("nan")}}, False),
    ({"rows": 200, "widest_bound": {**_WIDEST, "cia": "0.1"}}, False),
    ({"rows": 200, "widest_bound": {**_WIDEST, "y": 3}}, False),
    ({"rows": 200, "widest_bound": {**_WIDEST, "extra": 1.0}}, False),
    ({"rows": 200, "widest_bound": "educ x re78"}, False),
    ({"rows": 200, "fusion_bounds": ["fusion_bounds.csv"]}, False),
])
def test_a_fuse_record_holds_only_the_figures_the_stage_writes(figures, valid):
    """A manifest is untrusted: a record whose fuse figures are not of the stage's kinds counts as absent."""
    from microplex._pipeline_manifest import valid_figures

    assert valid_figures("fuse", figures) is valid


def test_the_evaluate_stage_reads_the_bounds_as_untrusted_data(tmp_path):
    from microplex._pipeline_stages import _read_bounds

    head = "y,z,y_source,z_source,shared,lower,cia,upper,fused,auxiliary\n"
    good = tmp_path / "fusion_bounds.csv"
    good.write_text(head + '1,re78,donor,cps,"[""age""]",-0.5,0.1,0.7,0.12,\n')
    table = _read_bounds(good)
    assert table.loc[0, "y"] == "1" and table.loc[0, "upper"] == 0.7 and math.isnan(table.loc[0, "auxiliary"])
    empty = tmp_path / "empty.csv"
    empty.write_text(head)
    assert len(_read_bounds(empty)) == 0
    text = tmp_path / "text.csv"
    text.write_text(head + 'educ,re78,donor,cps,"[]",wide,0.1,0.7,0.12,\n')
    with pytest.raises(DataValidationError, match=r"(?s)'lower'.*--force"):
        _read_bounds(text)
    other = tmp_path / "other.csv"
    other.write_text("y,z,y_source,z_source,shared,lower,cia,upper,fused,auxiliary,more\n")
    with pytest.raises(DataValidationError, match=r"other\.csv.*columns.*--force"):
        _read_bounds(other)


def test_the_report_lists_the_widest_bounds_first_with_the_names_escaped():
    from microplex.evaluation._html import MAX_BOUNDS, _fusion_bounds

    rows = [{"y": "<b>y</b>", "z": "z", "y_source": "b", "z_source": "a", "shared": ("x1", "x2"), "lower": -0.2,
             "cia": 0.1, "upper": 0.3, "fused": 0.11, "auxiliary": np.nan},
            {"y": "w", "z": "z", "y_source": "b", "z_source": "a", "shared": ("x1",), "lower": -0.9, "cia": 0.0,
             "upper": 0.9, "fused": 0.02, "auxiliary": np.nan}]
    html = _fusion_bounds(pd.DataFrame(rows))
    assert "<b>y</b>" not in html and "&lt;b&gt;y&lt;/b&gt;" in html
    assert html.index("<td>w</td>") < html.index("&lt;b&gt;y")  # width 1.8 before 0.5
    assert "<td>x1, x2</td>" in html and "auxiliary" not in html.split("</p>", 1)[1]
    many = pd.DataFrame([{**rows[1], "y": f"v{i}", "upper": i / 1000} for i in range(MAX_BOUNDS + 5)])
    assert f"The {MAX_BOUNDS} widest of {MAX_BOUNDS + 5:,} pairs" in _fusion_bounds(many)
    assert "nothing to bound" in _fusion_bounds(pd.DataFrame(columns=list(rows[0])))
