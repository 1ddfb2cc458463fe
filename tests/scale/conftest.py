import pytest
import torch

from microplex import Synthesizer
from microplex.datasets import load_dataset
from microplex.households import HouseholdSynthesizer
from microplex.scale import generate as generate_module
from microplex.scale import households as households_module


@pytest.fixture(scope="session")
def tiny_synth(cps1):
    """A quickly fitted model: two earnings targets given age, education and race."""
    df = cps1.sample(2000, random_state=0)
    return Synthesizer(["re74", "re78"], ["age", "educ", "black"], epochs=1, verbose=False).fit(df, seed=0)


@pytest.fixture()
def small_blocks(monkeypatch):
    """Blocks of 300 rows, so a few thousand rows span many blocks and files."""
    monkeypatch.setattr(generate_module, "_BLOCK_ROWS", 300)
    return 300


@pytest.fixture(scope="session")
def hs():
    """A quickly fitted household model of 400 EU-SILC households (region, size; age, sex, income)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    df = load_dataset("eusilc")
    df = df[df["db030"] <= 400].reset_index(drop=True)
    model = HouseholdSynthesizer(["db040", "hsize"], ["age", "rb090", "py010n"], "db030", household_weight="db090",
                                 person_id="rb030", size_var="hsize", geography="db040", age_var="age", epochs=1,
                                 hidden_features=(16, 16), transforms=1).fit(df, seed=0)
    yield model
    torch.set_num_threads(threads)


@pytest.fixture()
def small_hh_blocks(monkeypatch):
    """Blocks of 70 households, so a few hundred households span several blocks and tasks."""
    monkeypatch.setattr(households_module, "_BLOCK_HOUSEHOLDS", 70)


class _GraphClient:
    """A stand-in client: computes with the synchronous scheduler and records, for every graph, the
    pickled bytes of each task (cloudpickle, as Dask; what a scheduler ships to its workers, task by task)."""

    def __init__(self):
        self.task_bytes: list[list[int]] = []

    def compute(self, obj):
        from concurrent.futures import Future

        import cloudpickle
        import dask

        self.task_bytes.append([len(cloudpickle.dumps(t)) for t in dict(obj.__dask_graph__()).values()])
        fut = Future()
        fut.set_result(dask.compute(obj, scheduler="sync")[0])
        return fut


@pytest.fixture()
def graph_client():
    """A :class:`_GraphClient` (the task bytes of every graph computed through it)."""
    return _GraphClient()
