"""`train` writes TensorBoard events stepped by iteration: each loss term, the learning rates, eval metrics."""
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bench.engine import train_experiment
from bench.engine.run_dir import read_metrics
from tests.engine.train_helpers import tiny_config


def test_events_match_metrics_jsonl(tmp_path):
    cfg = tiny_config(tmp_path / "data", train={"iterations": 6, "log_every": 2, "eval_every": 4,
                                                "checkpoint_every": 6, "loss": "ce"})
    run = tmp_path / "run"
    train_experiment(cfg, run, progress=False)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/loss_main", "train/loss_aux", "train/lr", "train/lr_head",
            "eval/miou", "eval/boundary_iou"} <= tags
    records = read_metrics(run / "metrics.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    logged = events.Scalars("train/loss_main")
    assert [e.step for e in logged] == [r["iter"] for r in train] == [2, 4, 6]
    assert [round(e.value, 5) for e in logged] == [round(r["loss_main"], 5) for r in train]
    assert [e.step for e in events.Scalars("eval/miou")] == [4, 6]  # the eval_every point and the final one
