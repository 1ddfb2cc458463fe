from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microplex.datasets import load_dataset

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="session")
def census() -> pd.DataFrame:
    return load_dataset("census2000")


@pytest.fixture(scope="session")
def eusilc() -> pd.DataFrame:
    return load_dataset("eusilc")


def untargeted_population(seed: int, n: int) -> tuple[pd.DataFrame, object]:
    """Regions x sex are targeted; age, income (correlated with age and region) and job are not."""
    from microplex.calibration import Targets

    rng = np.random.default_rng(seed)
    region = rng.integers(0, 4, n)
    age = rng.integers(18, 80, n)
    income = np.exp(rng.normal(10 + 0.02 * age + 0.2 * region, 0.6))
    df = pd.DataFrame({"region": region, "sex": rng.integers(0, 2, n), "age": age, "income": income,
                       "job": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]), "weight": 50.0})
    targets = Targets.from_margins({("region", "sex"): df.groupby(["region", "sex"])["weight"].sum()})
    return df, targets


def net_zero(s: float) -> tuple[pd.DataFrame, list]:
    """Weights of 1 and counts ``s`` times them, with a sum of 0 over group b's values of both signs."""
    from microplex.calibration import Target

    df = pd.DataFrame({"g": ["a", "a", "b", "b", "b"], "y": [1.0, 2.0, 1.0, -3.0, 2.5], "weight": 1.0})
    return df, [Target(2.0 * s, aggregate="count", filters={"g": "a"}),
                Target(3.0 * s, aggregate="count", filters={"g": "b"}),
                Target(0.0, aggregate="sum", variable="y", filters={"g": "b"})]
