from __future__ import annotations

from pathlib import Path

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
