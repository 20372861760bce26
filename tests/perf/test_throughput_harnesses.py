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


def test_compile_seeds_pairs_each_variant_with_eager_by_seed():
    from perf.compile_seeds import paired

    eager = {0: 50.0, 1: 40.0, 2: 30.0, 3: 20.0, 4: 10.0}
    runs = [{"head": "ifa", "variant": "eager", "seed": s, "miou": m} for s, m in eager.items()]
    runs += [{"head": "ifa", "variant": "compiled", "seed": s, "miou": eager[s] + s + 1} for s in eager]
    runs += [{"head": "ifa", "variant": "compiled", "seed": 9, "miou": 99.0},  # no eager run of seed 9
             {"head": "fpn", "variant": "compiled", "seed": 0, "miou": 0.0},
             {"head": "ifa", "variant": "eager_avx2", "seed": 0, "error": "exit 1"}]
    out = paired(runs, "ifa", "compiled")
    assert out["seeds"] == [0, 1, 2, 3, 4] and out["differences"] == [1, 2, 3, 4, 5]
    assert out["mean"] == 3 and out["sd"] == pytest.approx(1.5811, abs=1e-4)
    half = 2.776 * 1.5811388 / 5 ** 0.5  # Student t(4) 0.975 quantile
    assert out["ci95"] == pytest.approx([3 - half, 3 + half], abs=1e-3) and not out["ci95_contains_0"]
    assert out["sign_flip_p"] == 2 / 32  # only all plus and all minus reach |sum| = 15
    mixed = paired([*runs[:5], *({**r, "miou": r["miou"] - 2 * (r["seed"] % 2) * (r["seed"] + 1)}
                                 for r in runs[5:10])], "ifa", "compiled")
    assert mixed["differences"] == [1, -2, 3, -4, 5] and mixed["ci95_contains_0"]
    assert paired(runs, "ifa", "eager_avx2") == {"head": "ifa", "variant": "eager_avx2", "seeds": [],
                                                 "differences": []}


@pytest.mark.slow  # inductor compiles the segmentor's evaluation graph: ~1 min on 2 cores
def test_compile_speed_smoke_times_eager_and_compiled_cases(tmp_path, monkeypatch):
    from perf.compile_speed import main

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--smoke", "--heads", "ifa_fused", "--phases", "eval", "--modes", "whole",
                 "--data", str(tmp_path / "data"), "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "compile_speed.json").read_text())
    cases = {r["mode"]: r for r in out["records"]}
    assert set(cases) == {"eager", "whole"} and cases["eager"]["over_eager"] == 1.0
    assert all(r["phase"] == "eval" and r["size"] == [64, 128] and r["ms"] > 0 for r in cases.values())
    assert cases["whole"]["first_s"] > cases["eager"]["first_s"]  # the compiled case compiled on its first call
    assert any((tmp_path / "cache").iterdir())
