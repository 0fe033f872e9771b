import pytest

pytest.importorskip("soundfile", reason="packing writes Ogg Opus with soundfile (the train extra)")

from fastuss_fx.cli import main
from fastuss_fx.data.manifest import ClipStore, ManifestRow, read_manifest
from fastuss_fx.data.pack import _Unit, balanced_order


def test_pack_keeps_splits_songs_and_balance_within_budget(corpus, tmp_path):
    out = tmp_path / "pack"
    assert main(["data", "pack", str(corpus), str(out), "--max-mib", "0.25"]) == 0
    rows, source = read_manifest(out), read_manifest(corpus)
    assert sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) <= 0.25 * 2**20  # audio and manifest
    assert 0 < sum(r.split == "train" for r in rows) < sum(r.split == "train" for r in source)
    valid = [r for r in rows if r.split == "valid"]
    assert 0 < len(valid) < sum(r.split == "valid" for r in source)  # valid gets its share of the budget, not all of it
    by_path = {r.path.removesuffix(".flac"): r for r in source}
    assert all(by_path[r.path.removesuffix(".opus")].split == r.split for r in rows)  # splits (and groups) are kept
    assert {r.role for r in rows if r.split == "train"} == {r.role for r in source}  # balanced: every kind gets time
    songs = {}
    for row in rows:
        if row.song:
            songs.setdefault(row.song, set()).add(row.role)
    assert songs and all(roles == {"drums", "bass", "other"} for roles in songs.values())
    store = ClipStore.from_manifest(out)
    assert store.audio(0).shape == (72000,)


def test_balanced_order_weights_kinds_and_sources():
    def unit(role, source, k):
        return _Unit([ManifestRow(f"{role}/{source}/{k}.flac", role, duration_s=10.0, source=source)])

    units = [unit("speech", s, k) for s in ("a", "b", "espeak-ng") for k in range(20)] + [
        unit("sfx", "c", k) for k in range(20)
    ]
    order = balanced_order(units, seed=0)
    first = order[:24]
    assert sum(u.kind == "speech" for u in first) == 18 and sum(u.kind == "sfx" for u in first) == 6  # speech weight 3
    speech = [u.source for u in first if u.kind == "speech"]
    assert (
        abs(speech.count("a") - speech.count("b")) <= 1 and 0 < speech.count("espeak-ng") <= 0.3 * speech.count("a") + 1
    )  # TTS weighted down
    assert [u.rows[0].path for u in order] == [u.rows[0].path for u in balanced_order(units, seed=0)]
    assert sorted(u.rows[0].path for u in order) == sorted(u.rows[0].path for u in units)


def test_pack_budget_too_small(corpus, tmp_path):
    with pytest.raises(ValueError, match="max_mib=0.001"):
        from fastuss_fx.data.pack import pack_corpus

        pack_corpus(corpus, tmp_path / "pack", max_mib=0.001)
