"""A 1,024-frame video in chunks of 16, as A1111 draws it: every frame's noise stays N(0, I), and
every step, chunk boundaries included, is the requested λ apart (the carried state really carries)."""

from __future__ import annotations

import math

import torch

from tests.test_noise import iid_bounds, lambda_error_bound, sample_stats
from zs2_lib.chunking import ChunkPlan
from zs2_lib.frame_rng import VideoNoiseRNG
from zs2_lib.noise import criterion
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
    previous_last, boundaries = None, 0
    for batch in range(plan.batches):
        _, _, first = plan.locate(batch)
        seeds = range(1000 + first, 1000 + first + plan.batch_size)
        rng = VideoNoiseRNG(FrameSeededRNG(seeds), params, first_frame=first, state=state)
        noise = rng.next()
        state = rng.chain.state
        lams = params.lambdas(first, plan.batch_size)
        if previous_last is not None:  # D(first of this chunk, last of the previous one) = λ
            measured = float(criterion(noise[0], previous_last))
            assert abs(measured - lams[0]) <= lambda_error_bound(lams[0]), ("boundary", first, measured)
            boundaries += 1
        for f in range(1, len(noise)):
            measured = float(criterion(noise[f], noise[f - 1]))
            assert abs(measured - lams[f]) <= lambda_error_bound(lams[f]), ("frame", first + f, measured)
        previous_last = noise[-1]
        for frame in noise:
            for name, value in sample_stats(frame).items():
                low, high = worst[name]
                worst[name] = (min(low, value), max(high, value))
    assert boundaries == plan.batches - 1 == 63
    for name, (low, high) in worst.items():
        assert bounds[name][0] <= low, (name, low)
        assert high <= bounds[name][1], (name, high)
