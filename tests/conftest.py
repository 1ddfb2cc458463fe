import numpy as np
import pytest
import torch

from microplex.datasets import load_dataset


@pytest.fixture(autouse=True)
def _doctest_seed(doctest_namespace):
    torch.manual_seed(0)
    np.random.seed(0)
    doctest_namespace["np"] = np
    doctest_namespace["torch"] = torch


@pytest.fixture(scope="session")
def cps1():
    return load_dataset("cps1")
