import numpy as np
import pytest
import torch

from microplex.datasets import load_dataset


@pytest.fixture(autouse=True)
def _seed_global_generators():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def cps1():
    return load_dataset("cps1")
