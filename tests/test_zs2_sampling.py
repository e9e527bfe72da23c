"""End to end: Algorithm 1 (dependency noise, then DDIM over a UNet with TMA) on the real ldm UNet."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import CONTEXT_DIM, frame_change, make_unet, seeded_draws, video_from_seed, zs2_ddim
from zs2_lib.noise import noise_chain

SEEDS = (0, 100, 200)


@pytest.fixture(scope="module")
def unet():
    return make_unet(seed=0, attn1_gain=6.0)


def mean_change(unet, **kwargs) -> float:
    """Frame-to-frame change of 8-frame videos, averaged over a few seeds."""
    return sum(frame_change(video_from_seed(unet, seed=seed, **kwargs)) for seed in SEEDS) / len(SEEDS)


def test_zs2_frames_change_far_less_than_independent_ones(unet):
    independent = mean_change(unet, model="independent", mu=0.0)
    zs2 = mean_change(unet)  # paper defaults: λ = 0.01, μ = 0.98
    noise_only = mean_change(unet, mu=0.0)  # the same noise without momentum attention
    assert zs2 < 0.95 * noise_only, (zs2, noise_only)  # momentum attention does its part
    assert zs2 < 0.65 * independent, (zs2, independent)
    assert mean_change(unet, lam=0.001) < 0.3 * independent


def test_change_rises_with_lambda(unet):
    changes = [mean_change(unet, lam=lam) for lam in (0.0001, 0.001, 0.01, 0.1, 1.0)]
    assert changes == sorted(changes), changes
    assert len(set(changes)) == len(changes), changes


def test_change_falls_with_mu(unet):
    changes = [mean_change(unet, lam=0.01, mu=mu) for mu in (0.0, 0.5, 0.9)]
    assert changes == sorted(changes, reverse=True), changes
    assert len(set(changes)) == 3, changes
    assert mean_change(unet, lam=0.01, mu=0.98) < changes[1]


def test_one_frame_is_plain_ddim(unet):
    """§5: with m = 1, ZS² reduces to the image sampler whatever λ and μ are."""
    plain = video_from_seed(unet, frames=1, model="independent", mu=0.0)
    assert torch.equal(video_from_seed(unet, frames=1, lam=0.3, mu=0.9), plain)


def test_a_video_sampled_in_chunks_equals_one_batch(unet):
    """DESIGN.md §1.3 end to end: 24 frames in 3 chunks of 8, noise and momentum carried per step."""
    generator = torch.Generator().manual_seed(12345)
    cond, uncond = torch.randn(2, 1, 7, CONTEXT_DIM, generator=generator)
    draws = seeded_draws(0, 24, 10, (4, 16, 16))
    mus = torch.linspace(0.9, 0.99, 24).tolist()
    whole = zs2_ddim(unet, noise_chain("dependency", draws, 0.05).noise, cond, uncond, mus=mus)
    noise_state, momentum_state, parts = None, {}, []
    for start in range(0, 24, 8):
        chain = noise_chain("dependency", draws[:, start : start + 8], 0.05, state=noise_state)
        noise_state = chain.state
        parts.append(
            zs2_ddim(unet, chain.noise, cond, uncond, mus=mus, first_frame=start, state=momentum_state)
        )
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-4, atol=1e-4)
