"""CLI polish: --version, a top-level help that describes the suite, defaults, choices and examples everywhere."""
import pytest

from bench.cli import COMMANDS, main


def _help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_version(capsys):
    from importlib.metadata import version

    line = _help(["--version"], capsys).strip()  # the version, then the git commit (tests/results/test_provenance.py)
    assert line.startswith(f"ifa-bench {version('ifa-bench')} (git "), line


def test_top_level_help_describes_the_suite(capsys):
    text = _help(["--help"], capsys)
    assert "benchmark and reproduce semantic-segmentation heads" in text
    assert "exposes" not in text and "bench/commands" not in text  # no code comment cut mid-sentence
    assert "typical use:" in text


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_subcommand_has_examples(command, capsys):
    text = _help([command, "--help"], capsys)
    examples = text.split("examples:")[1].strip().splitlines()
    assert 1 <= len(examples) <= 3 and all(line.strip().startswith("ifa-bench " + command) for line in examples)


def test_defaults_and_choices_shown(capsys):
    check = " ".join(_help(["check", "--help"], capsys).split())
    assert "(default: 1.0)" in check and "{miou_ss,miou_ms_flip}" in check and "(default: miou_ss)" in check
    measure = " ".join(_help(["measure", "--help"], capsys).split())
    assert "(default: standard)" in measure and "{resnet18,resnet34,resnet50,resnet101,hrnetv2_w18_small," in measure
    assert "{ifa,fpn,ppm,ocr,fcn}" in measure  # the config's heads and backbones (bench/config/model.py)
    train = " ".join(_help(["train", "--help"], capsys).split())
    assert "--set KEY.PATH=VALUE" in train
