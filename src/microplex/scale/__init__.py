"""Scale: stream synthetic populations of any size to Parquet, locally or on Dask.

>>> from microplex.scale import generate_dataset, CellCounts  # doctest: +SKIP
"""

from .calibrate import RakingResult, rake_dataset, rake_frame, write_calibrated
from .generate import generate_dataset
from ._layout import dataset_schema, read_manifest
from .households import generate_household_dataset
from .sources import CellCounts, ConditionSource, FrameSource, ParquetSource, Resample

__all__ = [
    "CellCounts",
    "ConditionSource",
    "FrameSource",
    "ParquetSource",
    "RakingResult",
    "Resample",
    "dataset_schema",
    "generate_dataset",
    "generate_household_dataset",
    "rake_dataset",
    "rake_frame",
    "read_manifest",
    "write_calibrated",
]
