"""Files read as they are written (session 75).

Each case failed before its fix: a CSV with R's ``write.table`` row names whose columns were all read again as text
was read again one column to the left (zip codes lost their zeros, incomes became text, "None" labels were lost);
a ``None`` missing cell in a code column made microplex take the column for amounts (the ``e`` of ``None`` read
as an exponent), so the codes lost their zeros.
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd

from microplex.io import read_table


def test_r_row_names_with_every_column_read_again_keep_each_column_its_cells(tmp_path):
    # R: write.table(data.frame(zip=c("01234","12345","00501"), inc=5:7), "a.csv", sep=",")
    a = tmp_path / "a.csv"
    a.write_text('"zip","inc"\n"1","01234",5\n"2","12345",6\n"3","00501",7\n')
    got = read_table(a)
    assert got.columns.tolist() == ["zip", "inc"]
    assert got["zip"].tolist() == ["01234", "12345", "00501"]
    assert got["inc"].tolist() == [5, 6, 7] and pd.api.types.is_integer_dtype(got["inc"])
    # every column a text column with a "None" label
    b = tmp_path / "b.csv"
    b.write_text("educ,sex\n1,None,m\n2,HS,None\n3,BA,f\n")
    assert read_table(b).to_dict("list") == {"educ": ["None", "HS", "BA"], "sex": ["m", "None", "f"]}
    # the columns named as text (generate's conditions) likewise
    got = read_table(a, text=["zip", "inc"])
    assert got.to_dict("list") == {"zip": ["01234", "12345", "00501"], "inc": ["5", "6", "7"]}
    # and as before when some column needs no second reading
    c = tmp_path / "c.csv"
    c.write_text('"zip","inc","name"\n"1","01234",5,"x"\n"2","12345",6,"y"\n"3","00501",7,"z"\n')
    assert read_table(c).to_dict("list") == {"zip": ["01234", "12345", "00501"], "inc": [5, 6, 7],
                                             "name": ["x", "y", "z"]}


def test_a_none_missing_cell_keeps_the_zeros_of_a_code_column(tmp_path):
    body = "zip,inc,amount\n01234,5,0012.5\n12345,6,None\nNone,7,7\n"
    for name, write in (("a.csv", lambda f: f.write_text(body)),
                        ("a.csv.gz", lambda f: f.write_bytes(gzip.compress(body.encode())))):
        f = tmp_path / name
        write(f)
        got = read_table(f)
        assert got["zip"].iloc[:2].tolist() == ["01234", "12345"] and pd.isna(got["zip"].iloc[2]), name
        assert got["inc"].tolist() == [5, 6, 7]
        # a column with a decimal point stays numbers, its None cell missing
        np.testing.assert_array_equal(got["amount"].to_numpy(dtype=float), [12.5, np.nan, 7.0])
    # the other missing tokens pandas reads (NA, NaN, null, empty) alike; a cell with an exponent stays numbers
    for token in ("NA", "NaN", "null", "", "-1.#IND", "1.#QNAN"):
        f = tmp_path / "t.csv"
        f.write_text(f"zip,n\n01234,1e2\n12345,3\n{token},4\n")
        got = read_table(f)
        assert got["zip"].iloc[:2].tolist() == ["01234", "12345"] and pd.isna(got["zip"].iloc[2]), token
        assert got["n"].tolist() == [100.0, 3.0, 4.0], token
