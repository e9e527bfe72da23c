"""The p.rng stand-in: frame i's candidates come from frame i's own seed, later draws pass through."""

from __future__ import annotations

import torch

from tests.test_noise import lambda_error_bound
from zs2_lib.frame_rng import VideoNoiseRNG
from zs2_lib.noise import criterion, dependency_noise
from zs2_lib.params import ZS2Params


class SeededRNG:
    """Like A1111's ImageRNG: one generator per seed, ``next()`` stacks one draw per image."""

    def __init__(self, seeds, shape=(4, 16, 16)):
        self.seeds = seeds
        self.shape = shape
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.calls = 0

    def next(self):
        self.calls += 1
        return torch.stack([torch.randn(self.shape, generator=g) for g in self.generators])


def test_first_draw_is_dependency_noise_of_the_seeded_candidates():
    params = ZS2Params(enabled=True, frames=4, lambda_="0.05", search=3)
    rng = VideoNoiseRNG(SeededRNG([7, 8, 9, 10]), params)
    noise = rng.next()
    reference = SeededRNG([7, 8, 9, 10])
    draws = torch.stack([reference.next() for _ in range(3)])
    assert torch.equal(noise, dependency_noise(draws, 0.05))
    assert torch.equal(noise[0], draws[0, 0])  # frame 1 keeps its ordinary noise
    assert rng.base.calls == 3
    assert abs(float(criterion(noise[2], noise[1])) - 0.05) <= lambda_error_bound(0.05)


def test_later_draws_come_from_the_same_seeds():
    base = SeededRNG([1, 2])
    rng = VideoNoiseRNG(base, ZS2Params(enabled=True, frames=2, search=2))
    rng.next()
    reference = SeededRNG([1, 2])
    for _ in range(2):
        reference.next()
    assert torch.equal(rng.next()[0], reference.next()[0])  # frame 1's step noise is its own draw
    assert rng.shape == (4, 16, 16)
    assert rng.seeds == [1, 2]


def test_a_frames_noise_depends_only_on_its_seed_and_its_predecessor():
    params = ZS2Params(enabled=True, frames=3)
    a = VideoNoiseRNG(SeededRNG([5, 6, 7]), params).next()
    b = VideoNoiseRNG(SeededRNG([5, 6, 99]), params).next()
    assert torch.equal(a[:2], b[:2])
    assert not torch.equal(a[2], b[2])


def test_schedules_use_global_frames_and_the_chain_continues_from_state():
    params = ZS2Params(enabled=True, frames=8, lambda_="0:0.001, 7:1.0")
    whole = VideoNoiseRNG(SeededRNG(list(range(8))), params)
    full = whole.next()
    first = VideoNoiseRNG(SeededRNG(list(range(4))), params, first_frame=0)
    head = first.next()
    second = VideoNoiseRNG(SeededRNG(list(range(4, 8))), params, first_frame=4, state=first.chain.state)
    assert torch.equal(torch.cat([head, second.next()]), full)


def test_baseline_models_use_the_sharing_ratio():
    params = ZS2Params(enabled=True, frames=3, noise_model="progressive", alpha="0.64")
    noise = VideoNoiseRNG(SeededRNG([1, 2, 3]), params).next()
    draws = SeededRNG([1, 2, 3]).next()
    torch.testing.assert_close(noise[1], 0.8 * noise[0] + 0.6 * draws[1])


def test_dependent_step_noise_follows_the_chain_and_joins_across_chunks():
    params = ZS2Params(enabled=True, frames=6, lambda_="0.05")
    whole = VideoNoiseRNG(SeededRNG(list(range(6))), params)
    whole.next()
    steps = [whole.next() for _ in range(3)]
    alphas = whole.chain.alphas.tolist()
    raw = SeededRNG(list(range(6)))
    for _ in range(10 + 1):  # the 10 candidates, then the first step's draw
        z = raw.next()
    torch.testing.assert_close(steps[0][1], alphas[1] ** 0.5 * steps[0][0] + (1 - alphas[1]) ** 0.5 * z[1])
    corr = torch.nn.functional.cosine_similarity(steps[1][1:].flatten(1), steps[1][:-1].flatten(1))
    assert float(corr.min()) > 0.7  # λ = 0.05 keeps consecutive frames' noise close

    first = VideoNoiseRNG(SeededRNG([0, 1, 2]), params)
    first.next()
    head = [first.next() for _ in range(3)]
    second = VideoNoiseRNG(
        SeededRNG([3, 4, 5]), params, first_frame=3, state=first.chain.state, step_state=first.step_state
    )
    second.next()
    for k in range(3):
        assert torch.equal(torch.cat([head[k], second.next()]), steps[k])


def test_independent_step_noise_is_the_hosts():
    params = ZS2Params(enabled=True, frames=2, search=1, step_noise="independent")
    rng = VideoNoiseRNG(SeededRNG([1, 2]), params)
    rng.next()
    reference = SeededRNG([1, 2])
    reference.next()
    assert torch.equal(rng.next(), reference.next())


def test_start_takes_the_first_draw_it_is_given():
    """Hires fix hands over the noise A1111 already drew; R - 1 more come from the RNG."""
    params = ZS2Params(enabled=True, frames=3, search=4)
    given = SeededRNG([1, 2, 3]).next()
    base = SeededRNG([1, 2, 3])
    base.next()
    rng = VideoNoiseRNG(base, params)
    noise = rng.start(given)
    assert base.calls == 1 + 3
    assert torch.equal(noise, VideoNoiseRNG(SeededRNG([1, 2, 3]), params).next())
