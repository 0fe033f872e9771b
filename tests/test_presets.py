import filecmp
from pathlib import Path

import pytest

from fastuss_fx.presets import list_presets, load_preset, parse_preset
from fastuss_fx.prompts import PROMPTS

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = {
    "dialog_only",
    "remove_music",
    "remove_dialog",
    "dialog_enhance",
    "denoise",
    "karaoke",
    "vocals_only",
    "drums_only",
    "bass_only",
    "music_stems",
    "cinematic_stems",
}


def test_required_presets_ship():
    assert REQUIRED <= set(list_presets())


def test_top_level_presets_match_the_shipped_ones():
    shipped, top = ROOT / "fastuss_fx" / "presets", ROOT / "presets"
    names = sorted(p.name for p in shipped.glob("*.yaml"))
    assert names == sorted(p.name for p in top.glob("*.yaml"))
    match, mismatch, errors = filecmp.cmpfiles(shipped, top, names, shallow=False)
    assert not mismatch and not errors


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_shipped_preset_is_valid(name):
    preset = load_preset(name)
    assert preset.name == name and preset.description
    assert len(preset.stems) == len(preset.prompts) and set(preset.mix) <= set(preset.stems)


def test_music_stems_and_cinematic_names():
    assert load_preset("music_stems").stems == ("vocals", "drums", "bass", "other")
    assert load_preset("cinematic_stems").stems == ("dialogue", "effects", "music")
    assert "vocals" not in load_preset("karaoke").mix


def test_user_preset_by_path_with_defaults(tmp_path):
    path = tmp_path / "two_talkers.yaml"
    path.write_text("prompts: [speech, speech, sfx]\nmix: {speech_2: -3}\n")
    preset = load_preset(path)
    assert preset.name == "two_talkers" and preset.mode == "offline"
    assert preset.stems == ("speech_1", "speech_2", "sfx") and preset.mix == {"speech_2": -3.0}


BAD = [
    ("prompts: [speech, guitar]", r"bad\.yaml: key 'prompts': unknown prompt 'guitar'; choose from speech"),
    ("prompts: []", r"bad\.yaml: key 'prompts' must be a non-empty list"),
    (
        "prompts: [speech]\nmix: {speech: loud}",
        r"bad\.yaml: key 'mix'\.speech: gain must be a finite number in dB, got 'loud'",
    ),
    ("prompts: [speech]\nmix: {speech: true}", r"gain must be a finite number"),
    ("prompts: [speech]\nmix: {music: 0}", r"key 'mix'\.music: unknown stem 'music'"),
    ("prompts: [speech]\nvolume: 3", r"bad\.yaml: unknown key\(s\) \['volume'\]"),
    ("description: no prompts", r"missing key 'prompts'"),
    ("prompts: [speech]\nmode: live", r"key 'mode': unknown mode 'live'; choose from offline, realtime"),
    ("prompts: [speech]\nmodel: huge", r"key 'model': unknown model variant 'huge'"),
    ("prompts: [speech]\nmodel: 5", r"bad\.yaml: key 'model' must be a variant name \(str\), got 5 \(int\)"),
    ("prompts: [speech]\nmode: 1", r"bad\.yaml: key 'mode': unknown mode 1 \(int, not a str\); choose from"),
    ("prompts: [speech]\nmix: {speech: '3'}", r"key 'mix'\.speech: gain must be a finite number in dB, got '3'"),
    ("prompts: [speech, sfx]\nstems: [a]", r"key 'stems': 1 name\(s\)"),
    ("prompts: [speech, sfx]\nstems: [a, a]", r"stem names must be unique"),
    ("prompts: [speech\nmix: {}", r"bad\.yaml: YAML syntax error at line 2, column"),
    ("- speech", r"a preset must be a mapping"),
]


@pytest.mark.parametrize("text, match", BAD)
def test_bad_presets_name_file_key_and_problem(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_preset(path)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose from .*remove_music"):
        load_preset("nope")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_preset(tmp_path / "missing.yaml")


def test_to_dict_round_trips():
    import yaml

    for name in list_presets():
        preset = load_preset(name)
        assert parse_preset(yaml.safe_dump(preset.to_dict()), "again") == preset
    assert len(PROMPTS) == 8


def test_realtime_preset_with_a_non_causal_model_names_the_file(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text("prompts: [speech]\nmode: realtime\nmodel: fastuss-8.3g\n")
    with pytest.raises(ValueError, match=r"live\.yaml.*'model'.*not causal"):
        load_preset(path)
