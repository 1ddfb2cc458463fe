import pytest

from microplex.datasets import DATASETS, load_dataset


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_bundled_dataset_loads(name):
    df = load_dataset(name)
    assert len(df) > 1000
    assert df.columns.is_unique


def test_unknown_dataset_is_named_in_the_error():
    with pytest.raises(ValueError, match="'nope'"):
        load_dataset("nope")


@pytest.mark.parametrize("name", ["nope", ["cps1"], None])
def test_a_bad_dataset_name_is_a_microplex_error(name):
    from microplex import DataValidationError

    with pytest.raises(DataValidationError, match="Unknown dataset"):
        load_dataset(name)
