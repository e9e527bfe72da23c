"""Temporal momentum (paper §4.1, Eq. 2): a causal running average along the frame axis.

``K̈^1 = K^1`` and ``K̈^i = μ_i K̈^{i-1} + (1 - μ_i) K^i`` (the same for V). μ = 0 leaves every frame
alone (self-attention), μ = 1 gives every frame the first frame's (cross-frame attention).

The paper's two listings are both off (``docs/DESIGN.md`` §1.2): the "efficient" one takes the
diagonal of U through ``einsum("ff, ...")`` and the loop one mixes the raw previous frame instead of
the running average. This module implements Eq. 2 itself, by the O(F) recurrence, with a carry so
that a video processed in chunks gets exactly the values of one pass, and, for accelerators (where a
loop over frames is a stream of tiny kernel launches), by one matrix product with the unrolled
recurrence (:func:`mix_operator`, :func:`momentum_mix_dense`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def per_frame_mus(mus: float | Sequence[float], frames: int) -> list[float]:
    """μ_i for ``frames`` frames from one float or a sequence of exactly ``frames`` floats."""
    if isinstance(mus, (int, float)):
        values = [float(mus)] * frames
    else:
        values = [float(m) for m in mus]
        if len(values) != frames:
            raise ValueError(f"mus: expected one value or {frames} values (one per frame), got {len(values)}")
    bad = [m for m in values if not 0.0 <= m <= 1.0]
    if bad:
        raise ValueError(f"mus: μ must lie in [0, 1], got {bad[0]!r}")
    return values


def momentum_weights(mus: float | Sequence[float], frames: int) -> torch.Tensor:
    """The lower-triangular ``[F, F]`` W with ``K̈ = W K`` (Eq. 2); each row sums to 1.

    ``W[i] = μ_i W[i-1] + (1 - μ_i) e_i`` and ``W[0] = e_0`` (μ_0 is unused without a carry).
    """
    values = per_frame_mus(mus, frames)
    weights = torch.zeros(frames, frames, dtype=torch.float64)
    for i in range(frames):
        if i > 0:
            weights[i] = values[i] * weights[i - 1]
        weights[i, i] += 1.0 - values[i] if i > 0 else 1.0
    return weights


def momentum_mix(
    x: torch.Tensor, mus: float | Sequence[float], carry: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 along dim 0 of ``x`` by the O(F) recurrence; returns ``(mixed, carry)``.

    Args:
        x: ``[F, ...]``, one entry per frame, in frame order.
        mus: μ_i for these F frames; ``mus[0]`` mixes frame 0 with ``carry`` and is unused without.
        carry: the last mixed frame of the previous chunk, or None if frame 0 starts the video.

    Returns:
        ``mixed`` (same shape and dtype as ``x``) and the new carry, the last mixed frame. The
        running average is kept in float32 (or float64 if ``x`` is float64) whatever ``x``'s dtype,
        and so is the carry, so half-precision chunks join exactly like full ones.
    """
    values = per_frame_mus(mus, x.shape[0])
    work_dtype = _work_dtype(x)
    out = torch.empty(x.shape, dtype=work_dtype, device=x.device)
    previous = None if carry is None else carry.to(device=x.device, dtype=work_dtype)
    work = x if x.dtype == work_dtype else x.to(work_dtype)
    for i, mu in enumerate(values):
        current = work[i]
        if previous is None:
            out[i] = current
        else:
            torch.lerp(current, previous, mu, out=out[i])  # μ·previous + (1 - μ)·current, exact at 0 and 1
        previous = out[i]
    return out.to(x.dtype), out[-1].clone()


def mix_operator(
    mus: float | Sequence[float], frames: int, *, carry: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 unrolled: ``(W, c)`` in float64 with ``mixed = W x + c ⊗ carry``.

    ``W[i, k] = (1 - μ_k) Π_{k<j≤i} μ_j`` and ``c_i = Π_{j≤i} μ_j`` with a carry; without one, frame 0
    starts the average (``W[i, 0] = Π_{0<j≤i} μ_j``) and ``c = 0``, i.e. :func:`momentum_weights`.
    """
    values = per_frame_mus(mus, frames)
    weights = torch.zeros(frames, frames, dtype=torch.float64)
    tail = torch.zeros(frames, dtype=torch.float64)
    for i, mu in enumerate(values):
        mu = mu if carry or i > 0 else 0.0
        if i > 0:
            weights[i] = mu * weights[i - 1]
        weights[i, i] += 1.0 - mu
        tail[i] = mu * (tail[i - 1] if i > 0 else float(carry))
    return weights, tail


def momentum_mix_dense(
    x: torch.Tensor,
    operator: tuple[torch.Tensor, torch.Tensor],
    carry: torch.Tensor | None = None,
    *,
    half: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 along dim 0 of ``x`` as one matrix product with :func:`mix_operator`'s ``(W, c)``.

    The same values as :func:`momentum_mix` up to float rounding (exact for μ = 0 and μ = 1), in a
    fixed number of kernels whatever the frame count; ``operator`` must match ``carry``'s presence.

    ``half``: for float16/bfloat16 ``x``, take the product in ``x``'s dtype (the UNet's own precision;
    accelerators accumulate it in float32) instead of converting ``x`` to float32 first; the carry,
    the last frame, is still computed and returned in float32, so chunks join at full precision.
    None: half on accelerators, float32 on the CPU (where half matrix products are slow).
    """
    weights, tail = operator
    work_dtype = _work_dtype(x)
    if half is None:
        half = x.device.type != "cpu"
    if half and x.dtype in (torch.float16, torch.bfloat16):
        flat = x.reshape(x.shape[0], -1)
        out = weights.to(device=x.device, dtype=x.dtype) @ flat
        last = weights[-1].to(device=x.device, dtype=work_dtype) @ flat.to(work_dtype)
        if carry is not None:
            carry = carry.reshape(-1).to(x.device, work_dtype)
            out += (tail.to(device=x.device, dtype=work_dtype)[:, None] * carry).to(x.dtype)
            last += float(tail[-1]) * carry
        return out.view(x.shape), last.view(x.shape[1:])
    flat = x.reshape(x.shape[0], -1).to(work_dtype)
    out = weights.to(device=x.device, dtype=work_dtype) @ flat
    if carry is not None:
        out.addr_(tail.to(device=x.device, dtype=work_dtype), carry.reshape(-1).to(x.device, work_dtype))
    return out.view(x.shape).to(x.dtype), out[-1].view(x.shape[1:]).clone()


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    """The running average is kept in float32, or float64 for float64 input."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32
