"""A differentially private fit from the command line (`microplex fit --epsilon --delta --public`) and the
public metadata file it reads (`microplex.io.read_public_metadata`), on the real cps1 extract."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import DataValidationError, Synthesizer
from microplex.cli import app
from microplex.io import read_public_metadata

runner = CliRunner()
TARGETS, CONDITIONS = ["re78"], ["age", "black"]
PUBLIC = {"bounds": {"re78": [0, 25564.67], "age": [16, 55]}, "categories": {"black": [0, 1]},
          "point_masses": {"re78": [0, 25564.67]}}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from microplex.datasets import load_dataset

    folder = tmp_path_factory.mktemp("s53dp")
    load_dataset("cps1")[TARGETS + CONDITIONS].head(1_500).to_csv(folder / "train.csv", index=False)
    (folder / "public.yaml").write_text(json.dumps(PUBLIC))  # JSON is YAML
    return folder


def _fit(files, out, *extra):
    return runner.invoke(app, ["fit", str(files / "train.csv"), "--targets", ",".join(TARGETS), "--conditions",
                               ",".join(CONDITIONS), "-o", str(out), "--epochs", "1", *extra])


def test_a_dp_fit_from_the_command_line(files, tmp_path):
    """`microplex fit` had no DP option: a command-line user could not make a differentially private model. Now
    --epsilon/--delta/--public fit one (conditions from a condition model, no training row in the file), print the
    budget spent, and a DP fit without --seed draws a secret seed (two fits differ) while --seed reproduces."""
    r = _fit(files, tmp_path / "m.mpx", "--epsilon", "1", "--delta", "1e-5", "--public", str(files / "public.yaml"))
    assert r.exit_code == 0, r.output
    assert "privacy spent: epsilon" in r.output
    m = Synthesizer.load(tmp_path / "m.mpx")
    assert m.epsilon == 1.0 and 0.99 <= m.privacy_["epsilon"] <= 1.0
    assert m.condition_model_ is not None and getattr(m, "training_conditions_", None) is None
    assert m.point_masses_["re78"] == (0.0, 25564.67)  # the file's point masses became the schema's
    # A secret seed by default: a second fit differs; an explicit seed reproduces the file's bytes.
    assert _fit(files, tmp_path / "m2.mpx", "--epsilon", "1", "--delta", "1e-5", "--public",
                str(files / "public.yaml"), "-q").exit_code == 0
    a = Synthesizer.load(tmp_path / "m2.mpx").sample(300, seed=1)
    assert not a.equals(m.sample(300, seed=1))
    for name in ("s1.mpx", "s2.mpx"):
        assert _fit(files, tmp_path / name, "--epsilon", "1", "--delta", "1e-5", "--public",
                    str(files / "public.yaml"), "--seed", "7", "-q").exit_code == 0
    assert (tmp_path / "s1.mpx").read_bytes() == (tmp_path / "s2.mpx").read_bytes()


def test_condition_model_without_dp_and_the_seed_default(files, tmp_path):
    """--condition-model alone: fully synthetic (no training condition row kept); without --epsilon the seed is
    still 0 by default (two fits give the same file)."""
    for name in ("a.mpx", "b.mpx"):
        r = _fit(files, tmp_path / name, "--condition-model", "-q")
        assert r.exit_code == 0, r.output
    assert (tmp_path / "a.mpx").read_bytes() == (tmp_path / "b.mpx").read_bytes()
    m = Synthesizer.load(tmp_path / "a.mpx")
    assert m.epsilon is None and getattr(m, "training_conditions_", None) is None


@pytest.mark.parametrize("extra, message", [
    (["--delta", "1e-5"], "--delta needs differential privacy"),
    (["--public", "PUBLIC"], "--public needs differential privacy"),
    (["--epsilon", "1", "--delta", "1e-5"], "needs --delta and --public"),
    (["--epsilon", "1", "--public", "PUBLIC"], "needs --delta and --public"),
    (["--epsilon", "0", "--delta", "1e-5", "--public", "PUBLIC"], "'--epsilon'"),
    (["--epsilon", "1", "--delta", "1e-5", "--public", "MISSING"], "does not exist"),
])
def test_bad_dp_options_give_one_error_line(files, tmp_path, extra, message):
    extra = [str(files / "public.yaml") if e == "PUBLIC" else str(tmp_path / "no.yaml") if e == "MISSING" else e
             for e in extra]
    r = _fit(files, tmp_path / "m.mpx", *extra)
    assert r.exit_code == 1 and message in r.output, r.output
    assert r.output.count("error:") == 1
    assert not (tmp_path / "m.mpx").exists()


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", "expected a mapping"),
    ("bounds: {age: [16, 55]}\nbound: {re78: [0, 1]}", "unknown section 'bound'"),
    ("bounds: {age: [16]}", "bounds.age must be [low, high]"),
    ("bounds: {age: 16}", "bounds.age must be [low, high]"),
    ("categories: {black: 1}", "categories.black must be a list of values"),
    ("categories: []", "section 'categories' must map column names"),
    ("point_masses: {re78: [0, 0]}", "section 'point_masses'"),
    ("point_masses: {re78: [zero]}", "section 'point_masses'"),
    ("bounds: {age: [16, 55]}\nbounds: {age: [0, 1]}", "given twice"),
    ("bounds: {age: [16, 55", "Cannot read the public metadata file"),
    ("!!python/object/apply:os.system ['true']", "Cannot read the public metadata file"),
])
def test_public_metadata_file_is_untrusted(tmp_path, text, message):
    f = tmp_path / "public.yaml"
    f.write_text(text)
    with pytest.raises(DataValidationError, match="public metadata file") as err:
        read_public_metadata(f)
    assert message in str(err.value) and str(f) in str(err.value)


def test_public_metadata_file_size_is_checked_before_reading(tmp_path, monkeypatch):
    import microplex.io as mio

    f = tmp_path / "public.yaml"
    f.write_text("bounds: {age: [16, 55]}\n" + "# padding\n" * 100)
    monkeypatch.setattr(mio, "MAX_PUBLIC_FILE_BYTES", 64)
    monkeypatch.setattr(mio.Path, "read_text", lambda *a, **k: pytest.fail("read before the size check"))
    with pytest.raises(DataValidationError, match="larger than 64 bytes"):
        read_public_metadata(f)


def test_public_metadata_values_reach_the_synthesizer_checks(files, tmp_path):
    """The file's values are checked by the Synthesizer as any caller's: a bound the wrong way round names the
    parameter and the column."""
    f = tmp_path / "p.yaml"
    f.write_text("bounds: {re78: [25564.67, 0], age: [16, 55]}\ncategories: {black: [0, 1]}")
    r = _fit(files, tmp_path / "m.mpx", "--epsilon", "1", "--delta", "1e-5", "--public", str(f))
    assert r.exit_code == 1 and "public_bounds" in r.output and "re78" in r.output, r.output
    df = pd.read_csv(files / "train.csv")
    assert list(df.columns) == TARGETS + CONDITIONS


def test_the_privacy_page_command_line_blocks_run_as_written(tmp_path, monkeypatch):
    """docs/privacy.md's 'From the command line' blocks: its public.yaml and its two commands, run as written
    (on the first 1,500 cps1 records, so that the DP defaults train fast)."""
    import re
    import shlex
    from pathlib import Path

    from microplex.datasets import load_dataset

    page = (Path(__file__).resolve().parents[1] / "docs" / "privacy.md").read_text(encoding="utf-8")
    section = page.split("### From the command line", 1)[1].split("\n### ", 1)[0]
    yaml_block = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    bash_block = re.search(r"```bash\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    monkeypatch.chdir(tmp_path)
    load_dataset("cps1").head(1_500).to_csv("cps1.csv", index=False)
    Path("public.yaml").write_text(yaml_block)
    commands = [shlex.split(line) for line in bash_block.splitlines() if line.strip()]
    assert [c[:2] for c in commands] == [["microplex", "fit"], ["microplex", "generate"]]
    outputs = []
    for command in commands:
        r = runner.invoke(app, command[1:])
        assert r.exit_code == 0, r.output
        outputs.append(r.output)
    assert "privacy spent: epsilon" in outputs[0]
    public = pd.read_parquet("public.parquet")
    assert len(public) == 3_200 and public["weight"].sum() == pytest.approx(3_200)
    assert Synthesizer.load("dp_model.mpx").privacy_["epsilon"] <= 1.0


def test_evaluate_runs_the_attacks_from_the_command_line(tmp_path):
    """`microplex evaluate` could not run the privacy attacks (`evaluate(attacks=True)`): a release's membership
    AUC and attribute disclosure were out of the command line's reach. A file that copies the training records
    is told apart (AUC far above 0.5) and the report shows the attacks."""
    from microplex.datasets import load_dataset

    df = load_dataset("cps1")[["age", "educ", "re75", "re78"]].head(1_200)
    train, holdout = df.iloc[:800], df.iloc[800:]
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    train.iloc[:400].to_csv(tmp_path / "copy.csv", index=False)  # a "release" that copies training records
    report = tmp_path / "r.html"
    r = runner.invoke(app, ["evaluate", str(tmp_path / "train.csv"), str(tmp_path / "copy.csv"), "--holdout",
                            str(tmp_path / "holdout.csv"), "--attacks", "--quasi-identifiers", "age,educ",
                            "--sensitive", "re78", "--no-pmse", "--report", str(report)])
    assert r.exit_code == 0, r.output
    line = next(line for line in r.output.splitlines() if "membership AUC" in line)
    assert float(re.findall(r"\d+\.\d+", line)[-1]) > 0.7, line  # evaluate(attacks=True) gives 0.720
    html = report.read_text(encoding="utf-8")
    assert "membership_auc" in html and "attribution_synthetic" in html


@pytest.mark.parametrize("extra, message", [
    (["--attacks"], "needs --holdout"),
    (["--sensitive", "re78"], "--sensitive acts only with --attacks"),
    (["--quasi-identifiers", "age", "--holdout", "HOLDOUT"], "--quasi-identifiers acts only with --attacks"),
])
def test_evaluate_attack_options_are_checked(tmp_path, extra, message):
    from microplex.datasets import load_dataset

    df = load_dataset("cps1")[["age", "re78"]].head(300)
    df.to_csv(tmp_path / "real.csv", index=False)
    extra = [str(tmp_path / "real.csv") if e == "HOLDOUT" else e for e in extra]
    r = runner.invoke(app, ["evaluate", str(tmp_path / "real.csv"), str(tmp_path / "real.csv"), "--report",
                            str(tmp_path / "r.html"), *extra])
    assert r.exit_code == 1 and message in r.output and r.output.count("error:") == 1, r.output
    assert not (tmp_path / "r.html").exists()


def test_evaluate_with_the_model_sets_its_conditions_apart(tmp_path):
    """`microplex evaluate` without the model judged every column as a target: the summary's "worst KS of a
    target" was a condition (the conditions of `generate --n` are resampled, not modelled). With --model the
    model's conditions are set apart, as in the library's report and the pipeline's."""
    from microplex.datasets import load_dataset

    df = load_dataset("cps1")[["age", "educ", "re78"]].head(1_500)
    df.iloc[:1_000].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[1_000:].to_csv(tmp_path / "holdout.csv", index=False)
    synth = Synthesizer(["re78"], ["age", "educ"], epochs=1, verbose=False).fit(df.iloc[:1_000], seed=0)
    synth.save(tmp_path / "m.mpx")
    synth.sample(1_000, seed=1).to_csv(tmp_path / "syn.csv", index=False)
    args = ["evaluate", str(tmp_path / "train.csv"), str(tmp_path / "syn.csv"), "--holdout", str(tmp_path / "holdout.csv"),
            "--no-pmse", "--report", str(tmp_path / "r.html")]
    with_model = runner.invoke(app, [*args, "--model", str(tmp_path / "m.mpx")])
    assert with_model.exit_code == 0, with_model.output
    assert "worst KS of a target: " in with_model.output and "(re78)" in with_model.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Conditions (given)" in html and "Training" in html
    other = Synthesizer(["re75"], ["age"], epochs=1, verbose=False).fit(load_dataset("cps1").head(300), seed=0)
    other.save(tmp_path / "other.mpx")
    r = runner.invoke(app, [*args, "--model", str(tmp_path / "other.mpx")])
    assert r.exit_code == 1 and "'--model' columns ['re75']" in r.output, r.output
