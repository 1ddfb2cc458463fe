"""Seeds every doctest (pytest runs them with --doctest-modules)."""

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _doctest_seed(doctest_namespace):
    torch.manual_seed(0)
    np.random.seed(0)
    doctest_namespace["np"] = np
    doctest_namespace["torch"] = torch
