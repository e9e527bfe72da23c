"""Peak memory of the dependency noise search against ``search`` (R) at a fixed chunk: flat.

For one chunk of F frames (default 64) of a 4×L×L latent (default L = 32, i.e. 256 px), the video
noise is made by :class:`zs2_lib.frame_rng.VideoNoiseRNG` from an RNG like A1111's ``ImageRNG``
(one seeded generator per frame), in two ways:

* **per frame**: the RNG offers each image's own draw (A1111 does; ``A1111.frame_draw``), so the
  search draws and scores each frame's candidates as it reaches the frame;
* **batched**: the RNG only offers ``next()`` (one draw of every frame per call), so R - 1 whole
  batches are drawn first; this is also what the search held before issue 13 (plus a stacked copy).

Columns: **live** is the most candidate bytes alive at once (every tensor the RNG hands out after
its first draw is counted until it is freed: exact and deterministic); **peak RSS** is the rise of
the process's peak resident memory over a baseline taken after the frames' ordinary noise is drawn
(each case runs in a fresh process). The noise itself (F latents) is the same in both and not in
either column. Batched cases whose candidates would exceed ``--batched-limit`` MiB are not run.

Run from the repository root::

    .venv/bin/python benchmarks/bench_search_memory.py
    .venv/bin/python benchmarks/bench_search_memory.py --frames 64 --latent 32 --search 1 10 100 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _case(frames: int, latent: int, search: int, per_frame: bool) -> dict[str, float]:
    import torch

    from zs2_lib.frame_rng import VideoNoiseRNG
    from zs2_lib.params import ZS2Params

    torch.set_num_threads(1)
    shape = (4, latent, latent)

    class CountingRNG:
        def __init__(self) -> None:
            self.generators = [torch.Generator().manual_seed(1000 + i) for i in range(frames)]
            self.live = 0
            self.peak = 0

        def _count(self, tensor: torch.Tensor) -> torch.Tensor:
            size = tensor.numel() * tensor.element_size()
            self.live += size
            self.peak = max(self.peak, self.live)
            weakref.finalize(tensor, self._free, size)
            return tensor

        def _free(self, size: int) -> None:
            self.live -= size

        def next(self) -> torch.Tensor:
            return self._count(torch.stack([torch.randn(shape, generator=g) for g in self.generators]))

        def draw(self, index: int) -> torch.Tensor:
            return self._count(torch.randn(shape, generator=self.generators[index]))

    base = CountingRNG()
    first = torch.stack([torch.randn(shape, generator=g) for g in base.generators])
    params = ZS2Params(enabled=True, frames=frames, chunk=frames, search=search)
    rng = VideoNoiseRNG(base, params, frame_draw=base.draw if per_frame else None)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng.start(first)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"live_mib": base.peak / 2**20, "rss_mib": (peak - baseline) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--latent", type=int, default=32)
    parser.add_argument("--search", type=int, nargs="+", default=[1, 10, 100, 1000])
    parser.add_argument("--batched-limit", type=float, default=512.0, help="MiB of candidates, batched")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        frames, latent, search, per_frame = json.loads(args.case)
        print(json.dumps(_case(frames, latent, search, per_frame)))
        return

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    latent_mib = 4 * args.latent * args.latent * 4 / 2**20

    def run(search: int, per_frame: bool) -> dict[str, float]:
        case = json.dumps([args.frames, args.latent, search, per_frame])
        out = subprocess.run(
            [sys.executable, __file__, "--case", case], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    size = f"4×{args.latent}×{args.latent} float32 ({latent_mib * 1024:.0f} KiB)"
    print(f"chunk {args.frames} frames, latent {size}")
    print(f"{'search':>7} | {'per frame: live':>16} {'peak RSS':>9} | {'batched: live':>14} {'peak RSS':>9}")
    for search in args.search:
        ours = run(search, True)
        batched_mib = (search - 1) * args.frames * latent_mib
        if batched_mib <= args.batched_limit:
            old = run(search, False)
            old_text = f"{old['live_mib']:>10.2f} MiB {old['rss_mib']:>5.1f} MiB"
        else:
            old_text = f"{'(' + format(batched_mib, '.0f') + ' MiB, not run)':>24}"
        print(f"{search:>7} | {ours['live_mib']:>12.2f} MiB {ours['rss_mib']:>5.1f} MiB | {old_text}")


if __name__ == "__main__":
    main()
