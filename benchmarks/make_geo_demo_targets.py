"""Writes the geography demo's stand-in official totals and held-out cells from census2000.

src/microplex/datasets/demo_geo/targets.csv: nested controls, every one inside one state —
  state x education group, state x experience group, and every PUMA's count;
src/microplex/datasets/demo_geo/heldout.csv: PUMA x education group counts (positive cells only),
  which no stage calibrates to.
The PUMA key ``puma_id`` is "<state>:<puma>" (the pipeline's ``combine`` setting builds it).
"""

from pathlib import Path

import pandas as pd

from microplex.datasets import load_dataset

OUT = Path(__file__).parents[1] / "src" / "microplex" / "datasets" / "demo_geo"
#: Education groups (years of schooling in census2000: 9, 10, 11, 12, 13, 14, 16).
EDUCATION = {"high school or less": "{9, 10, 11, 12}", "some college": "{13, 14}", "college": "{16}"}
#: Potential experience groups (years), an age proxy.
EXPERIENCE = ["[0, 15)", "[15, 30)", "[30, 100)"]


def _q(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main() -> None:
    df = load_dataset("census2000")
    df["puma_id"] = df["state"].astype(str) + ":" + df["puma"].astype(str)
    educ = {name: set(map(int, spec.strip("{}").split(","))) for name, spec in EDUCATION.items()}
    rows, cells = [], []
    for state, part in df.groupby("state", sort=True):
        where = f"state == {_q(state)}"
        for name, spec in EDUCATION.items():
            rows.append({"filter": f"{where} & educ in {spec}", "value": float(part["educ"].isin(educ[name]).sum())})
        for spec in EXPERIENCE:
            lo, hi = (int(v) for v in spec.strip("[)").split(","))
            rows.append({"filter": f"{where} & exper in {spec}",
                         "value": float(((part["exper"] >= lo) & (part["exper"] < hi)).sum())})
        for puma, area in part.groupby("puma_id", sort=True):
            rows.append({"filter": f"{where} & puma_id == {_q(puma)}", "value": float(len(area))})
            for name, spec in EDUCATION.items():
                count = int(area["educ"].isin(educ[name]).sum())
                if count:
                    cells.append({"filter": f"{where} & puma_id == {_q(puma)} & educ in {spec}", "value": float(count)})
    for name, table in (("targets.csv", rows), ("heldout.csv", cells)):
        frame = pd.DataFrame(table).assign(aggregate="count", variable="")
        frame[["aggregate", "variable", "filter", "value"]].to_csv(OUT / name, index=False)


if __name__ == "__main__":
    main()
