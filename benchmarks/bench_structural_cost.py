"""What structural zeros cost when drawing: generate 1,000,000 records with the rules on and off.

Two acs12 models of the documented default call (seed 0): targets ``income``, ``hrs_work``, ``time_to_work``;
``employment`` (rows with income, edu and employment given; conditions ``age``, ``gender``, ``edu``,
``employment``, ``race``: rules on categories) and ``age`` (all rows; conditions ``age``, ``gender``, ``race``:
rules on age's tails). Each model generates for its training conditions repeated to 1,000,000 rows, one torch
thread, best of three (after a warm-up draw of 1,000 rows). Run it alone: timings on a shared 2-core machine are
noise.

Usage
-----
    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_structural_cost.py
"""

from __future__ import annotations

import os
import time

import pandas as pd
import torch

from microplex import Synthesizer
from microplex.datasets import load_dataset

TARGETS = ["income", "hrs_work", "time_to_work"]
ROWS = 1_000_000


def main() -> None:
    torch.set_num_threads(1)
    acs = load_dataset("acs12")
    setups = {"employment": (acs.dropna(subset=["income", "edu", "employment"]),
                             ["age", "gender", "edu", "employment", "race"]),
              "age": (acs, ["age", "gender", "race"])}
    rows = []
    for name, (data, conditions) in setups.items():
        repeated = pd.concat([data[conditions]] * (ROWS // len(data) + 1), ignore_index=True).head(ROWS)
        for flag in (None, False):
            synth = Synthesizer(TARGETS, conditions, structural_zeros=flag, verbose=False)
            synth.fit(data[TARGETS + conditions], seed=0)
            synth.generate(repeated.head(1000), seed=0)
            times = []
            for _ in range(3):
                start = time.perf_counter()
                synth.generate(repeated, seed=1)
                times.append(time.perf_counter() - start)
            rows.append({"model": name, "structural_zeros": "on (default)" if flag is None else "off",
                         "patterns": len(synth.patterns_),
                         "rules": 0 if synth.structure_ is None else len(synth.structure_.columns),
                         "generate 1M s (best of 3)": round(min(times), 2)})
    print(f"load average {os.getloadavg()[0]:.2f}, {ROWS:,} rows, one torch thread\n")
    print(pd.DataFrame(rows).to_markdown(index=False))


if __name__ == "__main__":
    main()
