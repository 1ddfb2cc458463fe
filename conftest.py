"""Seeds every test and every doctest (pytest runs the package's docstrings with --doctest-modules).

This file sits at the repository root, outside the package, so the wheel ships no conftest; pytest
loads it for every path under the root (``tests/`` and ``src/microplex``).

Under pytest-xdist (``-n``, as the project's pytest settings ask) each worker process keeps torch to
one thread, so the workers share the cores instead of oversubscribing them.
"""

import os

import numpy as np
import pytest
import torch

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_global_generators(doctest_namespace):
    torch.manual_seed(0)
    np.random.seed(0)
    doctest_namespace["np"] = np
    doctest_namespace["torch"] = torch
