"""Correctness-scale run: 50,000 streamed households, out-of-core household calibration vs Calibrator."""
import shutil, numpy as np, pandas as pd, torch
from microplex.datasets import load_dataset
from microplex.households import HouseholdSynthesizer
from microplex.calibration import Calibrator, Targets
from microplex.scale import generate_household_dataset, rake_dataset
torch.set_num_threads(1)
df = load_dataset("eusilc"); df = df[df.db030 <= 1500].reset_index(drop=True)
hs = HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090", "py010n"], "db030", household_weight="db090",
                          person_id="rb030", size_var="hsize", geography="db040", age_var="age", epochs=2).fit(df, seed=0)
root = "households_scale_pop"  # written in the working directory
shutil.rmtree(root, ignore_errors=True)
m = generate_household_dataset(hs, 50_000, path=root, partition_by=["db040"], households_per_file=20_000, seed=1, progress=False)
h = pd.read_parquet(f"{root}/households"); p = pd.read_parquet(f"{root}/persons")
h["db040"] = h["db040"].astype(str); p["db040"] = p["db040"].astype(str)
print("households", len(h), "persons", len(p), "files", len(m["households"]["files"]), "ids unique", h.db030.is_unique, p.rb030.is_unique)
rng = np.random.default_rng(0)
truth = pd.Series(h.db090.to_numpy() * rng.uniform(0.8, 1.25, len(h)), index=h.db030)
pw = p.assign(t=truth.reindex(p.db030).to_numpy())
tp = Targets.from_margins({("db040", "rb090"): pw.groupby(["db040", "rb090"])["t"].sum().to_dict()})
th = Targets.from_margins({"hsize": h.assign(t=truth.to_numpy()).groupby("hsize")["t"].sum().to_dict()}, entity="household")
targets = Targets(list(tp) + list(th))
joined = p.drop(columns=["db090", "db040"]).merge(h, on="db030")
for method, bounds in [("raking", None), ("linear", (0.5, 2.0)), ("logit", (0.5, 2.0))]:
    res = rake_dataset(f"{root}/households", targets, "db090", persons=f"{root}/persons", household_id="db030", method=method, bounds=bounds)
    ref = Calibrator(method=method, bounds=bounds).fit(joined, targets, weight_col="db090", household_col="db030").result_.weights.reindex(h.db030).to_numpy()
    w = res.weights(h, p)
    print(method, bounds, "targets", len(targets), "iter", res.n_iter, "passes", res.n_passes,
          "max rel err", f"{res.summary['max_rel_error']:.2e}", "max |w-ref|/ref", f"{np.max(np.abs(w-ref)/ref):.2e}")
