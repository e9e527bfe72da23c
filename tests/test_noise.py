"""Dependency noise model and its baselines (paper §3, Algorithm 1, Listing 1; DESIGN.md §1.1)."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import seeded_draws
from zs2_lib.noise import (
    SCORE_BLOCK,
    _select_candidate,
    criterion,
    dependency_chain,
    dependency_noise,
    draws_needed,
    mixed_chain,
    noise_chain,
    progressive_chain,
    solve_alpha,
)

SD15_LATENT = (4, 64, 64)


def lambda_error_bound(lam: float) -> float:
    """How far the exact solver may miss λ: relative 1e-3 plus float32 rounding (measured ≤ 1.2e-7).

    Relative, so that at λ = 1e-4 a miss of 100 % (which an absolute 1e-4 would accept) fails.
    """
    return 1e-3 * lam + 1e-7


def draws_for(frames: int, shape=SD15_LATENT, candidates: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(candidates, frames, *shape, generator=torch.Generator().manual_seed(seed))


def listing_1(draws: torch.Tensor, lambda_i: float, linear_search_times: int = 15) -> torch.Tensor:
    """Appendix D, Listing 1, line by line, with batches = 1, ``draws`` in place of torch.randn and
    the ``kl_div`` reduction the listing's ``.mean(dim=[1, 2, 3])`` needs."""
    random_search_times, frames = draws.shape[:2]

    def get_progressive_noise(previous_x, frame):
        noise_x = noise = draws[0, frame][None]

        def compute_error(noise):
            kl = torch.nn.functional.kl_div(noise, previous_x, reduction="none", log_target=True)
            return (kl.mean(dim=[1, 2, 3]) - lambda_i).abs()

        def compose_noise(previous, noise_x, lambda_i):
            return torch.sqrt(lambda_i) * previous + torch.sqrt(1 - lambda_i) * noise_x

        error_bound = torch.tensor([torch.inf] * 1)
        for r in range(random_search_times):
            error = compute_error(noise)
            index = error < error_bound
            noise_x = noise_x.clone()
            noise_x[index] = noise[index]
            error_bound[index] = error[index]
            noise = draws[r + 1, frame][None] if r + 1 < random_search_times else None
        alpha_i = torch.tensor([0.1] * 1)
        step_size = torch.tensor([0.1] * 1)
        for _ in range(linear_search_times):
            error = compute_error(compose_noise(previous_x, noise_x, alpha_i))
            index = error <= error_bound
            index_mask = torch.logical_not(index)
            alpha_i[index] = alpha_i[index] + step_size[index]
            alpha_i[index_mask] = alpha_i[index_mask] - 0.8 * step_size[index_mask]
            step_size[index_mask] = step_size[index_mask] * 0.2
            error_bound[index] = error[index]
        return compose_noise(previous_x, noise_x, alpha_i)

    noises = []
    for index in range(frames):
        noises.append(draws[0, 0][None] if index == 0 else get_progressive_noise(noises[-1], index))
    return torch.stack(noises, dim=1)[0]


def test_criterion_is_the_kl_div_formula():
    a, b = torch.randn(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    expected = (torch.exp(b) * (b - a)).mean(dim=(-3, -2, -1))
    torch.testing.assert_close(criterion(a, b), expected)
    assert criterion(a, b).shape == (3,)


@pytest.mark.parametrize("debias", [True, False])
def test_exact_solver_meets_lambda_wherever_a_root_exists(debias):
    draws = draws_for(2, candidates=10, seed=1)
    prev = draws[0, 0]
    hits = 0
    for lam in torch.logspace(-4, math.log10(1.5), 25).tolist():
        chain = dependency_chain(draws, lam, debias=debias)
        reachable = float(criterion(draws[:, 1], prev).max())  # D(ε̃, p) = D at α = 0 bounds the root
        if lam <= min(reachable, float(criterion(-prev, prev))):
            measured = float(criterion(chain.noise[1], chain.noise[0]))
            assert abs(measured - lam) <= lambda_error_bound(lam), (lam, measured)
            hits += 1
    assert hits >= 20


@pytest.mark.parametrize(
    ("a", "b", "lam"), [(1.65, 0.03, 0.01), (1.65, -0.05, 0.3), (1.6, 0.2, 1e-4), (1.7, 0.0, 0.5)]
)
def test_solve_alpha_is_the_smallest_root(a, b, lam):
    alpha = solve_alpha(a, b, lam)
    s = math.sqrt(alpha)
    assert (1 - s) * a - math.sqrt(1 - s * s) * b == pytest.approx(lam, abs=1e-9)
    finer = [k / 20000 for k in range(20001) if k / 20000 < alpha - 1e-4]
    d = [(1 - math.sqrt(x)) * a - math.sqrt(1 - x) * b - lam for x in finer]
    assert all(v > 0 for v in d), "a smaller α already meets λ"


def test_solve_alpha_without_root_minimises_the_error():
    assert solve_alpha(1.65, 0.03, 5.0) == 0.0  # λ above every reachable D: independent frames
    assert solve_alpha(1.65, 0.03, 1.62) == 0.0  # D(α=0) = 1.62 is the largest D there is


def test_tiny_lambda_gives_nearly_identical_frames():
    for debias in (True, False):
        noise = dependency_noise(draws_for(4), 1e-6, debias=debias)
        corr = torch.nn.functional.cosine_similarity(noise[1:].flatten(1), noise[:-1].flatten(1))
        assert float(corr.min()) > 0.995
    noise = dependency_noise(draws_for(4), 1e-6, debias=False)
    corr = torch.nn.functional.cosine_similarity(noise[1:].flatten(1), noise[:-1].flatten(1))
    assert float(corr.max()) < 0.9999  # the dip of D below 0 (DESIGN.md §1.1): not exactly static


def test_huge_lambda_gives_independent_frames():
    draws = draws_for(4)
    chain = dependency_chain(draws, 100.0)
    assert chain.alphas.tolist() == [0.0] * 4
    corr = torch.nn.functional.cosine_similarity(chain.noise[1:].flatten(1), chain.noise[:-1].flatten(1))
    assert float(corr.abs().max()) < 0.05


def test_paper_mode_matches_listing_1_line_by_line():
    draws = draws_for(6, shape=(4, 32, 32), seed=3)
    for lam in (0.001, 0.01, 0.1, 0.8):
        ours = dependency_noise(draws, lam, solver="paper", debias=False)
        torch.testing.assert_close(ours, listing_1(draws, lam), rtol=0, atol=1e-6)


@pytest.mark.parametrize("candidates", [SCORE_BLOCK + 1, 3 * SCORE_BLOCK + 5])
def test_search_scored_in_blocks_matches_listing_1(candidates):
    draws = draws_for(5, shape=(4, 16, 16), candidates=candidates, seed=5)
    for lam in (0.01, 0.3):
        ours = dependency_noise(draws, lam, solver="paper", debias=False)
        torch.testing.assert_close(ours, listing_1(draws, lam), rtol=0, atol=1e-6)


@pytest.mark.parametrize("gap", [2, SCORE_BLOCK, 2 * SCORE_BLOCK + 1])
def test_search_keeps_the_first_of_equal_candidates(gap):
    # Against prev = 0, D(a, 0) = -mean(a): two one-hot candidates score exactly alike.
    prev = torch.zeros(4, 8, 8)
    candidates = list(torch.randn(3 * SCORE_BLOCK, 4, 8, 8, generator=torch.Generator().manual_seed(7)))
    first, second = torch.zeros(4, 8, 8), torch.zeros(4, 8, 8)
    first[0, 0, 0] = second[1, 2, 3] = 1.0
    candidates[3], candidates[3 + gap] = first, second
    lam = float(criterion(first, prev))
    assert lam == float(criterion(second, prev))
    chosen, error = _select_candidate(prev, iter(candidates), lam, debias=False)
    assert chosen is first  # Listing 1's strict "<": the first drawn wins
    assert float(error) == 0.0


def test_paper_line_search_caps_alpha_near_0_984():
    chain = dependency_chain(draws_for(4, seed=4), 1e-4, solver="paper", debias=False)
    assert chain.alphas[1:].max() == pytest.approx(0.984, abs=1e-3)


def iid_bounds(n: int, sigmas: float = 5.0) -> dict[str, tuple[float, float]]:
    """5-sigma ranges of sample statistics of n i.i.d. N(0, 1) values (max |ε|: p ≈ 1e-6 tails)."""
    return {
        "mean": (-sigmas / n**0.5, sigmas / n**0.5),
        "std": (1 - sigmas / (2 * n) ** 0.5, 1 + sigmas / (2 * n) ** 0.5),
        "skew": (-sigmas * (6 / n) ** 0.5, sigmas * (6 / n) ** 0.5),
        "kurtosis": (3 - sigmas * (24 / n) ** 0.5, 3 + sigmas * (24 / n) ** 0.5),
        # P(max |ε| > m) = 1 - (1 - 2Φ(-m))^n; m = 6.0 gives ~1.6e-5 at n = 16384
        "max": (3.0, 6.0),
    }


def sample_stats(x: torch.Tensor) -> dict[str, float]:
    x = x.double().flatten()
    centred = x - x.mean()
    std = centred.pow(2).mean().sqrt()
    return {
        "mean": float(x.mean()),
        "std": float(x.std()),
        "skew": float(centred.pow(3).mean() / std**3),
        "kurtosis": float(centred.pow(4).mean() / std**4),
        "max": float(x.abs().max()),
    }


@pytest.mark.parametrize("lam", [1e-4, 1e-3, 0.01, 0.1, 1.0, 10.0])
def test_default_noise_stays_standard_normal_over_256_frames(lam):
    noise = dependency_noise(draws_for(256, seed=5), lam)
    bounds = iid_bounds(math.prod(SD15_LATENT))
    for frame in (63, 127, 255):
        stats = sample_stats(noise[frame])
        for name, (low, high) in bounds.items():
            assert low <= stats[name] <= high, (frame, name, stats[name])


def test_paper_literal_search_drifts_out_of_normal():
    """The defect the default corrects (DESIGN.md §1.1): kurtosis ≈ 4.1, max |ε| ≈ 12 by frame 256."""
    noise = dependency_noise(draws_for(256, seed=5), 0.01, debias=False)
    stats = sample_stats(noise[255])
    assert stats["kurtosis"] > 3.5
    assert stats["max"] > 8.0


def test_debias_keeps_small_latents_normal():
    noise = dependency_noise(draws_for(256, shape=(4, 16, 16), seed=6), 0.001)
    stats = sample_stats(noise[-1])
    bounds = iid_bounds(4 * 16 * 16)
    assert bounds["kurtosis"][0] <= stats["kurtosis"] <= bounds["kurtosis"][1]
    assert stats["max"] < 5.0


@pytest.mark.parametrize(
    ("model", "strength", "solver"),
    [
        ("dependency", 0.01, "exact"),
        ("dependency", 0.05, "paper"),
        ("progressive", 0.9, "exact"),
        ("mixed", 0.7, "exact"),
        ("independent", 0.0, "exact"),
    ],
)
def test_chunks_join_exactly(model, strength, solver):
    draws = seeded_draws(7, 24, draws_needed(model, 10), (4, 16, 16))
    whole = noise_chain(model, draws, strength, solver=solver)
    state, parts = None, []
    for start in range(0, 24, 8):
        part = noise_chain(model, draws[:, start : start + 8], strength, state=state, solver=solver)
        parts.append(part.noise)
        state = part.state
    assert torch.equal(torch.cat(parts), whole.noise)


def test_per_frame_lambdas_apply_to_their_frames():
    draws = draws_for(5, shape=(4, 32, 32), seed=8)
    lams = [0.0, 0.001, 0.01, 0.1, 1.0]
    noise = dependency_noise(draws, lams)
    for f in range(1, 5):
        measured = float(criterion(noise[f], noise[f - 1]))
        assert abs(measured - lams[f]) <= lambda_error_bound(lams[f]), (f, lams[f], measured)
    with pytest.raises(ValueError, match="lambdas"):
        dependency_noise(draws, [0.1, 0.2])


def test_baselines_follow_their_formulas():
    draws = draws_for(3, shape=(4, 8, 8), candidates=2, seed=9)
    progressive = progressive_chain(draws, 0.64).noise
    torch.testing.assert_close(progressive[2], 0.8 * progressive[1] + 0.6 * draws[0, 2])
    mixed = mixed_chain(draws, 0.36).noise
    torch.testing.assert_close(mixed[1], 0.6 * draws[1, 0] + 0.8 * draws[0, 1])
    assert torch.equal(mixed_chain(draws, 0.0).noise, draws[0])


def test_half_precision_draws_keep_their_dtype_and_join_exactly():
    draws = draws_for(6, shape=(4, 8, 8), seed=10).half()
    whole = dependency_chain(draws, 0.01)
    assert whole.noise.dtype == torch.float16
    head = dependency_chain(draws[:, :3], 0.01)
    tail = dependency_chain(draws[:, 3:], 0.01, prev=head.state)
    assert torch.equal(torch.cat([head.noise, tail.noise]), whole.noise)
