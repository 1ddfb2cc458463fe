"""Files read as they are written (session 75).

Each case failed before its fix: a CSV with R's ``write.table`` row names whose columns were all read again as text
was read again one column to the left (zip codes lost their zeros, incomes became text, "None" labels were lost).
"""

from __future__ import annotations

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

