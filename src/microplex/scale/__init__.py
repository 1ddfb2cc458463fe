"""Scale: stream synthetic populations of any size to Parquet, locally or on Dask.

>>> from microplex.scale import generate_dataset, CellCounts  # doctest: +SKIP
"""

from .generate import generate_dataset
from .sources import CellCounts, ConditionSource, FrameSource, ParquetSource, Resample

__all__ = ["CellCounts", "ConditionSource", "FrameSource", "ParquetSource", "Resample", "generate_dataset"]
