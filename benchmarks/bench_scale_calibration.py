"""Out-of-core calibration at growing size: records on disk x nested small-area targets, peak memory.

Usage (from the repository root)::

    PYTHONPATH=src python benchmarks/bench_scale_calibration.py --records 10000000 100000000 \
        --tracts 85000 --counties 3000 --states 50 --out /tmp/scal --log results.jsonl
    PYTHONPATH=src python benchmarks/bench_scale_calibration.py ... --workers 2 --worker-memory 4GB

A synthetic national-like population (states > counties > tracts; tract ``k`` lies in county
``k * counties // tracts``, county ``c`` in state ``c * states // counties``; without ``--counties``, 4
tracts per county and 60 counties per state) is written to Parquet in files of 1,000,000 records with
compact dtypes (int32 tract, int16 county and state, int8 categories, float32 weight), each file from its
own seed (so the first ``n / 1,000,000`` files of the largest population are the smaller ones: each size
is a folder of links to them). It is then calibrated by ``microplex.scale.rake_dataset(..., max_cells=0)``
(every evaluation is one pass over the files; no cell table) to tract x age group (4) x sex, county x
income band (4) and state x household size (4) counts, raking, tol 1e-8. Each solve runs in its own
process; peak RSS is that process's ``ru_maxrss`` (with ``--workers``: a Dask LocalCluster of that many
one-thread worker processes, each limited to ``--worker-memory``; their peak RSS is reported too).
Targets are the totals under a random perturbation of the (float32) weights, counted with float64
``bincount`` over every observed cell, so they are consistent and feasible. Files already written are
kept (the run resumes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FILE_ROWS = 1_000_000


class Geo:
    """The nesting: tract -> county -> state."""

    def __init__(self, tracts: int, counties: int | None, states: int | None) -> None:
        self.tracts = tracts
        self.counties = counties if counties is not None else -(-tracts // 4)
        self.county_of = (np.arange(tracts, dtype=np.int64) * self.counties // tracts) if counties else np.arange(tracts) // 4
        self.states = states if states is not None else -(-self.counties // 60)
        cs = np.arange(self.counties, dtype=np.int64)
        self.state_of = (cs * self.states // self.counties) if states else cs // 60


def write_file(target: Path, geo: Geo, seed: int, k: int, m: int) -> tuple[np.ndarray, ...]:
    """Writes file ``k`` (atomically) and returns its perturbed-weight totals per cell of each margin."""
    rng = np.random.default_rng([seed, k])
    tract = rng.integers(0, geo.tracts, m).astype(np.int32)
    county = geo.county_of[tract]
    state = geo.state_of[county]
    age, sex, income, hhsize = (rng.integers(0, c, m).astype(np.int8) for c in (4, 2, 4, 4))
    weight = rng.uniform(50.0, 150.0, m).astype(np.float32)
    truth = weight.astype(np.float64) * rng.uniform(0.8, 1.25, m)
    df = pd.DataFrame(
        {"tract": tract, "county": county.astype(np.int16), "state": state.astype(np.int16), "age": age,
         "sex": sex, "income": income, "hhsize": hhsize, "weight": weight}
    )
    if not target.exists():
        tmp = target.parent / f".tmp-{target.name}"
        df.to_parquet(tmp, index=False)
        os.replace(tmp, target)
    return (
        np.bincount(tract.astype(np.int64) * 8 + age * 2 + sex, truth, geo.tracts * 8),
        np.bincount(county * 4 + income, truth, geo.counties * 4),
        np.bincount(state * 4 + hhsize, truth, geo.states * 4),
    )


def margins_frame(acc: tuple[np.ndarray, ...]) -> pd.DataFrame:
    """The observed cells' targets as one long frame (margin, codes, value)."""
    tas, ci, sh = acc
    rows = []
    for name, arr, split in (
        ("tract|age|sex", tas, lambda j: (j // 8, (j % 8) // 2, j % 2)),
        ("county|income", ci, lambda j: (j // 4, j % 4)),
        ("state|hhsize", sh, lambda j: (j // 4, j % 4)),
    ):
        j = np.flatnonzero(arr > 0)
        cols = split(j)
        fr = pd.DataFrame({f"c{i}": c for i, c in enumerate(cols)})
        rows.append(fr.assign(value=arr[j], margin=name))
    return pd.concat(rows, ignore_index=True)


def write(out: Path, sizes: list[int], geo: Geo, seed: int = 0) -> dict[int, tuple[Path, Path]]:
    """Writes the largest population's files once; a folder of links and a margins file per size."""
    files = out / f"files-{geo.tracts}-{geo.counties}-{geo.states}"
    files.mkdir(parents=True, exist_ok=True)
    res: dict[int, tuple[Path, Path]] = {}
    acc = None
    n_max = max(sizes)
    for k, lo in enumerate(range(0, n_max, FILE_ROWS)):
        m = min(FILE_ROWS, n_max - lo)
        part = write_file(files / f"part-{k:05d}.parquet", geo, seed, k, m)
        acc = part if acc is None else tuple(a + b for a, b in zip(acc, part))
        n = lo + m
        if n in sizes:
            view = out / f"pop-{n}-{geo.tracts}-{geo.counties}-{geo.states}"
            view.mkdir(exist_ok=True)
            for j in range(k + 1):
                link = view / f"part-{j:05d}.parquet"
                if not link.exists():
                    link.symlink_to(files / link.name)
            mfile = out / f"margins-{n}-{geo.tracts}-{geo.counties}-{geo.states}.parquet"
            margins_frame(acc).to_parquet(mfile)
            res[n] = (view, mfile)
    return res


def _worker_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(dataset: str, margins_file: str, workers: int, worker_memory: str) -> dict:
    sys.path.insert(0, str(ROOT / "src"))
    import logging

    from microplex.scale import rake_dataset

    logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("microplex").setLevel(logging.DEBUG)  # progress (Newton iterations) on stderr

    frame = pd.read_parquet(margins_file)
    margins: dict = {}
    for key, grp in frame.groupby("margin", sort=False):
        cols = tuple(key.split("|"))
        codes = zip(*(grp[f"c{i}"].astype(int).tolist() for i in range(len(cols))))
        margins[cols] = dict(zip(codes, grp["value"].tolist()))
    del frame
    client = cluster = None
    if workers:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=worker_memory,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    c0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    res = rake_dataset(dataset, margins, "weight", tol=1e-8, max_cells=0, client=client)
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "targets": int(len(res.lam)),
        "converged": bool(res.converged),
        "n_iter": res.n_iter,
        "n_passes": res.n_passes,
        "max_misfit": res.max_misfit,
        "max_rel_error": float(res.report["rel_error"].max()),
        "n_records": res.summary["n_units"],
        "wall_s": time.perf_counter() - t0,
        "cpu_s": (c1.ru_utime + c1.ru_stime) - (c0.ru_utime + c0.ru_stime),
        "peak_rss_mb": c1.ru_maxrss / 1024.0,
        "client_process_cpu_s": c1.ru_utime + c1.ru_stime,  # margins, cluster start-up and the solve
    }
    if client is not None:
        out["worker_peak_rss_mb"] = sorted(client.run(_worker_rss).values())
        out["worker_cpu_s"] = sorted(
            client.run(lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])).values()
        )
        client.close()
        cluster.close()
    return out


def _proc(pid: int) -> dict | None:
    """``/proc`` figures of one process: parent, RSS and its peak (VmHWM) in MB, CPU seconds, command."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    kb = {k: float(v.split()[0]) / 1024.0 for k, v in (ln.split(":", 1) for ln in status.splitlines()) if k in ("VmRSS", "VmHWM")}
    tick = os.sysconf("SC_CLK_TCK")
    return {"ppid": int(fields[1]), "rss": kb.get("VmRSS", 0.0), "hwm": kb.get("VmHWM", 0.0),
            "cpu": (int(fields[11]) + int(fields[12])) / tick, "cmd": cmd[:80]}


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants every ``every`` s (no psutil): per process its
    peak (VmHWM) and CPU seconds, and the largest sum of RSS over the tree at one sample; a line to stderr
    every minute."""

    def __init__(self, root: int, every: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.stop = root, every, threading.Event()
        self.procs: dict[int, dict] = {}
        self.max_sum = 0.0

    def sample(self) -> tuple[dict, float]:
        info = {int(p): _proc(int(p)) for p in os.listdir("/proc") if p.isdigit()}
        tree, frontier = {self.root}, [self.root]
        while frontier:
            kids = [p for p, i in info.items() if i and i["ppid"] in frontier and p not in tree]
            tree.update(kids)
            frontier = kids
        now = {p: info[p] for p in tree if info.get(p)}
        for p, i in now.items():
            seen = self.procs.get(p, {})
            self.procs[p] = {**i, "hwm": max(i["hwm"], seen.get("hwm", 0.0)), "cmd": seen.get("cmd") or i["cmd"]}
        total = sum(i["rss"] for i in now.values())
        self.max_sum = max(self.max_sum, total)
        return now, total

    def run(self) -> None:
        last = 0.0
        while not self.stop.wait(self.every):
            now, total = self.sample()
            if time.monotonic() - last >= 60:
                last = time.monotonic()
                print(time.strftime("%H:%M:%S", time.gmtime()), "rss MB", " ".join(f"{p}:{i['rss']:.0f}" for p, i in now.items()),
                      f"sum {total:.0f} (max {self.max_sum:.0f})", file=sys.stderr, flush=True)

    def result(self) -> dict:
        procs = [{"pid": p, "peak_rss_mb": round(i["hwm"], 1), "cpu_s": i["cpu"], "cmd": i["cmd"]}
                 for p, i in sorted(self.procs.items())]
        return {"processes": procs, "sum_peak_rss_mb": round(sum(i["peak_rss_mb"] for i in procs), 1),
                "max_sampled_sum_rss_mb": round(self.max_sum, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--tracts", type=int, default=1250)
    ap.add_argument("--counties", type=int, default=None)
    ap.add_argument("--states", type=int, default=None)
    ap.add_argument("--out", default="/tmp/bench-scale-calibration")
    ap.add_argument("--log", default=None, help="append every result line (JSON) to this file")
    ap.add_argument("--workers", type=int, default=0, help="Dask LocalCluster worker processes (0: local threads)")
    ap.add_argument("--worker-memory", default="4GB")
    ap.add_argument("--write-only", action="store_true")
    ap.add_argument("--child", nargs=2, metavar=("DATASET", "MARGINS"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.workers, args.worker_memory)))
        return
    if len(args.records) > 1 and any(n % FILE_ROWS for n in args.records):
        raise SystemExit("with several sizes, every size must be a multiple of 1,000,000 records")
    geo = Geo(args.tracts, args.counties, args.states)
    out = Path(args.out)
    datasets = write(out, sorted(args.records), geo)
    if args.write_only:
        return
    for n in args.records:
        ds, mfile = datasets[n]
        cmd = [sys.executable, __file__, "--child", str(ds), str(mfile), "--workers", str(args.workers),
               "--worker-memory", args.worker_memory]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        load0, ch0 = os.getloadavg(), resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)  # stderr: the child's progress
        sampler = TreeSampler(proc.pid)
        sampler.start()
        stdout, _ = proc.communicate()
        sampler.stop.set()
        sampler.join()
        if proc.returncode:
            print(json.dumps(sampler.result()), file=sys.stderr)
            raise SystemExit(proc.returncode)
        ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child and every process it waited for
        r = json.loads(stdout.strip().splitlines()[-1])
        line = json.dumps({"records": n, "tracts": geo.tracts, "counties": geo.counties, "states": geo.states,
                           "workers": args.workers, **r, **sampler.result(),
                           "cpu_s_all": (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime),
                           "load_before": load0, "load_after": os.getloadavg(),
                           "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())})
        print(line, flush=True)
        if args.log:
            with open(args.log, "a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
