"""MST and AIM (private-pgm, as packaged in ``smartnoise-synth``) for ``bench_dp.py``'s protocol.

Runs in its own environment (no microplex import): ``smartnoise-synth`` pins Opacus 0.14, which
pins an old torch, so its full dependency set does not resolve beside microplex's torch. The
environment is built from ``benchmarks/requirements-dp-peers.txt`` (exact versions, each a real
import of MST/AIM) with ``--no-deps``:

    python3.11 -m venv /work/venv-snsynth
    /work/venv-snsynth/bin/pip install --no-deps -r benchmarks/requirements-dp-peers.txt

``bench_dp.py --peers mst aim --peer-python /work/venv-snsynth/bin/python`` writes the training rows
and the public metadata to a temporary folder, calls this script, and scores the release it writes.

Discretization (public metadata only, as the DP flow: no budget is spent on it): a categorical
column keeps its categories; an integer column with at most 100 values between its bounds keeps
each integer; any other numeric column gets one cell per point-mass candidate (the declared point
masses, else the bounds and 0, as the DP flow's statistics) and 32 equal-width bins of
``sign(x) log(1 + |x|)`` between its bounds; a release's value is drawn uniformly inside its bin
on that scale (a candidate's cell gives the candidate exactly).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

BINS = 32


def _t(x):
    return np.sign(x) * np.log1p(np.abs(x))


def _inv(t):
    return np.sign(t) * np.expm1(np.abs(t))


def encode(df: pd.DataFrame, meta: dict) -> tuple[pd.DataFrame, dict]:
    out, codec = pd.DataFrame(index=df.index), {}
    for col, spec in meta["columns"].items():
        x = df[col]
        if spec["kind"] == "categorical":
            cats = [str(c) for c in spec["categories"]]
            out[col] = pd.Categorical(x.astype(str), categories=cats).codes
            codec[col] = ("cat", spec["categories"])
            continue
        lo, hi = spec["bounds"]
        x = np.clip(x.to_numpy(float), lo, hi)
        if spec["integer"] and hi - lo <= 100:
            out[col] = (np.round(x) - np.ceil(lo)).astype(int)
            codec[col] = ("int", np.ceil(lo))
            continue
        cand = sorted(spec["candidates"])
        edges = np.linspace(_t(lo), _t(hi), BINS + 1)
        code = np.clip(np.searchsorted(edges, _t(x), side="right") - 1, 0, BINS - 1) + len(cand)
        for i, v in enumerate(cand):
            code[x == v] = i
        out[col] = code
        codec[col] = ("num", cand, edges)
    return out, codec


def decode(codes: pd.DataFrame, codec: dict, rng: np.random.Generator) -> pd.DataFrame:
    out = pd.DataFrame(index=codes.index)
    for col, c in codec.items():
        k = codes[col].to_numpy(int)
        if c[0] == "cat":
            out[col] = np.asarray(c[1], dtype=object)[np.clip(k, 0, len(c[1]) - 1)]
        elif c[0] == "int":
            out[col] = k + c[1]
        else:
            cand, edges = c[1], c[2]
            b = np.clip(k - len(cand), 0, BINS - 1)
            v = _inv(edges[b] + rng.uniform(size=len(k)) * (edges[b + 1] - edges[b]))
            is_c = k < len(cand)
            v[is_c] = np.asarray(cand, dtype=float)[k[is_c]] if len(cand) else v[is_c]
            out[col] = v
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--method", choices=["mst", "aim"], required=True)
    p.add_argument("--epsilon", type=float, required=True)
    p.add_argument("--delta", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    from snsynth import Synthesizer

    meta = json.loads(open(a.meta).read())
    df = pd.read_csv(a.train)
    codes, codec = encode(df, meta)
    np.random.seed(a.seed)
    t0 = time.perf_counter()
    synth = Synthesizer.create(a.method, epsilon=a.epsilon, delta=a.delta)
    synth.fit(codes, categorical_columns=list(codes.columns), preprocessor_eps=0.0)
    fit_s = time.perf_counter() - t0
    rel = synth.sample(a.n)
    decode(rel[list(codes.columns)].astype(int), codec, np.random.default_rng(a.seed)).to_csv(a.out, index=False)
    print(json.dumps({"fit_s": fit_s}))


if __name__ == "__main__":
    main()
