"""The bad-input corpus (issue 10): malformed input to every subcommand.

Each case asserts: the exit code, exactly one line on stderr that names the file, key or value, no traceback, and
nothing left behind (the case's folder and the shared fixtures are snapshotted before and after; no new file,
no run directory, no lock). Each case is its own process running bench.cli.main as the console script does, forked
from a pre-imported parent (tests/cli/zygote.py: why and how); the console script itself runs in the other tests
here and in tests/cli/test_dispatch.py.
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reports.fixture import trial, write_sweep

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).parent / "ifa-bench"

TINY = """\
name: tiny
seed: 0
data: {dataset: synthetic, root: %(W)s/ds, crop_size: [32, 32], num_workers: 0}
model:
  num_classes: 10
  backbone: {name: resnet18, width: 0.25}
  head: {name: fpn, channels: 16, scale_channels: 16}
  aux_head: {enabled: false}
train: {iterations: 2, batch_size: 2, checkpoint_every: 1, log_every: 1, device: cpu}
"""


def _exp(W: str, replace: tuple[str, str] | None = None, append: str = "") -> str:
    text = TINY % {"W": W}
    if replace:
        assert replace[0] in text, replace
        text = text.replace(*replace)
    return text + append


PUBLISHED_ROW = ("  - {dataset: Cityscapes, method: FPN, backbone: R-50, kind: published, source: x, miou_ss: 60.0}\n")
SWEEP = "sweep:\n  axes: {seed: [0]}\n"


def _results_csv(W: str, **changes) -> str:
    """A results.csv text (one completed synthetic IFA row) with some cells changed."""
    lines = (Path(W) / "sweep" / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    for key, value in changes.items():
        row[header.index(key)] = value
    return "\n".join([lines[0], ",".join(row)]) + "\n"


# (id, argv, files written into the case folder, expected exit code, text the stderr line must contain)
# In argv and file contents: {W} is the shared fixture folder, {C} the case folder (also the working directory).
def cases(W: str) -> list[tuple]:
    exp = _exp(W)
    ck = f"{W}/ckpt.pt"
    out = []

    def case(cid, argv, code=2, needle="", files=None):
        out.append((cid, argv, files or {}, code, needle))

    # --- YAML files: duplicates, encodings, shapes (train, eval, sweep read the same files)
    dup_iter = exp.replace("iterations: 2,", "iterations: 2, iterations: 5,")
    dup_top = exp + "seed: 1\n"
    utf16 = exp.encode("utf-16")
    binary = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))
    latin1 = ("# caf\xe9\n" + exp).encode("latin-1")
    for cmd, extra in (("train", []), ("eval", None), ("sweep", ["--dry-run"])):
        def argv(name, cmd=cmd, extra=extra):
            if cmd == "eval":
                return ["eval", ck, "--config", name]
            return [cmd, name, *extra]
        case(f"{cmd}-dup-key-flow", argv("e.yaml"), needle="duplicate key 'iterations'", files={"e.yaml": dup_iter})
        case(f"{cmd}-dup-key-top", argv("e.yaml"), needle="duplicate key 'seed' (line 2 and line 10)",
             files={"e.yaml": dup_top})
        case(f"{cmd}-utf16", argv("e.yaml"), needle="e.yaml: is UTF-16", files={"e.yaml": utf16})
        case(f"{cmd}-binary", argv("e.yaml"), needle="e.yaml: is a binary file", files={"e.yaml": binary})
        case(f"{cmd}-latin1", argv("e.yaml"), needle="e.yaml: is not UTF-8 text", files={"e.yaml": latin1})
        case(f"{cmd}-malformed", argv("e.yaml"), needle="e.yaml: malformed YAML (line", files={"e.yaml": "a: [\n"})
        case(f"{cmd}-not-mapping", argv("e.yaml"), needle="e.yaml: expected a mapping", files={"e.yaml": "- 1\n"})
        case(f"{cmd}-missing-file", argv("nope.yaml"), needle="nope.yaml")
        case(f"{cmd}-bool-iterations", argv("e.yaml"), needle="train.iterations: expected a number, got true",
             files={"e.yaml": exp.replace("iterations: 2,", "iterations: true,")})
        case(f"{cmd}-bool-crop", argv("e.yaml"), needle="data.crop_size: expected a number",
             files={"e.yaml": exp.replace("crop_size: [32, 32]", "crop_size: [true, 32]")})
        case(f"{cmd}-bool-lr", argv("e.yaml"), needle="train.lr: expected a number, got false",
             files={"e.yaml": exp.replace("iterations: 2,", "iterations: 2, lr: false,")})
        case(f"{cmd}-unknown-key", argv("e.yaml"), needle="train.iteration: unknown key",
             files={"e.yaml": exp.replace("iterations: 2,", "iteration: 2,")})
        case(f"{cmd}-iterations-absurd", argv("e.yaml"), needle="train.iterations: Input should be less than",
             files={"e.yaml": exp.replace("iterations: 2,", "iterations: 100000000000000000000000000000,")})

    # --- train
    case("train-set-dup-key", ["train", "e.yaml", "--set", "train={iterations: 1, iterations: 2}"],
         needle="duplicate key 'iterations'", files={"e.yaml": exp})
    case("train-set-bool", ["train", "e.yaml", "--set", "train.batch_size=true"],
         needle="train.batch_size: expected a number", files={"e.yaml": exp})
    case("train-set-no-equals", ["train", "e.yaml", "--set", "train.iterations"], needle="--set",
         files={"e.yaml": exp})
    case("train-crop-huge", ["train", "e.yaml", "--set", "data.crop_size=[99999,99999]"],
         needle="data.crop_size 99999x99999: needs at least", files={"e.yaml": exp})
    case("train-batch-huge", ["train", "e.yaml", "--set", "train.batch_size=100000000"],
         needle="train.batch_size 100000000", files={"e.yaml": exp})
    case("train-negative-seed", ["train", "e.yaml", "--set", "seed=-1"], needle="seed", files={"e.yaml": exp})
    case("train-lr-inf", ["train", "e.yaml", "--set", "train.lr=.inf"], needle="train.lr: Input should be a finite",
         files={"e.yaml": exp})
    case("train-scales-nan", ["train", "e.yaml", "--set", "eval.scales=[1.0, .nan]"],
         needle="eval.scales[1]: Input should be a finite", files={"e.yaml": exp})
    case("sweep-cpus-inf", ["sweep", "e.yaml", "--dry-run"], needle="finite",
         files={"e.yaml": exp + "sweep:\n  axes: {seed: [0]}\n  resources: {cpus: .inf}\n"})
    case("train-missing-root", ["train", "e.yaml", "--set", "data.root=nowhere"], needle="data.root: nowhere",
         files={"e.yaml": exp})
    case("train-num-classes", ["train", "e.yaml", "--set", "model.num_classes=3"], needle="model.num_classes: 3",
         files={"e.yaml": exp})
    case("train-val-size-mismatch", ["train", "e.yaml", "--set", f"data.root={W}/ds_size"],
         needle="does not match image", files={"e.yaml": exp})
    case("train-val-truncated", ["train", "e.yaml", "--set", f"data.root={W}/ds_trunc"],
         needle="corrupt or unreadable label", files={"e.yaml": exp})
    case("train-val-out-of-range", ["train", "e.yaml", "--set", f"data.root={W}/ds_range"], needle="200",
         files={"e.yaml": exp})
    case("train-train-rgb-label", ["train", "e.yaml", "--set", f"data.root={W}/ds_rgb"],
         needle="got mode RGB", files={"e.yaml": exp})
    case("train-pretrained-nan", ["train", "e.yaml", "--set", f"model.backbone.pretrained={W}/nan_backbone.pt"],
         needle="tensor 'conv1.weight' has 1 non-finite", files={"e.yaml": exp})
    case("train-unknown-head", ["train", "e.yaml", "--set", "model.head.name=unet"], needle="model.head",
         files={"e.yaml": exp})
    case("train-min-lr", ["train", "e.yaml", "--set", "train.min_lr=1"], needle="train.min_lr",
         files={"e.yaml": exp})

    # --- eval
    case("eval-nan-checkpoint", ["eval", f"{W}/nan.pt", "--config", "e.yaml"],
         needle="nan.pt: checkpoint tensor 'backbone.conv1.weight' has 1 non-finite", files={"e.yaml": exp})
    case("eval-inf-checkpoint", ["eval", f"{W}/inf.pt", "--config", "e.yaml"],
         needle="inf.pt: checkpoint tensor", files={"e.yaml": exp})
    case("eval-scales-huge", ["eval", ck, "--config", "e.yaml", "--scales", "5000"],
         needle="--scales 5000 on a 32x64 image: needs at least", files={"e.yaml": exp})
    case("eval-crop-huge", ["eval", ck, "--config", "e.yaml", "--mode", "slide", "--crop", "99999x99999"],
         needle="--crop 99999x99999", files={"e.yaml": exp})
    case("eval-scales-nan", ["eval", ck, "--config", "e.yaml", "--scales", "nan"], needle="--scales",
         files={"e.yaml": exp})
    case("eval-scales-negative", ["eval", ck, "--config", "e.yaml", "--scales=-1"], needle="--scales",
         files={"e.yaml": exp})
    case("eval-crop-text", ["eval", ck, "--config", "e.yaml", "--crop", "bigxbig"], needle="--crop",
         files={"e.yaml": exp})
    case("eval-stride-larger", ["eval", ck, "--config", "e.yaml", "--mode", "slide", "--crop", "16x16",
                                "--stride", "32x32"], needle="--stride: 32x32", files={"e.yaml": exp})
    case("eval-missing-ckpt", ["eval", "none.pt", "--config", "e.yaml"], needle="none.pt: no such file",
         files={"e.yaml": exp})
    case("eval-not-a-ckpt", ["eval", "bad.pt", "--config", "e.yaml"], needle="bad.pt: not a readable",
         files={"e.yaml": exp, "bad.pt": b"not a torch file"})
    case("eval-wrong-model", ["eval", ck, "--config", "e.yaml"], needle="the model of e.yaml expects",
         files={"e.yaml": exp.replace("channels: 16, scale", "channels: 24, scale")})
    case("eval-out-is-dir", ["eval", ck, "--config", "e.yaml", "--out", "."], needle="--out takes a file",
         files={"e.yaml": exp})
    case("eval-split-missing", ["eval", ck, "--config", "e.yaml", "--split", "test"], needle="test",
         files={"e.yaml": exp})

    # --- sweep
    case("sweep-bool-cpus", ["sweep", "e.yaml", "--dry-run"], needle="sweep.resources.cpus: expected a number",
         files={"e.yaml": exp + "sweep:\n  resources: {cpus: true}\n"})
    case("sweep-bool-max-failures", ["sweep", "e.yaml", "--dry-run"], needle="sweep.max_failures",
         files={"e.yaml": exp + "sweep:\n  max_failures: false\n"})
    case("sweep-dup-in-sweep", ["sweep", "e.yaml", "--dry-run"], needle="duplicate key 'axes'",
         files={"e.yaml": exp + "sweep:\n  axes: {seed: [0]}\n  axes: {seed: [1]}\n"})
    case("sweep-unknown-sweep-key", ["sweep", "e.yaml", "--dry-run"], needle="sweep.axis",
         files={"e.yaml": exp + "sweep:\n  axis: {seed: [0]}\n"})
    case("sweep-bool-seed-axis", ["sweep", "e.yaml", "--dry-run"], needle="seed",
         files={"e.yaml": exp + "sweep:\n  axes: {seed: [true]}\n"})
    case("sweep-missing", ["sweep", "nope.yaml", "--dry-run"], needle="nope.yaml")

    # --- measure
    case("measure-input-huge", ["measure", "--input", "99999x99999", "--no-latency"],
         needle="--input 99999x99999: needs at least")
    case("measure-input-text", ["measure", "--input", "axb"], needle="--input")
    case("measure-input-zero", ["measure", "--input", "0x10"], needle="--input")
    case("measure-nan-checkpoint", ["measure", "--backbone", "resnet18", "--head", "fpn", "--classes", "10",
                                    "--checkpoint", f"{W}/nan.pt", "--input", "32x32"], needle="nan.pt")
    case("measure-missing-checkpoint", ["measure", "--checkpoint", "none.pt", "--input", "32x32"],
         needle="none.pt")
    case("measure-span-negative", ["measure", "--span=-1", "--input", "32x32"], needle="--span: must be between 0")
    case("measure-span-nan", ["measure", "--span", "nan", "--input", "32x32"], needle="--span: must be between 0")

    # --- data
    case("data-synth-negative-seed", ["data", "synth", "d/x", "--seed=-1"], needle="--seed: '-1'")
    case("data-synth-text-seed", ["data", "synth", "d/x", "--seed", "one"], needle="--seed: 'one'")
    case("data-synth-huge", ["data", "synth", "d/x", "--size", "99999x99999"],
         needle="--size 99999x99999: needs at least")
    case("data-synth-size-text", ["data", "synth", "d/x", "--size", "big"], needle="size 'big'")
    case("data-synth-size-small", ["data", "synth", "d/x", "--size", "8x8"], needle="size '8x8'")
    case("data-synth-zero-train", ["data", "synth", "d/x", "--train", "0"], needle="'0'")
    case("data-synth-root-is-file", ["data", "synth", "f"], needle="f: exists and is not a synthetic dataset",
         files={"f": "x"})
    case("data-synth-under-file", ["data", "synth", "f/x"], needle="f/x: cannot write", files={"f": "x"})
    case("data-synth-other-params", ["data", "synth", f"{W}/ds", "--seed", "3"], needle="synthetic.json: holds")
    case("data-verify-missing-root", ["data", "verify", "nowhere", "--dataset", "cityscapes"],
         needle="nowhere: dataset root does not exist")
    case("data-verify-bad-dataset", ["data", "verify", ".", "--dataset", "mnist"], needle="mnist")

    # --- check
    case("check-tolerance-nan", ["check", f"{W}/sweep", "--tolerance", "nan"], needle="--tolerance")
    case("check-tolerance-inf", ["check", f"{W}/sweep", "--tolerance", "inf"], needle="--tolerance")
    case("check-tolerance-negative", ["check", f"{W}/sweep", "--tolerance=-1"], needle="--tolerance")
    for cid, value in (("inf", "inf"), ("negative", "-5"), ("over-100", "100.5")):
        case(f"check-miou-{cid}", ["check", "s"], needle=f"s/results.csv: line 2 (trial t000): miou",
             files={"s/results.csv": _results_csv(W, miou=value)})
    case("check-repeated-trial-differs", ["check", "s"], needle="trial 't000' appears again",
         files={"s/results.csv": _results_csv(W) + _results_csv(W, miou="50.0").splitlines()[1] + "\n"})
    case("check-nothing-compared", ["check", f"{W}/sweep"], code=1, needle="")
    case("check-published-dup-key", ["check", f"{W}/sweep", "--against", "p.yaml"],
         needle="p.yaml: duplicate key 'results'",
         files={"p.yaml": "results:\n" + PUBLISHED_ROW + "results: []\n"})
    case("check-published-dup-miou", ["check", f"{W}/sweep", "--against", "p.yaml"],
         needle="duplicate key 'miou_ss' (line 2 and line 2)",
         files={"p.yaml": "results:\n" + PUBLISHED_ROW.replace("}", ", miou_ss: 70.0}")})
    case("check-published-utf16", ["check", f"{W}/sweep", "--against", "p.yaml"], needle="p.yaml: is UTF-16",
         files={"p.yaml": ("results:\n" + PUBLISHED_ROW).encode("utf-16")})
    case("check-published-binary", ["check", f"{W}/sweep", "--against", "p.yaml"], needle="p.yaml: is a binary",
         files={"p.yaml": binary})
    case("check-published-no-results", ["check", f"{W}/sweep", "--against", "p.yaml"],
         needle="p.yaml: expected a mapping with a list under 'results'", files={"p.yaml": "rows: []\n"})
    case("check-missing-results", ["check", "nope.csv"], needle="nope.csv: no such file")
    case("check-bad-metric", ["check", f"{W}/sweep", "--metric", "miou_x"], needle="miou_x")
    case("check-negative-min-seeds", ["check", f"{W}/sweep", "--min-seeds=-1"], needle="--min-seeds")
    case("check-text-miou", ["check", "s"], needle="column 'miou' has non-numeric value 'high'",
         files={"s/results.csv": _results_csv(W, miou="high")})
    case("check-wrong-suffix", ["check", "r.txt"], needle="r.txt", files={"r.txt": "x"})

    # --- report
    case("report-missing", ["report", "nope"], needle="nope: no such file")
    case("report-published-dup-key", ["report", f"{W}/sweep", "--published", "p.yaml", "--out", "rep"],
         needle="p.yaml: duplicate key", files={"p.yaml": "results: []\nresults: []\n"})
    case("report-published-binary", ["report", f"{W}/sweep", "--published", "p.yaml", "--out", "rep"],
         needle="p.yaml: is a binary", files={"p.yaml": binary})
    case("report-text-miou", ["report", "s"], needle="column 'miou' has non-numeric value",
         files={"s/results.csv": _results_csv(W, miou="high")})
    case("report-missing-columns", ["report", "s"], needle="missing required column(s)",
         files={"s/results.csv": "dataset,head\nx,y\n"})
    case("report-bad-status", ["report", "s"], needle="column 'status' has unknown value 'done'",
         files={"s/results.csv": _results_csv(W, status="done")})

    # --- issue 28: bounds, numbers YAML 1.1 and 1.2 read differently, names, storage URIs, predict's budget
    bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for level in range(1, 9):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        bomb += f"{name}: &{name} {{" + ", ".join(f"k{j}: *{prev}" for j in range(9)) + "}\n"
    bomb_under_unknown = exp + "unknown:\n" + "".join(f"  {line}\n" for line in bomb.splitlines())
    for cmd, extra in (("train", []), ("sweep", ["--dry-run"])):
        case(f"{cmd}-alias-bomb", [cmd, "e.yaml", *extra], needle="e.yaml: line", files={"e.yaml": bomb_under_unknown})
        case(f"{cmd}-nested-1000", [cmd, "e.yaml", *extra], needle="nested more than",
             files={"e.yaml": exp + "x: " + "[" * 1000 + "]" * 1000 + "\n"})
        case(f"{cmd}-nested-10000-maps", [cmd, "e.yaml", *extra], needle="nested more than",
             files={"e.yaml": exp + "x: " + "{a: " * 10000 + "1" + "}" * 10000 + "\n"})
    # variants of the above that the issue does not list: aliases inside themselves (through `<<` or a list), alias
    # chains that nest deeper than the text, a huge loader worker count, credentials hidden behind '?' in a URI
    case("train-alias-merge-itself", ["train", "e.yaml"], needle="e.yaml: line 10: an alias refers to the value that "
         "holds it", files={"e.yaml": exp + "x: &x {<<: *x}\n"})
    case("sweep-alias-list-itself", ["sweep", "e.yaml", "--dry-run"], needle="a recursive alias",
         files={"e.yaml": exp + SWEEP + "y: &y [*y]\n"})
    chain = "".join(["a0: &a0 [1]\n"] + [f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 600)])
    for cmd, extra in (("train", []), ("sweep", ["--dry-run"])):
        case(f"{cmd}-alias-chain-600", [cmd, "e.yaml", *extra], needle="its aliases nest more than 64 levels",
             files={"e.yaml": exp + (SWEEP if cmd == "sweep" else "") + chain})
    case("train-num-workers-huge", ["train", "e.yaml", "--set", "data.num_workers=1000000000000000000000000000000"],
         needle="data.num_workers: Input should be less than or equal to 64", files={"e.yaml": exp})
    case("train-threads-huge", ["train", "e.yaml", "--set", "train.threads=1000000000000000000000000000000"],
         needle="train.threads: Input should be less than or equal to 1024", files={"e.yaml": exp})
    case("train-head-channels-huge", ["train", "e.yaml", "--set", "model.head.channels=1000000000000000000000000000000"],
         needle="model.head.channels: 1000000000000000000000000000000 is beyond any setting", files={"e.yaml": exp})
    case("measure-runs-huge", ["measure", "--config", "e.yaml", "--set", "measure.runs=10000000000000000000000"],
         needle="measure.runs: 10000000000000000000000 is beyond any setting", files={"e.yaml": exp})
    case("sweep-num-workers-axis-huge", ["sweep", "e.yaml", "--dry-run"], needle="data.num_workers",
         files={"e.yaml": exp + "sweep:\n  axes: {data.num_workers: [1000000]}\n"})
    case("sweep-storage-password-with-query-mark", ["sweep", "e.yaml", "--storage", "s3://KEYID:pa?SECRETPW@b/x"],
         needle="s3://***@...: the URI holds credentials", files={"e.yaml": exp + SWEEP})
    case("report-gs-credentials", ["report", "gs://KEYID@b/x", "--out", "r"],
         needle="gs://***@b: the URI holds credentials (or an '@'); remove them and set them in the environment "
                "GOOGLE_APPLICATION_CREDENTIALS")
    case("sweep-storage-endpoint-userinfo", ["sweep", "e.yaml", "--storage", "s3://b/x", "--storage-endpoint",
                                             "https://u:SECRETPW@127.0.0.1:9"],
         needle="--storage-endpoint https://***@127.0.0.1:9: expected http(s)://HOST:PORT without a user",
         files={"e.yaml": exp + SWEEP})
    case("train-seed-10e30", ["train", "e.yaml", "--set", "seed=1000000000000000000000000000000"],
         needle="seed: Input should be less than", files={"e.yaml": exp})
    case("train-name-nul", ["train", "e.yaml", "--set", 'name="a\\0b"'], needle="'a\\x00b' holds a control character",
         files={"e.yaml": exp})
    case("train-name-parent", ["train", "e.yaml", "--set", "name=../../x"], needle="is a path; a name is 1 to",
         files={"e.yaml": exp})
    case("train-name-absolute", ["train", "e.yaml"], needle="is a path; a name is 1 to",
         files={"e.yaml": exp.replace("name: tiny", "name: /tmp/x")})
    case("train-name-empty", ["train", "e.yaml", "--set", "name="], needle="name: '' is empty; a name is 1 to",
         files={"e.yaml": exp})
    case("sweep-name-parent", ["sweep", "e.yaml", "--dry-run"], needle="sweep.name: '../x' is a path",
         files={"e.yaml": exp + "sweep:\n  name: ../x\n  axes: {seed: [0]}\n"})
    case("train-true-key", ["train", "e.yaml"], needle="e.yaml: key 'true' is not text",
         files={"e.yaml": "true: 1\n" + exp})
    case("train-sexagesimal", ["train", "e.yaml"], needle="'1:30' is a sexagesimal number in YAML 1.1 (90)",
         files={"e.yaml": exp.replace("iterations: 2,", "iterations: 1:30,")})
    case("train-octal", ["train", "e.yaml"], needle="'010' is an octal number in YAML 1.1 (8)",
         files={"e.yaml": exp.replace("iterations: 2,", "iterations: 010,")})
    case("sweep-storage-one-slash", ["sweep", "e.yaml", "--storage", "s3:/bucket/x"],
         needle="s3:/bucket/x: malformed URI", files={"e.yaml": exp + SWEEP})
    case("report-one-slash-uri", ["report", "s3:/bucket/x", "--out", "r"], needle="s3:/bucket/x: malformed URI")
    case("sweep-storage-endpoint-unreachable", ["sweep", "e.yaml", "--storage", "s3://bucket/x",
                                                "--storage-endpoint", "http://127.0.0.1:9"],
         needle="cannot reach the storage server 127.0.0.1:9 (from --storage-endpoint)", files={"e.yaml": exp + SWEEP})
    case("predict-scales-huge", ["predict", ck, f"{W}/ds/leftImg8bit/val", "--config", "e.yaml", "--out", "p"],
         needle="needs at least", files={"e.yaml": exp + "eval: {scales: [5000]}\n"})

    for cid, entry, needle in (
            ("zero", "{name: z, scales: [0]}", "sweep.evaluate 'z' (trial"),
            ("huge", "{name: big, scales: [5000]}", "scales [5000.0] on a 32x32 image: needs at least"),
            ("stride", "{name: st, mode: slide, crop_size: [16, 16], stride: [32, 32]}",
             "stride 32x32 is larger than the window 16x16")):
        case(f"sweep-evaluate-{cid}", ["sweep", "e.yaml", "--dry-run"], needle=needle,
             files={"e.yaml": exp + f"sweep:\n  axes: {{seed: [0]}}\n  evaluate: [{entry}]\n"})
    case("train-eval-stride-larger", ["train", "e.yaml", "--set", "eval.mode=slide", "--set", "eval.stride=[64,64]"],
         needle="eval.stride: 64x64 is larger than the window 32x32", files={"e.yaml": exp})
    case("convert-raw-pickle", ["convert", "raw.pkl", "out.pt", "--config", "e.yaml"],
         needle="raw.pkl: not a readable weights-only checkpoint",
         files={"e.yaml": exp, "raw.pkl": pickle.dumps({"a": [1, 2]}, protocol=4)})

    # --- the command line itself
    case("mistyped-command", ["swep"], needle="did you mean 'sweep'")  # bare `ifa-bench` is help: tests/cli/test_usability.py
    case("unknown-command", ["fly"], needle="fly")
    case("train-unknown-flag", ["train", "e.yaml", "--fast"], needle="--fast", files={"e.yaml": exp})
    return out


def _snapshot(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")} | {str(p) for root in roots for p in
                                                                   root.rglob(".*")}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Shared, read-only inputs: a tiny synthetic dataset and broken copies, checkpoints, a results folder."""
    import numpy as np
    import torch
    from PIL import Image

    from bench.config.experiment_file import load_experiment
    from bench.data.synthetic.generate import generate_synthetic
    from bench.models import build_segmentor

    W = tmp_path_factory.mktemp("corpus-world")
    ds = generate_synthetic(W / "ds", seed=0, size=(32, 64), counts={"train": 2, "val": 2})
    import shutil

    for name in ("ds_size", "ds_trunc", "ds_range", "ds_rgb"):
        shutil.copytree(ds, W / name)
    val_labels = sorted((W / "ds_size").rglob("val/**/*labelTrainIds.png"))
    assert val_labels, "synthetic layout changed"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(W / "ds_size" / val_labels[0].relative_to(W / "ds_size"))
    trunc = W / "ds_trunc" / val_labels[0].relative_to(W / "ds_size")
    trunc.write_bytes(trunc.read_bytes()[:-40])
    rng_label = W / "ds_range" / val_labels[0].relative_to(W / "ds_size")
    Image.fromarray(np.full((32, 64), 200, np.uint8)).save(rng_label)
    train_label = sorted((W / "ds_rgb").rglob("train/**/*labelTrainIds.png"))[0]
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(train_label)

    exp = W / "exp.yaml"
    exp.write_text(_exp(str(W)))
    cfg = load_experiment(exp, [])
    torch.manual_seed(0)
    state = build_segmentor(cfg.model).state_dict()
    torch.save({"model": state}, W / "ckpt.pt")
    for name, value in (("nan.pt", float("nan")), ("inf.pt", float("inf"))):
        bad = {k: v.clone() for k, v in state.items()}
        bad["backbone.conv1.weight"].view(-1)[0] = value
        torch.save({"model": bad}, W / name)
    backbone = {k[len("backbone."):]: v.clone() for k, v in state.items() if k.startswith("backbone.")}
    backbone["conv1.weight"].view(-1)[0] = float("nan")
    torch.save(backbone, W / "nan_backbone.pt")
    write_sweep(W / "sweep", [trial(seed=0, miou=60.0)], per_class=False, curves=False)
    return W


def _run(W: Path, base: Path, cid: str, argv: list[str], files: dict, cli: "Zygote"):
    case_dir = base / cid
    case_dir.mkdir()
    for name, content in files.items():
        path = case_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _snapshot(case_dir, W)
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", IFA_BENCH_CACHE=str(base / f"cache-{cid}"))
    proc = cli.run(argv, case_dir, env)
    after = _snapshot(case_dir, W)
    return proc, sorted(after - before)


class Zygote:
    """Client of tests/cli/zygote.py: one forked `ifa-bench` process per run()."""

    def __init__(self, scratch: Path):
        self.scratch = scratch
        env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.cli.zygote"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env,
                                     cwd=Path(__file__).resolve().parents[2])
        self.count = 0

    def run(self, argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
        self.count += 1
        out, err = self.scratch / f"{self.count}.out", self.scratch / f"{self.count}.err"
        req = {"argv": argv, "cwd": str(cwd), "env": env, "out": str(out), "err": str(err)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline()
        assert reply, f"the zygote died (exit {self.proc.poll()})"
        return subprocess.CompletedProcess(argv, json.loads(reply)["returncode"], out.read_text(), err.read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def forked_cli(tmp_path_factory):
    zygote = Zygote(tmp_path_factory.mktemp("zygote-io"))
    yield zygote
    zygote.close()


def test_corpus_has_80_cases_over_all_commands(world):
    all_cases = cases(str(world))
    assert len(all_cases) >= 80
    assert len({c[0] for c in all_cases}) == len(all_cases)
    commands = {c[1][0] for c in all_cases if c[1]}
    assert {"measure", "data", "train", "eval", "sweep", "report", "check"} <= commands


@pytest.mark.timeout(900)
def test_bad_input_corpus(world, tmp_path, forked_cli):
    all_cases = cases(str(world))
    failures = []
    for cid, argv, files, code, needle in all_cases:
        proc, new_files = _run(world, tmp_path, cid, argv, files, forked_cli)
        err = proc.stderr
        lines = [line for line in err.splitlines() if line.strip()]
        problems = []
        if proc.returncode != code:
            problems.append(f"exit {proc.returncode}, expected {code}")
        if "Traceback" in err:
            problems.append("traceback")
        if code == 2 and len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        if needle and needle not in err:
            problems.append(f"stderr lacks {needle!r}")
        if new_files:
            problems.append(f"left behind {new_files[:3]}")
        if problems:
            failures.append(f"{cid}: {'; '.join(problems)}\n    argv {argv}\n    stderr {err.strip()[-600:]!r}")
    assert not failures, f"{len(failures)} of {len(all_cases)} cases failed:\n" + "\n".join(failures)


@pytest.mark.skipif(not EXE.exists(), reason="the ifa-bench console script is not installed next to python")
def test_nothing_compared_says_why_and_allow_empty_passes(world, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([str(EXE), "check", str(world / "sweep")], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 1 and "FAIL: nothing was compared" in proc.stdout and "PASS" not in proc.stdout
    allowed = subprocess.run([str(EXE), "check", str(world / "sweep"), "--allow-empty"], capture_output=True,
                             text=True, env=env, timeout=120)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
