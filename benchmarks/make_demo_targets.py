"""Writes the demo's stand-in official totals (src/microplex/datasets/demo/targets.csv) from cps1."""

from pathlib import Path

import pandas as pd

from microplex.datasets import load_dataset

OUT = Path(__file__).parents[1] / "src" / "microplex" / "datasets" / "demo" / "targets.csv"


def main() -> None:
    df = load_dataset("cps1")
    rows = []
    for col in ["marr", "nodeg", "black", "hisp"]:
        for value, count in df[col].value_counts().sort_index().items():
            rows.append({"aggregate": "count", "filter": f"{col} == {value}", "value": float(count)})
    for lo, hi in [(16, 25), (25, 35), (35, 45), (45, 56)]:
        rows.append({"aggregate": "count", "filter": f"age in [{lo}, {hi})",
                     "value": float(((df.age >= lo) & (df.age < hi)).sum())})
    for var in ["re74", "re78"]:
        rows.append({"aggregate": "sum", "variable": var, "filter": "", "value": round(float(df[var].sum()), 2)})
    rows.append({"aggregate": "count", "filter": "re78 == 0", "value": float((df.re78 == 0).sum())})
    pd.DataFrame(rows, columns=["aggregate", "variable", "filter", "value"]).to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
