"""Where inference runs: device choice, precision and CPU threading, decided once.

The reference systems hard-coded CUDA and crashed on CPU-only machines; here the
device is a value chosen at start-up ("auto" prefers CUDA) and every tensor and
module is moved through :class:`DeviceSpec`, so a CPU fallback is one call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

#: Environment variable that forces a device ("cpu", "cuda", "cuda:1", …).
DEVICE_ENV = "FACESKETCH_DEVICE"
#: Environment variable that turns fp16 on CUDA off ("0") or on ("1").
FP16_ENV = "FACESKETCH_FP16"


@dataclass(frozen=True)
class DeviceSpec:
    """A torch device plus how to run on it (dtype, memory format)."""

    device: torch.device
    dtype: torch.dtype = torch.float32
    channels_last: bool = True

    @property
    def is_cuda(self) -> bool:
        """Whether this spec runs on a CUDA GPU."""
        return self.device.type == "cuda"

    def describe(self) -> str:
        """Short human-readable name, e.g. ``cuda:0 (NVIDIA H100, fp16)`` or ``cpu (2 threads)``."""
        if self.is_cuda:
            name = torch.cuda.get_device_name(self.device)
            prec = "fp16" if self.dtype == torch.float16 else "fp32"
            return f"{self.device} ({name}, {prec})"
        return f"cpu ({torch.get_num_threads()} threads)"

    def module(self, m: torch.nn.Module) -> torch.nn.Module:
        """Move ``m`` to this device and dtype in eval mode (channels_last where it helps)."""
        m = m.to(self.device, dtype=self.dtype).eval()
        if self.channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m

    def tensor(self, t: torch.Tensor) -> torch.Tensor:
        """Move an input tensor here, in this spec's dtype and memory format."""
        t = t.to(self.device, dtype=self.dtype, non_blocking=True)
        if self.channels_last and t.ndim == 4:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    def cpu(self) -> DeviceSpec:
        """The CPU twin of this spec (fp32), used when a GPU runs out of memory."""
        return DeviceSpec(torch.device("cpu"), torch.float32, self.channels_last)


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads do not speed up convolutions, they contend)."""
    try:
        cores: set[tuple[str, str]] = set()
        phys = core = ""
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, val = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = val.strip()
                elif key == "core id":
                    core = val.strip()
                elif not line.strip() and core:
                    cores.add((phys, core))
                    phys = core = ""
        if core:
            cores.add((phys, core))
        if cores:
            return min(len(cores), os.cpu_count() or len(cores))
    except OSError:
        pass
    return max(1, os.cpu_count() or 1)


def configure_cpu_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to ``threads`` (default: physical cores); returns it."""
    n = threads or physical_cores()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def select_device(device: str | torch.device = "auto", fp16: bool | None = None) -> DeviceSpec:
    """Resolve ``device`` ("auto", "cpu", "cuda", "cuda:N") into a :class:`DeviceSpec`.

    "auto" honours ``$FACESKETCH_DEVICE`` and otherwise takes CUDA when present.
    ``fp16`` (default: on for CUDA, overridable by ``$FACESKETCH_FP16``) only applies
    to CUDA: half precision on CPU is slower and loses quality.  Raises ValueError
    with a clear message for an unknown or unavailable device.
    """
    name = str(device)
    if name == "auto":
        name = os.environ.get(DEVICE_ENV, "").strip() or (
            "cuda" if torch.cuda.is_available() else "cpu"
        )
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}: use auto, cpu or cuda[:N]") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but no CUDA GPU is available; use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r} is not supported; use auto, cpu or cuda[:N]")
    configure_cpu_threads()
    if dev.type == "cpu":
        return DeviceSpec(dev, torch.float32, channels_last=True)
    if fp16 is None:
        fp16 = os.environ.get(FP16_ENV, "1").strip() != "0"
    return DeviceSpec(dev, torch.float16 if fp16 else torch.float32, channels_last=True)
