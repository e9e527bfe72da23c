"""Temporal momentum, Eq. 2 (paper §4.1; DESIGN.md §1.2)."""

from __future__ import annotations

import pytest
import torch

from zs2_lib.momentum import mix_operator, momentum_mix, momentum_mix_dense, momentum_weights


def frames(n: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 5, 3, generator=torch.Generator().manual_seed(seed))


def eq2(x: torch.Tensor, mus: list[float]) -> torch.Tensor:
    """K̈^1 = K^1, K̈^i = μ_i K̈^{i-1} + (1 - μ_i) K^i, written out."""
    out = [x[0]]
    for i in range(1, len(x)):
        out.append(mus[i] * out[-1] + (1 - mus[i]) * x[i])
    return torch.stack(out)


def test_weights_follow_the_recurrence_for_per_frame_mu():
    mus = [0.3, 0.9, 0.5, 0.0, 1.0, 0.98]
    weights = momentum_weights(mus, 6)
    assert torch.equal(weights, weights.tril())
    torch.testing.assert_close(weights.sum(1), torch.ones(6, dtype=torch.float64))
    x = frames().double()
    torch.testing.assert_close(torch.einsum("ij,jnc->inc", weights, x), eq2(x, mus))
    torch.testing.assert_close(weights[2, :3], torch.tensor([0.9 * 0.5, 0.1 * 0.5, 0.5], dtype=torch.float64))


def test_mix_matches_eq2_and_the_dense_weights():
    mus = [0.0, 0.2, 0.7, 0.98, 0.5, 0.9]
    x = frames()
    mixed, carry = momentum_mix(x, mus)
    torch.testing.assert_close(mixed, eq2(x, mus))
    torch.testing.assert_close(
        mixed.double(), torch.einsum("ij,jnc->inc", momentum_weights(mus, 6), x.double())
    )
    assert torch.equal(carry, mixed[-1])


def test_mu_zero_is_identity_and_mu_one_repeats_frame_one():
    x = frames()
    assert torch.equal(momentum_mix(x, 0.0)[0], x)
    mixed, _ = momentum_mix(x, 1.0)
    assert all(torch.equal(mixed[i], x[0]) for i in range(6))


def test_chunks_with_carry_equal_one_pass():
    x = frames(24, seed=1)
    mus = torch.linspace(0.5, 0.99, 24).tolist()
    whole, _ = momentum_mix(x, mus)
    carry, parts = None, []
    for start in range(0, 24, 8):
        part, carry = momentum_mix(x[start : start + 8], mus[start : start + 8], carry)
        parts.append(part)
    assert torch.equal(torch.cat(parts), whole)


def test_half_precision_mixes_in_float32():
    x = frames(8, seed=2).half()
    mixed, carry = momentum_mix(x, 0.9)
    assert mixed.dtype == torch.float16
    assert carry.dtype == torch.float32
    torch.testing.assert_close(mixed, eq2(x.float(), [0.9] * 8).half())


def test_the_papers_listing_2_is_not_eq2():
    """Listing 2's loop mixes the raw previous frame, not the running average (DESIGN.md §1.2)."""
    x = frames()
    listing = torch.stack([x[i] if i == 0 else x[i - 1] * 0.9 + x[i] * 0.1 for i in range(len(x))])
    assert not torch.allclose(listing, momentum_mix(x, 0.9)[0])


def test_bad_mu_is_refused():
    with pytest.raises(ValueError, match="mus"):
        momentum_mix(frames(), 1.5)
    with pytest.raises(ValueError, match="mus"):
        momentum_mix(frames(), [0.5, 0.5])


@pytest.mark.parametrize("with_carry", [False, True])
def test_the_dense_operator_is_eq2(with_carry: bool) -> None:
    torch.manual_seed(3)
    x = torch.randn(7, 5, 3)
    mus = [0.3, 0.9, 0.5, 0.0, 1.0, 0.7, 0.98]
    carry = torch.randn(5, 3) if with_carry else None
    mixed, last = momentum_mix_dense(x, mix_operator(mus, 7, carry=with_carry), carry)
    reference, reference_last = momentum_mix(x, mus, carry)
    torch.testing.assert_close(mixed, reference, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(last, reference_last, rtol=1e-6, atol=1e-6)
    if not with_carry:
        torch.testing.assert_close(mix_operator(mus, 7, carry=False)[0], momentum_weights(mus, 7))


def test_the_dense_operator_is_exact_at_mu_zero_and_one() -> None:
    x = torch.randn(6, 4, 3)
    carry = torch.randn(4, 3)
    assert torch.equal(momentum_mix_dense(x, mix_operator(0.0, 6, carry=True), carry)[0], x)
    ones = momentum_mix_dense(x, mix_operator(1.0, 6, carry=True), carry)[0]
    assert all(torch.equal(ones[i], carry) for i in range(6))
    firsts = momentum_mix_dense(x, mix_operator(1.0, 6, carry=False))[0]
    assert all(torch.equal(firsts[i], x[0]) for i in range(6))


def test_the_dense_operator_joins_chunks_like_one_pass() -> None:
    x = torch.randn(12, 8, 4, dtype=torch.float64)
    mus = [0.95] * 12
    first, carry = momentum_mix_dense(x[:5], mix_operator(mus[:5], 5, carry=False))
    second, _ = momentum_mix_dense(x[5:], mix_operator(mus[5:], 7, carry=True), carry)
    whole, _ = momentum_mix_dense(x, mix_operator(mus, 12, carry=False))
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_half_dense_mix_keeps_the_carry_at_full_precision(dtype: torch.dtype) -> None:
    torch.manual_seed(5)
    x = torch.randn(9, 6, 4).to(dtype)
    mus = [0.2, 0.9, 0.5, 0.0, 1.0, 0.7, 0.98, 0.6, 0.95]
    carry = torch.randn(6, 4)
    mixed, last = momentum_mix_dense(x, mix_operator(mus, 9, carry=True), carry, half=True)
    reference, reference_last = momentum_mix(x.float(), mus, carry)
    assert mixed.dtype == dtype
    assert last.dtype == torch.float32
    tolerance = 1e-2 if dtype == torch.float16 else 4e-2
    torch.testing.assert_close(mixed.float(), reference, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(last, reference_last, rtol=1e-6, atol=1e-6)  # no half rounding
    assert torch.equal(momentum_mix_dense(x, mix_operator(0.0, 9, carry=True), carry, half=True)[0], x)


def test_the_half_dense_mix_joins_chunks_through_a_full_precision_carry() -> None:
    torch.manual_seed(6)
    x = torch.randn(12, 8, 4).half()
    mus = [0.95] * 12
    first, carry = momentum_mix_dense(x[:5], mix_operator(mus[:5], 5, carry=False), half=True)
    second, _ = momentum_mix_dense(x[5:], mix_operator(mus[5:], 7, carry=True), carry, half=True)
    reference, _ = momentum_mix(x.float(), mus)
    assert carry.dtype == torch.float32
    torch.testing.assert_close(torch.cat([first, second]).float(), reference, rtol=1e-2, atol=1e-2)
    full = momentum_mix_dense(x, mix_operator(mus, 12, carry=False))[0]  # on the CPU: float32 work
    torch.testing.assert_close(full.float(), reference, rtol=1e-3, atol=1e-3)
