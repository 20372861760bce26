"""Kill tests for bench/sweep/tasks/eval_tasks.py (issue 32's mutation pass), without Ray: which protocols apply,
which checkpoint, when a trial's evaluations may start and which are left, and every record evaluate_protocol
writes (attempts, the done record's fields, failure.json for bad input and for an unexpected error)."""
import json

import pytest
import torch

from bench.files.atomic import write_json
from bench.sweep.folder import layout, records
from bench.sweep.spec.payload import trial_payload
from bench.sweep.spec.trials import load_sweep
from bench.sweep.tasks import eval_tasks
from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("kill-eval-tasks") / "synthetic"


@pytest.fixture
def threads_kept():
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def _payloads(tmp_path, data_root, heads=("ifa",), protocols=("ss", "ifa_label")):
    spec = write_spec(tmp_path / "s.yaml", tiny_experiment(data_root, measure=False),
                      {"name": "p", "axes": {"head": [TINY_HEADS[h] for h in heads]}, "evaluate": list(protocols)})
    sweep = load_sweep(spec)
    out = []
    for t in sweep.trials:
        p = trial_payload(t, tmp_path / "out", "p")
        p["protocols"] = [x.as_dict() for x in sweep.protocols]
        out.append(p)
    return out, sweep


def _checkpoint(tmp_path, payload):
    from bench.config import ExperimentConfig
    from bench.models import build_segmentor

    torch.manual_seed(0)
    model = build_segmentor(ExperimentConfig.model_validate(payload["cfg"]).model).eval()
    ckpt = tmp_path / "model.pt"
    torch.save({"model": model.state_dict(), "iter": 7}, ckpt)
    return ckpt


def _done(trial_dir, name):
    folder = layout.eval_dir(trial_dir, name)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / layout.RESULT, {"protocol": name, "metrics": {}})


def test_protocols_of_a_payload_without_protocols_is_empty(tmp_path, data_root):
    (payload,), _ = _payloads(tmp_path, data_root)
    for missing in (None, []):
        p = {**payload, "protocols": missing}
        assert eval_tasks.protocols_of(p) == []
    assert eval_tasks.protocols_of({k: v for k, v in payload.items() if k != "protocols"}) == []
    assert [x.name for x in eval_tasks.protocols_of(payload)] == ["ss", "ifa_label"]


def test_checkpoint_ready_counts_and_jobs(tmp_path, data_root):
    (ifa, fpn), _ = _payloads(tmp_path, data_root, heads=("ifa", "fpn"))
    trial = layout.Path(ifa["trial_dir"])
    assert eval_tasks.checkpoint_of(ifa) == layout.checkpoint_dir(trial) / layout.LAST_CHECKPOINT
    assert eval_tasks.checkpoint_of({**ifa, "checkpoint": "/x/model.pt"}) == layout.Path("/x/model.pt")
    assert eval_tasks.checkpoint_of({**ifa, "checkpoint": ""}) == layout.checkpoint_dir(trial) / layout.LAST_CHECKPOINT

    assert eval_tasks.trial_ready(ifa) is False and eval_tasks.jobs_of(ifa) == []
    assert eval_tasks.trial_ready({**ifa, "checkpoint": "/x/model.pt"}) is True
    trial.mkdir(parents=True)
    write_json(trial / layout.RESULT, {"row": {"status": "completed"}})
    assert eval_tasks.trial_ready(ifa) is True

    # IFA: ss and ifa_label; FPN: ss only. Nothing done yet.
    assert eval_tasks.eval_counts([ifa, fpn]) == (0, 3)
    assert [(j["payload"]["config_hash"], j["protocol"]) for j in eval_tasks.jobs_of(ifa)] == [
        (ifa["config_hash"], {"name": "ss", "overrides": {}}),
        (ifa["config_hash"], {"name": "ifa_label", "overrides": {}})]
    assert all(j["payload"] is ifa for j in eval_tasks.jobs_of(ifa))
    _done(trial, "ss")
    assert eval_tasks.eval_counts([ifa, fpn]) == (1, 3)
    assert [j["protocol"]["name"] for j in eval_tasks.jobs_of(ifa)] == ["ifa_label"]
    _done(trial, "ifa_label")
    assert eval_tasks.eval_counts([ifa, fpn]) == (2, 3) and eval_tasks.jobs_of(ifa) == []
    assert eval_tasks.eval_counts([]) == (0, 0)


@pytest.mark.parametrize("cpus, threads, expected", [(3, None, 3), (2.6, None, 3), (4, 2, 2), (0.4, None, 1)])
def test_threads_follow_the_trials_resources(tmp_path, data_root, cpus, threads, expected):
    (payload,), _ = _payloads(tmp_path, data_root)
    payload["resources"]["cpus"] = cpus
    payload["cfg"]["train"]["threads"] = threads
    assert eval_tasks._threads(payload) == expected


def test_the_done_record_and_the_attempts(tmp_path, data_root, monkeypatch, threads_kept):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    ckpt = _checkpoint(tmp_path, payload)
    payload["checkpoint"] = str(ckpt)
    # the task's threads come from the trial's resources: 1 (not more: mutmut's forked workers would spin in
    # OpenMP; a plain run starts with one per core, so the change is seen there)
    payload["resources"]["cpus"] = 1
    payload["cfg"]["train"]["threads"] = None
    folder = layout.eval_dir(payload["trial_dir"], "ss")
    folder.mkdir(parents=True)
    records.write_failure(folder, "an earlier attempt's error", final=False)
    job = {"payload": payload, "protocol": {"name": "ss", "overrides": {"flip": False}}}
    res = eval_tasks.evaluate_protocol(job)
    rec = json.loads((folder / layout.RESULT).read_text())
    assert res == {"ok": True, "metrics": {k: rec["metrics"][k] for k in ("miou", "miou_ci_low", "miou_ci_high")}}
    assert all(isinstance(res["metrics"][k], float) for k in res["metrics"])
    assert not (folder / layout.FAILURE).exists()  # the earlier failure is cleared by a success
    assert (folder / layout.PER_IMAGE).is_file()
    assert rec["protocol"] == "ss" and rec["overrides"] == {"flip": False}
    assert rec["checkpoint"] == str(ckpt) and rec["checkpoint_iter"] == 7
    assert rec["config_hash"] == payload["config_hash"] and rec["device"] == "cpu"
    assert rec["threads"] == 1 and rec["torch_version"] == torch.__version__ and rec["attempts"] == 1
    assert rec["started_at"] <= rec["finished_at"] and rec["started_at"].endswith("+00:00")
    assert len(rec["started_at"]) == len("2026-01-01T00:00:00+00:00")
    started = json.loads((folder / layout.ATTEMPTS).read_text())
    assert started["count"] == 1 and set(started) == {"count", "last_started_at"}
    eval_tasks.evaluate_protocol(job)
    assert json.loads((folder / layout.RESULT).read_text())["attempts"] == 2
    assert json.loads((folder / layout.ATTEMPTS).read_text())["count"] == 2


def test_a_relative_data_root_means_the_drivers_folder(tmp_path, data_root, monkeypatch, threads_kept):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    payload["checkpoint"] = str(_checkpoint(tmp_path, payload))
    payload["cfg"]["data"]["root"] = data_root.name  # relative to the driver's cwd
    payload["cfg"]["data"]["generate"] = False
    payload["cwd"] = str(data_root.parent)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    from bench.config import ExperimentConfig
    from bench.data import build_dataset

    cfg = ExperimentConfig.model_validate({**payload["cfg"], "data": {**payload["cfg"]["data"],
                                                                      "root": str(data_root), "generate": True}})
    build_dataset(cfg.data, cfg.data.val_split)  # the synthetic data exists under the driver's folder
    res = eval_tasks.evaluate_protocol({"payload": payload, "protocol": {"name": "ss", "overrides": {}}})
    assert res["ok"], res
    assert layout.Path.cwd() == data_root.parent


def test_bad_input_names_the_protocol_and_trial_and_is_final(tmp_path, data_root):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    payload["checkpoint"] = str(tmp_path / "gone.pt")
    res = eval_tasks.evaluate_protocol({"payload": payload, "protocol": {"name": "odd", "overrides": {"mode": "x"}}})
    assert res["ok"] is False
    assert res["error"].startswith(f"sweep.evaluate 'odd' (trial {payload['trial_id']})"), res["error"]
    rec = records.read_failure(layout.eval_dir(payload["trial_dir"], "odd"))
    assert rec["final"] is True and rec["attempt"] == 1 and rec["error"] == res["error"] and rec["at"]
    assert "traceback" not in rec

    if not torch.cuda.is_available():  # the device's refusal names the config key
        payload["cfg"]["train"]["device"] = "cuda"
        res = eval_tasks.evaluate_protocol({"payload": payload, "protocol": {"name": "ss", "overrides": {}}})
        assert res["error"].startswith("train.device: "), res["error"]

    payload["cfg"]["train"]["device"] = "cpu"
    deep = tmp_path / ("d" * 200) / ("e" * 200) / ("f" * 200) / "gone.pt"  # a message longer than 500 characters is cut at 500
    payload["checkpoint"] = str(deep)
    res = eval_tasks.evaluate_protocol({"payload": payload, "protocol": {"name": "ss", "overrides": {}}})
    assert len(res["error"]) == 500 and res["error"].startswith(str(deep)[:100]), res["error"]


def test_the_checkpoint_names_the_trial_by_its_label(tmp_path, data_root):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    junk = tmp_path / "junk.pt"
    torch.save({"model": {"nothing": torch.zeros(1)}}, junk)
    payload["checkpoint"] = str(junk)
    job = {"payload": payload, "protocol": {"name": "ss", "overrides": {}}}
    plain = eval_tasks.evaluate_protocol(job)["error"]
    assert f"trial {payload['trial_id']}" in plain, plain
    payload["config_label"] = "the-label"
    labelled = eval_tasks.evaluate_protocol(job)["error"]
    assert "the-label" in labelled and f"trial {payload['trial_id']}" not in labelled, labelled


def test_an_unexpected_error_is_recorded_for_a_retry_and_raised(tmp_path, data_root):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    payload["cfg"]["seed"] = "not a number"  # the config fails to validate: not a UserError
    with pytest.raises(Exception) as info:
        eval_tasks.evaluate_protocol({"payload": payload, "protocol": {"name": "ss", "overrides": {}}})
    assert not isinstance(info.value, eval_tasks.UserError)
    rec = records.read_failure(layout.eval_dir(payload["trial_dir"], "ss"))
    assert rec["final"] is False and rec["attempt"] == 1 and rec["at"]
    assert rec["error"].startswith(type(info.value).__name__ + ": ")
    assert "Traceback" in rec["traceback"]


def test_the_format_and_cwd_of_a_task(tmp_path, data_root, threads_kept):
    (payload,), _ = _payloads(tmp_path, data_root, heads=("fpn",), protocols=("ss",))
    payload["checkpoint"] = str(_checkpoint(tmp_path, payload))
    job = {"payload": payload, "protocol": {"name": "ss", "overrides": {}}}
    for cwd in ("", str(tmp_path / "no-such-folder")):  # no folder to change into: the task stays where it is
        payload["cwd"] = cwd
        assert eval_tasks.evaluate_protocol(job)["ok"], cwd
    payload["checkpoint_format"] = "release"  # the payload's format is the one used: not the project's own
    res = eval_tasks.evaluate_protocol(job)
    assert res["ok"] is False and "hzhupku/IFA checkpoint" in res["error"], res
