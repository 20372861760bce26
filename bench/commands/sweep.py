"""`ifa-bench sweep EXPERIMENT.yaml`: run the experiment's `sweep:` section on Ray Tune (docs/sweeps.md)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.commands.overrides import add_set_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("experiment", type=Path, help="experiment YAML with an optional `sweep:` section")
    parser.add_argument("--out", type=Path, default=None, help="sweep folder (default: runs/<sweep name>)")
    parser.add_argument("--address", default=None,
                        help="join an existing Ray cluster (`auto` or HOST:PORT); default: embedded local Ray")
    parser.add_argument("--resume", action="store_true",
                        help="continue unfinished trials from their checkpoints (finished ones are never rerun)")
    parser.add_argument("--max-concurrent", type=int, default=None,
                        help="at most N trials at once (default: sweep.max_concurrent, else as many as the "
                             "cluster's CPUs hold)")
    parser.add_argument("--dry-run", action="store_true", help="print the expanded trials and exit (no Ray)")
    add_set_argument(parser)


class _RayTokenAuthNotice(logging.Filter):
    """Ray's "Token authentication is enabled ... Set RAY_AUTH_MODE=disabled to opt out" reads as advice to turn
    it off; it is replaced by one line saying what it means here (docs/sweeps.md explains why it stays on)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Token authentication is enabled for this Ray cluster"):
            sys.stderr.write("ray: token authentication is on (Ray's default; keep it on, see docs/sweeps.md)\n")
            return False
        return True


def explain_ray_token_auth() -> None:
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_RayTokenAuthNotice())


def run(args: argparse.Namespace) -> int:
    from bench.errors import UserError
    from bench.sweep.dry_run import trial_table
    from bench.sweep.spec import load_sweep

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError(f"--max-concurrent: must be at least 1, got {args.max_concurrent}")
    if args.overrides:  # an unknown --set key: say so with a "did you mean" before expanding the axes
        from bench.commands.overrides import load_experiment

        try:
            load_experiment(args.experiment, args.overrides)
        except UserError as exc:
            if str(exc).startswith("--set") and "unknown key" in str(exc):
                raise
    sweep = load_sweep(args.experiment, args.overrides)
    out = args.out or Path("runs") / sweep.name
    if args.dry_run:
        print(trial_table(sweep, out))
        return 0
    from bench.sweep.runner import run_sweep

    explain_ray_token_auth()

    df = run_sweep(sweep, out, address=args.address, resume=args.resume, max_concurrent=args.max_concurrent,
                   stream=sys.stdout)
    if (df["status"] == "failed").any():
        return 1
    if df["status"].isin(["running", "pending"]).any():  # interrupted (Ctrl-C): `--resume` continues
        print(f"interrupted: continue with `ifa-bench sweep {args.experiment} --out {out} --resume`")
        return 130
    return 0
