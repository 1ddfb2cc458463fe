import pytest

from microplex import Synthesizer
from microplex.scale import generate as generate_module


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
