import pandas as pd
from typer.testing import CliRunner

from microplex.cli import app

runner = CliRunner()


def test_fit_generate_calibrate_sparsify_evaluate(tmp_path, cps1):
    data = tmp_path / "train.csv"
    cps1.head(1500).to_csv(data, index=False)
    model, synth = tmp_path / "m.mpx", tmp_path / "s.parquet"
    r = runner.invoke(app, ["fit", str(data), "--targets", "re78", "--conditions", "age,marr", "-o", str(model), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["generate", str(model), "--n", "600", "-o", str(synth)])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(synth).shape == (600, 3)

    targets = tmp_path / "t.csv"
    pd.DataFrame({"filter": ["marr == 0", "marr == 1", ""], "aggregate": ["count", "count", "sum"],
                  "variable": [None, None, "re78"], "value": [400.0, 1100.0, 2.2e7]}).to_csv(targets, index=False)
    weighted = tmp_path / "w.parquet"
    r = runner.invoke(app, ["calibrate", str(synth), "--targets", str(targets), "--bounds", "0.1,10", "-o", str(weighted)])
    assert r.exit_code == 0, r.output
    w = pd.read_parquet(weighted)
    assert abs(w.loc[w.marr == 0, "weight"].sum() - 400) < 1e-6

    subset = tmp_path / "sub.parquet"
    r = runner.invoke(app, ["sparsify", str(weighted), "--targets", str(targets), "--max-records", "50", "-o", str(subset)])
    assert r.exit_code == 0, r.output
    assert 0 < len(pd.read_parquet(subset)) <= 50

    report = tmp_path / "r.html"
    real = tmp_path / "real.parquet"
    cps1[["age", "marr", "re78"]].head(1000).to_parquet(real)
    r = runner.invoke(app, ["evaluate", str(real), str(synth), "--report", str(report)])
    assert r.exit_code == 0, r.output
    assert report.stat().st_size > 1000


def test_errors_are_one_clear_line(tmp_path):
    r = runner.invoke(app, ["fit", str(tmp_path / "nope.csv"), "--targets", "x", "-o", str(tmp_path / "m.mpx")])
    assert r.exit_code == 1
    assert "does not exist" in r.output
    assert "Traceback" not in r.output
    r = runner.invoke(app, ["run", str(tmp_path / "nope.toml")])
    assert r.exit_code == 1 and "error:" in r.output


# -- trust: one `error:` line and status 1 on every bad input, 2 on a bug (issue 15) ------------
import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from microplex import Synthesizer  # noqa: E402


def _error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith("error:")]


def assert_one_error(result, match=None, code=1):
    assert result.exit_code == code, result.output
    lines = _error_lines(result)
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if match is not None:
        assert match.lower() in lines[0].lower(), lines[0]


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def files(tmp_path_factory, cps1):
    """A tiny table, a model fitted on it (1 epoch) and a targets file."""
    folder = tmp_path_factory.mktemp("cli")
    data = cps1.head(300)[["age", "marr", "re78"]]
    data.to_csv(folder / "data.csv", index=False)
    data.to_parquet(folder / "data.parquet")
    Synthesizer(["re78"], ["age", "marr"], epochs=1, verbose=False).fit(data, seed=0).save(folder / "model.mpx")
    (folder / "t.csv").write_text("aggregate,variable,filter,value\ncount,,marr == 0,100\ncount,,marr == 1,200\n")
    return folder


@pytest.mark.parametrize(
    "args, match",
    [
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{o}/m.mpx", "--epochs", "0"], "'--epochs' option must be 'auto' or an int >= 1"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{o}/m.mpx", "--epochs", "x"], "'--epochs' option must be 'auto' or an int >= 1. Got 'x' instead"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{o}/m.mpx", "--seed", "-1"], "'--seed' option must be an int in [0, 2**64 - 1]. Got -1"),
        (["fit", "{d}/data.csv", "--targets", "", "-o", "{o}/m.mpx"], "'--targets' option must name at least one"),
        (["fit", "{d}/data.csv", "--targets", "re78,,age", "-o", "{o}/m.mpx"], "comma-separated list of distinct"),
        (["fit", "{d}/data.csv", "--targets", "nope", "-o", "{o}/m.mpx"], "The columns ['nope'] are not in"),
        (["fit", "{d}/data.csv", "--targets", "re78", "--flow", "realnvp", "-o", "{o}/m.mpx"], "'--flow' option must be one of"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{d}/data.csv"], "would overwrite the input"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{o}"], "is a folder"),
        (["fit", "{d}/nope.csv", "--targets", "re78", "-o", "{o}/m.mpx"], "does not exist"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{d}/data.csv/m.mpx"], "would overwrite the input"),
        (["fit"], "Missing argument"),
        (["fit", "{d}/data.csv", "--bogus"], "No such option: --bogus"),
        (["bogus"], "No such command 'bogus'"),
        (["generate", "{d}/model.mpx", "--n", "2.5", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "-1", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "inf", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "nan", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "lots", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "9007199254740993", "-o", "{o}/s.parquet"], "'--n' option must be an int"),
        (["generate", "{d}/model.mpx", "--n", "5", "--population", "0", "-o", "{o}/s.parquet"], "'--population' option"),
        (["generate", "{d}/model.mpx", "--n", "5", "--population", "nan", "-o", "{o}/s.parquet"], "'--population'"),
        (["generate", "{d}/model.mpx", "--n", "0", "--population", "10", "-o", "{o}/s.parquet"], "at least one record"),
        (["generate", "{d}/model.mpx", "--n", "5", "--population", "10", "--stream", "-o", "{o}/pop"], "streamed"),
        (["generate", "{d}/model.mpx", "--n", "5", "--population", "10", "--weight", "age", "-o", "{o}/s.parquet"],
         "'--weight' column 'age' is a model column"),
        (["generate", "{d}/model.mpx", "--n", "5", "--population", "10", "--weight", " ", "-o", "{o}/s.parquet"],
         "'--weight' option"),
        (["fit", "{d}/data.csv", "--targets", "re78", "-o", "{o}/m.mpx", "-q", "-v"], "exclude each other"),
        (["generate", "{d}/model.mpx", "--n", "1e15", "-o", "{o}/s.parquet"], "records in memory"),
        (["generate", "{d}/model.mpx", "--n", "5", "-o", "{d}/model.mpx"], "would overwrite the input"),
        (["generate", "{d}/model.mpx", "--n", "1e15", "--stream", "-o", "{o}/pop"], "'--n' option asks for 1,000,000,000,000,000 records, at least 2,728.5 TiB on disk"),
        (["generate", "{d}/model.mpx", "-o", "{o}/s.parquet"], "exactly one of --conditions or --n"),
        (["generate", "{d}/model.mpx", "--n", "5", "--stream", "--rows-per-file", "0", "-o", "{o}/pop"], "'--rows-per-file' option must be an int >= 1. Got 0"),
        (["generate", "{d}/model.mpx", "--n", "5", "--partition-by", "age,", "-o", "{o}/pop"], "'--partition-by' option"),
        (["generate", "{d}/data.csv", "--n", "5", "-o", "{o}/s.parquet"], "error"),
        # Parquet written under a .csv name, and --scheduler / --torch-threads silently ignored without streaming
        (["generate", "{d}/model.mpx", "--n", "5", "-o", "{o}/s.csv"], "must end in .parquet or .pq: the command writes Parquet"),
        (["generate", "{d}/model.mpx", "--n", "5", "--scheduler", "tcp://x:1", "-o", "{o}/s.parquet"], "act only when streaming"),
        (["generate", "{d}/model.mpx", "--n", "5", "--torch-threads", "2", "-o", "{o}/s.parquet"], "act only when streaming"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/w.csv"], "must end in .parquet"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/w.parquet", "--report", "{o}/r.txt"],
         "must end in .csv: the command writes CSV"),
        (["sparsify", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/s.txt"], "must end in .parquet"),
        (["evaluate", "{d}/data.csv", "{d}/data.parquet", "--report", "{o}/r.pdf"], "must end in .html or .htm"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "--bounds", "5,1", "-o", "{o}/w.parquet"], "'--bounds' option"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "--bounds", "x", "-o", "{o}/w.parquet"], "'--bounds' option"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "--bounds", "0.5,nan", "-o", "{o}/w.parquet"], "'--bounds'"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "--method", "magic", "-o", "{o}/w.parquet"], "'--method' option"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{d}/data.parquet"], "would overwrite the input"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/w.parquet", "--report", "{d}/t.csv"],
         "would overwrite the input"),
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "-o", "{o}/w.parquet", "--report", "{o}/w.parquet/r.csv"],
         "would overwrite the 'out' output"),  # was: "... the input", of an output
        (["calibrate", "{d}/data.parquet", "--targets", "{d}/data.csv", "-o", "{o}/w.parquet"], "targets file"),
        (["sparsify", "{d}/data.parquet", "--targets", "{d}/t.csv", "--max-records", "0", "-o", "{o}/s.parquet"], "'--max-records' option must be an int >= 1. Got 0"),
        (["sparsify", "{d}/data.parquet", "--targets", "{d}/t.csv", "--tolerance", "-1", "-o", "{o}/s.parquet"], "'--tolerance' option"),
        (["sparsify", "{d}/data.parquet", "--targets", "{d}/t.csv", "--method", "l2", "-o", "{o}/s.parquet"], "'--method' option"),
        (["evaluate", "{d}/data.csv", "{d}/data.parquet", "--report", "{d}/data.csv"], "would overwrite the input"),
        (["evaluate", "{d}/data.csv", "{d}/data.parquet", "--report", "{o}/r.html", "--conditions", "nope"], "'--conditions'"),
        (["evaluate", "{d}/data.csv", "{d}/data.parquet", "--report", "{o}/r.html", "--weight", "w"], "'--weight' column 'w' is not in the real file"),
        (["demo", "--rows", "0", "--epochs", "1", "-q", "-o", "{o}/demo"], "'--rows' option must be an int >= 1"),
        (["demo", "--epochs", "0", "-q", "-o", "{o}/demo"], "'--epochs' option must be 'auto' or an int >= 1"),
        (["demo", "--geo", "--rows", "0", "-q", "-o", "{o}/demo"], "'--rows' option must be an int >= 1"),
        (["run", "{d}/nope.toml"], "does not exist"),
        (["run", "{d}/data.csv"], "must end in .toml"),
    ],
)
def test_bad_options_are_one_error_line_and_write_nothing(files, tmp_path, args, match):
    """Bad option values crashed after work (`demo --rows 0`), printed a usage box or a traceback,
    or overwrote an input (`-o` equal to the data file)."""
    before = _digests(files)
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(app, [a.format(d=files, o=out) for a in args])
    assert_one_error(r, match)
    assert list(out.iterdir()) == [] and _digests(files) == before


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("bad.parquet", b"PAR1 this is not parquet", "Cannot read"),
        ("bad.csv", b"age,re78\n\xff\xfe,1\n", "the file is not UTF-8 text"),
        ("bad.csv", b"", "Cannot read"),
        ("bad.csv", b'age,re78\n"unclosed,1\n', "Cannot read"),
        ("dup.csv", b"age,age\n1,2\n", "error"),
        ("bad.json", b"{not json", "Cannot read"),
    ],
)
def test_unreadable_input_files_are_one_error_line(tmp_path, name, content, match):
    """pyarrow and pandas parser errors leaked from the CLI as raw exceptions."""
    path = tmp_path / name
    path.write_bytes(content)
    r = runner.invoke(app, ["fit", str(path), "--targets", "re78", "-o", str(tmp_path / "m.mpx"), "--epochs", "1"])
    assert_one_error(r, match)
    assert not (tmp_path / "m.mpx").exists()


@pytest.mark.parametrize(
    "content, match",
    [(b"targets: [unclosed\n", "targets file"),
     (b"targets: !!python/object/apply:os.system ['echo pwned']\n", "targets file"),
     (b"targets:\n  - 5\n", "targets file"),
     (b"\xff\xfe", "targets file")],
)
def test_tampered_targets_yaml_is_one_error_line(files, tmp_path, content, match):
    targets = tmp_path / "t.yaml"
    targets.write_bytes(content)
    r = runner.invoke(app, ["calibrate", str(files / "data.parquet"), "--targets", str(targets), "-o", str(tmp_path / "w.parquet")])
    assert_one_error(r, match)
    assert not (tmp_path / "w.parquet").exists()


def test_an_internal_error_is_one_line_with_status_2(files, tmp_path, monkeypatch):
    """A bug is not a bad input: one line that says so, status 2 (it was a raw exception)."""
    import microplex.cli as cli

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(cli, "read_table", broken)
    r = runner.invoke(app, ["fit", str(files / "data.csv"), "--targets", "re78", "-o", str(tmp_path / "m.mpx")])
    assert_one_error(r, "error: internal error (RuntimeError: boom second line)", code=2)


def test_run_refuses_an_output_folder_holding_its_source(files, tmp_path):
    """`output = "."` beside the source: the fit stage overwrote the source (400 -> 320 rows)."""
    (tmp_path / "train.parquet").write_bytes((files / "data.parquet").read_bytes())
    (tmp_path / "p.toml").write_text('output = "."\n[[sources]]\nname = "a"\npath = "train.parquet"\n'
                                     '[model]\ntargets = ["re78"]\nconditions = ["age"]\nepochs = 1\n[generate]\nn = 10\n')
    before = _digests(tmp_path)
    r = runner.invoke(app, ["run", str(tmp_path / "p.toml"), "-q"])
    assert_one_error(r, "holds the input")
    assert _digests(tmp_path) == before and not (tmp_path / ".microplex").exists()
    r = runner.invoke(app, ["run", str(tmp_path / "p.toml"), "-q", "--set", "output=out", "--set", "generate.n=lots"])
    assert_one_error(r, "'generate.n' parameter")
    assert not (tmp_path / "out").exists()


def test_generate_conditions_without_the_model_columns_is_one_error_line(files, tmp_path):
    pd.read_parquet(files / "data.parquet")[["age"]].to_parquet(tmp_path / "cond.parquet")
    r = runner.invoke(app, ["generate", str(files / "model.mpx"), "--conditions", str(tmp_path / "cond.parquet"),
                            "-o", str(tmp_path / "s.parquet")])
    assert_one_error(r, "lacks the model's condition columns ['marr']")
    assert not (tmp_path / "s.parquet").exists()


# -- conventions: --version, -q/-v on every verb, --population, options checked before any work ----
import dataclasses  # noqa: E402

import microplex  # noqa: E402

VERBS = ["run", "demo", "fit", "generate", "calibrate", "sparsify", "evaluate"]


def test_version_option_and_command_print_the_version():
    for args in (["--version"], ["version"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and r.output.strip() == microplex.__version__, r.output


@pytest.mark.parametrize("module", ["microplex", "microplex.cli"])
def test_python_dash_m_runs_the_command_line(module, tmp_path):
    # ``python -m microplex`` had no __main__.py (exit 1, "cannot be directly executed") and ``python -m
    # microplex.cli`` no __main__ guard (exit 0, did nothing): both now run the console script's command line
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(Path(microplex.__file__).parents[1]))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", module, *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == microplex.__version__, (done.stdout, done.stderr)
    done = run("--help")
    assert done.returncode == 0 and done.stdout.startswith("Usage: microplex ") and "calibrate" in done.stdout, done
    done = run("no-such-verb")
    assert done.returncode == 1 and done.stderr.strip() == "error: No such command 'no-such-verb'.", done
    assert done.stdout == ""


def test_the_package_ships_no_conftest():
    assert not (Path(microplex.__file__).parent / "conftest.py").exists()


@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_takes_quiet_and_verbose(verb):
    r = runner.invoke(app, [verb, "--help"])
    assert r.exit_code == 0 and "-q, --quiet" in r.output and "-v, --verbose" in r.output, r.output


def test_quiet_prints_nothing_and_verbose_logs(files, tmp_path):
    model = tmp_path / "m.mpx"
    r = runner.invoke(app, ["fit", str(files / "data.csv"), "--targets", "re78", "--conditions", "age,marr",
                            "--epochs", "1", "-o", str(model), "-q"])
    assert r.exit_code == 0 and r.output == "" and model.exists(), r.output
    r = runner.invoke(app, ["generate", str(model), "--n", "20", "-o", str(tmp_path / "s.parquet"), "-q"])
    assert r.exit_code == 0 and r.output == "" and len(pd.read_parquet(tmp_path / "s.parquet")) == 20
    r = runner.invoke(app, ["generate", str(model), "--n", "20", "-o", str(tmp_path / "s2.parquet")])
    assert r.exit_code == 0 and "Wrote 20 records" in r.output


def test_generate_population_writes_a_weight_column(files, tmp_path):
    out = tmp_path / "s.parquet"
    r = runner.invoke(app, ["generate", str(files / "model.mpx"), "--n", "1e2", "--population", "5000", "-o", str(out)])
    assert r.exit_code == 0, r.output
    synthetic = pd.read_parquet(out)
    assert len(synthetic) == 100 and synthetic["weight"].sum() == pytest.approx(5000)
    assert (synthetic["weight"] == 50).all() and "weight 'weight': 5,000 in total" in r.output
    out = tmp_path / "c.parquet"
    cond = tmp_path / "cond.parquet"  # the conditions without the target column (a file with it is refused)
    pd.read_parquet(files / "data.parquet").drop(columns=["re78"]).to_parquet(cond)
    r = runner.invoke(app, ["generate", str(files / "model.mpx"), "--conditions", str(cond),
                            "--population", "600", "--weight", "w", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert pd.read_parquet(out)["w"].tolist() == [2.0] * 300


@pytest.mark.parametrize(
    "args",
    [["demo", "--rows", "0", "-o", "{o}/demo"], ["demo", "--epochs", "0", "-o", "{o}/demo"],
     ["demo", "-q", "-v", "-o", "{o}/demo"], ["run", "{d}/p.toml", "--set", "generate.n=0"],
     ["run", "{d}/p.toml", "--set", "model.epochs=2.5"],
     ["fit", "{d}/data.csv", "--targets", "re78", "--epochs", "0", "-o", "{o}/m.mpx"],
     ["fit", "{d}/data.csv", "--targets", "nope", "-o", "{o}/m.mpx"],
     ["generate", "{d}/model.mpx", "--n", "1.5", "-o", "{o}/s.parquet"],
     ["generate", "{d}/model.mpx", "--n", "5", "--population", "-1", "-o", "{o}/s.parquet"],
     ["generate", "{d}/model.mpx", "--n", "5", "--stream", "--rows-per-file", "0", "-o", "{o}/pop"],
     ["calibrate", "{d}/data.parquet", "--targets", "{d}/t.csv", "--bounds", "5,1", "-o", "{o}/w.parquet"],
     ["sparsify", "{d}/data.parquet", "--targets", "{d}/t.csv", "--tolerance", "0", "-o", "{o}/s.parquet"],
     ["evaluate", "{d}/data.csv", "{d}/data.parquet", "--report", "{o}/r.html", "--conditions", "nope"]],
)
def test_options_are_checked_before_any_work_starts(files, tmp_path, monkeypatch, args):
    """`demo --rows 0` fitted a model before failing: a bad option may not start a fit, a generation, a solve."""
    import microplex.calibration as calibration
    import microplex.evaluation as evaluation
    import microplex.scale as scale
    from microplex import _pipeline_stages

    def started(*args, **kwargs):
        raise AssertionError("work started before the options were checked")

    for owner, name in ((Synthesizer, "fit"), (Synthesizer, "sample"), (Synthesizer, "generate"),
                        (calibration.Calibrator, "fit"), (calibration.SparseCalibrator, "fit"),
                        (evaluation, "evaluate"), (scale, "generate_dataset")):
        monkeypatch.setattr(owner, name, started)
    monkeypatch.setattr(_pipeline_stages, "STAGE_TABLE", tuple(
        dataclasses.replace(s, run=started) for s in _pipeline_stages.STAGE_TABLE))
    (files / "p.toml").write_text('output = "out"\n[[sources]]\nname = "a"\npath = "data.parquet"\n'
                                  '[model]\ntargets = ["re78"]\nepochs = 1\n[generate]\nn = 10\n')
    out = tmp_path / "out"
    out.mkdir()
    r = runner.invoke(app, [a.format(d=files, o=out) for a in args])
    assert_one_error(r)
    assert list(out.iterdir()) == [] and not (files / "out").exists()


def test_demo_help_states_the_bundled_pipelines_defaults():
    """`demo --help` said the geography demo trains 12 epochs; its file says 6."""
    import tomllib
    from importlib import resources

    text = " ".join(runner.invoke(app, ["demo", "--help"], terminal_width=400).output.split())
    for folder, pattern in (("demo", "the pipeline's, {} or with"), ("demo_geo", "or with --geo {})")):
        config = tomllib.loads(resources.files("microplex.datasets").joinpath(folder, "pipeline.toml").read_text())
        assert pattern.format(f"{config['generate']['n']:,}") in text
        assert pattern.format(config["model"].get("epochs", "'auto'")) in text
