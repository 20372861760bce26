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
