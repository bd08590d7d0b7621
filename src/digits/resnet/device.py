"""Where a ResNet runs: the device, data-parallel processes under torchrun, and bfloat16 autocast."""

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist

from digits.errors import DigitsError


def pick_device(name="auto"):
    """The torch device called name; "auto" prefers cuda, then mps, then cpu."""
    accelerators = [d for d in ("cuda", "mps") if _has(d)]
    if name == "auto":
        return torch.device(accelerators[0] if accelerators else "cpu")
    if name != "cpu" and name not in accelerators:
        choices = ", ".join(["auto", "cpu", *accelerators])
        raise DigitsError(f"Device {name!r} is not available here; expected one of {choices}")
    return torch.device(name)


@contextmanager
def distributed(device_name="auto"):
    """Yield (device, rank). Under `torchrun` (WORLD_SIZE > 1) a process group is set up for the
    duration (nccl on CUDA, one GPU per process; gloo on CPU); otherwise rank is 0 and nothing is set up.

    Deterministic algorithms are switched on, so that the same seed gives the same weights. On CPU,
    torch's threads are split evenly between the processes sharing this machine.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # lets cuBLAS be deterministic; set before CUDA starts
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device(device_name)
    if device.type == "cpu":
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // world))
    if world == 1:
        yield device, 0
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield device, dist.get_rank()
    finally:
        dist.destroy_process_group()


def bf16_autocast(device, bf16):
    """A context running the forward pass under bfloat16 autocast when `bf16` is true and the device
    computes bfloat16 natively (CUDA; a CPU with AVX512-BF16 or AMX, where it is 1.5 to 2 times
    faster than float32); float32 otherwise, where emulated bfloat16 would be slower."""
    native = device.type == "cuda" or (device.type == "cpu" and _cpu_bf16_private_api())
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and native)


def _cpu_bf16_private_api():
    """Whether this CPU has AVX512-BF16 or AMX. torch has no public query for it, so this is the project's one
    call to private torch functions; where a torch release drops them, False (float32, the safe choice)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def _has(device):
    """Whether torch can use the accelerator "cuda" or "mps"."""
    return torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available()
