"""Checkpoint files into a model: the weights-only read, foreign layouts through the converter registry, and a strict
load that names the first missing, unexpected or mis-shaped key. Shared by `ifa-bench eval/convert/predict/train/
measure` and the sweep's evaluation tasks (bench/sweep/tasks/eval_tasks.py), so there is one copy of the rules."""
from __future__ import annotations

from pathlib import Path

from bench.errors import UserError
from bench.files.unreadable import unreadable_reason


def _torch_load(path: Path):
    """torch.load, weights only; torch's warning about a raw pickle's protocol is not printed (our error says it)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Detected pickle protocol")
        return torch.load(path, map_location="cpu", weights_only=True)


def require_tensors(state: dict, path: Path) -> None:
    """Every value of a state_dict a tensor, every floating one finite: the one check of every loading path."""
    import torch

    from bench.models.finite import require_finite

    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UserError(f"{path}: key {key!r} holds a {type(value).__name__}, not a tensor")
    require_finite(state, path)


def load_checkpoint_state(path: Path) -> tuple[dict, dict]:
    """(model state_dict, the checkpoint's other scalar entries such as the iteration)."""
    import torch

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        ckpt = _torch_load(path)
    except Exception as exc:  # corrupt file, not a torch file, or objects outside the weights-only allowlist
        raise UserError(f"{path}: not a readable weights-only checkpoint ({unreadable_reason(exc)})") from None
    if not isinstance(ckpt, dict):
        raise UserError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    if "model" in ckpt and isinstance(ckpt["model"], dict):
        state = ckpt["model"]
        meta = {k: v for k, v in ckpt.items() if isinstance(v, (int, float, str, bool))}
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state, meta = ckpt, {}
    else:
        raise UserError(f"{path}: key 'model': missing (expected the model state_dict under 'model')")
    # DDP-wrapped weights
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    from bench.models.finite import require_finite

    require_finite(state, path)
    return state, meta


def load_weights(model, state: dict, path: Path, config_path: Path) -> None:
    """Load `state` into `model`, refusing any key or shape mismatch with a one-line error.
    Keys of the auxiliary head are not compared: it is training-only and absent from evaluation."""
    expected = model.state_dict()
    aux = "aux_head."
    missing = [k for k in expected if k not in state and not k.startswith(aux)]
    unexpected = [k for k in state if k not in expected and not k.startswith(aux)]
    where = f"does not match the model of {config_path}"
    if missing:
        more = f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{path}: key {missing[0]!r} is missing; the checkpoint {where}{more}")
    if unexpected:
        more = f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        raise UserError(f"{path}: unexpected key {unexpected[0]!r}; the checkpoint {where}{more}")
    for key, value in state.items():
        if key in expected and tuple(value.shape) != tuple(expected[key].shape):
            raise UserError(f"{path}: key {key!r} has shape {tuple(value.shape)}, the model of {config_path} "
                            f"expects {tuple(expected[key].shape)}")
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


def read_state(path: Path) -> tuple[dict, dict]:
    """(state_dict, scalar metadata) of a checkpoint of any supported container: {'model': ...} (ifa-bench),
    {'model_state': ...} (hzhupku/IFA), {'state_dict': ...} (mmcv), or a bare state_dict; `module.` stripped."""

    try:
        return load_checkpoint_state(path)
    except UserError as exc:
        first = exc
    try:
        ckpt = _torch_load(path)
    except Exception:  # noqa: BLE001 - load_checkpoint_state's message says why
        raise first from None
    for wrapper in ("model_state", "state_dict"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(wrapper), dict):
            state = ckpt[wrapper]
            if state and all(k.startswith("module.") for k in state):
                state = {k[len("module."):]: v for k, v in state.items()}
            require_tensors(state, path)  # the release's format too: no path skips the check
            meta = {k: v for k, v in ckpt.items() if isinstance(v, (int, float, str, bool))}
            return state, meta
    raise first


def load_converted(path: Path, model_cfg, fmt: str = "auto") -> tuple[dict, dict]:
    """A checkpoint file in any registered format as the project's state_dict (+ metadata)."""
    from bench.convert.registry import to_project

    state, meta = read_state(path)
    try:
        converted = to_project(state, model_cfg, fmt)
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    require_tensors(converted, path)  # what a conversion computed (folded biases) is checked as well
    return converted, meta


def build_and_load(path: Path, cfg, config_label, fmt: str = "auto") -> tuple:
    """(the config's segmentor with the checkpoint's weights loaded strictly by load_weights, the project state_dict
    they came from, the checkpoint's metadata). The one way every command and task gets a model from a checkpoint."""
    from bench.models import build_segmentor

    state, meta = load_converted(Path(path), cfg.model, fmt)
    model = build_segmentor(cfg.model)
    load_weights(model, state, Path(path), config_label)
    return model, state, meta


def model_from_checkpoint(path: Path, cfg, config_label, device, fmt: str = "auto"):
    """(the config's segmentor with the checkpoint's weights, on `device`, in eval mode; the checkpoint's metadata)."""
    from bench.host.compiled import maybe_compile

    model, _, meta = build_and_load(path, cfg, config_label, fmt)
    model.to(device).eval()
    return maybe_compile(model, cfg.model), meta
