"""`evaluate:` protocols and `--checkpoints` SPECs without Ray: resolution against a trial's config, and the
one-line refusals (exit 2) for bad names, keys, values and checkpoint specs."""
import pytest
import torch

from bench.cli import main
from bench.sweep.folder import layout, records
from bench.sweep.tasks.eval_tasks import evaluate_protocol, protocols_of
from bench.sweep.spec.protocols import RELEASED_MS_SCALES
from bench.sweep.spec.trials import load_sweep
from bench.sweep.spec.payload import trial_payload
from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec


def _sweep(tmp_path, data_root, evaluate, heads=("ifa",), **experiment_sections):
    experiment = tiny_experiment(data_root, measure=False)
    experiment.update(experiment_sections)
    return write_spec(tmp_path / "s.yaml", experiment, {
        "name": "p", "axes": {"head": [TINY_HEADS[h] for h in heads]}, "evaluate": evaluate})


def _one_line_refusal(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_builtins_resolve_against_each_trial_config(tmp_path, data_root):
    sweep = load_sweep(_sweep(tmp_path, data_root, ["ss", "ms_flip", {"name": "ms_flip2", "eval.scales": [0.5, 1.0],
                                                                       "flip": True}, "slide", "ifa_label"],
                              heads=("ifa", "fpn")))
    by_name = {p.name: p for p in sweep.protocols}
    cfg = sweep.trials[0].config
    ms = by_name["ms_flip"].eval_config(cfg, "t")
    assert ms.scales == RELEASED_MS_SCALES and ms.flip and ms.mode == "whole"  # single-scale config: released list
    assert by_name["ms_flip2"].eval_config(cfg, "t").scales == (0.5, 1.0)
    assert by_name["slide"].eval_config(cfg, "t").mode == "slide"
    assert by_name["ss"].eval_config(cfg, "t").scales == (1.0,) and not by_name["ss"].eval_config(cfg, "t").flip
    assert by_name["ifa_label"].eval_config(cfg, "t").ifa_query == "label"
    multi = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"scales": (0.5, 1.0, 2.0)})})
    assert by_name["ms_flip"].eval_config(multi, "t").scales == (0.5, 1.0, 2.0)  # the config's own scales
    payloads = []
    for t in sweep.trials:
        p = trial_payload(t, tmp_path / "out", "p")
        p["protocols"] = [x.as_dict() for x in sweep.protocols]
        payloads.append(p)
    assert [x.name for x in protocols_of(payloads[0])] == ["ss", "ms_flip", "ms_flip2", "slide", "ifa_label"]
    assert [x.name for x in protocols_of(payloads[1])] == ["ss", "ms_flip", "ms_flip2", "slide"]  # FPN: no query


@pytest.mark.parametrize("evaluate, needles", [
    (["ms_flp"], ["sweep.evaluate[0]", "unknown protocol 'ms_flp'", "did you mean 'ms_flip'"]),
    ([{"name": "ms_flip", "scale": [1.0]}], ["sweep.evaluate[0]", "unknown eval key 'scale'", "did you mean 'scales'"]),
    (["ss", "ss"], ["sweep.evaluate[1]", "listed twice"]),
    ([{"scales": [1.0]}], ["needs a `name`"]),
    ([{"name": "a/b", "flip": True}], ["protocol name 'a/b'"]),
    ([{"name": "odd", "mode": "sliding"}], ["sweep.evaluate 'odd'", "mode"]),
])
def test_bad_evaluate_entries_are_one_line_errors(tmp_path, data_root, capsys, evaluate, needles):
    spec = _sweep(tmp_path, data_root, evaluate)
    _one_line_refusal(capsys, ["sweep", str(spec), "--dry-run"], str(spec), *needles)


def test_bad_checkpoint_specs_are_one_line_errors(tmp_path, data_root, capsys):
    from bench.config import ExperimentConfig
    from bench.models import build_segmentor

    spec = _sweep(tmp_path, data_root, ["ss"], heads=("fpn",))
    out = str(tmp_path / "out")
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(tmp_path / "none*.pt")],
                      "--checkpoints", "matches no file")
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(tmp_path / "missing.pt")],
                      "no such file")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(junk)], str(junk))
    plain = tmp_path / "plain"  # a folder that is not a sweep (not above --out: that is refused first, issue 28)
    plain.mkdir()
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(plain)],
                      "not a sweep folder")
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(tmp_path)],
                      f"--out {out}: is inside the input {tmp_path}")
    ifa = ExperimentConfig.model_validate({**tiny_experiment(data_root), "model": {
        **tiny_experiment(data_root)["model"], "head": TINY_HEADS["ifa"]}})
    ckpt = tmp_path / "ifa.pt"
    torch.save({"model": build_segmentor(ifa.model).state_dict()}, ckpt)
    _one_line_refusal(capsys, ["sweep", str(spec), "--out", out, "--checkpoints", str(ckpt)],
                      str(ckpt), "does not match the model")
    assert not (tmp_path / "out").exists()  # nothing written for a refused SPEC


def test_an_evaluation_with_bad_input_fails_for_good_and_says_why(tmp_path, data_root):
    sweep = load_sweep(_sweep(tmp_path, data_root, ["ss"]))
    payload = trial_payload(sweep.trials[0], tmp_path / "out", "p")
    payload["checkpoint"] = str(tmp_path / "gone.pt")
    res = evaluate_protocol({"payload": payload, "protocol": {"name": "ss", "overrides": {}}})
    assert res["ok"] is False and "gone.pt: no such file" in res["error"]
    rec = records.read_failure(layout.eval_dir(payload["trial_dir"], "ss"))
    assert rec["final"] is True and rec["error"] == res["error"]  # not retried: bad input fails the same way
