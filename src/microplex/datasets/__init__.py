"""Real public survey extracts bundled with microplex (see ``data/README.md`` for provenance)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .._errors import DataValidationError

__all__ = ["DATASETS", "load_dataset", "dataset_path"]

#: Name -> file of every bundled extract.
DATASETS: dict[str, str] = {
    "cps1": "cps1_earnings.csv",
    "cps1988": "cps1988_wages.csv",
    "census2000": "census2000_pums.csv",
    "acs12": "acs12.csv",
    "eusilc": "eusilc.csv",
    "workinghours": "workinghours.csv",
}


def dataset_path(name: str) -> str:
    """Returns the path of the bundled extract ``name`` (a key of :data:`DATASETS`)."""
    if not isinstance(name, str) or name not in DATASETS:
        raise DataValidationError(f"Unknown dataset {name!r}; expected one of {sorted(DATASETS)}.")
    return str(resources.files(__package__).joinpath("data", DATASETS[name]))


def load_dataset(name: str) -> pd.DataFrame:
    """Loads a bundled real survey extract as a DataFrame.

    Parameters
    ----------
    name : str
        One of ``"cps1"``, ``"cps1988"``, ``"census2000"``, ``"acs12"``, ``"eusilc"``,
        ``"workinghours"``.

    Examples
    --------
    >>> df = load_dataset("cps1")
    >>> df.shape
    (15992, 9)
    """
    return pd.read_csv(dataset_path(name))
