import argparse

import pytest

from fastuss_fx.cli import get_parser, main
from fastuss_fx.commands.train import config_from_args
from fastuss_fx.pretrained import DEFAULT_MODELS
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


def test_defaults_follow_the_package_and_the_data_is_named(capsys):
    assert TrainConfig().variant_or_default == DEFAULT_MODELS["offline"]
    assert TrainConfig().run_dir.name == DEFAULT_MODELS["offline"]  # fastuss-4.6g, not fastuss-4
    assert TrainConfig(variant="my/tiny-x.yaml").run_dir.name == "tiny-x"
    assert main(["train", "--steps", "1"]) == 2  # no --data: an error before any work
    assert "no training data: pass --data CORPUS" in capsys.readouterr().err
    config = config_from_args(
        parse("--data", "corpus/", "--warmup-fraction", "0.1", "--lr", "1e-3", "--grad-clip", "5")
    )
    assert (config.data, config.warmup_fraction, config.lr, config.grad_clip) == ("corpus/", 0.1, 1e-3, 5.0)
    with pytest.raises(ValueError, match="warmup_fraction must be in"):
        config_from_args(parse("--warmup-fraction", "1"))


def test_teacher_flags(capsys):
    config = config_from_args(
        parse("--teacher", "tuss.medium.2-4src", "--distill-weight", "1.5", "--allow-untrained-teacher")
    )
    assert (config.teacher, config.distill_weight, config.allow_untrained_teacher) == ("tuss.medium.2-4src", 1.5, True)
    assert (TrainConfig().teacher, TrainConfig().allow_untrained_teacher) == (None, False)
    with pytest.raises(ValueError, match="distill_weight must be a finite number >= 0, got -0.5"):
        config_from_args(parse("--distill-weight", "-0.5"))
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--teacher TEACHER Distil from this model" in text and "installed model (fastuss models import" in text
    assert "--distill-weight DISTILL_WEIGHT Weight of the loss against the teacher's outputs" in text
