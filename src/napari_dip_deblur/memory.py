"""How much memory a run will need, checked before it starts.

Two parts run one after the other: the blind estimation (the generator's activations, kept
for back-propagation, grow with the pixels of the region it fits and with the network's
width) and the non-blind restoration of each full plane (a handful of FFT-sized arrays). The
per-pixel figures below were fitted to peak resident memory above the process's baseline
on this project's CPU build, in an earlier session, and rounded up; treat them as estimates
to within about 30 %. A check: for a 4096 x 4096 run the estimate was 2.1 GB and the
measured peak 1.9 GB (``docs/benchmarks/real-inputs.md``). numpy and the standard library
only: torch is asked for GPU memory only when a run targets a GPU and torch is already
imported.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "InsufficientMemoryError",
    "MemoryEstimate",
    "available_memory",
    "blind_bytes",
    "check_memory",
    "estimate_memory",
    "nonblind_bytes",
]

GB = 1024**3

# Blind run: bytes per generator-input pixel, per channel of the U-Net and per skip channel
# (fitted on 128 x 128 and 256 x 256 runs of 32 and 64 channels: 111 B per pixel-channel
# and 232 B per pixel with 16 skip channels), and a fixed overhead for torch's buffers.
_BLIND_PER_CHANNEL = 115
_BLIND_PER_SKIP = 15
_BLIND_FIXED = 100 * 1024**2
# A non-local block at level l holds its (n x n/4) attention matrix, n the pixels at
# 1/2^(l+1) resolution, for the forward and the backward pass.
_ATTENTION_COPIES = 3
# Non-blind (nonblind.deconvolve, edge="extend"): peak bytes per pixel of the padded plane.
# Measured: 240, 200, 180 B/px for 512, 1024, 2048 px sides, 75 B/px at 4096: glibc keeps
# freed blocks below 32 MB in the heap, so mid-sized planes cost more per pixel. The
# estimate is monotonic and errs high: max(90 B/px, min(240 B/px, 2 GB)).
_NONBLIND_LIVE_PER_PIXEL = 90
_NONBLIND_HEAP_PER_PIXEL = 240
_NONBLIND_HEAP_CAP = 2 * GB
# GPU runs need room for cuDNN's workspaces on top of the activations.
_GPU_FACTOR = 1.3


class InsufficientMemoryError(MemoryError, ValueError):
    """A run was refused because it would not fit in the memory available.

    A ``ValueError`` too, so callers that report bad inputs report this the same way.
    """


def blind_bytes(shape: tuple[int, int], kernel_shape: tuple[int, int], *, channels: int,
                skip_channels: int = 16, non_local_levels: tuple[int, ...] = (),
                gpu: bool = False) -> int:
    """Estimated peak memory of a blind run on an image of ``shape``.

    Parameters
    ----------
    shape : (int, int)
        The image (or region) the blind run fits.
    kernel_shape : (int, int)
        The kernel size (the generator's output is larger than the image by it).
    channels, skip_channels : int
        Widths of the image generator (:class:`~napari_dip_deblur.presets.Settings`).
    non_local_levels : tuple of int
        Levels with a self-attention block (their cost grows with the square of the pixels).
    gpu : bool
        Whether the run is on a GPU (adds room for cuDNN's workspaces).

    Returns
    -------
    int
        Bytes.
    """
    pixels = (shape[0] + kernel_shape[0] - 1) * (shape[1] + kernel_shape[1] - 1)
    total = pixels * (_BLIND_PER_CHANNEL * channels + _BLIND_PER_SKIP * skip_channels)
    for level in non_local_levels:
        queries = pixels / 4 ** (level + 1)
        total += _ATTENTION_COPIES * 4 * queries * (queries / 4)
    total += _BLIND_FIXED
    return int(total * (_GPU_FACTOR if gpu else 1.0))


def nonblind_bytes(shape: tuple[int, int], kernel_shape: tuple[int, int]) -> int:
    """Estimated peak memory of :func:`napari_dip_deblur.nonblind.deconvolve` on one plane."""
    pixels = (shape[0] + kernel_shape[0] - 1) * (shape[1] + kernel_shape[1] - 1)
    return int(max(_NONBLIND_LIVE_PER_PIXEL * pixels,
                   min(_NONBLIND_HEAP_PER_PIXEL * pixels, _NONBLIND_HEAP_CAP)))


def available_memory() -> int | None:
    """Bytes of RAM this process can still use: the smaller of the system's available
    memory and the room left under a cgroup (container) limit. None if unknown."""
    candidates: list[int] = []
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
         "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            candidates.append(max(int(limit) - usage, 0))
        break
    if not candidates:
        try:
            import psutil
        except ImportError:
            return None
        candidates.append(int(psutil.virtual_memory().available))
    return min(candidates)


def _gpu_free(device: str) -> int | None:
    torch = sys.modules.get("torch")
    if torch is None or not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
    free, _ = torch.cuda.mem_get_info(index)
    return int(free)


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory a run needs, part by part, and what is available.

    Attributes
    ----------
    blind : int
        Peak bytes of the blind estimation (on ``device``).
    nonblind : int
        Peak bytes of restoring one plane by non-blind deconvolution (host memory).
    arrays : int
        The output and working copies of the data (host memory).
    device : str
        Where the blind part runs ("cpu", "cuda", "cuda:1", "mps").
    available_host : int or None
        Host RAM available (None: unknown, no check).
    available_device : int or None
        Free GPU memory for a CUDA run (None otherwise).
    blind_shape, plane_shape : (int, int)
        The region the blind part fits and the shape of a full plane.
    """

    blind: int
    nonblind: int
    arrays: int
    device: str
    available_host: int | None
    available_device: int | None
    blind_shape: tuple[int, int]
    plane_shape: tuple[int, int]

    @property
    def host(self) -> int:
        """Peak host bytes: the arrays plus the larger of the two parts (they run one after
        the other), the blind part counting only on a CPU run."""
        blind_on_host = self.blind if self.device in ("cpu", "mps") else 0
        return self.arrays + max(blind_on_host, self.nonblind)

    @property
    def fits(self) -> bool:
        """Whether the run fits (True when availability is unknown)."""
        host_ok = self.available_host is None or self.host <= self.available_host
        gpu_ok = self.available_device is None or self.blind <= self.available_device
        return host_ok and gpu_ok

    def describe(self) -> str:
        """A one-line summary, e.g. for a status bar."""
        where = "" if self.device == "cpu" else f" on {self.device}"
        text = (f"about {self.host / GB:.1f} GB of RAM (blind part {self.blind / GB:.2f} GB"
                f"{where} on {self.blind_shape[0]}x{self.blind_shape[1]}, non-blind "
                f"{self.nonblind / GB:.2f} GB per {self.plane_shape[0]}x{self.plane_shape[1]} "
                f"plane, data {self.arrays / GB:.2f} GB)")
        if self.available_host is not None:
            text += f"; {self.available_host / GB:.1f} GB available"
        return text


def estimate_memory(blind_shape: tuple[int, int], plane_shape: tuple[int, int],
                    kernel_shape: tuple[int, int], *, channels: int, skip_channels: int = 16,
                    non_local_levels: tuple[int, ...] = (), data_bytes: int = 0,
                    device: str = "cpu", nonblind: bool = True) -> MemoryEstimate:
    """Estimate a run's memory and look up what is available.

    Parameters
    ----------
    blind_shape : (int, int)
        The region the blind part fits.
    plane_shape : (int, int)
        One full plane restored by non-blind deconvolution.
    kernel_shape : (int, int)
    channels, skip_channels, non_local_levels
        The generator's settings.
    data_bytes : int
        Bytes of output and working arrays the run holds (e.g. the float32 result).
    device : str
        Where the blind part runs ("cpu", "cuda", "cuda:N", "mps").
    nonblind : bool
        Whether a non-blind step follows.

    Returns
    -------
    MemoryEstimate
    """
    gpu = device.startswith("cuda")
    return MemoryEstimate(
        blind=blind_bytes(blind_shape, kernel_shape, channels=channels,
                          skip_channels=skip_channels, non_local_levels=non_local_levels,
                          gpu=gpu),
        nonblind=nonblind_bytes(plane_shape, kernel_shape) if nonblind else 0,
        arrays=int(data_bytes),
        device=device,
        available_host=available_memory(),
        available_device=_gpu_free(device) if gpu else None,
        blind_shape=(int(blind_shape[0]), int(blind_shape[1])),
        plane_shape=(int(plane_shape[0]), int(plane_shape[1])),
    )


def check_memory(estimate: MemoryEstimate) -> None:
    """Raise :class:`InsufficientMemoryError`, saying what to do, unless the run fits.

    Set the environment variable ``DIP_DEBLUR_SKIP_MEMORY_CHECK=1`` to skip the check.
    """
    if estimate.fits or os.environ.get("DIP_DEBLUR_SKIP_MEMORY_CHECK") == "1":
        return
    advice = []
    blind_heavy = estimate.blind >= estimate.nonblind
    if blind_heavy:
        advice.append("estimate the kernel on a smaller region (e.g. region_size=128, "
                      "--region auto --region-size 128, or a smaller rectangle in the "
                      "Shapes layer)")
        advice.append("use a narrower generator (channels=32) or a preset without non-local "
                      "blocks ('fast')")
        if estimate.device in ("cpu", "mps"):
            advice.append("run the blind part on a GPU (device='cuda') if there is one")
    else:
        advice.append("restore a crop or a downsampled copy of the image: the non-blind step "
                      "needs memory for the full plane")
    advice.append("close other programs (fewer iterations save time, not memory)")
    where = ("GPU memory" if estimate.available_device is not None
             and estimate.blind > estimate.available_device else "RAM")
    available = (estimate.available_device if where == "GPU memory"
                 else estimate.available_host) or 0
    needed = estimate.blind if where == "GPU memory" else estimate.host
    raise InsufficientMemoryError(
        f"not enough {where}: this run needs about {needed / GB:.1f} GB but only "
        f"{available / GB:.1f} GB is available ({estimate.describe()}). To fit: "
        + "; ".join(advice) + "."
    )
