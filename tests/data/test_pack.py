import pytest

pytest.importorskip("soundfile", reason="packing writes Ogg Opus with soundfile (the train extra)")

from fastuss_fx.cli import main
from fastuss_fx.data.manifest import ClipStore, read_manifest


def test_pack_keeps_valid_and_songs_within_budget(corpus, tmp_path):
    out = tmp_path / "pack"
    assert main(["data", "pack", str(corpus), str(out), "--max-mib", "0.25"]) == 0
    rows = read_manifest(out)
    source = read_manifest(corpus)
    assert sum(f.stat().st_size for f in out.rglob("*.opus")) <= 0.25 * 2**20
    assert {r.path.removesuffix(".opus") for r in rows if r.split == "valid"} == {r.path.removesuffix(".flac") for r in source if r.split == "valid"}
    assert 0 < sum(r.split == "train" for r in rows) < sum(r.split == "train" for r in source)
    songs = {}
    for row in rows:
        if row.song:
            songs.setdefault(row.song, set()).add(row.role)
    assert all(roles == {"drums", "bass", "other"} for roles in songs.values())
    store = ClipStore.from_manifest(out)
    assert store.audio(0).shape == (72000,)


def test_pack_budget_too_small(corpus, tmp_path):
    with pytest.raises(ValueError, match="max_mib=0.001"):
        from fastuss_fx.data.pack import pack_corpus

        pack_corpus(corpus, tmp_path / "pack", max_mib=0.001)
    assert main(["data", "stats", str(corpus)]) == 0
