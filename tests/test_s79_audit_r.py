"""Session 79 (a first-time user's audit of the command line and the readers on the real extracts): an option given
twice is refused instead of the last one silently winning; a Parquet file with two columns of one name is refused
naming them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from microplex import Synthesizer
from microplex.cli import app

from _cli_output import error_line as _error_line

pytestmark = pytest.mark.usefixtures("one_torch_thread")

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """300 records (age, sex, income, weight 1), sex targets and a 1-epoch model of income."""
    folder = tmp_path_factory.mktemp("s79r")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"age": rng.integers(18, 80, 300), "sex": rng.choice(["f", "m"], 300),
                       "inc": rng.lognormal(10, 1, 300).round(0), "weight": 1.0})
    df.to_csv(folder / "d.csv", index=False)
    (folder / "t.csv").write_text("sex,value\nf,150\nm,150\n")
    Synthesizer(["inc"], ["age", "sex"], epochs=1, verbose=False, hidden_features=(8,), transforms=1).fit(
        df, seed=0).save(folder / "m.mpx")
    return folder


@pytest.mark.parametrize("args, option", [
    (["fit", "{d}/d.csv", "--targets", "inc", "--targets", "age", "--conditions", "sex", "--epochs", "1",
      "-o", "{d}/out.mpx"], "--targets"),
    (["generate", "{d}/m.mpx", "--n", "50", "--seed", "1", "--seed", "2", "-o", "{d}/out.parquet"], "--seed"),
    (["generate", "{d}/m.mpx", "--n", "50", "-o", "{d}/out.parquet", "--out", "{d}/other.parquet"], "--out"),
    (["generate", "{d}/m.mpx", "--n", "50", "--stream", "--no-stream", "-o", "{d}/out.parquet"],
     "--stream/--no-stream"),
    (["calibrate", "{d}/d.csv", "--targets", "{d}/t.csv", "--method", "linear", "--method", "raking",
      "-o", "{d}/out.parquet"], "--method"),
    (["sparsify", "{d}/d.csv", "--targets", "{d}/t.csv", "--max-records", "5", "--max-records", "50",
      "-o", "{d}/out.parquet"], "--max-records"),
    (["evaluate", "{d}/d.csv", "{d}/d.csv", "--weight", "weight", "--synthetic-weight", "weight",
      "--conditions", "sex", "--conditions", "age", "--report", "{d}/out.html"], "--conditions"),
])
def test_an_option_given_twice_is_refused_before_any_work(files, args, option):
    """``--targets inc --targets age`` fitted ``age`` alone and ``--seed 1 --seed 2`` drew with seed 2, unsaid (click
    keeps the last value of an option given twice): refused, naming the option, and nothing is written."""
    result = runner.invoke(app, [a.format(d=files) for a in args])
    line = _error_line(result)
    assert line == (f"error: The '{option}' option is given more than once; give it once (only the last value "
                    "would be used).")
    assert not list(files.glob("out.*")) and not list(files.glob("other.*"))


def test_every_verb_refuses_repeated_options_and_list_options_may_repeat(files, tmp_path):
    """Every verb uses the command class that refuses a repeated option (a verb added later too); ``--set``, which
    takes a list, still repeats, ``--help`` twice shows the help, and an option given once works as before."""
    import typer.main

    from microplex._cli_checks import OneLineCommand

    group = typer.main.get_command(app)
    assert all(isinstance(cmd, OneLineCommand) for cmd in group.commands.values()), group.commands
    result = runner.invoke(app, ["generate", str(files / "m.mpx"), "--n", "20", "--seed", "3", "-q",
                                 "-o", str(tmp_path / "g.parquet")])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(tmp_path / "g.parquet")) == 20
    result = runner.invoke(app, ["run", str(tmp_path / "missing.toml"), "--set", "seed=1", "--set", "generate.n=5"])
    assert "given more than once" not in result.output and "does not exist" in _error_line(result)
    result = runner.invoke(app, ["generate", "--help", "--help"])  # acts at once: the help, as for one --help
    assert result.exit_code == 0 and result.output.startswith("Usage: "), result.output


def _with_a_second(table, name: str, values):
    """``table`` with a second column called ``name`` (pyarrow writes such a file; pandas cannot make one)."""
    import pyarrow as pa

    return table.append_column(name, pa.array(values))


def test_a_parquet_table_with_two_columns_of_one_name_is_refused_naming_them(files, tmp_path):
    """A Parquet or Feather file, or a dataset folder's file, that stores two columns ``marr`` (written by pyarrow
    from a pandas frame, so with pandas metadata): refused naming the file and ``marr``, as a CSV file's header is
    (before: "Cannot read 'pop.parquet': ArrowInvalid: Multiple matches for FieldRef.Name(marr) in age: int64 ...",
    from pyarrow's to_pandas, naming no duplicate); the commands that read it say the same."""
    import pyarrow as pa
    import pyarrow.feather as pf
    import pyarrow.parquet as pq

    from microplex._errors import DataValidationError
    from microplex.io import read_table

    frame = pd.DataFrame({"age": [30, 40, 50], "marr": [0, 1, 1], "weight": [1.0, 1.0, 1.0]})
    table = _with_a_second(pa.Table.from_pandas(frame, preserve_index=False), "marr", [1, 0, 0])
    pq.write_table(table, tmp_path / "dup.parquet")
    pf.write_feather(table, tmp_path / "dup.feather")
    (tmp_path / "ds").mkdir()
    pq.write_table(table, tmp_path / "ds" / "part-0.parquet")
    for path, named in [(tmp_path / "dup.parquet", tmp_path / "dup.parquet"),
                        (tmp_path / "dup.feather", tmp_path / "dup.feather"),
                        (tmp_path / "ds", tmp_path / "ds" / "part-0.parquet")]:
        with pytest.raises(DataValidationError) as info:
            read_table(path)
        assert str(info.value) == f"The table {str(named)!r} has duplicated column names ['marr']."
    result = runner.invoke(app, ["calibrate", str(tmp_path / "dup.parquet"), "--targets", str(files / "t.csv"),
                                 "-o", str(tmp_path / "out.parquet")])
    assert _error_line(result) == (f"error: The table {str(tmp_path / 'dup.parquet')!r} has duplicated column "
                                   "names ['marr'].")
    assert not (tmp_path / "out.parquet").exists()


def test_a_parquet_targets_file_with_two_columns_of_one_name_is_refused_naming_them(tmp_path):
    """A Parquet targets file with two ``value`` columns (or two equality columns ``sex``): refused naming the file
    and the column, as a CSV targets file is (before: "is not a readable Parquet table: Multiple matches for
    FieldRef.Name(value) in ...", with pyarrow's schema dump over eight lines)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from microplex import Targets
    from microplex._errors import DataValidationError

    base = pa.Table.from_pandas(pd.DataFrame({"sex": ["f", "m"], "value": [150.0, 150.0]}), preserve_index=False)
    for name, values in [("value", [1.0, 2.0]), ("sex", ["m", "f"])]:
        path = tmp_path / f"t_{name}.parquet"
        pq.write_table(_with_a_second(base, name, values), path)
        with pytest.raises(DataValidationError) as info:
            Targets.from_parquet(path)
        assert str(info.value) == (f"Targets file {str(path)!r} has duplicated columns [{name!r}]; expected distinct "
                                   "column names.")


@pytest.mark.parametrize("args, name", [
    (["fit", "{e}", "--targets", "inc", "--conditions", "age", "--epochs", "1", "-o", "{d}/out.mpx"], "data"),
    (["calibrate", "{e}", "--targets", "{d}/t.csv", "-o", "{d}/out.parquet"], "data"),
    (["sparsify", "{e}", "--targets", "{d}/t.csv", "-o", "{d}/out.parquet"], "data"),
    (["evaluate", "{e}", "{d}/d.csv", "--weight", "weight", "--synthetic-weight", "weight", "--no-pmse",
      "--report", "{d}/out.html"], "real"),
    (["evaluate", "{d}/d.csv", "{e}", "--weight", "weight", "--synthetic-weight", "weight", "--no-pmse",
      "--report", "{d}/out.html"], "synthetic"),
    (["evaluate", "{d}/d.csv", "{d}/d.csv", "--weight", "weight", "--synthetic-weight", "weight", "--no-pmse",
      "--holdout", "{e}", "--report", "{d}/out.html"], "holdout"),
])
def test_an_input_table_without_records_is_refused_naming_the_file(files, tmp_path, args, name):
    """A CSV file of the records' header and no row, given as a verb's records: one error line naming the input and
    the file (before: "records is empty; at least one record is needed to calibrate.", "candidates is empty; ...",
    "holdout_df is empty: expected at least 1 row, got 0.", "'data' is empty; ...": the library's parameter names,
    no file; an empty real or synthetic file: "Weight column 'weight' in real_df must be numeric: got dtype object",
    the header's columns read as text), and nothing written."""
    path = tmp_path / "header_only.csv"
    path.write_text("age,sex,inc,weight\n")
    result = runner.invoke(app, [a.format(d=files, e=path) for a in args])
    assert _error_line(result) == (f"error: The {name!r} input {str(path)!r} holds no records (its columns without a "
                                   "row); expected at least one record.")
    assert not list(files.glob("out.*"))
