"""The shipped cluster deployment files (deploy/) and docs/cluster.md: valid YAML and shell, and every
`ifa-bench ...` command line in them parses with the CLI's own parser."""
from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.config.loading import read_yaml

ROOT = Path(__file__).resolve().parents[2]
RAYJOB = ROOT / "deploy" / "kuberay-rayjob.yaml"
SBATCH = ROOT / "deploy" / "slurm-sweep.sbatch"
CLUSTER_DOC = ROOT / "docs" / "cluster.md"

_COMMAND = re.compile(r"(?<![\w/.-])ifa-bench\s+(.*)")
_SHELL_STOP = {"||", "&&", "|", ";", "&", "#"}


def _command_lines(text: str) -> list[str]:
    """`ifa-bench` command lines in shell-like text (comment lines skipped), cut at the first shell operator."""
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _COMMAND.search(line)
        if m:
            found.append("ifa-bench " + m.group(1))
    return found


def _code_blocks(markdown: str) -> str:
    return "\n".join(re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M))


def _argv(command_line: str) -> list[str]:
    words = []
    for word in shlex.split(command_line, comments=True)[1:]:
        if word in _SHELL_STOP:
            break
        words.append(word)
    # shell variables stand for a value of the option or argument they are in
    return [re.sub(r"\$\{?\w+\}?", "VALUE", w) for w in words]


def _parse(argv: list[str]):
    """Parse like bench.cli.main does: the command's module adds its own arguments to its sub-parser."""
    parser = build_parser()
    known, _ = parser.parse_known_args(argv[:1])
    sub_parser = parser._subparsers._group_actions[0].choices[known.command]
    importlib.import_module(known._module).add_arguments(sub_parser)
    return parser.parse_args(argv)


def _assert_parses(command_line: str) -> None:
    try:
        _parse(_argv(command_line))
    except SystemExit as exc:
        pytest.fail(f"{command_line!r} does not parse with the CLI's parser (exit {exc.code})")


def test_rayjob_manifest_is_a_rayjob():
    doc = read_yaml(RAYJOB)
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == "RayJob"
    assert doc["metadata"]["name"]
    spec = doc["spec"]
    assert spec["entrypoint"].startswith("ifa-bench sweep ")
    assert spec["shutdownAfterJobFinishes"] is True
    cluster = spec["rayClusterSpec"]
    head_containers = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert head_containers and head_containers[0]["image"]
    assert cluster["workerGroupSpecs"], "a RayJob needs at least one worker group"
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["replicas"] >= 1
        assert group["template"]["spec"]["containers"][0]["image"]
    # --out is on a volume every pod mounts at the same path (cloud --storage is not implemented yet)
    out = _argv(spec["entrypoint"])[_argv(spec["entrypoint"]).index("--out") + 1]
    pods = [cluster["headGroupSpec"]] + cluster["workerGroupSpecs"]
    for pod in pods:
        mounts = pod["template"]["spec"]["containers"][0]["volumeMounts"]
        assert any(out.startswith(m["mountPath"].rstrip("/") + "/") for m in mounts)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_sbatch_script_passes_bash_syntax_check():
    result = subprocess.run(["bash", "-n", str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "#SBATCH --nodes" in SBATCH.read_text()


def test_bash_syntax_check_catches_an_error(tmp_path):
    broken = tmp_path / "broken.sbatch"
    broken.write_text(SBATCH.read_text().replace("done\n", "", 1))
    assert subprocess.run(["bash", "-n", str(broken)], capture_output=True).returncode != 0


@pytest.mark.parametrize(
    "source,text,minimum",
    [
        ("deploy/kuberay-rayjob.yaml", lambda: read_yaml(RAYJOB)["spec"]["entrypoint"], 1),
        ("deploy/slurm-sweep.sbatch", lambda: SBATCH.read_text(), 1),
        ("docs/cluster.md", lambda: _code_blocks(CLUSTER_DOC.read_text()), 2),
    ],
)
def test_every_ifa_bench_command_line_parses(source, text, minimum):
    lines = _command_lines(text())
    assert len(lines) >= minimum, f"{source}: expected at least {minimum} ifa-bench command lines, found {lines}"
    for line in lines:
        _assert_parses(line)


def test_inline_doc_commands_name_existing_subcommands():
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for sub in re.findall(r"`ifa-bench (\w+)", CLUSTER_DOC.read_text()):
        assert sub in commands, f"docs/cluster.md names `ifa-bench {sub}`, which is not a command"


@pytest.mark.parametrize(
    "line",
    [
        "ifa-bench sweep experiments/synthetic.yaml --storage-url s3://bucket/prefix",  # it is --storage
        "ifa-bench sweep experiments/synthetic.yaml --adress auto",
        "ifa-bench sweeps experiments/synthetic.yaml",
    ],
)
def test_a_command_line_with_an_unknown_option_fails(line):
    with pytest.raises(SystemExit) as exc:
        _parse(_argv(line))
    assert exc.value.code == 2


def test_ray_job_submit_line_runs_a_sweep_after_the_double_dash():
    submit = [l for l in _code_blocks(CLUSTER_DOC.read_text()).splitlines() if l.startswith("ray job submit ")]
    assert submit and all(" --working-dir . -- ifa-bench sweep " in l for l in submit)
    assert all(_command_lines(l) for l in submit)
