"""bench/errors.py one_line: any exception as the one line that the CLI's error messages quote."""
from bench.errors import one_line


def test_the_first_non_blank_line_stripped():
    assert one_line(RuntimeError("\n  \n  first line  \nsecond line\n")) == "first line"


def test_terminal_colours_are_removed():
    assert one_line(ValueError("\x1b[31mred\x1b[0m alert\nmore")) == "red alert"


def test_an_empty_message_gives_the_type_name():
    assert one_line(ConnectionError()) == "ConnectionError"
    assert one_line(RuntimeError("\x1b[0m \n ")) == "RuntimeError"


def test_the_line_is_cut_at_the_limit():
    exc = OSError("x" * 1000)
    assert one_line(exc) == "x" * 300
    assert one_line(exc, 200) == "x" * 200


def test_typed_line_names_the_type_and_the_wrapped_root_cause():
    from bench.errors import typed_line

    wrapped = RuntimeError("Training worker failed\nTraceback (most recent call last):\n  File \"x.py\", line 1\n"
                           "ValueError: loss is NaN at iteration 3")
    assert typed_line(wrapped) == "RuntimeError: Training worker failed ... ValueError: loss is NaN at iteration 3"
    assert typed_line(KeyError("k")) == "KeyError: 'k'"
    assert len(typed_line(ValueError("x" * 900))) == 500
