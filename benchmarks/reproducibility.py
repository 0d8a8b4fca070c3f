"""Does a seed give the same bits? Runs a tiny blind deblur (1, 20 and 200 iterations) and
saves the images and kernels, so that two runs (another process, thread count or CPU
instruction set) can be compared.

Examples::

    python benchmarks/reproducibility.py run /tmp/a.npz
    ATEN_CPU_CAPABILITY=avx2 python benchmarks/reproducibility.py run /tmp/b.npz
    python benchmarks/reproducibility.py compare /tmp/a.npz /tmp/b.npz
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from napari_dip_deblur import deblur
from napari_dip_deblur.samples import blurred_photo

TINY = {"channels": 8, "levels": 3, "skip_channels": 4, "non_local_levels": (), "starts": 1}
ITERATIONS = (1, 20, 200)


def run(path: str) -> None:
    sample = blurred_photo(64, 9, noise=0.0)
    arrays = {}
    for iterations in ITERATIONS:
        result = deblur(sample.blurry, 9, iterations=iterations, seed=0,
                        final_deconvolution="hyper_laplacian", **TINY)
        arrays[f"image{iterations}"] = result.image
        arrays[f"kernel{iterations}"] = result.kernel
    np.savez(path, **arrays)
    print(f"{path}: {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")


def compare(first: str, second: str) -> None:
    a, b = np.load(first), np.load(second)
    for iterations in ITERATIONS:
        image = float(np.abs(a[f"image{iterations}"] - b[f"image{iterations}"]).max())
        kernel = float(np.abs(a[f"kernel{iterations}"] - b[f"kernel{iterations}"]).max())
        print(f"{iterations:4d} iterations: image max |diff| {image:.3g}, "
              f"kernel max |diff| {kernel:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").add_argument("out")
    both = sub.add_parser("compare")
    both.add_argument("first")
    both.add_argument("second")
    args = parser.parse_args()
    if args.command == "run":
        run(args.out)
    else:
        compare(args.first, args.second)


if __name__ == "__main__":
    main()
