"""A 1,024-frame video in chunks of 16, as A1111 draws it: every frame's noise stays N(0, I)."""

from __future__ import annotations

import math

import torch

from tests.test_noise import iid_bounds, sample_stats
from zs2_lib.chunking import ChunkPlan
from zs2_lib.frame_rng import VideoNoiseRNG
from zs2_lib.params import ZS2Params

SHAPE = (4, 64, 64)


class FrameSeededRNG:
    """A1111's ImageRNG in short: one generator per frame seed, one draw per frame per call."""

    def __init__(self, seeds):
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]

    def next(self):
        return torch.stack([torch.randn(SHAPE, generator=g) for g in self.generators])


def test_every_frame_of_a_1024_frame_video_is_standard_normal():
    params = ZS2Params(enabled=True, frames=1024, chunk=16)
    plan = ChunkPlan(params.frames, params.chunk)
    bounds = iid_bounds(math.prod(SHAPE))
    state, worst = None, dict.fromkeys(bounds, (math.inf, -math.inf))
    for batch in range(plan.batches):
        _, _, first = plan.locate(batch)
        seeds = range(1000 + first, 1000 + first + plan.batch_size)
        rng = VideoNoiseRNG(FrameSeededRNG(seeds), params, first_frame=first, state=state)
        noise = rng.next()
        state = rng.chain.state
        for frame in noise:
            for name, value in sample_stats(frame).items():
                low, high = worst[name]
                worst[name] = (min(low, value), max(high, value))
    for name, (low, high) in worst.items():
        assert bounds[name][0] <= low, (name, low)
        assert high <= bounds[name][1], (name, high)
