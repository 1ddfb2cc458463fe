"""Tampered targets files (CSV, Parquet, YAML): one clear DataValidationError naming the file, nothing run."""

from __future__ import annotations

import pandas as pd
import pytest

from microplex import Calibrator, DataValidationError
from microplex.calibration import Targets
from microplex.io import read_targets

GOOD_CSV = "value,aggregate,variable,filter\n100,count,,sex == 'f'\n"


@pytest.mark.parametrize(
    "text,match",
    [
        ("", r"is empty; expected a header with a 'value' column"),
        ("value,aggregate\n", r"holds no targets \(no rows\)"),
        ("amount,aggregate\n100,count\n", r"needs a 'value' column. Got columns \['amount', 'aggregate'\]"),
        ("value,aggregate\nlots,count\n", r"row 1: Target 'count\[\]': value must be a number. Got 'lots'"),
        ("value,aggregate\n100,median\n", r"row 1: Target 'median\(None\)\[\]': aggregate must be one of"),
        ("value,aggregate\nnan,count\n", r"row 1: Target 'count\[\]': value must be finite"),
        ("value,aggregate\n1e400,count\n", r"row 1: Target 'count\[\]': value must be finite. Got inf"),
        ("value,aggregate\n-3,count\n", r"row 1: Target 'count\[\]': a count must be >= 0"),
        ("value,name\n1,a\n2,a\n", r"names targets more than once: \['a'\]"),
        ('value,filter\n1,"age in [65, 18)"\n', r"row 1: Filter 'age in \[65, 18\)'.*lower end 65 is above"),
        ("value,filter\n1,age in [65, 18)\n", r"a row has more fields than the header"),
        ("value,filter\n1,sex ~ f\n", r"row 1: Cannot parse filter clause"),
        ("value,tolerance\n1,tight\n", r"row 1: Target 'count\[\]': tolerance must be a number. Got 'tight'"),
        ("value,importance\n1,-2\n", r"row 1: Target 'count\[\]': importance must be a finite number > 0"),
        ("value,entity\n1,family\n", r"row 1: Target 'count\[\]': entity must be one of"),
        ("value,value\n1,2\n", r"has duplicated columns \['value'\]"),
        ("\x00\x01\x02garbage\xff\n", r"Targets file"),
    ],
)
def test_tampered_csv(tmp_path, text, match):
    p = tmp_path / "t.csv"
    p.write_bytes(text.encode("latin-1"))
    with pytest.raises(DataValidationError, match=match):
        Targets.from_csv(p)
    with pytest.raises(DataValidationError):
        read_targets(p)


def test_tampered_csv_error_names_the_file(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("value,aggregate\nlots,count\n")
    with pytest.raises(DataValidationError, match=r"Targets file '.*bad.csv', row 1"):
        Targets.from_csv(p)


def test_corrupt_parquet(tmp_path):
    p = tmp_path / "t.parquet"
    p.write_bytes(b"PAR1 not really parquet PAR1")
    with pytest.raises(DataValidationError, match=r"Targets file '.*t.parquet' is not a readable Parquet table"):
        Targets.from_parquet(p)
    q = tmp_path / "e.parquet"
    pd.DataFrame({"value": pd.Series([], dtype=float)}).to_parquet(q)
    with pytest.raises(DataValidationError, match=r"holds no targets"):
        Targets.from_parquet(q)


def test_yaml_python_tags_do_not_run(tmp_path):
    flag = tmp_path / "pwned"
    p = tmp_path / "t.yaml"
    p.write_text(f"targets:\n  - !!python/object/apply:os.system ['touch {flag}']\n")
    with pytest.raises(DataValidationError, match=r"is not valid safe YAML \(no Python tags allowed\)"):
        Targets.from_yaml(p)
    q = tmp_path / "u.yaml"
    q.write_text(f"!!python/object/new:subprocess.Popen [['touch', '{flag}']]\n")
    with pytest.raises(DataValidationError, match=r"is not valid safe YAML"):
        Targets.from_yaml(q)
    assert not flag.exists()


@pytest.mark.parametrize(
    "text,match",
    [
        ("", r"is empty; expected 'targets' and/or 'margins'"),
        ("- 1\n- 2\n", r"must be a mapping with 'targets' and/or 'margins' lists. Got list"),
        ("just text\n", r"must be a mapping .* Got str"),
        ("target:\n  - {value: 1}\n", r"has unknown keys \['target'\]"),
        ("targets: {value: 1}\n", r"'targets' must be a list"),
        ("targets:\n  - 5\n", r"targets\[0\] must be a mapping"),
        ("targets:\n  - {value: 1, wieght: 2}\n", r"targets\[0\] has unknown fields \['wieght'\]"),
        ("targets:\n  - {aggregate: count}\n", r"targets\[0\] needs a 'value'"),
        ("targets:\n  - {value: many}\n", r"targets\[0\]: Target 'count\[\]': value must be a number"),
        ("targets:\n  - {value: .nan}\n", r"targets\[0\]: Target 'count\[\]': value must be finite"),
        ("targets:\n  - {value: 1, aggregate: median, variable: x}\n", r"aggregate must be one of"),
        ("targets:\n  - {value: 1, filter: {age: {a: 1}}}\n", r"targets\[0\]: Target, filter .*a filter value must be"),
        ("targets:\n  - {value: 1, name: a}\n  - {value: 2, name: a}\n", r"names targets more than once: \['a'\]"),
        ("margins:\n  - {values: {f: 1}}\n", r"margins\[0\] needs 'by' and 'values'"),
        ("margins:\n  - {by: 5, values: {f: 1}}\n", r"'by' must be a column name or a list"),
        ("margins:\n  - {by: sex, values: 5}\n", r"'values' must be a mapping or a list of rows"),
        ("margins:\n  - {by: [sex, age], values: [[f, 1]]}\n", r"'values' must be a mapping or a list of rows \[sex, age, value\]"),
        ("margins:\n  - {by: sex, values: {f: x}}\n", r"margins\[0\]: Target \"count\[sex == 'f'\]\": value must be a number"),
        ("targets: []\nmargins: []\n", r"holds no targets"),
        ("targets: [\n", r"is not valid safe YAML"),
        # a key given twice: the first value silently vanished
        ("targets:\n  - {value: 1}\nmargins: []\ntargets:\n  - {value: 2}\n",
         r"The key 'targets' is given twice \(lines 1 and 4\)"),
        ("targets:\n  - {value: 100, value: 999}\n", r"The key 'value' is given twice \(lines 2 and 2\)"),
        ("margins:\n  - {by: age, values: {0: 10, 0: 20}}\n", r"The key 0 is given twice"),
        ("margins:\n  - by: sex\n    values:\n      f: 10\n      f: 20\n", r"The key 'f' is given twice \(lines 4 and 5\)"),
        ("a: &a [1, 1, 1, 1]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\ntargets: *c\n", r"has unknown keys|must be a mapping"),
    ],
)
def test_tampered_yaml(tmp_path, text, match):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(DataValidationError, match=match):
        Targets.from_yaml(p)
    with pytest.raises(DataValidationError, match=r"Targets file '.*t.yaml'"):
        read_targets(p)


def test_duplicate_keys_are_refused_in_yaml_text_and_merges_still_work():
    with pytest.raises(DataValidationError, match=r"Targets YAML is not valid safe YAML.*The key 'value' is given twice"):
        Targets.from_yaml("targets:\n  - value: 1\n    value: 2\n")
    base = "base: &b {aggregate: count, value: 5}\n"
    with pytest.raises(DataValidationError, match=r"unknown keys \['base'\]"):  # the merge itself is read
        Targets.from_yaml(base + "targets:\n  - {<<: *b, value: 7}\n")


def test_load_yaml_refuses_duplicate_keys_only():
    import yaml

    from microplex._files import load_yaml

    assert load_yaml("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  p: 3\n") == {"a": {"p": 1, "q": 2}, "b": {"p": 3, "q": 2}}
    assert load_yaml("") is None and load_yaml("[{a: 1}, {a: 2}]") == [{"a": 1}, {"a": 2}]
    with pytest.raises(yaml.YAMLError, match=r"The key 'a' is given twice \(lines 1 and 3\)"):
        load_yaml("a: 1\nb: {a: 1}\na: 2\n")
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']\n")


def test_yaml_path_that_does_not_exist(tmp_path):
    with pytest.raises(DataValidationError, match=r"does not exist"):
        Targets.from_yaml(str(tmp_path / "missing.yaml"))


def test_a_good_file_still_calibrates(tmp_path):
    df = pd.DataFrame({"sex": ["f", "m", "f"], "weight": 1.0})
    p = tmp_path / "t.csv"
    p.write_text(GOOD_CSV)
    cal = Calibrator().fit(df, p)
    assert cal.weights[df.sex == "f"].sum() == pytest.approx(100.0)


def test_files_in_the_calibrate_path_are_checked(tmp_path):
    df = pd.DataFrame({"sex": ["f", "m"], "weight": 1.0})
    d = tmp_path / "dir.csv"
    d.mkdir()
    with pytest.raises(DataValidationError, match=r"dir.csv' does not exist or is not a file"):
        Calibrator().fit(df, d)


def test_a_row_with_fewer_fields_than_the_header_is_refused(tmp_path):
    """``4,m`` under ``value,sex,age`` read the missing age as "no condition": a target over more records than the
    row names. A truncated row is refused naming it; an empty field (``4,m,``) still means no condition."""
    cut = tmp_path / "cut.csv"
    cut.write_text("value,sex,age\n3,f,30\n4,m\n")
    with pytest.raises(DataValidationError, match=r"cut.csv', row 2: 2 fields under a header of 3"):
        Targets.from_csv(cut)
    ok = tmp_path / "ok.csv"
    ok.write_text("value,sex,age\n3,f,30\n\n4,m,\n")
    t = Targets.from_csv(ok)
    assert [x.filters for x in t] == [{"sex": "f", "age": 30}, {"sex": "m"}]
    semi = tmp_path / "semi.csv"
    semi.write_text("value;sex;age\n3;f;30\n4;m\n")
    with pytest.raises(DataValidationError, match=r"row 2: 2 fields"):
        Targets.from_csv(semi, sep=";")
