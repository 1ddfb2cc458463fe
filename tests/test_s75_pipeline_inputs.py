"""Session 75: the inputs of a pipeline file (YAML aliases, required paths, inputs that vanish or are not files)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from microplex import DataValidationError

SOURCE = "wage,education\n" + "".join(f"{i},{i % 7}\n" for i in range(200))


def _bomb(levels: int) -> str:
    """``levels`` lists, each of ten aliases of the one before: 10**levels strings in a few hundred bytes."""
    rows = ['&l0 [' + ",".join(['"xxxxxxxxxx"'] * 10) + ']']
    rows += [f'&l{i} [' + ",".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "[" + ", ".join(rows) + "]"


def test_a_message_shows_a_nested_value_without_building_its_whole_repr():
    """Before: ``_got`` built ``repr(value)`` (14 MB for 10**6 strings; 14 GB for 10**9) and cut it to 80."""
    from microplex._params import _got, short_repr

    nested = ["xxxxxxxxxx"] * 10
    for _ in range(5):
        nested = [nested] * 10  # 10**6 strings, shared
    tracemalloc.start()
    try:
        text = _got(nested)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(text) <= 80 and text.startswith("[[[[") and text.endswith("...")
    assert peak < 200_000  # before: 14,000,000 (the whole repr)
    assert short_repr("abc") == "'abc'" and short_repr([1, 2.5, None]) == "[1, 2.5, None]"


@pytest.mark.parametrize("levels", [6, 9])
def test_a_yaml_alias_bomb_is_refused_in_pipeline_targets_and_public_metadata_files(tmp_path, levels):
    """Before: ``output: <6 levels>`` took 3.7 s and 400 MB to be refused as 'not a string'; 8 levels: the CLI
    exited 2 with an internal MemoryError; 9 levels need about 14 GB."""
    from microplex.calibration import Targets
    from microplex.io import read_public_metadata
    from microplex.pipeline import load_pipeline

    (tmp_path / "src.csv").write_text(SOURCE)
    (tmp_path / "p.yaml").write_text(f"output: {_bomb(levels)}\nsources:\n  - {{name: w, path: src.csv}}\n"
                                     "model: {targets: [wage], conditions: [education]}\ngenerate: {n: 100}\n")
    (tmp_path / "t.yaml").write_text(f"targets: {_bomb(levels)}\n")
    (tmp_path / "public.yaml").write_text(f"bounds: {{wage: {_bomb(levels)}}}\n")
    with pytest.raises(DataValidationError, match=r"p\.yaml.*aliases of this document repeat more than 100,000"):
        load_pipeline(tmp_path / "p.yaml")
    with pytest.raises(DataValidationError, match=r"t\.yaml.*aliases of this document repeat more than 100,000"):
        Targets.from_yaml(tmp_path / "t.yaml")
    with pytest.raises(DataValidationError, match=r"public\.yaml.*aliases of this document repeat more than 100,000"):
        read_public_metadata(tmp_path / "public.yaml")


def test_yaml_aliases_within_the_limit_and_merges_still_read_and_a_node_holding_itself_is_refused():
    import yaml

    from microplex._files import MAX_ALIASED_NODES, load_yaml

    assert load_yaml("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\n") == {"a": {"p": 1, "q": 2}, "b": {"p": 3, "q": 2}}
    assert load_yaml(f"a: {_bomb(4)}")["a"][3][9][9][9][9] == "xxxxxxxxxx"  # 11,110 repeated nodes: read
    assert MAX_ALIASED_NODES == 100_000
    for text in ("a: &a [*a]", "a: &a {b: [1, *a]}"):
        with pytest.raises(yaml.YAMLError, match=r"A node holds itself through an alias"):
            load_yaml(text)


def _pipeline(tmp_path, extra: str = "", generate: str = "n = 50") -> Path:
    """A one-source pipeline file ``p.toml`` in ``tmp_path`` (``extra``: further sections)."""
    (tmp_path / "src.csv").write_text(SOURCE)
    (tmp_path / "p.toml").write_text(f'output = "out"\n[[sources]]\nname = "w"\npath = "src.csv"\n[model]\n'
                                     f'targets = ["wage"]\nconditions = ["education"]\nepochs = 1\n'
                                     f'[generate]\n{generate}\n{extra}')
    return tmp_path / "p.toml"


def test_calibrate_without_targets_is_refused_and_a_file_named_none_is_never_read(tmp_path):
    """Before: accepted; the run read the file 'None' beside the pipeline file as the targets (a south total of
    12,345 calibrated without a word), or said "Targets file '.../None' does not exist"."""
    from microplex.pipeline import load_pipeline, run_pipeline

    path = _pipeline(tmp_path, '[calibrate]\nmethod = "raking"\n')
    (tmp_path / "None").write_text("aggregate,variable,filter,value\ncount,,,12345\n")
    for call in (lambda: load_pipeline(path), lambda: run_pipeline(path, progress=False)):
        with pytest.raises(DataValidationError, match=r"^\[calibrate\] needs 'targets' \(a targets file"):
            call()
    assert not (tmp_path / "out").exists()
    # [sparsify] falls back on [calibrate]'s targets: without either, the [calibrate] message
    path = _pipeline(tmp_path, '[calibrate]\nmethod = "raking"\n[sparsify]\nmax_records = 10\n')
    with pytest.raises(DataValidationError, match=r"^\[calibrate\] needs 'targets'"):
        load_pipeline(path)
    # a household pipeline too
    from microplex._pipeline_config import validate_config

    config = {"output": "out", "sources": [{"name": "h", "path": "h.csv"}],
              "model": {"household_id": "hid", "household_vars": ["a"], "person_vars": ["b"]},
              "generate": {"n_households": 10}, "calibrate": {"method": "raking"}}
    with pytest.raises(DataValidationError, match=r"^\[calibrate\] needs 'targets'"):
        validate_config(config)
    config["calibrate"]["targets"] = "t.csv"
    assert validate_config(config)["calibrate"]["targets"] == "t.csv"


def test_an_input_removed_during_the_run_is_named_with_its_setting(tmp_path, monkeypatch):
    """Before: ``RuntimeError: Stage 'generate' reads [...cond.csv], which no earlier stage wrote.`` (the CLI: exit 2,
    "internal error ... this is a bug in microplex")."""
    from microplex._pipeline_manifest import Manifest
    from microplex.pipeline import run_pipeline

    path = _pipeline(tmp_path, generate='conditions = "cond.csv"')
    (tmp_path / "cond.csv").write_text("education\n" + "".join(f"{i % 7}\n" for i in range(30)))
    finish = Manifest.finish

    def finish_then_move(self, seconds, figures):  # another job moves the file while [fit] runs
        finish(self, seconds, figures)
        if self.name == "fit":
            (tmp_path / "cond.csv").rename(tmp_path / "cond.moved")

    monkeypatch.setattr(Manifest, "finish", finish_then_move)
    with pytest.raises(DataValidationError, match=r"^Input file '.*cond\.csv' \('generate\.conditions'\) does not "
                       r"exist; it was there when the run started: it was moved or deleted before the stage "
                       r"\[generate\] read it\.$"):
        run_pipeline(path, progress=False)
    assert (tmp_path / "out" / "model.mpx").is_file() and not (tmp_path / "out" / "synthetic.parquet").exists()


@pytest.mark.parametrize("setting", ["source", "conditions", "targets"])
@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_an_input_that_is_a_named_pipe_or_a_device_is_refused_before_any_work(tmp_path, setting, kind):
    """Before: a source or conditions path naming a named pipe or /dev/zero hung the run for ever (the inputs were
    hashed to their end before the first stage); a targets file was refused by its reader only."""
    import os
    import subprocess
    import sys

    if kind == "fifo":
        os.mkfifo(tmp_path / "odd.csv")
    else:
        os.symlink("/dev/zero", tmp_path / "odd.csv")
    (tmp_path / "cond.csv").write_text("education\n1\n2\n")
    (tmp_path / "t.csv").write_text("aggregate,variable,filter,value\ncount,,,1000\n")
    extra = '[calibrate]\ntargets = "t.csv"\n'
    generate = 'conditions = "cond.csv"'
    path = _pipeline(tmp_path, extra=extra, generate=generate)
    text = path.read_text()
    key = {"source": "[[sources]] #1 'path'", "conditions": "'generate.conditions'", "targets": "'calibrate.targets'"}
    old = {"source": 'path = "src.csv"', "conditions": generate, "targets": 't.csv"'}[setting]
    new = {"source": 'path = "odd.csv"', "conditions": 'conditions = "odd.csv"', "targets": 'odd.csv"'}[setting]
    path.write_text(text.replace(old, new))
    code = ("import sys; from microplex.pipeline import run_pipeline\n"
            "try:\n    run_pipeline(sys.argv[1], progress=False)\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                          env=env)
    assert done.stdout.strip() == (f"DataValidationError Input file {str(tmp_path / 'odd.csv')!r} ({key[setting]}) is "
                                   "not a regular file or a folder (a named pipe or a device is never read to its "
                                   "end); give the path of a file or a dataset folder."), done.stdout + done.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_plain_values_are_read_as_the_docs_say_and_a_date_for_text_says_to_quote_it(tmp_path):
    """pipeline.md said plain values "follow YAML 1.2's rules"; the reader keeps YAML 1.1's dates, ``_`` digit
    separators and ``0b`` numbers and reads ``017`` and ``0o17`` as text. Before: ``output: 2024-01-01`` was refused
    as "must be a non-empty string. Got datetime.date(2024, 1, 1) instead." with no word of why."""
    import datetime

    from microplex._files import load_yaml
    from microplex.pipeline import load_pipeline

    read = load_yaml("[2024-01-01, '2024-01-01', 1_000, 0b101, 0x1F, 017, 0o17, 1e6, yes, 1:20, true]")
    assert read == [datetime.date(2024, 1, 1), "2024-01-01", 1000, 5, 31, "017", "0o17", 1e6, "yes", "1:20", True]
    (tmp_path / "src.csv").write_text(SOURCE)
    body = "sources: [{name: w, path: src.csv}]\nmodel: {targets: [wage], conditions: [education]}\ngenerate: {n: 10}\n"
    (tmp_path / "p.yaml").write_text("output: 2024-01-01\n" + body)
    with pytest.raises(DataValidationError, match=r"^The 'output' setting must be a non-empty string\. Got "
                       r"datetime\.date\(2024, 1, 1\) instead: YAML reads a plain 2024-01-01 as a date; quote it "
                       r"\(\"2024-01-01\"\) for the text\.$"):
        load_pipeline(tmp_path / "p.yaml")
    (tmp_path / "p.yaml").write_text('output: "2024-01-01"\n' + body)
    assert load_pipeline(tmp_path / "p.yaml")["output"] == "2024-01-01"
