"""What `--help` shows: defaults and choices on every option, and one to three examples per subcommand."""
from __future__ import annotations

import argparse

TOP_EPILOG = """typical use:
  ifa-bench train experiments/synthetic.yaml            # one run, ~2 min on 2 CPU cores
  ifa-bench sweep experiments/synthetic.yaml             # the four heads on Ray (make demo)
  ifa-bench report runs/synthetic-heads                  # tables, plots and index.html

`ifa-bench COMMAND --help` shows each command's options and examples; docs/ has the guides."""

EXAMPLES = {
    "measure": """examples:
  ifa-bench measure --backbone resnet50 --head ifa --input 1024x2048
  ifa-bench measure --all --input 512x1024 --format csv
  ifa-bench measure --head ocr --breakdown --no-latency""",
    "data": """examples:
  ifa-bench data synth runs/data/synthetic
  ifa-bench data verify data/cityscapes --dataset cityscapes""",
    "train": """examples:
  ifa-bench train experiments/synthetic.yaml
  ifa-bench train experiments/synthetic.yaml --set model.head.name=fpn --set train.iterations=100
  ifa-bench train experiments/synthetic.yaml --out runs/ifa --resume""",
    "eval": """examples:
  ifa-bench eval RUN/checkpoints/last.pt --config experiments/synthetic.yaml
  ifa-bench eval RUN/checkpoints/last.pt --config experiments/synthetic.yaml --set eval.mode=slide
  ifa-bench eval CKPT --config experiments/cityscapes_r50.yaml --scales 0.5,0.75,1.0,1.25,1.5,1.75 --flip""",
    "sweep": """examples:
  ifa-bench sweep experiments/synthetic.yaml --dry-run
  ifa-bench sweep experiments/synthetic.yaml --out runs/demo --set train.iterations=100
  ifa-bench sweep experiments/cityscapes_r50.yaml --address auto --resume""",
    "report": """examples:
  ifa-bench report runs/demo
  ifa-bench report runs/sweep-a runs/sweep-b runs/one-train-run --out runs/combined-report
  ifa-bench report runs/cityscapes_r50_heads --published reports/published.yaml""",
    "config": """examples:
  ifa-bench config experiments/cityscapes_r50.yaml
  ifa-bench config experiments/synthetic.yaml --set model.head.name=ocr --set train.iterations=100""",
    "convert": """examples:
  ifa-bench convert --config experiments/cityscapes_r50.yaml released_ifa.pth runs/ifa_release.pt""",
    "predict": """examples:
  ifa-bench predict --config experiments/synthetic.yaml RUN/checkpoints/last.pt photos/ --out runs/preds
  ifa-bench predict --config experiments/cityscapes_r50.yaml CKPT frankfurt_000000_000294_leftImg8bit.png --out preds""",
    "check": """examples:
  ifa-bench check runs/cityscapes_r50_heads
  ifa-bench check runs/cityscapes_r50_heads --metric miou_ms_flip --tolerance 0.5""",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks, and appends "(default: X)" to options whose help does not already say
    their default; choices are listed by argparse itself in the usage line and the option's name."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == [] or
                default is argparse.SUPPRESS or action.option_strings == [] or isinstance(action, (
                    argparse._HelpAction, argparse._VersionAction))):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def version() -> str:
    """The package version, git commit and dirty flag (bench/results/provenance.py)."""
    from bench.results.provenance import version_line

    return version_line()
