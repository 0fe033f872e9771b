import argparse

import pytest

from fastuss_fx.cli import get_parser, main
from fastuss_fx.commands.train import config_from_args
from fastuss_fx.train.config import TrainConfig


def parse(*argv):
    return get_parser().parse_args(["train", *argv])


def test_flags_default_to_the_dataclass():
    assert config_from_args(parse()) == TrainConfig()


def test_flags_and_yaml(tmp_path):
    config = config_from_args(
        parse(
            "--steps",
            "7",
            "--no-resume",
            "--valid-tasks",
            "denoise",
            "dialog",
            "--mix-chunk-seconds",
            "0.5",
            "--mix-gain-db",
            "-6",
            "0",
        )
    )
    assert (config.steps, config.resume, config.valid_tasks) == (7, False, ("denoise", "dialog"))
    assert (config.mix.chunk_seconds, config.mix.gain_db) == (0.5, (-6.0, 0.0))
    path = tmp_path / "run.yaml"
    path.write_text("steps: 100\nbatch_size: 3\nmix: {chunk_seconds: 2.0, max_sources: 3}\n")
    config = config_from_args(parse("--config", str(path), "--steps", "5", "--mix-max-sources", "2"))
    assert (config.steps, config.batch_size, config.mix.chunk_seconds, config.mix.max_sources) == (5, 3, 2.0, 2)
    path.write_text("stepz: 100\n")
    with pytest.raises(ValueError, match="stepz"):
        config_from_args(parse("--config", str(path)))


def test_bad_values_name_themselves():
    with pytest.raises(ValueError, match="'fp8'"):
        config_from_args(parse("--precision", "fp8"))
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        config_from_args(parse("--batch-size", "0"))
    assert isinstance(parse(), argparse.Namespace)


def test_new_flags_and_their_checks():
    config = config_from_args(
        parse("--time-budget", "120", "--ema-decay", "0.99", "--schedule", "linear", "--eval-minutes", "30")
    )
    assert (config.time_budget, config.ema_decay, config.schedule, config.eval_minutes) == (120.0, 0.99, "linear", 30.0)
    assert TrainConfig().schedule == "cosine" and TrainConfig().valid_examples >= 30 and TrainConfig().ema_decay > 0
    with pytest.raises(ValueError, match="schedule must be one of"):
        config_from_args(parse("--schedule", "step"))
    with pytest.raises(ValueError, match="ema_decay"):
        config_from_args(parse("--ema-decay", "1"))
    with pytest.raises(ValueError, match="time_budget"):
        config_from_args(parse("--time-budget", "-1"))


@pytest.mark.parametrize("stopped, code", [("steps", 0), ("time_budget", 0), ("SIGTERM", 143), ("SIGINT", 130)])
def test_exit_code_says_how_the_run_ended(monkeypatch, stopped, code):
    monkeypatch.setattr("fastuss_fx.train.loop.train", lambda config: {"step": 1, "stopped": stopped})
    assert main(["train", "--steps", "1"]) == code


def test_flag_help_is_the_field_docstring(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--time-budget TIME_BUDGET Minutes of wall time for this invocation (0 = none)." in text
    assert "shipped:NAME those for variant NAME" in text and "(default: none)" in text
    assert "``" not in text
    assert "--mix-snr-db MIX_SNR_DB MIX_SNR_DB default: (-5.0, 25.0)" in text  # a field without its own docstring
