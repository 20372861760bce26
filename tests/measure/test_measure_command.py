"""`ifa-bench measure`: table/json/csv contents on real (small) segmentors, --checkpoint, one-line errors."""
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.cli import main

SMALL = ["--backbone", "resnet18", "--input", "64x96", "--classes", "5", "--warmup", "0", "--runs", "2",
         "--processes", "0"]


def _run(capsys, *argv):
    code = main(["measure", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _console_script(tmp_path, *argv):
    # The installed `ifa-bench`, run outside the repository: packages must resolve through the install.
    exe = Path(sys.executable).parent / "ifa-bench"
    return subprocess.run([str(exe), "measure", *argv], capture_output=True, text=True, timeout=180, cwd=tmp_path)


def test_real_console_script_malformed_input_exits_2(tmp_path):
    proc = _console_script(tmp_path, "--input", "1024x")
    _one_line_error(proc.returncode, proc.stderr, "--input", "'1024x'")
    assert proc.stdout == ""


def test_real_console_script_measures_ifa(tmp_path):
    proc = _console_script(tmp_path, "--backbone", "resnet18", "--input", "32x64", "--classes", "3",
                           "--no-latency", "--no-memory", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (rec,) = json.loads(proc.stdout)
    assert rec["model"] == "IFA (auto: fused)" and rec["measure_input"] == "32x64" and rec["gmacs_head"] > 0
    assert (rec["formulation"], rec["ifa_kernels"]) == ("fused", "torch")  # what `auto` ran as on this CPU


@pytest.mark.parametrize("argv, needles", [
    (["--input", "axb"], ["--input", "'axb'"]),
    (["--input", "0x5"], ["--input", "'0x5'"]),
    (["--input", "1024x2048x3"], ["--input"]),
    (["--backbone", "resnet9"], ["--backbone", "resnet9"]),
    (["--head", "segformer"], ["--head", "segformer"]),
    (["--head", "ppm", "--formulation", "fused"], ["--formulation"]),
    (["--classes", "0"], ["--classes"]),
    (["--checkpoint", "/nonexistent/x.pt"], ["/nonexistent/x.pt"]),
    (["--processes", "3", "--max-processes", "2"], ["--max-processes: 2 is below --processes 3"]),
    (["--threads", "4097"], ["--threads: 4097 is more than the", "CPU(s) this process may use"]),
])
def test_bad_arguments_one_line_exit_2(capsys, argv, needles):
    try:
        code, _, err = _run(capsys, *argv)
    except SystemExit as exc:  # argparse errors
        code, err = exc.code, capsys.readouterr().err
    _one_line_error(code, err, *needles)


@pytest.mark.slow
def test_all_heads_csv(capsys):
    code, out, _ = _run(capsys, *SMALL, "--all", "--no-memory", "--runs", "1", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["model"] for r in rows] == ["IFA (reference)", "IFA (fused)", "Semantic-FPN", "PPM (PSPNet)", "OCR"]
    assert [r["formulation"] for r in rows] == ["reference", "fused", "", "", ""]
    assert [r["ifa_kernels"] for r in rows] == ["torch", "torch", "", "", ""]
    backbones = {r["gmacs_backbone"] for r in rows}
    assert len(backbones) == 1 and float(backbones.pop()) > 0  # same backbone under every head
    for r in rows:
        assert r["measure_input"] == "64x96" and r["device"] == "cpu" and r["dtype"] == "float32"
        assert float(r["gmacs_head"]) > 0 and float(r["params_head_m"]) > 0
        assert float(r["gmacs"]) >= float(r["gmacs_backbone"]) + float(r["gmacs_head"]) - 1e-9
        assert float(r["latency_ms_median"]) <= float(r["latency_ms_p90"])
        assert r["peak_mem_mb"] == ""
    ifa_ref, ifa_fused = rows[0], rows[1]
    assert ifa_ref["params_m"] == ifa_fused["params_m"]  # same weights, different arithmetic
    assert float(ifa_fused["gmacs_head"]) < float(ifa_ref["gmacs_head"])


def test_single_model_json_with_memory_and_breakdown(capsys):
    code, out, _ = _run(capsys, *SMALL, "--head", "ifa", "--formulation", "reference", "--format", "json",
                        "--breakdown")
    assert code == 0
    (rec,) = json.loads(out)
    assert rec["model"] == "IFA (reference)" and rec["head"] == "ifa" and rec["formulation"] == "reference"
    assert rec["peak_mem_mb"] > 0 and rec["threads"] == torch.get_num_threads()
    parts = rec["breakdown_gmacs"]
    assert parts["head"] == pytest.approx(rec["gmacs_head"])
    assert parts["head.mlp"] > 0 and parts["head.reduce"] > 0
    assert parts["head.mlp"] + parts["head.reduce"] + parts.get("head.pe", 0) == pytest.approx(parts["head"])
    assert "aux_head" in rec["uncalled_modules"]  # built (aux enabled by default) but not run in eval
    assert rec["params_m"] == pytest.approx(rec["params_backbone_m"] + rec["params_head_m"])  # aux excluded


def test_table_lists_models_environment_and_breakdown(capsys):
    code, out, _ = _run(capsys, *SMALL, "--head", "fpn", "--no-latency", "--no-memory", "--breakdown")
    assert code == 0
    assert "Semantic-FPN" in out and "GMACs by module (Semantic-FPN): backbone" in out
    assert f"threads {torch.get_num_threads()}" in out and f"torch {torch.__version__}" in out
    assert "64x96" in out and "uncounted ops (Semantic-FPN):" in out


def test_checkpoint_loads_or_fails_in_one_line(capsys, tmp_path):
    from bench.commands.measure import model_config
    from bench.models import build_segmentor

    class Args:
        backbone, stem, output_stride, classes = "resnet18", "standard", 32, 5

    model = build_segmentor(model_config(Args, "ppm", None))
    good = tmp_path / "good.pt"
    torch.save({"model": model.state_dict(), "iter": 7}, good)
    code, out, _ = _run(capsys, *SMALL, "--head", "ppm", "--no-latency", "--no-memory", "--format", "json",
                        "--checkpoint", str(good))
    assert code == 0 and json.loads(out)[0]["head"] == "ppm"

    bad = tmp_path / "bad.pt"
    state = model.state_dict()
    state["head.not_a_layer.weight"] = torch.zeros(1)
    torch.save(state, bad)
    code, _, err = _run(capsys, *SMALL, "--head", "ppm", "--no-latency", "--no-memory", "--checkpoint", str(bad))
    _one_line_error(code, err, str(bad), "head.not_a_layer.weight")


def test_pooled_rows_state_their_precision_and_a_noisy_row_is_marked(capsys):
    from bench.commands.measure import format_table, row_line

    argv = ["--backbone", "resnet18", "--head", "fpn", "--input", "32x48", "--classes", "5", "--warmup", "0",
            "--runs", "2", "--processes", "2", "--span", "1", "--max-processes", "2", "--no-memory",
            "--format", "json"]
    code, out, err = _run(capsys, *argv)
    assert code == 0, err
    (row,) = json.loads(out)
    assert row["latency_processes"] == 2 and row["latency_span_s"] >= 1 and row["latency_runs"] % 2 == 0
    assert f"{row['latency_runs']} runs in 2 fresh processes over" in err  # the row's line as it is measured
    row.update(latency_noisy=True, latency_se_pct=9.0, latency_span_s=64.0,  # the table's marking of such a row
               latency_noisy_reason="")  # a loaded machine may have marked the measured row with its own reason
    table = format_table([row], breakdown=False)
    assert " noisy" in table.splitlines()[3]
    assert "noisy: its standard error over 2 processes over 64 s is 9.0% of the mean (limit 3.5%)" in table
    assert "WARNING: latency is noisy" in row_line(row)
