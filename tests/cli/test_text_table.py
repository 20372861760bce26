"""The one text-table formatter: numbers right-aligned, text left-aligned, used by every command's output."""
import inspect

from bench.results.text_table import is_number_column, text_table


def test_numbers_right_text_left():
    out = text_table(["model", "mIoU", "n"], [["ifa", "61.00 ± 1.00", "3/3"], ["fpn resnet18", "-", "12/3"]])
    assert out.splitlines() == [
        "model                 mIoU     n",
        "ifa           61.00 ± 1.00   3/3",
        "fpn resnet18             -  12/3",
    ]


def test_number_detection():
    assert is_number_column(["1.5", "-", "+0.25", "50 / 61", "40.0 †"])
    assert not is_number_column(["1.5", "resnet18"]) and not is_number_column(["-", "—"])


def test_every_command_uses_it():
    from bench.commands import eval as eval_cmd, measure
    from bench.sweep.cost import dry_run
    from reports.regression import check
    for module in (eval_cmd, measure, dry_run, check):
        assert "text_table(" in inspect.getsource(module), module.__name__
        assert ".ljust(" not in inspect.getsource(module), module.__name__
