"""Every path of a sweep folder and of a trial folder in it; bench.sweep.folder.records reads and writes the records.

    <sweep_dir>/results.csv, .parquet       one row per trial (bench.results.schema)
    <sweep_dir>/per_class_iou.csv
    <sweep_dir>/tune_experiment.json        which Tune experiment ran which trials
    <sweep_dir>/.ray_session.json           the embedded Ray's processes, while it runs
    <sweep_dir>/tune/                       Ray Tune's experiment state (Tuner.restore reads it)
    <sweep_dir>/tune/train/                 Ray Train runs of multi-worker trials
    <sweep_dir>/measurements/<key>.json     the measurement phase's records (bench.sweep.tasks.measurement)
    <sweep_dir>/trials/<config_hash>/       a trial folder, stable across retries and reruns:
        config.yaml, config_hash.txt, metrics.jsonl, checkpoints/, final.json, per_image.npz  (the engine's run)
        measure.json                    the measurement record
        attempts.json                   how many times the trial started, and where
        failure.json                    the last attempt's error (removed when the trial completes)
        result.json                     the "done" record: the trial's results row; the sweep never reruns it
        trial.log                       the trial's log
        train_restore.json              rank 0's note of the Ray Train checkpoint it resumed from
        .ckpt-XXXX/                     a checkpoint on its way to Tune's storage
        eval/<protocol>/                one evaluation protocol (bench.sweep.tasks.eval_tasks):
            result.json, per_image.npz, failure.json, attempts.json
With --storage the same names hold under the URI (bench.sweep.folder.storage), and each trial attempt runs in a
scratch trial folder <tmp>/ifa-bench-scratch/<config_hash>-<pid>-<random>/.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.engine.evaluation.bootstrap import PER_IMAGE_FILE as PER_IMAGE
from bench.engine.run_dir import CHECKPOINTS, CONFIG, FINAL, HASH, METRICS
from bench.results.schema import PER_CLASS_CSV, RESULTS_CSV, RESULTS_PARQUET, TRIALS

# the sweep folder (the results table's own names live with its schema)
TUNE_STATE = "tune_experiment.json"
RAY_SESSION = ".ray_session.json"  # while an embedded Ray runs: its processes (bench.sweep.driver.cluster)
TUNE = "tune"
TRAIN_RUNS = "train"  # under tune/
MEASUREMENTS = "measurements"

# a trial folder (and a protocol folder: RESULT, FAILURE, ATTEMPTS, PER_IMAGE)
RESULT = "result.json"
FAILURE = "failure.json"
ATTEMPTS = "attempts.json"
MEASURE = "measure.json"
LOG = "trial.log"
TRAIN_RESTORE = "train_restore.json"
EVAL = "eval"
LAST_CHECKPOINT = "last.pt"  # bench.engine.checkpoint.LAST (not imported here: that module imports torch)
HANDOFF_PREFIX = ".ckpt-"
HANDOFF_META = "engine_checkpoint.json"  # in a checkpoint handed to Ray: {"iter", "name"} of the engine's file

TABLE_FILES = (RESULTS_CSV, RESULTS_PARQUET, PER_CLASS_CSV)
ENGINE_FILES = (METRICS, FINAL, PER_IMAGE, CONFIG, HASH)
RECORD_FILES = (ATTEMPTS, RESULT, FAILURE, MEASURE, LOG, FINAL, METRICS, CONFIG, HASH, PER_IMAGE)

SCRATCH = "ifa-bench-scratch"
SCRATCH_NAME = re.compile(r"[0-9a-f]+-(\d+)-[0-9a-f]{8}")  # <config hash>-<owner PID>-<random>


def trial_dir(sweep_dir: Path, key: str) -> Path:
    """The trial folder of config hash `key` (an eval-only target's key: config hash + checkpoint)."""
    return Path(sweep_dir) / TRIALS / key


def eval_dir(trial_dir: Path, protocol: str) -> Path:
    return Path(trial_dir) / EVAL / protocol


def measurement_path(sweep_dir: Path, key: str) -> Path:
    return Path(sweep_dir) / MEASUREMENTS / f"{key}.json"


def tune_dir(sweep_dir: Path, *parts: str) -> Path:
    return Path(sweep_dir).joinpath(TUNE, *parts)


def checkpoint_dir(trial_dir: Path) -> Path:
    return Path(trial_dir) / CHECKPOINTS


def scratch_name(config_hash: str, pid: int, token: str) -> str:
    return f"{config_hash}-{pid}-{token}"
