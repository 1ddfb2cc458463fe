"""Monte Carlo noise of ``generate``: stratified (Latin hypercube) against independent draws.

For each data set, one default Synthesizer is fitted on an 80% split; then ``generate`` is called
``--draws`` times with different seeds for the held-out conditions, in each ``sampling`` mode.
Reported per target: the mean and the standard deviation over draws of the zero share, and the
mean KS distance between a draw and a 20x larger reference draw of the same model (the Monte Carlo
part of a KS distance against real data). Same model, same conditions: only the draws differ.

    OMP_NUM_THREADS=1 python benchmarks/bench_sampling.py --datasets cps1 workinghours eusilc
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_synthesizers as bs  # noqa: E402
from tidy_results import tidy  # noqa: E402

from microplex import Synthesizer  # noqa: E402
from microplex._stats import ks_distance  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "sampling.md"


def run(name: str, draws: int, seed: int) -> list[dict]:
    df, targets, conds, wcol = bs.DATASETS[name]()
    train, holdout = bs.split(df, seed, False)
    cols = conds + targets
    synth = Synthesizer(targets, conds, verbose=False).fit(
        train[cols + ([wcol] if wcol else [])], weight_col=wcol, seed=seed)
    reference = synth.generate(pd.concat([holdout[cols]] * 20, ignore_index=True), seed=10_000)
    rows = []
    for mode in ("independent", "stratified"):
        synth.set_params(sampling=mode)
        zero, ks = [], []
        for s in range(draws):
            out = synth.generate(holdout[cols], seed=s)
            zero.append([float((out[t] == 0).mean()) for t in targets])
            ks.append([ks_distance(out[t].to_numpy(float), reference[t].to_numpy(float)) for t in targets])
        zero, ks = np.array(zero), np.array(ks)
        for j, t in enumerate(targets):
            rows.append({"data": name, "rows": len(holdout), "target": t, "sampling": mode,
                         "zero share": zero[:, j].mean(), "zero share sd": zero[:, j].std(ddof=1),
                         "KS to model": ks[:, j].mean()})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["cps1", "workinghours", "eusilc"], choices=list(bs.DATASETS))
    p.add_argument("--draws", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    torch.set_num_threads(1)
    rows = [r for name in args.datasets for r in run(name, args.draws, args.seed)]
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["data", "rows", "target"], columns="sampling",
                             values=["zero share", "zero share sd", "KS to model"], sort=False)
    wide.columns = [f"{a} ({b})" for a, b in wide.columns]
    command = "OMP_NUM_THREADS=1 python benchmarks/bench_sampling.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        "# Monte Carlo noise of generate: stratified vs independent draws", "",
        f"Command: `{command}` (load average {os.getloadavg()[0]:.1f})", "",
        (__doc__ or "").split("\n\n")[1].replace("\n", " "), "",
        tidy(wide.reset_index().to_markdown(index=False, floatfmt=".4f")), "",
    ])
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
