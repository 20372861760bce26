"""`ifa-bench sweep EXPERIMENT.yaml`: run the experiment's `sweep:` section on Ray Tune (docs/sweeps.md)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bench.commands.values import add_set_argument


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
    parser.add_argument("--checkpoints", default=None, metavar="SPEC",
                        help="eval-only: evaluate existing checkpoints over the dataset and protocol axes, no "
                             "training; SPEC: .pt files and globs (comma-separated) or an earlier sweep folder")
    parser.add_argument("--checkpoint-format", default="auto",
                        help="with --checkpoints: auto (detect), ifa-bench, release (hzhupku/IFA) or mmseg")
    parser.add_argument("--calibrate", type=int, default=None, metavar="N",
                        help="with --dry-run: time N training iterations of each distinct model here (no Ray) "
                             "and print the sweep's estimated wall time and device-hours")
    parser.add_argument("--storage", default=None, metavar="URI",
                        help="keep the sweep's checkpoints, records and results in s3://BUCKET/PREFIX, gs://... or a "
                             "path every node sees (--out stays the local copy); credentials from the environment/~/.aws")
    parser.add_argument("--storage-endpoint", default=None, metavar="URL",
                        help="an S3-compatible server for --storage s3://... (e.g. http://127.0.0.1:9000; "
                             "default: AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--remeasure", choices=("noisy", "all"), default=None,
                        help="measure the stored models again (those whose latency is noisy, or all) before any "
                             "training, and rewrite the completed trials' rows with the new measurements; nothing "
                             "is deleted")
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


def checkpoint_inputs(spec: str | None) -> list[Path]:
    """The folders and files an eval-only --checkpoints SPEC reads (a glob: the files it matches)."""
    import glob

    found = []
    for part in (spec or "").split(","):
        part = part.strip()
        if part and "://" not in part:
            if any(c in part for c in "*?["):  # what the glob matches now; the spec's own check says if nothing
                found += [Path(p) for p in sorted(glob.glob(part, recursive=True))]
            else:
                found.append(Path(part))
    return found


def guard_sweep_dir(sweep_dir: Path, name: str, args: argparse.Namespace) -> None:
    """bench/files/output_guard.py: the sweep folder is new, empty, or a sweep folder of this sweep."""
    from bench.errors import UserError
    from bench.files.output_guard import SWEEP_MARKER, claim_dir, marker_text, overlap
    from bench.sweep.folder.layout import TUNE_STATE

    overlap(sweep_dir, [args.experiment, *checkpoint_inputs(args.checkpoints)])
    claim_dir(sweep_dir, SWEEP_MARKER, records=(TUNE_STATE,))
    owner = marker_text(sweep_dir / SWEEP_MARKER)
    if owner and owner != name:
        raise UserError(f"--out {sweep_dir}: is the folder of sweep {owner!r}, not {name!r}; choose another folder")


def guard_storage_dir(root: Path, sweep_dir: Path, name: str, args: argparse.Namespace) -> None:
    """A local-path --storage under the same rule as the sweep folder: not an input, not the sweep folder (nor inside
    or above it), and new, empty, or the storage of this sweep (its marker, or Tune's state of an earlier run)."""
    from bench.errors import UserError
    from bench.files.output_guard import SWEEP_MARKER, claim_dir, marker_text, overlap

    flag = "--storage"
    overlap(root, [args.experiment, *checkpoint_inputs(args.checkpoints)], flag)
    try:
        overlap(root, [sweep_dir], flag)
    except UserError:
        raise UserError(f"{flag} {root}: overlaps the sweep folder {sweep_dir}; give the storage a folder of its "
                        f"own") from None
    claim_dir(root, SWEEP_MARKER, flag, records=("tune",))
    owner = marker_text(root / SWEEP_MARKER)
    if owner and owner != name:
        raise UserError(f"{flag} {root}: is the storage of sweep {owner!r}, not {name!r}; choose another folder")


def run(args: argparse.Namespace) -> int:
    from bench.errors import UserError
    from bench.sweep.cost.dry_run import trial_table
    from bench.sweep.spec.trials import load_sweep

    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserError(f"--max-concurrent: must be at least 1, got {args.max_concurrent}")
    if args.overrides:  # an unknown --set key: say so with a "did you mean" before expanding the axes
        from bench.config.experiment_file import load_experiment

        try:
            load_experiment(args.experiment, args.overrides)
        except UserError as exc:
            if str(exc).startswith("--set") and "unknown key" in str(exc):
                raise
    storage = None
    if args.storage is not None or args.storage_endpoint is not None:
        from bench.sweep.folder.storage import open_storage

        if args.storage is None:
            raise UserError("--storage-endpoint: needs --storage s3://BUCKET/PREFIX")
        storage = open_storage(args.storage, args.storage_endpoint)
    sweep = load_sweep(args.experiment, args.overrides)
    sweep_dir = args.out or Path("runs") / sweep.name
    guard_sweep_dir(sweep_dir, sweep.name, args)
    if storage is not None and not storage.scheme:
        guard_storage_dir(Path(storage.root), sweep_dir, sweep.name, args)
    if args.checkpoint_format != "auto" and args.checkpoints is None:
        raise UserError("--checkpoint-format: only with --checkpoints")
    if args.remeasure is not None and (args.dry_run or args.checkpoints is not None or storage is not None):
        raise UserError("--remeasure: not with --dry-run, --checkpoints or --storage")
    if args.calibrate is not None and not args.dry_run:
        raise UserError("--calibrate: only with --dry-run (it estimates the sweep instead of running it)")
    if args.dry_run:
        from bench.sweep.cost.cost_report import print_costs

        print(trial_table(sweep, sweep_dir))
        print_costs(sweep, sweep_dir, args.calibrate, args.max_concurrent)
        return 0
    from bench.sweep.driver.runner import run_sweep

    explain_ray_token_auth()
    if args.checkpoints is not None:
        from bench.sweep.driver.eval_only import run_eval_only

        df = run_eval_only(sweep, args.checkpoints, sweep_dir, address=args.address, max_concurrent=args.max_concurrent,
                           checkpoint_format=args.checkpoint_format, stream=sys.stdout)
        return 1 if (df["status"] == "failed").any() else (130 if df["status"].isin(["running", "pending"]).any()
                                                             else 0)

    if storage is not None and not storage.scheme:
        from bench.files.output_guard import SWEEP_MARKER, mark

        mark(Path(storage.root), SWEEP_MARKER, sweep.name + "\n")
    df = run_sweep(sweep, sweep_dir, address=args.address, resume=args.resume, max_concurrent=args.max_concurrent,
                   stream=sys.stdout, storage=storage, remeasure=args.remeasure)
    if (df["status"] == "failed").any():
        return 1
    if df["status"].isin(["running", "pending"]).any():  # interrupted (Ctrl-C): `--resume` continues
        again = f" --storage {storage.display}" if storage is not None else ""
        print(f"interrupted: continue with `ifa-bench sweep {args.experiment} --out {sweep_dir}{again} --resume`")
        return 130
    return 0
