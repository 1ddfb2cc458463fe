"""Benchmark of microplex.scale: end-to-end rows/s to Parquet, peak RSS, Dask scaling.

Usage (writes a Markdown fragment to stdout; run with ``nice`` on a shared machine)::

    PYTHONPATH=src nice -n 5 python benchmarks/bench_scale.py --n 2000000 --rss-n 100000000 \
        --dask-workers 1 2 --dask-n 2000000 --out /tmp/bench-scale

The model is the cps1 model of the issue (targets re74, re75, re78 given age, educ, black,
hisp, marr, nodeg), fitted for ``--epochs`` epochs: sampling cost depends on the network's
size, not on how long it was trained. The peak RSS is measured in a child process with
``resource.getrusage`` (``ru_maxrss``), never estimated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGETS = ["re74", "re75", "re78"]
CONDITIONS = ["age", "educ", "black", "hisp", "marr", "nodeg"]


def fit_model(path: Path, epochs: int) -> None:
    from microplex import Synthesizer
    from microplex.datasets import load_dataset

    df = load_dataset("cps1")
    Synthesizer(TARGETS, CONDITIONS, epochs=epochs, verbose=False).fit(df, seed=0).save(path)


def _peak_rss_mib() -> float:
    """Peak RSS of this process image: ``VmHWM`` (Linux), else ``ru_maxrss``.

    ``ru_maxrss`` survives ``execve``: a child started by a big parent reports at least the
    parent's RSS at fork time, so ``VmHWM`` of ``/proc/self/status`` is read first.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _state_cells(synth, n: int):
    """Counts per (state x training condition pattern): 51 states, ``n`` persons in all."""
    import numpy as np

    from microplex.scale import CellCounts

    cond = synth.training_conditions_.drop_duplicates().reset_index(drop=True)
    cells = cond.loc[cond.index.repeat(51)].reset_index(drop=True)
    cells.insert(0, "state", np.tile(np.arange(1, 52), len(cond)))
    cells = cells.sort_values(["state"], kind="stable").reset_index(drop=True)
    counts = np.full(len(cells), n // len(cells))
    counts[: n - counts.sum()] += 1
    return CellCounts(cells.assign(count=counts))


def child(model: str, n: int, out: str, rows_per_file: int, threads: int, partition: bool = False) -> None:
    """One generate_dataset run; prints rows, seconds and peak RSS (MiB) as JSON.

    With ``partition``, conditions are counts per state x condition cell and the output is
    hive-partitioned by state.
    """
    import torch

    from microplex import Synthesizer
    from microplex.scale import generate_dataset

    if threads:
        torch.set_num_threads(threads)
    synth = Synthesizer.load(model)
    shutil.rmtree(out, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    if partition:
        manifest = generate_dataset(synth, _state_cells(synth, n), path=out, rows_per_file=rows_per_file, seed=0,
                                    partition_by=["state"], progress=False)
    else:
        manifest = generate_dataset(synth, n=n, path=out, rows_per_file=rows_per_file, seed=0, progress=False)
    seconds = time.perf_counter() - start
    rss = _peak_rss_mib()
    size = sum(f["bytes"] for f in manifest["files"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rows": manifest["rows"], "seconds": seconds, "peak_rss_mib": rss, "bytes": size,
                      "cpu_seconds": usage.ru_utime + usage.ru_stime - cpu0,
                      "files": len(manifest["files"]), "threads": torch.get_num_threads()}))


def generate_only(model: str, n: int, threads: int) -> float:
    """Rows/s of ``Synthesizer.generate`` in memory on resampled conditions (no I/O)."""
    import torch

    from microplex import Synthesizer
    from microplex.scale import Resample

    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    synth = Synthesizer.load(model)
    cond = Resample(synth.training_conditions_, synth.training_weights_, seed=0).read(0, n)
    start = time.perf_counter()
    for s in range(0, n, 100_000):
        synth.generate(cond.iloc[s : s + 100_000], seed=s, chunk_size=20_000)
    rate = n / (time.perf_counter() - start)
    torch.set_num_threads(default)
    return rate


def run_child(model: str, n: int, out: str, rows_per_file: int, threads: int = 0, partition: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", model, str(n), out, str(rows_per_file), str(threads), str(int(partition))]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def dask_rate(model: str, n: int, out: str, workers: int, rows_per_file: int) -> tuple[float, float]:
    """(rows per wall second, rows per CPU second of the workers)."""
    from dask.distributed import Client, LocalCluster

    from microplex import Synthesizer
    from microplex.scale import generate_dataset

    synth = Synthesizer.load(model)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        shutil.rmtree(out, ignore_errors=True)
        cpu0 = client.run(_cpu_seconds)
        start = time.perf_counter()
        generate_dataset(synth, n=n, path=out, rows_per_file=rows_per_file, seed=0, client=client, progress=False)
        wall = time.perf_counter() - start
        cpu = sum(client.run(_cpu_seconds)[w] - cpu0[w] for w in cpu0)
        return n / wall, n / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=float, default=2e6, help="rows of the single-process throughput run")
    ap.add_argument("--rss-n", type=float, default=0, help="rows of the peak-RSS run (0 skips it)")
    ap.add_argument("--dask-workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--dask-n", type=float, default=2e6)
    ap.add_argument("--rows-per-file", type=int, default=5_000_000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default="/tmp/bench-scale")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = str(out / "cps1.mpx")
    fit_model(Path(model), args.epochs)
    rows = []
    print(f"machine: {platform.node()} {os.cpu_count()} CPUs, load average {os.getloadavg()}", flush=True)
    for threads in (0, 1):
        gen = generate_only(model, min(int(args.n), 1_000_000), threads)
        how = "1 process (default torch threads)" if threads == 0 else "1 process (1 torch thread)"
        rows.append(("Synthesizer.generate in memory (no I/O)", how, f"{gen:,.0f}", ""))
        print(rows[-1], flush=True)
    # rows_per_file = n/4 so the run has several tasks, files and renames
    rpf = max(int(args.n) // 4, 1)
    local = run_child(model, int(args.n), str(out / "local"), rpf)
    rate = local["rows"] / local["seconds"]
    rows.append(("generate_dataset to Parquet", f"1 process ({local['threads']} torch threads)", f"{rate:,.0f}",
                 f"{local['rows'] / local['cpu_seconds']:,.0f} rows/CPU-s, {local['peak_rss_mib']:,.0f} MiB peak RSS, "
                 f"{local['bytes'] / local['rows']:.1f} bytes/row"))
    print(rows[-1], flush=True)
    one = run_child(model, int(args.n), str(out / "local1"), rpf, threads=1)
    rows.append(("generate_dataset to Parquet", "1 process (1 torch thread)", f"{one['rows'] / one['seconds']:,.0f}",
                 f"{one['rows'] / one['cpu_seconds']:,.0f} rows/CPU-s, {one['peak_rss_mib']:,.0f} MiB peak RSS"))
    print(rows[-1], flush=True)
    part = run_child(model, int(args.n), str(out / "part"), rpf, threads=1, partition=True)
    rows.append(("generate_dataset to Parquet, CellCounts, partition_by=['state'] (51)", "1 process (1 torch thread)",
                 f"{part['rows'] / part['seconds']:,.0f}",
                 f"{part['rows'] / part['cpu_seconds']:,.0f} rows/CPU-s, {part['peak_rss_mib']:,.0f} MiB peak RSS, "
                 f"{part['files']} files"))
    print(rows[-1], flush=True)
    dask_rates = {}
    for w in args.dask_workers:
        r, per_cpu = dask_rate(model, int(args.dask_n), str(out / f"dask{w}"), w, max(int(args.dask_n) // (4 * w), 1))
        dask_rates[w] = per_cpu
        rows.append(("generate_dataset to Parquet", f"Dask LocalCluster {w} worker(s) x 1 thread", f"{r:,.0f}",
                     f"{per_cpu:,.0f} rows per worker CPU-second"))
        print(rows[-1], flush=True)
    if args.rss_n:
        big = run_child(model, int(args.rss_n), str(out / "big"), args.rows_per_file)
        rows.append(("generate_dataset to Parquet", f"{big['rows']:,} rows, 1 process", f"{big['rows'] / big['seconds']:,.0f}",
                     f"{big['rows'] / big['cpu_seconds']:,.0f} rows/CPU-s, {big['peak_rss_mib']:,.0f} MiB peak RSS, "
                     f"{big['files']} files, {big['bytes'] / 1e9:.2f} GB, {big['seconds']:,.0f} s"))
        print(rows[-1], flush=True)
        shutil.rmtree(out / "big", ignore_errors=True)
    print("\n| what | how | rows/s | notes |\n|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if 1 in dask_rates:
        per_core = dask_rates[1]
        print(f"\nExtrapolation from the measured per-core rate ({per_core:,.0f} rows per worker CPU-second, Dask, "
              "1 worker x 1 thread), assuming one dedicated core per worker and linear scaling:\n")
        print("| rows | " + " | ".join(f"{w} workers" for w in (1, 16, 64, 256, 1024)) + " |")
        print("|---|" + "---|" * 5)
        for total in (1e9, 1e10):
            cells = [_duration(total / (w * per_core)) for w in (1, 16, 64, 256, 1024)]
            print(f"| {total:,.0f} | " + " | ".join(cells) + " |")


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
              len(sys.argv) > 7 and sys.argv[7] == "1")
    else:
        main()
