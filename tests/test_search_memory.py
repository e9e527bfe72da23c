"""The dependency search draws and scores candidates frame by frame: same noise, memory flat in R."""

from __future__ import annotations

import weakref

import pytest
import torch

from zs2_lib.frame_rng import VideoNoiseRNG
from zs2_lib.noise import SCORE_BLOCK
from zs2_lib.params import ZS2Params

SHAPE = (4, 8, 8)


class CountingRNG:
    """A1111's ImageRNG in miniature, counting the candidate tensors alive at any moment.

    ``next()`` stacks one draw per image (as ImageRNG does); ``draw(i)`` is image i's next draw alone.
    Every tensor handed out after the first call is tracked until it is freed.
    """

    def __init__(self, seeds: list[int]) -> None:
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.shape = SHAPE
        self.alive = 0
        self.peak = 0
        self.calls = 0

    def _track(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.calls > 1:
            self.alive += 1
            self.peak = max(self.peak, self.alive)
            weakref.finalize(tensor, self._freed)
        return tensor

    def _freed(self) -> None:
        self.alive -= 1

    def next(self) -> torch.Tensor:
        self.calls += 1
        return self._track(torch.stack([torch.randn(SHAPE, generator=g) for g in self.generators]))

    def draw(self, index: int) -> torch.Tensor:
        self.calls = max(self.calls, 2)
        return self._track(torch.randn(SHAPE, generator=self.generators[index]))


def _video(search: int, *, per_frame: bool, frames: int = 6, steps: int = 2):
    params = ZS2Params(enabled=True, frames=frames, lambda_="0:0.01, 5:0.2", search=search)
    base = CountingRNG(list(range(100, 100 + frames)))
    rng = VideoNoiseRNG(base, params, frame_draw=base.draw if per_frame else None)
    noise = rng.next()
    return noise, [rng.next() for _ in range(steps)], base


@pytest.mark.parametrize("search", [1, 2, 10, 37])
def test_frame_by_frame_search_gives_the_same_noise_and_step_noise(search):
    noise, steps, _ = _video(search, per_frame=True)
    expected, expected_steps, _ = _video(search, per_frame=False)
    assert torch.equal(noise, expected)
    for got, want in zip(steps, expected_steps, strict=True):
        assert torch.equal(got, want)  # every generator moved on by exactly R draws


def test_search_memory_does_not_grow_with_the_number_of_candidates():
    peaks = {search: _video(search, per_frame=True)[2].peak for search in (2, 10, 100, 400)}
    # At most one block of candidates being scored, the best so far and the one being drawn.
    assert peaks[100] == peaks[400] == SCORE_BLOCK + 2, peaks
    assert peaks[2] == 2, peaks
    assert peaks[10] == 10, peaks
    batched = {search: _video(search, per_frame=False)[2].peak for search in (2, 10, 30)}
    assert batched == {2: 1, 10: 9, 30: 29}, batched  # without per-image draws: R - 1 batches of F frames
