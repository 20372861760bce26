"""perf/train_throughput.py and perf/loader_throughput.py run end to end at smoke sizes and write what they report;
the plain loop trains on exactly the engine's batches."""
import json

import pytest
import torch


@pytest.mark.slow
def test_train_throughput_smoke_writes_engine_and_plain_cases(tmp_path):
    from perf.train_throughput import main

    assert main(["--smoke", "--heads", "fpn", "--variants", "channels_last", "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "train_throughput.json").read_text())
    sides = {r["side"]: r for r in out["records"]}
    assert set(sides) == {"engine", "plain", "plain_channels_last"}
    engine = sides["engine"]
    assert engine["ms_per_iter"] > 0 and engine["cpu_ms_per_iter"] > 0 and 0 <= engine["data_wait_share"] < 1
    assert engine["first_iter_s"][0] > 0
    assert {(q["head"], q["side"]) for q in out["ratios"]} == {("fpn", "engine"), ("fpn", "plain_channels_last")}
    assert out["settings"]["crop"] == [64, 64] and out["environment"]["load_average_start"]


def test_plain_loop_batches_are_the_engines(tmp_path):
    import argparse

    from bench.data import build_dataset
    from bench.data.transforms import TrainTransform
    from bench.engine.sampling import IterationBatches, TrainSamples, collate
    from perf.train_throughput import SMOKE, engine_batches, experiment

    args = argparse.Namespace(data=tmp_path / "data", images=4, crop=None, workers=0, iters=2, batch=2,
                              device="cpu", threads=1, deterministic=True, log_every=2)
    cfg = experiment(args, "fpn", SMOKE)
    batches = engine_batches(cfg, 3)
    samples = TrainSamples(build_dataset(cfg.data, "train"), TrainTransform(cfg.data), cfg.seed, 2)
    loader = torch.utils.data.DataLoader(samples, batch_sampler=IterationBatches(0, 3, 2), collate_fn=collate)
    for (x, y), (ex, ey, _) in zip(batches, loader):
        assert torch.equal(x, ex) and torch.equal(y, ey)


def test_loader_throughput_smoke_times_decode_and_transform(tmp_path):
    from perf.loader_throughput import main

    assert main(["--smoke", "--data", str(tmp_path / "data"), "--workers", "0", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "loader_throughput.json").read_text())
    cases = {r["case"]: r for r in out["records"]}
    assert set(cases) == {"no_photometric", "no_photometric+crop_first", "photometric", "photometric+crop_first"}
    for r in cases.values():
        assert r["decode_ms"] > 0 and r["transform_ms"] > 0 and r["samples"] == 2
        assert r["decode_cpu_ms"] > 0 and r["transform_cpu_ms"] > 0 and r["transform_cpu_ms_mean"] > 0
        assert r["samples_per_s_per_worker"] == pytest.approx(1000 / (r["decode_ms"] + r["transform_ms"]))
    assert [d["workers"] for d in out["data_loader"]] == [0, 0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where there is no CUDA device")
def test_train_throughput_refuses_cuda_without_a_device_in_one_line(tmp_path, capsys):
    from perf.train_throughput import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cuda", "--smoke", "--heads", "fpn", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--device cuda: no CUDA device here" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
