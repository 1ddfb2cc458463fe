"""Property-based trust tests of the command line and the pipeline.

Generated option values and pipeline dicts (wrong types, NaN/inf/huge numbers, typos, paths that
point at inputs or outside the output folder) are fed to ``microplex`` verbs (typer's CliRunner)
and to :func:`run_pipeline`. The property: exit status 0 with correct outputs, or status 1 with
exactly one ``error:`` line and no traceback (a :class:`MicroplexError` from the API); the input
files are unchanged (hashes); nothing is written outside the output folder. Tiny data, 1-2 epochs.
"""

from __future__ import annotations

import copy
import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from microplex import Synthesizer
from microplex._pipeline_config import SCHEMA
from microplex.cli import app
from microplex.pipeline import run_pipeline

from ._invariants import nothing_written_outside, result_or_microplex_error

runner = CliRunner()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _check_cli(result, code_ok: bool) -> None:
    """Status 0, or status 1 with one `error:` line and no traceback."""
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output, result.output
    if result.exit_code == 0:
        assert not errors and code_ok, result.output
        return
    assert result.exit_code == 1, (result.exit_code, result.output, repr(result.exception))
    assert len(errors) == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A tiny table (CSV and Parquet) and a model fitted on it (1 epoch)."""
    from microplex.datasets import load_dataset

    folder = tmp_path_factory.mktemp("inputs")
    data = load_dataset("cps1").head(120)[["age", "marr", "re78"]].reset_index(drop=True)
    data.to_csv(folder / "data.csv", index=False)
    data.to_parquet(folder / "data.parquet")
    data[["age", "marr"]].to_parquet(folder / "cond.parquet")  # conditions: a file with the target is refused
    Synthesizer(["re78"], ["age", "marr"], epochs=1, verbose=False).fit(data, seed=0).save(folder / "model.mpx")
    return folder


def _sandbox(root: Path, inputs: Path) -> tuple[Path, Path, Path]:
    """A fresh folder holding a copy of the inputs (data/) and an empty output folder (out/)."""
    box = Path(tempfile.mkdtemp(dir=root))
    (box / "data").mkdir()
    for f in inputs.iterdir():
        (box / "data" / f.name).write_bytes(f.read_bytes())
    (box / "out").mkdir()
    return box, box / "data", box / "out"


_INTS = st.one_of(st.integers(-3, 3).map(str), st.sampled_from(["x", "1.5", "", "1e3", "nan", "99999999999999999999"]))
_COLUMNS = st.lists(st.sampled_from(["re78", "age", "marr", "nope", "", " ", "weight", "re78"]), max_size=3).map(",".join)


@given(epochs=_INTS, seed=_INTS, targets=_COLUMNS, conditions=_COLUMNS, flow=st.sampled_from(["maf", "nsf", "MAF", ""]),
       data=st.sampled_from(["data.csv", "data.parquet", "nope.csv", "model.mpx"]),
       out=st.sampled_from(["out/m.mpx", "out/sub/m.mpx", "out", "data/data.csv", "data/model.mpx"]))
def test_fit_options(tmp_path, inputs, epochs, seed, targets, conditions, flow, data, out):
    box, folder, outdir = _sandbox(tmp_path, inputs)
    before = _hashes(folder)
    if epochs.lstrip("-").isdigit() and int(epochs) > 2:
        epochs = "2"
    args = ["fit", str(folder / data), "--targets", targets, "--conditions", conditions, "--flow", flow,
            "--epochs", epochs, "--seed", seed, "-o", str(box / out)]
    with nothing_written_outside(box, outdir):
        result = runner.invoke(app, args)
    _check_cli(result, code_ok=True)
    if result.exit_code == 0:
        model = Synthesizer.load(box / out)
        assert list(model.target_vars) == [t.strip() for t in targets.split(",") if t.strip()]
    after = _hashes(folder)
    if result.exit_code == 0 and out == "data/model.mpx":
        # -o names a file that is not fit's input: it is replaced by the new model, as asked; the data stay unchanged
        for hashes in (before, after):
            hashes.pop("model.mpx")
    assert after == before


@given(n=st.one_of(st.integers(-2, 40).map(str), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                   st.sampled_from(["1e15", "lots", "1e400", "3.0"])),
       seed=_INTS, stream=st.booleans(), partition=st.sampled_from(["", "marr", "marr,marr", "nope", "age,"]),
       rows_per_file=st.integers(-1, 50).map(str), conditions=st.booleans(),
       out=st.sampled_from(["out/s.parquet", "out/pop", "data/cond.parquet", "data/model.mpx"]))
def test_generate_options(tmp_path, inputs, n, seed, stream, partition, rows_per_file, conditions, out):
    box, folder, outdir = _sandbox(tmp_path, inputs)
    before = _hashes(folder)
    args = ["generate", str(folder / "model.mpx"), "-o", str(box / out), "--seed", seed,
            "--rows-per-file", rows_per_file, "--partition-by", partition]
    args += ["--conditions", str(folder / "cond.parquet")] if conditions else ["--n", n]
    args += ["--stream"] if stream else []
    with nothing_written_outside(box, outdir):
        result = runner.invoke(app, args)
    _check_cli(result, code_ok=True)
    if result.exit_code == 0:
        written = pd.read_parquet(box / out)
        expected = 120 if conditions else int(float(n))
        assert len(written) == expected and {"age", "marr", "re78"} <= set(written.columns)
    after = _hashes(folder)
    if result.exit_code == 0 and out == "data/cond.parquet":
        # -o names a file that is not generate's input (no --conditions): it is replaced, as asked
        assert not conditions
        for hashes in (before, after):
            hashes.pop("cond.parquet")
    assert after == before


# -- pipeline dicts ---------------------------------------------------------------------------
_BASE = {
    "output": "out", "seed": 0,
    "sources": [{"name": "cps", "path": "data/data.parquet"}],
    "model": {"targets": ["re78"], "conditions": ["age", "marr"], "epochs": 1},
    "generate": {"n": 30},
}
_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([10**20, -(2**70), 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=4),
    st.sampled_from(["../x.html", "/tmp/microplex-prop.html", ".", "data/data.parquet", "re78", "age", "maf",
                     "raking", "bundled:cps1", "model.mpx", "out/../..", "summary.json"]),
    st.lists(st.sampled_from(["re78", "age", "marr", "x", "weight"]), max_size=3),
    st.dictionaries(st.sampled_from(["a", "age", "n"]), st.integers(-1, 3), max_size=2),
)
_SECTIONS = ["", "sources", "model", "generate", "calibrate", "sparsify", "evaluate", "fuse"]


def _keys(section: str) -> list[str]:
    keys = sorted(k for k in SCHEMA["sources" if section == "sources" else section] if k not in ("sources", "output"))
    return keys + ["wieght", "epoch", "x"]


@st.composite
def _configs(draw):
    config = copy.deepcopy(_BASE)
    for _ in range(draw(st.integers(0, 2))):
        section = draw(st.sampled_from(_SECTIONS))
        key, value = draw(st.sampled_from(_keys(section))), draw(_VALUES)
        if section == "":
            config[key] = value
        elif section == "sources":
            config["sources"][0][key] = value
        else:
            node = config.setdefault(section, {})
            if isinstance(node, dict):
                node[key] = value
    if draw(st.booleans()):
        config["output"] = draw(st.sampled_from(["out", "out/run", ".", "data", "out/../.."]))
    return config


def _allowed(box: Path, config) -> Path:
    output = config.get("output")
    return (box / output).resolve() if isinstance(output, str) and output.strip() else box / "out"


def _check_outputs(box: Path, config) -> None:
    out = (box / config["output"]).resolve()
    gen = config["generate"]  # a streamed population (partition_by) is a dataset folder
    synthetic = pd.read_parquet(out / (gen.get("dataset", "population") if gen.get("partition_by") else "synthetic.parquet"))
    assert len(synthetic) == config["generate"]["n"]
    assert (out / "model.mpx").is_file() and (out / "summary.json").is_file()
    assert not list(out.rglob(".tmp-*"))


@given(config=_configs())
def test_run_pipeline_on_generated_configs(tmp_path, inputs, config):
    box, folder, _ = _sandbox(tmp_path, inputs)
    before = _hashes(folder)
    allowed = _allowed(box, config)
    with nothing_written_outside(box, allowed):
        result, error = result_or_microplex_error(
            lambda: run_pipeline({**copy.deepcopy(config), "_base": str(box)}, progress=False))
    if error is None:
        _check_outputs(box, config)
    assert _hashes(folder) == before
    assert not Path("/tmp/microplex-prop.html").exists()


_SET = st.tuples(st.sampled_from(["generate.n", "model.holdout", "model.epochs", "seed", "model.wieght", "sources.x",
                                  "evaluate.report", "output", "_base", "model..x"]),
                 st.sampled_from(["1", "0", "-0.5", "lots", "2.5", "nan", "1e400", "true", "[1, 2]", "{", "../x.html",
                                  "out2", "."])).map("=".join)


@given(config=_configs(), sets=st.lists(_SET, max_size=2), fmt=st.sampled_from(["yaml", "toml-bytes"]))
def test_cli_run_on_generated_files(tmp_path, inputs, config, sets, fmt):
    box, folder, _ = _sandbox(tmp_path, inputs)
    if fmt == "yaml":
        path = box / "p.yaml"
        path.write_text(yaml.safe_dump(config))
    else:  # a TOML file with garbage bytes appended
        path = box / "p.toml"
        path.write_bytes(b'output = "out"\n[[sources]]\nname = "cps"\npath = "data/data.parquet"\n\xff\x00[model\n')
    before = _hashes(folder)
    allowed = _allowed(box, config)
    if any(s.startswith("output=") for s in sets):
        allowed = box  # the output folder moved: anything under the sandbox (outside is still checked)
    with nothing_written_outside(box, allowed):
        result = runner.invoke(app, ["run", str(path), "-q", *[a for s in sets for a in ("--set", s)]])
    _check_cli(result, code_ok=True)
    if result.exit_code == 0 and not sets:
        _check_outputs(box, config)
    assert _hashes(folder) == before
    assert not Path("/tmp/microplex-prop.html").exists()
