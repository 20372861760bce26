"""ifa-bench: benchmark and reproduce semantic-segmentation heads (IFA, Semantic FPN, PPM, OCR) -- train and
evaluate them, measure their cost (GMACs, parameters, latency, memory), sweep them on Ray, and turn the results
into paper-ready tables and plots."""
# Each subcommand lives in bench/commands/<name>.py and exposes `add_arguments(parser)` and `run(args) -> int`;
# modules are imported only when their command runs. Examples for each subcommand's help: bench/commands/help.py.
from __future__ import annotations

import argparse
import importlib
import sys

from bench.errors import EXIT_USER_ERROR, UserError, os_error_line

COMMANDS = {
    "measure": "FLOPs (GMACs), parameters, latency and peak memory of a model",
    "data": "generate the synthetic dataset, or verify a dataset's layout",
    "train": "train one experiment in-process (no Ray)",
    "eval": "evaluate a checkpoint",
    "sweep": "run a Ray sweep over datasets x backbones x heads x seeds",
    "report": "paper-ready tables and plots from sweeps and train runs",
    "check": "regression-check reproduced mIoU against published numbers",
    "convert": "convert a checkpoint of hzhupku/IFA (or another registered format) to an ifa-bench checkpoint",
    "config": "print an experiment's resolved config, with the file (or --set) each key comes from",
    "predict": "write prediction PNGs (train ids, the dataset's label encoding, a colour overlay) for images",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USER_ERROR)


def build_parser() -> argparse.ArgumentParser:
    from bench.commands.help import EXAMPLES, TOP_EPILOG, HelpFormatter, version

    parser = _Parser(prog="ifa-bench", description=__doc__, epilog=TOP_EPILOG, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter,
                           epilog=EXAMPLES.get(name))
        p.set_defaults(_module=f"bench.commands.{name}")
    return parser


def unknown_command(name: str) -> str:
    """The one-line error for a command that does not exist, with the closest ones (difflib) when any is close."""
    import difflib

    close = difflib.get_close_matches(name, list(COMMANDS), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"ifa-bench: error: unknown command {name!r}{hint} (commands: {', '.join(COMMANDS)})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not argv:  # bare `ifa-bench`: the overview, as --help shows it (asking for help is not an error)
        parser.print_help()
        return 0
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        sys.stderr.write(unknown_command(argv[0]) + "\n")
        return EXIT_USER_ERROR
    # Parse the command name first, then let its module add its own arguments.
    known, _ = parser.parse_known_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    module = importlib.import_module(known._module)
    sub_parser = parser._subparsers._group_actions[0].choices[known.command]
    module.add_arguments(sub_parser)
    args = parser.parse_args(argv)
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"ifa-bench {args.command}: error: {exc}\n")
        return EXIT_USER_ERROR
    except OSError as exc:
        if exc.filename is None:
            raise
        sys.stderr.write(f"ifa-bench {args.command}: error: {os_error_line(exc)}\n")
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
