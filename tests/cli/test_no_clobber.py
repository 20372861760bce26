"""No command deletes or overwrites what it did not create (bench/files/output_guard.py), per command that writes.

Each refusal case makes real files, runs the installed `ifa-bench`, and checks: exit 2, one stderr line naming the
path, and every file that existed before (the case folder and the shared inputs) byte-identical afterwards, with
nothing added. The accepted cases show that a command still rewrites its own earlier output.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_bad_input_corpus import _exp
from tests.reports.fixture import trial, write_sweep

pytestmark = pytest.mark.slow

EXE = Path(sys.executable).parent / "ifa-bench"
if not EXE.exists():
    pytest.skip("the ifa-bench console script is not installed next to python", allow_module_level=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Inputs: a synthetic dataset, its experiment, a checkpoint, a sweep folder, a folder of images."""
    import shutil

    import torch

    from bench.config.experiment_file import load_experiment
    from bench.data.synthetic.generate import generate_synthetic
    from bench.models import build_segmentor

    W = tmp_path_factory.mktemp("no-clobber")
    generate_synthetic(W / "ds", seed=0, size=(32, 64), counts={"train": 2, "val": 2})
    (W / "exp.yaml").write_text(_exp(str(W)))
    torch.manual_seed(0)
    torch.save({"model": build_segmentor(load_experiment(W / "exp.yaml", []).model).state_dict()}, W / "ckpt.pt")
    write_sweep(W / "sweep", [trial(seed=0, miou=60.0)], per_class=False, curves=False)
    (W / "images").mkdir()
    for src in sorted((W / "ds").rglob("val/**/*leftImg8bit.png"))[:1]:
        shutil.copy(src, W / "images" / src.name)
    return W


def _snapshot(*roots: Path) -> dict[str, bytes | None]:
    return {str(p): (p.read_bytes() if p.is_file() else None) for root in roots for p in root.rglob("*")}


def _cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", IFA_BENCH_CACHE=str(cwd / ".cache"))
    return subprocess.run([str(EXE), *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


USER_FILE = b"the user's own notes\n"

# (id, argv, files made in the case folder first, text the one stderr line must contain)
# {W}: the shared inputs; {C}: the case folder (the working directory). Files map names to bytes.
CASES = [
    ("report-out-is-sweep", ["report", "{W}/sweep", "--out", "{W}/sweep"], {}, "is the input"),
    ("report-out-above-sweep", ["report", "{C}/p/s", "--out", "{C}/p"], {"p/s/": "sweep"}, "holds the input"),
    ("report-out-unrelated", ["report", "{W}/sweep", "--out", "d"], {"d/notes.txt": USER_FILE},
     "d: holds files ifa-bench did not write ('notes.txt')"),
    ("report-csv-out-csv", ["report", "{W}/sweep/results.csv", "--out", "{W}/sweep/results.csv"], {},
     "results.csv: is the input"),
    ("report-out-inside-trials", ["report", "{W}/sweep", "--out", "{W}/sweep/trials/x"], {}, "is inside the input"),
    ("report-default-unmarked", ["report", "{C}/s"], {"s/": "sweep", "s/report/index.html": USER_FILE},
     "s/report: holds files ifa-bench did not write"),
    ("check-out-is-input", ["check", "{W}/sweep/results.csv", "--out", "{W}/sweep/results.csv"], {},
     "results.csv: is the input"),
    ("check-out-over-sweep-table", ["check", "{W}/sweep", "--out", "{W}/sweep/results.csv"], {},
     "results.csv: exists and is not a table written by `ifa-bench check`"),
    ("check-out-foreign", ["check", "{W}/sweep", "--out", "mine.csv"], {"mine.csv": b"a,b\n1,2\n"},
     "mine.csv: exists and is not a table written by `ifa-bench check`"),
    ("eval-save-preds-dataset", ["eval", "{W}/ckpt.pt", "--config", "{W}/exp.yaml",
                                 "--save-preds", "{W}/ds/leftImg8bit/val"], {}, "is inside the input"),
    ("eval-save-preds-foreign", ["eval", "{W}/ckpt.pt", "--config", "{W}/exp.yaml", "--save-preds", "p"],
     {"p/x_trainIds.png": USER_FILE}, "p: holds files ifa-bench did not write"),
    ("eval-out-foreign", ["eval", "{W}/ckpt.pt", "--config", "{W}/exp.yaml", "--out", "m.json"],
     {"m.json": b'{"mine": 1}\n'}, "m.json: exists and is not a metrics file"),
    ("eval-out-is-config", ["eval", "{W}/ckpt.pt", "--config", "e.yaml", "--out", "e.yaml"],
     {"e.yaml": "exp"}, "e.yaml: is the input"),
    ("predict-out-is-input", ["predict", "{W}/ckpt.pt", "{W}/images", "--config", "{W}/exp.yaml",
                              "--out", "{W}/images"], {}, "images: is the input"),
    ("predict-out-inside-input", ["predict", "{W}/ckpt.pt", "{W}/images", "--config", "{W}/exp.yaml",
                                  "--out", "{W}/images/preds"], {}, "is inside the input"),
    ("predict-out-dataset", ["predict", "{W}/ckpt.pt", "{W}/images", "--config", "{W}/exp.yaml",
                             "--out", "{W}/ds/leftImg8bit"], {}, "is inside the input"),
    ("predict-out-foreign", ["predict", "{W}/ckpt.pt", "{W}/images", "--config", "{W}/exp.yaml", "--out", "p"],
     {"p/holiday.png": USER_FILE}, "p: holds files ifa-bench did not write"),
    ("predict-same-stem", ["predict", "{W}/ckpt.pt", "a/x.png", "b/x.png", "--config", "{W}/exp.yaml",
                           "--out", "p"], {"a/x.png": "image", "b/x.png": "image"}, "same name as"),
    ("convert-same", ["convert", "{W}/ckpt.pt", "{W}/ckpt.pt", "--config", "{W}/exp.yaml"], {}, "is the input"),
    ("convert-dest-foreign", ["convert", "{W}/ckpt.pt", "mine.pt", "--config", "{W}/exp.yaml"],
     {"mine.pt": USER_FILE}, "mine.pt: exists and is not a checkpoint written by `ifa-bench convert`"),
    ("sweep-checkpoints-out-same", ["sweep", "e.yaml", "--checkpoints", "{W}/sweep", "--out", "{W}/sweep"],
     {"e.yaml": "sweep-exp"}, "sweep: is the input"),
    ("sweep-checkpoints-glob-out-above", ["sweep", "e.yaml", "--checkpoints", "{W}/sweep/result*.csv",
                                          "--out", "{W}/sweep"], {"e.yaml": "sweep-exp"}, "holds the input"),
    ("sweep-out-foreign", ["sweep", "e.yaml", "--dry-run", "--out", "d"], {"e.yaml": "sweep-exp",
                                                                           "d/notes.txt": USER_FILE},
     "d: holds files ifa-bench did not write"),
    ("sweep-out-other-sweep", ["sweep", "e.yaml", "--dry-run", "--out", "d"],
     {"e.yaml": "sweep-exp", "d/.ifa-bench-sweep": b"other\n"}, "is the folder of sweep 'other'"),
    ("sweep-storage-foreign", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "st"],
     {"e.yaml": "sweep-exp", "st/notes.txt": USER_FILE}, "st: holds files ifa-bench did not write ('notes.txt')"),
    ("sweep-storage-is-config", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "e.yaml"],
     {"e.yaml": "sweep-exp"}, "e.yaml: is the input"),
    ("sweep-storage-above-config", ["sweep", "{C}/d/e.yaml", "--dry-run", "--out", "o", "--storage", "{C}/d"],
     {"d/e.yaml": "sweep-exp"}, "holds the input"),
    ("sweep-storage-is-checkpoints", ["sweep", "e.yaml", "--checkpoints", "{W}/sweep", "--out", "o",
                                      "--storage", "{W}/sweep"], {"e.yaml": "sweep-exp"}, "is the input"),
    ("sweep-storage-is-out", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "o"],
     {"e.yaml": "sweep-exp"}, "overlaps the sweep folder"),
    ("sweep-storage-inside-out", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "o/st"],
     {"e.yaml": "sweep-exp"}, "overlaps the sweep folder"),
    ("sweep-storage-other-sweep", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "st"],
     {"e.yaml": "sweep-exp", "st/.ifa-bench-sweep": b"other\n"}, "is the storage of sweep 'other'"),
    ("sweep-storage-symlink-to-config", ["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", "ln"],
     {"e.yaml": "sweep-exp", "ln": "link:e.yaml"}, "is the input"),
    ("train-out-foreign", ["train", "e.yaml", "--out", "d"], {"e.yaml": "exp", "d/config.yaml": USER_FILE},
     "d: holds files ifa-bench did not write ('config.yaml')"),
    ("train-out-above-config", ["train", "{C}/d/e.yaml", "--out", "{C}/d"], {"d/e.yaml": "exp"},
     "holds the input"),
    ("measure-out-is-config", ["measure", "--config", "e.yaml", "--out", "e.yaml", "--no-latency"],
     {"e.yaml": "exp"}, "e.yaml: is the input"),
    ("data-synth-foreign", ["data", "synth", "d"], {"d/notes.txt": USER_FILE}, "d: exists and is not a synthetic"),
]


def _materialise(W: Path, C: Path, files: dict) -> None:
    for name, content in files.items():
        path = C / name
        if name.endswith("/"):
            assert content == "sweep"
            write_sweep(path, [trial(seed=0, miou=60.0)], per_class=False, curves=False)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("link:"):
            path.symlink_to(C / content.removeprefix("link:"))
            continue
        if content == "exp":
            content = _exp(str(W)).encode()
        elif content == "sweep-exp":
            content = (_exp(str(W)) + "sweep:\n  axes: {seed: [0]}\n").encode()
        elif content == "image":
            content = next(W.glob("images/*.png")).read_bytes()
        path.write_bytes(content)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("cid,argv,files,needle", CASES, ids=[c[0] for c in CASES])
def test_refused_and_untouched(world, tmp_path, cid, argv, files, needle):
    C = tmp_path / "case"
    C.mkdir()
    _materialise(world, C, files)
    argv = [a.replace("{W}", str(world)).replace("{C}", str(C)) for a in argv]
    before = _snapshot(C, world)
    proc = _cli(argv, C)
    after = _snapshot(C, world)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-500:], proc.stderr[-1500:])
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert needle in lines[0], lines[0]
    assert after == before, f"changed: {sorted(set(after.items()) ^ set(before.items()))[:5]}"


def test_a_report_rewrites_its_own_folder_only(world, tmp_path):
    """The default <sweep>/report is made, marked, and replaced by the next report; a user file put there after
    the first report is the report's folder's (marked), so it goes with it."""
    import shutil

    sweep = tmp_path / "s"
    shutil.copytree(world / "sweep", sweep)
    first = _cli(["report", str(sweep)], tmp_path)
    assert first.returncode == 0, first.stderr[-1500:]
    assert (sweep / "report" / ".ifa-bench-report").is_file()
    again = _cli(["report", str(sweep)], tmp_path)
    assert again.returncode == 0, again.stderr[-1500:]
    assert (sweep / "results.csv").read_bytes() == (world / "sweep" / "results.csv").read_bytes()


def test_predict_reruns_into_its_own_folder_and_leaves_nothing_on_error(world, tmp_path):
    base = ["predict", str(world / "ckpt.pt"), "--config", str(world / "exp.yaml"), "--no-progress"]
    ok = _cli([*base, str(world / "images"), "--out", "p"], tmp_path)
    assert ok.returncode == 0, ok.stderr[-1500:]
    made = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert ".ifa-bench-predictions" in made and any(n.endswith("_trainIds.png") for n in made)
    again = _cli([*base, str(world / "images"), "--out", "p"], tmp_path)
    assert again.returncode == 0, again.stderr[-1500:]
    # a good image, then a truncated one: no output at all, not even the folder or its parents
    good = next((world / "images").glob("*.png"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(good.read_bytes())
    (tmp_path / "in" / "b.png").write_bytes(good.read_bytes()[:-60])
    bad = _cli([*base, str(tmp_path / "in"), "--out", "q/r"], tmp_path)
    assert bad.returncode == 2 and "b.png" in bad.stderr, bad.stderr[-1500:]
    assert not (tmp_path / "q").exists()
    assert not [p for p in tmp_path.rglob(".r.*")]


@pytest.mark.parametrize("name", [".ifa-bench.lock", "metrics.jsonl"])
def test_train_resume_never_writes_through_a_planted_link(world, tmp_path, name):
    """A lock or record file of a run folder that is a symbolic link: refused in one line, its target untouched."""
    exp = tmp_path / "e.yaml"
    exp.write_text(_exp(str(world)))
    run = tmp_path / "run"
    if name == "metrics.jsonl":  # a run of this config to resume, so that the trainer reaches its metrics log
        first = _cli(["train", str(exp), "--out", str(run), "--no-progress",
                      "--set", "train.iterations=1"], tmp_path)
        assert first.returncode == 0, first.stderr[-1500:]
        exp.write_text(_exp(str(world)).replace("iterations: 2,", "iterations: 1,"))
        (run / name).unlink()
        (run / "final.json").unlink()  # as if interrupted before the final evaluation
    run.mkdir(exist_ok=True)
    target = tmp_path / "victim.txt"
    target.write_bytes(USER_FILE)
    (run / name).symlink_to(target)
    proc = _cli(["train", str(exp), "--out", str(run), "--resume", "--no-progress"], tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "is a symbolic link" in lines[0], proc.stderr[-1500:]
    assert target.read_bytes() == USER_FILE and (run / name).is_symlink()


def test_eval_save_preds_leaves_nothing_when_an_image_fails(world, tmp_path):
    """Issue 28: `eval --save-preds` over a split whose last image is truncated left the first predictions behind.
    The predictions are staged and reach --save-preds only when every image was evaluated."""
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(world / "ds", ds)
    last = sorted(ds.rglob("val/**/*leftImg8bit.png"))[-1]
    last.write_bytes(last.read_bytes()[:-60])
    proc = _cli(["eval", str(world / "ckpt.pt"), "--config", str(world / "exp.yaml"), "--set", f"data.root={ds}",
                 "--save-preds", "out/preds", "--no-progress"], tmp_path)
    assert proc.returncode == 2 and last.name in proc.stderr, proc.stderr[-1500:]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".*preds*"))
    ok = _cli(["eval", str(world / "ckpt.pt"), "--config", str(world / "exp.yaml"), "--save-preds", "out/preds",
               "--no-progress"], tmp_path)
    assert ok.returncode == 0, ok.stderr[-1500:]
    saved = sorted(p.name for p in (tmp_path / "out" / "preds").iterdir())
    assert ".ifa-bench-predictions" in saved and len([n for n in saved if n.endswith("_trainIds.png")]) == 2


@pytest.mark.timeout(600)
def test_a_storage_folder_of_this_sweep_or_an_empty_one_is_accepted(world, tmp_path):
    """The other side of the sweep-storage-* refusals: an empty folder, or one marked by this sweep, is taken."""
    C = tmp_path / "case"
    C.mkdir()
    _materialise(world, C, {"e.yaml": "sweep-exp", "mine/.ifa-bench-sweep": b"tiny\n"})
    (C / "empty").mkdir()
    for storage in ("mine", "empty"):
        proc = _cli(["sweep", "e.yaml", "--dry-run", "--out", "o", "--storage", storage], C)
        assert proc.returncode == 0, proc.stderr[-1500:]
