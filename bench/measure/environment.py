"""Where a measurement was taken: device, its name, versions, dtype, threads, host."""
from __future__ import annotations

import platform
import socket
from importlib import metadata

import torch


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def environment(device="cpu", dtype=torch.float32) -> dict:
    """Flat dict: device, device_name, torch_version, ray_version, fvcore_version, dtype, threads,
    python_version, hostname."""
    device = torch.device(device)
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = _cpu_name()
    return {
        "device": str(device),
        "device_name": device_name,
        "torch_version": str(torch.__version__),  # a plain str: TorchVersion would import torch where unpickled
        "ray_version": _version("ray"),
        "fvcore_version": _version("fvcore"),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "python_version": platform.python_version(),
        "hostname": socket.gethostname(),
    }
