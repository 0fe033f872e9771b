import numpy as np
import pytest

from fastuss_fx.data.manifest import ClipStore
from fastuss_fx.data.synthetic import synth
from fastuss_fx.prompts import PROMPTS


@pytest.mark.parametrize("role", PROMPTS)
def test_every_role_is_audible_and_bounded(role):
    x = synth(role, np.random.default_rng(0), 1.0, 48000)
    assert x.shape == (48000,) and x.dtype == np.float32
    assert np.max(np.abs(x)) == pytest.approx(0.5, abs=1e-6)


def test_corpus_has_songs_in_both_splits(corpus):
    store = ClipStore.from_manifest(corpus)
    for split in ("train", "valid"):
        songs = {store.rows[i].song for i in store.subset(split) if store.rows[i].role == "bass"}
        assert len(songs) >= 2 and None not in songs
    with pytest.raises(ValueError, match="'kazoo'"):
        synth("kazoo", np.random.default_rng(0), 1.0, 48000)
