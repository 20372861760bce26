"""Ray Tune's result loggers for a sweep, without Tune's TensorBoard logger.

Tune adds CSV, JSON and TensorBoardX loggers to every run unless TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1 (read by the
driver in ray.tune.utils.callback._create_default_callbacks, Ray 2.60). Its TensorBoard events are stepped by Tune's
report counter, not the training iteration, and would sit beside the project's own events
(trials/<hash>/tensorboard/, bench/engine/tensorboard.py), so the automatic loggers are switched off and the two
file loggers kept explicitly (progress.csv and result.json in Tune's trial folder, as before).
"""
from __future__ import annotations

import os


def tune_file_loggers() -> list:
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    return [CSVLoggerCallback(), JsonLoggerCallback()]
