"""A request no node can satisfy fails with exit 2 and one line before anything runs; it never waits forever."""
import time

import pytest

from bench.cli import main
from bench.errors import UserError
from bench.sweep.spec.feasibility import check_cluster, check_request
from bench.sweep.spec.trials import Resources
from tests.sweep.conftest import TINY_HEADS, tiny_experiment, write_spec

TWO_CPUS = [{"CPU": 2.0, "memory": 1e9}]


def test_request_checks_on_node_lists():
    check_request(Resources(cpus=1), TWO_CPUS, "s.yaml")
    check_request(Resources(cpus=0.5, workers=2), TWO_CPUS, "s.yaml")
    check_request(Resources(cpus=1, gpus=1, workers=2), [{"CPU": 8, "GPU": 1}, {"CPU": 8, "GPU": 1}], "s.yaml")
    with pytest.raises(UserError) as gpu:
        check_request(Resources(gpus=1), TWO_CPUS, "s.yaml")
    assert str(gpu.value) == ("s.yaml: sweep.resources: one trial needs 1 CPU, 1 GPU on one node, but no node has "
                              "that (the cluster has 1 node(s), 2 CPU, 0 GPU in all; the largest node has 2 CPU, "
                              "0 GPU)")
    with pytest.raises(UserError, match=r"a trial needs 3 workers x \(1 CPU\) at once .* hold only 2 such worker"):
        check_request(Resources(cpus=1, workers=3), TWO_CPUS, "s.yaml")
    with pytest.raises(UserError, match=r"needs 2 workers .* hold 2 such workers but then leave no CPU for the coordinator"):
        check_request(Resources(cpus=1, workers=2), TWO_CPUS, "s.yaml")  # the coordinator would wait forever
    with pytest.raises(UserError, match=r"one worker needs 3 CPU on one node, but no node has that .* 2 node"):
        check_request(Resources(cpus=3, workers=2), [{"CPU": 2}, {"CPU": 2}], "s.yaml")  # 4 CPUs, no 3-CPU node
    with pytest.raises(UserError, match=r"sweep.resources.custom.big_node: no node of the cluster has the custom"):
        check_request(Resources(custom={"big_node": 1}), TWO_CPUS, "s.yaml")
    check_request(Resources(custom={"big_node": 1}), [{"CPU": 2, "big_node": 1}], "s.yaml")


def test_placement_is_pack_or_spread():
    assert Resources().placement == "PACK"
    assert Resources(placement="SPREAD").placement == "SPREAD"
    with pytest.raises(ValueError):
        Resources(placement="STRICT_SPREAD")


def test_ddp_backend_follows_the_device():
    from bench.sweep.tasks.trainable import ddp_backend

    assert ddp_backend(True) == "nccl" and ddp_backend(True, "cuda") == "nccl"
    assert ddp_backend(False) == "gloo" and ddp_backend(True, "cpu") == "gloo"


@pytest.mark.ray
@pytest.mark.timeout(60)
def test_unsatisfiable_requests_on_a_real_two_cpu_ray(ray_down):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
             configure_logging=False)
    check_cluster(Resources(cpus=1), "s.yaml")
    t0 = time.monotonic()
    for res in (Resources(gpus=1), Resources(cpus=1, workers=3), Resources(custom={"nobody": 1})):
        with pytest.raises(UserError, match=r"^s.yaml: sweep.resources.*\(the cluster has 1 node\(s\), 2 CPU, 0 GPU"):
            check_cluster(res, "s.yaml")
    assert time.monotonic() - t0 < 10  # answered from ray.nodes(), nothing waits for a grant


@pytest.mark.ray
@pytest.mark.timeout(90)
def test_sweep_exits_2_before_any_trial(tmp_path, data_root, capsys, ray_down):
    """GPU on this CPU machine: refused before Ray starts. A custom resource nobody has: refused by the embedded
    Ray's own node list, before the measurement phase and any trial."""
    out = tmp_path / "out"
    gpu = write_spec(tmp_path / "gpu.yaml", tiny_experiment(data_root),
                     {"name": "gpu", "axes": {"head": [TINY_HEADS["fpn"]]}, "resources": {"cpus": 1, "gpus": 1}})
    t0 = time.monotonic()
    assert main(["sweep", str(gpu), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ifa-bench sweep: error: {gpu}: sweep.resources: a trial needs 1 GPUs") and "\n" not in err
    assert not out.exists() and time.monotonic() - t0 < 20

    custom = write_spec(tmp_path / "custom.yaml", tiny_experiment(data_root),
                        {"name": "custom", "axes": {"head": [TINY_HEADS["fpn"]]},
                         "resources": {"cpus": 1, "custom": {"gpu_node": 1}}})
    assert main(["sweep", str(custom), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"ifa-bench sweep: error: {custom}: sweep.resources.custom.gpu_node: no node of the "
                          f"cluster has the custom resource 'gpu_node'") and "\n" not in err
    import ray

    assert not ray.is_initialized()
    assert not (out / "measurements").exists() and not (out / "tune").exists()
    assert not any((out / "trials").glob("*/attempts.json"))


def test_progress_line_shows_device_hours(tmp_path, data_root, capsys):
    from bench.sweep.driver.progress import SweepProgress
    from bench.sweep.spec.trials import load_sweep
    from bench.sweep.spec.payload import trial_payload

    spec = write_spec(tmp_path / "p.yaml", tiny_experiment(data_root),
                      {"name": "p", "axes": {"seed": [0, 1, 2]}, "resources": {"cpus": 2}})
    sweep = load_sweep(spec)
    payloads = [trial_payload(t, tmp_path / "out", "p") for t in sweep.trials]
    a, b, c = (p["config_hash"] for p in payloads)
    prog = SweepProgress(str(tmp_path / "out"), "p", payloads, 1, estimates={c: 3600.0})
    prog._emit("")
    assert capsys.readouterr().out.rstrip().endswith("|  CPU-h 0.000 spent / - projected")  # nothing to go on yet
    now = time.time()
    prog.running, prog.started = {b}, {a: now - 1800, b: now - 900}
    prog.finished_s, prog.durations = {a: 1800.0}, [1800.0]
    # spent: a 2 CPUs x 0.5 h + b 2 x 0.25 h = 1.5; projected: + b 2 x 0.25 h left (a's wall) + c 2 x 1 h (estimate)
    prog._emit("tick", rewrite=False)
    line = capsys.readouterr().out.strip()
    assert line.startswith("[p] ") and "running 1" in line
    assert line.endswith("|  CPU-h 1.500 spent / 4.000 projected  <- tick")


def test_progress_counts_a_trial_done_before_tune_reports_it_once(tmp_path, data_root, capsys):
    from bench.sweep.folder import layout
    from bench.files.atomic import write_json
    from bench.sweep.driver.progress import SweepProgress
    from bench.sweep.spec.trials import load_sweep
    from bench.sweep.spec.payload import trial_payload

    spec = write_spec(tmp_path / "p.yaml", tiny_experiment(data_root),
                      {"name": "p", "axes": {"seed": [0, 1]}, "resources": {"cpus": 2}})
    payloads = [trial_payload(t, tmp_path / "out", "p") for t in load_sweep(spec).trials]
    a, b = (p["config_hash"] for p in payloads)
    prog = SweepProgress(str(tmp_path / "out"), "p", payloads, 2)
    capsys.readouterr()
    # a has written its result, Tune has not yet called on_trial_complete; b is running
    write_json(layout.trial_dir(tmp_path / "out", a) / layout.RESULT,
                              {"row": {"status": "completed", "trial_id": "a", "miou": 1.0}})
    prog.running = {a, b}
    prog._emit("tick", rewrite=False)
    line = capsys.readouterr().out
    assert "done 1/2  running 1  pending 0  failed 0" in line


def test_progress_says_whether_a_retry_resumes_or_starts_over(tmp_path, data_root, capsys):
    """Tune's Trial exposes the latest registered checkpoint result (ray.tune.experiment.Trial); stand-ins with that
    attribute are enough for the printer."""
    from types import SimpleNamespace

    from ray.train import Checkpoint

    from bench.sweep.driver.progress import SweepProgress
    from bench.sweep.spec.trials import load_sweep
    from bench.sweep.spec.payload import trial_payload

    spec = write_spec(tmp_path / "p.yaml", tiny_experiment(data_root),
                      {"name": "p", "axes": {"seed": [0]}, "resources": {"cpus": 2}})
    payloads = [trial_payload(t, tmp_path / "out", "p") for t in load_sweep(spec).trials]
    prog = SweepProgress(str(tmp_path / "out"), "p", payloads, 1)
    config = {"trial": {"config_hash": payloads[0]["config_hash"]}}
    capsys.readouterr()
    prog.on_trial_recover(0, [], SimpleNamespace(config=config, latest_checkpoint_result=None))
    assert "else from the start (none had reached the driver)" in capsys.readouterr().out
    ckpt = SimpleNamespace(checkpoint=Checkpoint(str(tmp_path)), metrics={"iter": 40})
    prog.on_trial_recover(0, [], SimpleNamespace(config=config, latest_checkpoint_result=ckpt))
    assert "from its checkpoint at iteration 40" in capsys.readouterr().out
