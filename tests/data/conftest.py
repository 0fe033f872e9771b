import pytest

from fastuss_fx.data.synthetic import write_synthetic_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """Manifest path of a small synthetic corpus: 3 train + 2 valid clips of 1.5 s per role."""
    return write_synthetic_corpus(
        tmp_path_factory.mktemp("corpus"), clips_per_role=3, valid_per_role=2, seconds=1.5, seed=1
    )
