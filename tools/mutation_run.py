"""`make mutation`: mutmut 3 on each critical module in turn, with only that module's tests and a time budget.

Each module runs on its own: a fresh mutants/ folder, mutmut configured (from [tool.mutmut] in pyproject.toml) to
mutate only that file and to select only that module's test files, and only the mutants of the functions that hold
the checked behaviour (`functions`; None = every function of the file). A run that passes its time budget is
interrupted (mutmut saves what it checked; the rest count as "not run"). Per module, mutation-results/<name>/ gets
mutmut's .meta file (status per mutant), run.json (scope, tests, times, whether it finished) and survivors.txt
(the diff of each undetected mutant). tools/mutation_summary.py reads them.

Usage: .venv/bin/python tools/mutation_run.py [--module NAME ...] [--budget SECONDS] [--jobs N]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tools import mutation_cosmic
from tools.mutation_cosmic import CosmicModule

RESULTS = Path("mutation-results")
AUDIT = ["tests/audit/test_planted_bugs.py", "tests/audit/mutation_kills/test_mutation_kills.py"]
PLANTED = "tests/audit/planted"  # issue 32: one test per planted bug of the second audit
NOT_RAY = ("-m", "not ray")
KERNEL_TESTS = "tests/ifa/kernels"
KERNEL_KILLS = f"{KERNEL_TESTS}/test_mutation_kills.py"
# cosmic-ray operators run on the kernels: the near replacements (off-by-one comparisons at tile borders, + for -,
# * for /, // for /, & for | in masks), conditions negated, signs dropped, loops run zero times, decorators removed,
# booleans flipped. Left out for time (a mutant costs 10-30 s of interpreter): the far replacements (+ to <<, < to
# is, ...: a crash or a gross error on the first test) and NumberReplacer (390 mutants, mostly tile sizes and axis
# numbers that triton refuses or that the sm_90 builds, not the interpreter, judge).
KERNEL_OPERATORS = (
    ("core/ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|FloorDiv_Div|Div_FloorDiv|BitAnd_BitOr|"
     "BitOr_BitAnd|Pow_Mul)"),
    "core/ReplaceComparisonOperator_(Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is)",
    "core/AddNot", "core/ReplaceUnaryOperator_(USub_UAdd|Delete_USub|Delete_Not)", "core/ZeroIterationForLoop",
    "core/RemoveDecorator", "core/Replace(True|False)With(True|False)", "core/Replace(And|Or)With(And|Or)",
    "core/ExceptionReplacer", "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak",
)


@dataclass(frozen=True)
class Module:
    path: str
    tests: tuple[str, ...]
    functions: Optional[tuple[str, ...]] = None  # mutmut keys: x_name, or xǁClassǁmethod; None = the whole file
    # mutmut's process_isolation for this module, when not [tool.mutmut]'s "fork": "forkserver" where the tests
    # start processes of their own (mutmut 3.8's fork runner reaps any child of its main process as a worker)
    isolation: Optional[str] = None

    @property
    def dotted(self) -> str:
        return self.path[: -len(".py")].replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut name globs of the in-scope mutants (also matching the function's own key, for test lookup)."""
        return [f"{self.dotted}.{f}*" for f in self.functions] if self.functions else [f"{self.dotted}.*"]

    def in_scope(self, mutant: str) -> bool:
        if not self.functions:
            return True
        return any(mutant.startswith(f"{self.dotted}.{f}__mutmut_") for f in self.functions)


# The list (issue 16, then issue 32). Where a file holds more than the listed behaviour, `functions` names the part checked.
MODULES = {
    "metrics": Module("bench/engine/evaluation/metrics.py", ("tests/engine/evaluation/test_metrics.py", *AUDIT)),
    "boundary": Module("bench/engine/evaluation/boundary.py", ("tests/engine/evaluation/test_metrics.py", *AUDIT)),
    "losses": Module("bench/engine/losses.py", ("tests/engine/test_losses.py", *AUDIT)),
    # the regression check: matching and the verdict; format_report / _text_table only lay the result out as text
    # (without test_real_command_exit_codes: 60 s of subprocesses per mutant; in-process tests assert the same codes)
    "check": Module("reports/regression/check.py", ("tests/reports/regression/test_check.py", "tests/reports/regression/test_check_ci.py",
                                         "tests/reports/regression/test_check_input.py", *AUDIT, "--deselect",
                                         "tests/reports/regression/test_check.py::test_real_command_exit_codes"),
                    ("x__fmt", "x__same", "x_run_check", "x__candidates")),
    "pareto": Module("reports/pareto.py", ("tests/reports/figures/test_pareto.py", *AUDIT)),
    # the config hash (the only function of the file; the config classes are data)
    "config_hash": Module("bench/config/experiment.py", ("tests/sweep/spec/test_spec.py", *AUDIT),
                          ("xǁExperimentConfigǁconfig_hash",)),
    # the MAC handles (fvcore op handles); count_macs and MacCount around them are not the listed part
    "macs": Module("bench/measure/macs.py", ("tests/measure/test_macs.py", *AUDIT),
                   ("x__shape", "x__const", "x__zero", "x__embedding_bag", "x__grid_sampler", "x__per_output",
                    "x__contraction", "x__linear", "x__sdpa", "x__einsum")),
    # label tables: classes.py is data only (mutmut makes no mutants of it), its tests are the planted-bug ones
    "labels": Module("bench/data/labels.py", ("tests/data/test_loading.py", "tests/data/test_label_agreement.py",
                                              *AUDIT)),
    # the slow every-side-length sweep (2085 sizes) would run for each of ~100 release-sampling mutants
    "coords": Module("ifa/coords.py", ("tests/ifa/test_coords.py", "tests/ifa/test_release_sampling.py", *AUDIT,
                                       "--deselect", "tests/ifa/test_release_sampling.py::"
                                       "test_release_sampling_every_side_length_16_to_2100")),
    "positional": Module("ifa/positional.py", ("tests/ifa/test_positional.py", *AUDIT)),
    "atomic": Module("bench/files/atomic.py", ("tests/audit/test_atomic_writes.py", *AUDIT)),
    # --- issue 32: the modules added since issue 16 (the second pass). Ray-marked tests are left out ("-m not
    # ray": each would start a Ray runtime per mutant); tests/audit/planted/ holds the tests of the audit's rows.
    # the measurement phase: its key and its reservation (run_phase, reserved_node, measure_in and pick_node need
    # a Ray cluster and _run_measurements a whole measurement: covered by the Ray tests, not by mutmut; describe is
    # the console line)
    "measurement": Module("bench/sweep/tasks/measurement.py",
                          (f"{PLANTED}/test_measurement_key_and_bundle.py", "tests/sweep/tasks/test_measurement_phase.py",
                           "tests/sweep/driver/test_driver_imports.py", "tests/measure/test_measurement_plan.py",
                           *AUDIT, *NOT_RAY),
                          ("x_device_kind", "x_measure_threads", "x_measure_key", "x_node_bundle")),
    # in process, nothing measured: test_measure_command.py and the measuring test of test_measurement_plan.py run
    # real measurements (about a minute per mutant on the shared machine); the kill tests plan every head instead
    "plan": Module("bench/measure/plan.py", ("tests/measure/test_measurement_plan.py", *AUDIT, "--deselect",
                                             "tests/measure/test_measurement_plan.py::"
                                             "test_measure_config_measures_what_the_sweep_measures")),
    # the latency pool: its statistics and scheduling, in process (tests/measure/test_pool_scheduling.py runs the pool
    # with an in-process stand-in for the fresh processes and a clock it advances: exact times, milliseconds a run);
    # the hand-built jobs of test_fresh_processes.py; the kill file's one real pool (FreshProcess and time.monotonic,
    # the defaults of `process` and `clock`: two fresh processes). The real pools of test_fresh_processes.py (about
    # 75 s a run on the shared machine) check the same rule with real processes in `make test`.
    "pooling": Module("bench/measure/processes/fresh_processes.py",
                      ("tests/measure/test_pool_scheduling.py",
                       *(f"tests/measure/test_fresh_processes.py::{t}" for t in (
                           "test_relative_se_is_the_standard_error_of_the_mean_over_the_mean",
                           "test_the_standard_error_is_over_blocks_of_time_when_the_pool_spans_two_or_more",
                           "test_a_pool_is_done_only_after_its_processes_and_its_span")), *AUDIT),
                      # TurnTimer runs only inside the fresh processes, where mutmut records no test for it; every
                      # real pool of its kill file runs it
                      ("x_relative_se", "xǁLatencyJobǁslots", "xǁLatencyJobǁslot_medians", "xǁLatencyJobǁspan",
                       "xǁLatencyJobǁblock_medians", "xǁLatencyJobǁrel_se", "xǁLatencyJobǁlimit", "xǁLatencyJobǁdone",
                       "x_pooled_latencies", "x__slot", "x__stats", "x_pooled_latency")),
    # storage: parsing, redaction, pull/push/download on a local path (the S3 and GCS server tests run sweeps in Ray)
    "storage": Module("bench/sweep/folder/storage.py",
                      (f"{PLANTED}/test_storage_credentials_and_download.py", "tests/sweep/folder/test_storage.py",
                       "tests/sweep/folder/test_scratch.py", *AUDIT, *NOT_RAY)),
    "protocols": Module("bench/sweep/spec/protocols.py", (f"{PLANTED}/test_protocols_applied.py",
                                                         "tests/sweep/spec/test_protocols.py", *AUDIT)),
    # the protocol task and what it reads; EvalQueue schedules Ray tasks (Ray tests only)
    "eval_tasks": Module("bench/sweep/tasks/eval_tasks.py", (f"{PLANTED}/test_protocols_applied.py",
                                                            "tests/sweep/spec/test_protocols.py", *AUDIT),
                         ("x_protocols_of", "x_checkpoint_of", "x_trial_ready", "x_eval_counts", "x_jobs_of",
                          "x__threads", "x_evaluate_protocol")),
    "intervals": Module("reports/regression/intervals.py", (f"{PLANTED}/test_check_interval_rule.py",
                                                           "tests/reports/regression/test_check_ci.py", *AUDIT)),
    # the command around run_check: validation, the --paired path, --out, the exit code
    "check_command": Module("bench/commands/check.py",
                            (f"{PLANTED}/test_check_interval_rule.py", "tests/reports/regression/test_check.py",
                             "tests/reports/regression/test_check_ci.py", "tests/reports/regression/test_check_input.py",
                             *AUDIT, "--deselect",
                             "tests/reports/regression/test_check.py::test_real_command_exit_codes"),
                            ("x_run", "x__run")),  # add_arguments is declarations and help text (tests/cli/test_help.py)
    # the key mappings: their kill files check every key at tiny widths with distinct values (a few seconds a run);
    # the full-size fixtures of tests/convert/ and tests/audit/planted/test_key_mappings.py (40-60 s a run on the
    # shared machine) check the same mappings in `make test` and are left out here
    "mmseg": Module("bench/convert/mmseg.py", (*AUDIT,)),
    "release": Module("bench/convert/release.py", (*AUDIT,)),
    # the ImageNet checkpoint converters (torchvision, timm, mmcv resnet50_v1c and PSPNet deep-base layouts): its kill
    # file at width 1/8; tests/models/test_pretrained*.py build full-size ResNets (minutes a run on the shared
    # machine) and check the real layouts key by key in `make test`
    "pretrained": Module("bench/models/pretrained.py", (*AUDIT,)),
    "budget": Module("bench/host/budget.py", (f"{PLANTED}/test_budget_terms.py", "tests/engine/test_budget_and_finite.py",
                                             *AUDIT)),
    "label_agreement": Module("bench/data/label_agreement.py", (f"{PLANTED}/test_label_agreement_void.py",
                                                               "tests/data/test_label_agreement.py", *AUDIT)),
    "cost": Module("bench/sweep/cost/estimate.py", (f"{PLANTED}/test_cost_evaluations.py",
                                                   "tests/sweep/cost/test_cost_estimate.py", *AUDIT)),
    # its tests start a lock holder process: mutmut 3.8.1's fork runner stopped with KeyError on a reaped pid
    "locking": Module("bench/files/locking.py", ("tests/cli/test_locking_modes.py", *AUDIT), isolation="forkserver"),
    # the Triton kernels: cosmic-ray (tools/mutation_cosmic.py), since mutmut cannot reach @triton.jit bodies. The
    # interpreter tests only (float64 against torch); the head tests repeat them through the whole head (a minute
    # per mutant) and the sm_90 builds check registers and spills, which the operators below do not change.
    "kernels": CosmicModule(
        # the two small files first: with a budget, the large ones are the ones cut short
        files=(("ifa/kernels/__init__.py", (f"{KERNEL_TESTS}/test_available.py", KERNEL_KILLS)),
               # no operator applies to _launch.py (a NamedTuple and its one call); it runs in every test below
               ("ifa/kernels/_launch.py", (f"{KERNEL_TESTS}/test_gather_sum.py",)),
               ("ifa/kernels/gather_sum.py", (f"{KERNEL_TESTS}/test_gather_sum.py", KERNEL_KILLS)),
               ("ifa/kernels/tail_mlp.py", (f"{KERNEL_TESTS}/test_tail_mlp.py", KERNEL_KILLS))),
        operators=KERNEL_OPERATORS, path="ifa/kernels/"),
}


# mutmut's statuses that count as the tests having noticed the mutant
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}


def load_meta(meta: Path) -> dict[str, str]:
    """{mutant name: status} of one mutmut .meta file."""
    from mutmut.stats import status_by_exit_code

    codes = json.loads(meta.read_text())["exit_code_by_key"]
    return {k: status_by_exit_code[v] for k, v in codes.items()}


def _extra_tests(name: str) -> list[str]:
    """tests/audit/mutation_kills/test_mutation_kills_<name>.py, where one exists."""
    extra = Path(f"tests/audit/mutation_kills/test_mutation_kills_{name}.py")
    return [str(extra)] if extra.exists() else []


def run_one(name: str, jobs: int) -> None:
    """In a child process: mutmut on one module (configuration patched in memory, pyproject.toml untouched)."""
    from mutmut import configuration
    from mutmut.__main__ import cli

    module = MODULES[name]
    cfg = configuration.config()
    cfg.only_mutate = [module.path]
    cfg.pytest_add_cli_args_test_selection = [*module.tests, *_extra_tests(name)]
    if module.isolation:
        cfg.process_isolation = configuration.ProcessIsolation(module.isolation)
    cli(["run", "--max-children", str(jobs), *module.patterns()], standalone_mode=False)


def write_diffs(name: str) -> None:
    """In a child process, after the run: the diff of every in-scope mutant that was not detected."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    module = MODULES[name]
    statuses = load_meta(RESULTS / name / (Path(module.path).name + ".meta"))
    out = []
    for mutant, status in sorted(statuses.items()):
        if module.in_scope(mutant) and status not in DETECTED:
            try:
                diff = get_diff_for_mutant(mutant, path=Path(module.path))
            except Exception as exc:  # the diff is a convenience; the status is what counts
                diff = f"(no diff: {exc})"
            out.append(f"## {status}: {mutant}\n{diff}\n")
    (RESULTS / name / "survivors.txt").write_text("\n".join(out))


def run_module(name: str, budget: float, jobs: int) -> dict:
    module = MODULES[name]
    shutil.rmtree("mutants", ignore_errors=True)
    folder = RESULTS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [sys.executable, "-m", "tools.mutation_run", "--one", name, "--jobs", str(jobs)]
    start = time.monotonic()
    with open(folder / "mutmut.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        finished = True
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            finished = False
            os.killpg(proc.pid, signal.SIGINT)  # mutmut stops its workers and keeps the results so far
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    elapsed = time.monotonic() - start
    meta = Path("mutants") / (module.path + ".meta")
    if meta.exists():
        shutil.copy(meta, folder / meta.name)
    info = {"module": name, "path": module.path, "functions": module.functions,
            "tests": [*module.tests, *_extra_tests(name)], "jobs": jobs, "budget_s": budget,
            "elapsed_s": round(elapsed, 1), "finished": finished, "exit_code": proc.returncode,
            "load_average": os.getloadavg(), "ended": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (folder / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    if meta.exists():
        subprocess.run([sys.executable, "-m", "tools.mutation_run", "--diffs", name], env=env, check=False)
    print(f"{name}: {elapsed:.0f} s{'' if finished else ' (budget reached, interrupted)'}, "
          f"exit {proc.returncode}", flush=True)
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", action="append", choices=sorted(MODULES), help="default: every module, in turn")
    ap.add_argument("--budget", type=float, default=1200, help="seconds per module before it is interrupted")
    ap.add_argument("--jobs", type=int, default=2, help="mutmut workers")
    ap.add_argument("--one", choices=sorted(MODULES), help=argparse.SUPPRESS)
    ap.add_argument("--diffs", choices=sorted(MODULES), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        run_one(args.one, args.jobs)
        return 0
    if args.diffs:
        write_diffs(args.diffs)
        return 0
    for name in args.module or list(MODULES):
        if isinstance(MODULES[name], CosmicModule):
            mutation_cosmic.run_module(name, MODULES[name], RESULTS, args.budget, args.jobs)
        else:
            run_module(name, args.budget, args.jobs)
    shutil.rmtree("mutants", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
