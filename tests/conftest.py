"""Shared fixtures of the test suite (the seeding of every test is in the root ``conftest.py``)."""

import pytest

from microplex.datasets import load_dataset


@pytest.fixture(scope="session")
def cps1():
    return load_dataset("cps1")
