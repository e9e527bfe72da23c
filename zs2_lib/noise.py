"""Per-frame initial noise for a video: the dependency noise model and its baselines (paper §3).

Every model maps seeded candidate draws ``draws[r, f]`` (``[R, F, C, H, W]``, ``draws[0]`` being each
frame's ordinary noise) to one noise tensor per frame, and is causal: a long video is made chunk by
chunk by passing ``NoiseChain.state`` of one chunk to the next. Two departures from the paper's
code, both selectable (``docs/DESIGN.md`` §2): the exact α solver and the debiased search that
keeps the noise Gaussian over long videos.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F

SOLVERS = ("exact", "paper")

_PAPER_LINE_SEARCH_STEPS = 15

SCORE_BLOCK = 16
"""Candidates the search scores together: one tensor op per block rather than per candidate."""


@dataclass(frozen=True)
class NoiseChain:
    """Noise for a run of frames and what it took to make it.

    Attributes:
        noise: ``[F, C, H, W]``, one noise tensor per frame.
        alphas: ``[F]`` float64 on the CPU: the weight α each frame gives its predecessor
            (``√α ε^{i-1} + √(1-α) ε̃``); 0 for a frame that starts a chain or is independent.
        state: what the next chunk passes back as ``prev`` (the last frame's noise, or the shared
            noise of the mixed model), or None if the model carries nothing; kept in float32 even
            for half-precision draws, so chunks join exactly.
    """

    noise: torch.Tensor
    alphas: torch.Tensor
    state: torch.Tensor | None


def criterion(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """D(a, b) = mean over C, H, W of e^b (b - a): the paper's "KL" (§3.1, Listing 1)."""
    return F.kl_div(a, b, reduction="none", log_target=True).mean((-3, -2, -1))


def solve_alpha(a: float, b: float, lam: float) -> float:
    """Smallest α in [0, 1] with (1 - s)A - √(1 - s²)B = λ, s = √α; else the α minimising |D - λ|.

    ``A = mean(e^p p)`` and ``B = mean(e^p ε̃)`` make ``D(s ε^{i-1} + √(1-s²) ε̃, ε^{i-1})`` exactly
    the left-hand side (DESIGN.md §1.1). With v = 1 - s it is the quadratic
    ``(A² + B²) v² - 2(Aλ + B²) v + λ² = 0``; squaring admits roots of the wrong sign, so each root
    is checked before it is taken. The smallest α is the root the paper's upward search approaches.
    """

    def d(s: float) -> float:
        return (1.0 - s) * a - math.sqrt(max(0.0, 1.0 - s * s)) * b

    q = a * a + b * b
    tol = 1e-9 * max(1.0, abs(a), abs(b), abs(lam))
    if q > 0.0:
        h = a * lam + b * b
        disc = b * b * (2.0 * a * lam + b * b - lam * lam)
        if disc >= 0.0:
            big = (h + math.copysign(math.sqrt(disc), h)) / q
            small = lam * lam / (q * big) if big != 0.0 else 0.0  # Vieta, free of cancellation
            for v in sorted((big, small), reverse=True):  # largest v = smallest α first
                s = 1.0 - min(max(v, 0.0), 1.0)
                if -tol <= v <= 1.0 + tol and abs(d(s) - lam) <= tol:
                    return s * s
    # No root in [0, 1]: |D - λ| is smallest at an end or at D's interior extremum, s = A/√(A²+B²).
    ends = [0.0, 1.0] + ([a / math.sqrt(q)] if q > 0.0 and a * b > 0.0 else [])
    s = min(ends, key=lambda s: (abs(d(s) - lam), s))
    return s * s


def _per_frame(values: float | Sequence[float], frames: int, name: str) -> list[float]:
    if isinstance(values, (int, float)):
        return [float(values)] * frames
    out = [float(v) for v in values]
    if len(out) != frames:
        raise ValueError(f"{name}: expected one value or {frames} values (one per frame), got {len(out)}")
    return out


def _check_draws(draws: torch.Tensor, min_candidates: int = 1) -> None:
    if draws.ndim != 5:
        raise ValueError(f"draws: expected [R, F, C, H, W], got shape {tuple(draws.shape)}")
    if draws.shape[0] < min_candidates:
        raise ValueError(f"draws: this noise model needs at least {min_candidates} draws per frame")


def _select_candidate(
    prev: torch.Tensor, candidates: Iterable[torch.Tensor], lam: float, debias: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random search (Algorithm 1, lines 3-9): the candidate with D nearest λ, and its |D - λ|.

    Candidates are scored :data:`SCORE_BLOCK` at a time (one criterion over the block, the same
    numbers as one per candidate) and only the best so far is kept, so the search's memory is
    bounded whatever R is. With ``debias`` the chosen candidate's coordinate along
    ``u = e^{prev} / |e^{prev}|``, the only one the search looks at, is set to 0 (``docs/DESIGN.md`` §2.2).
    """
    chosen: torch.Tensor | None = None
    best = torch.tensor(math.inf)
    remaining = iter(candidates)
    while block := list(itertools.islice(remaining, SCORE_BLOCK)):
        stacked = torch.stack(block)
        errors = (criterion(stacked, prev.expand_as(stacked)) - lam).abs()
        index = int(errors.argmin())  # the first of equals, like Listing 1's strict "<"
        if chosen is None or errors[index] < best:
            chosen, best = block[index], errors[index]
        del block, stacked  # scored: freed before the next block is drawn
    if chosen is None:
        raise ValueError("draws: the dependency model needs at least 1 draw per frame")
    if not debias:
        return chosen, best
    u = prev.double().exp()
    u /= u.norm()
    chosen = (chosen.double() - (chosen.double() * u).sum() * u).to(chosen.dtype)
    return chosen, (criterion(chosen, prev) - lam).abs()


def _exact_mix(prev: torch.Tensor, chosen: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    """Linear-search phase replaced by the closed-form α (DESIGN.md §1.1)."""
    weight = prev.double().exp()
    a = float((weight * prev.double()).mean())
    b = float((weight * chosen.double()).mean())
    alpha = solve_alpha(a, b, lam)
    return math.sqrt(alpha) * prev + math.sqrt(1.0 - alpha) * chosen, alpha


def _paper_mix(
    prev: torch.Tensor, chosen: torch.Tensor, lam: float, error_bound: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """Listing 1's linear search, step for step in float32 (α₀ = 0.1, +step, else -0.8·step, ×0.2)."""

    def compose(alpha: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(alpha) * prev + torch.sqrt(1 - alpha) * chosen

    alpha = torch.tensor(0.1, dtype=torch.float32, device=prev.device)
    step = torch.tensor(0.1, dtype=torch.float32, device=prev.device)
    bound = error_bound.to(torch.float32)
    for _ in range(_PAPER_LINE_SEARCH_STEPS):
        error = (criterion(compose(alpha), prev) - lam).abs()
        better = error <= bound  # NaN (α > 1) compares False: the search backs off
        alpha = torch.where(better, alpha + step, alpha - 0.8 * step)
        step = torch.where(better, step, step * 0.2)
        bound = torch.where(better, error, bound)
    return compose(alpha), float(alpha)


def dependency_chain(
    draws: torch.Tensor,
    lambdas: float | Sequence[float],
    *,
    prev: torch.Tensor | None = None,
    solver: str = "exact",
    debias: bool = True,
) -> NoiseChain:
    """Dependency noise model (§3.1, Algorithm 1) for F frames, with each frame's α.

    Args:
        draws: ``[R, F, C, H, W]`` candidate draws; ``draws[0, f]`` is frame f's ordinary noise.
        lambdas: λ_i, one float or F floats; ``lambdas[f]`` sets the step from frame f-1 to f.
        prev: ``[C, H, W]`` noise of the frame before this chunk; without it frame 0 is
            ``draws[0, 0]``.
        solver: ``"exact"`` (closed-form α, default) or ``"paper"`` (Listing 1's line search).
        debias: keep every frame's noise N(0, I) (default); False is the paper's literal search.
    """
    _check_draws(draws)
    return dependency_chain_frames(
        draws[0], lambda f: iter(draws[1:, f]), lambdas, prev=prev, solver=solver, debias=debias
    )


FurtherDraws = Callable[[int], Iterable[torch.Tensor]]
"""Frame f → its candidate draws after the ordinary one, in draw order (R - 1 of them)."""


def dependency_chain_frames(
    first: torch.Tensor,
    further: FurtherDraws,
    lambdas: float | Sequence[float],
    *,
    prev: torch.Tensor | None = None,
    solver: str = "exact",
    debias: bool = True,
) -> NoiseChain:
    """:func:`dependency_chain` with the candidates drawn frame by frame, as the search reads them.

    ``first`` is ``[F, C, H, W]``, each frame's ordinary noise; ``further(f)`` yields frame f's other
    candidates. They are drawn for every frame, the first included (whose search is skipped), so each
    frame's generator advances by R draws exactly as a stacked ``[R, F, ...]`` draw would advance it.
    Only the frame being searched holds candidates, at most :data:`SCORE_BLOCK` + 1 at a time: the
    search's extra memory does not grow with R or F.
    """
    if first.ndim != 4:
        raise ValueError(f"first: expected [F, C, H, W], got shape {tuple(first.shape)}")
    if solver not in SOLVERS:
        raise ValueError(f"solver: {solver!r} is not one of {', '.join(SOLVERS)}")
    frames = first.shape[0]
    lams = _per_frame(lambdas, frames, "lambdas")
    dtype = first.dtype if first.dtype in (torch.float32, torch.float64) else torch.float32
    out = torch.empty(first.shape, dtype=dtype, device=first.device)
    alphas = torch.zeros(frames, dtype=torch.float64)
    last = None if prev is None else prev.to(out)
    for f in range(frames):
        candidates = (draw.to(dtype) for draw in itertools.chain((first[f],), further(f)))
        if last is None:
            out[f] = next(candidates)
            for _ in candidates:  # drawn all the same: the frame's generator moves on by R draws
                pass
        else:
            chosen, error = _select_candidate(last, candidates, lams[f], debias)
            if solver == "exact":
                out[f], alphas[f] = _exact_mix(last, chosen, lams[f])
            else:
                out[f], alphas[f] = _paper_mix(last, chosen, lams[f], error)
        last = out[f]
    return NoiseChain(out.to(first.dtype), alphas, out[-1].clone())  # state at full precision


def dependency_noise(
    draws: torch.Tensor,
    lambdas: float | Sequence[float],
    *,
    prev: torch.Tensor | None = None,
    solver: str = "exact",
    debias: bool = True,
) -> torch.Tensor:
    """Dependency noise model (§3.1): ``[F, C, H, W]``; see :func:`dependency_chain` for α."""
    return dependency_chain(draws, lambdas, prev=prev, solver=solver, debias=debias).noise


def progressive_chain(
    draws: torch.Tensor, alphas: float | Sequence[float], *, prev: torch.Tensor | None = None
) -> NoiseChain:
    """Progressive noise (§3, PYoCo): ε^i = √α_i ε^{i-1} + √(1-α_i) ε_ind^i, ε_ind^i = draws[0, i]."""
    _check_draws(draws)
    frames = draws.shape[1]
    weights = torch.tensor(_per_frame(alphas, frames, "alphas"), dtype=torch.float64)
    out = torch.empty_like(draws[0])
    last = prev
    for f in range(frames):
        if last is None:
            weights[f] = 0.0
            out[f] = draws[0, f]
        else:
            a = float(weights[f])
            out[f] = math.sqrt(a) * last.to(draws) + math.sqrt(1.0 - a) * draws[0, f]
        last = out[f]
    return NoiseChain(out, weights, out[-1].clone())


def mixed_chain(
    draws: torch.Tensor, alphas: float | Sequence[float], *, shared: torch.Tensor | None = None
) -> NoiseChain:
    """Mixed noise (§3, PYoCo): ε^i = √α_i ε_shared + √(1-α_i) ε_ind^i.

    ``ε_ind^i = draws[0, i]`` (so α = 0 is the ordinary noise) and ``ε_shared`` is the first
    frame's second draw, ``draws[1, 0]``, unless a chunk passes the video's ``shared`` noise.
    """
    _check_draws(draws, min_candidates=1 if shared is not None else 2)
    frames = draws.shape[1]
    weights = torch.tensor(_per_frame(alphas, frames, "alphas"), dtype=torch.float64)
    common = draws[1, 0] if shared is None else shared.to(draws)
    root = weights.sqrt().to(draws).view(-1, 1, 1, 1)
    rest = (1.0 - weights).sqrt().to(draws).view(-1, 1, 1, 1)
    return NoiseChain(root * common + rest * draws[0], weights, common.clone())


def independent_chain(draws: torch.Tensor) -> NoiseChain:
    """Independent noise: every frame keeps its ordinary draw (plain image sampling)."""
    _check_draws(draws)
    return NoiseChain(draws[0].clone(), torch.zeros(draws.shape[1], dtype=torch.float64), None)


ChainFunction = Callable[..., NoiseChain]
"""``(draws, strengths, *, state, solver, debias) -> NoiseChain``: one signature for every model."""


@dataclass(frozen=True)
class NoiseModel:
    """One noise model of §3 and what the rest of the extension needs to know about it.

    Attributes:
        name: the public name (``noise_model`` in the API and the infotext).
        chain: makes the noise of a run of frames, chained to the previous chunk's ``state``.
        candidates: candidate draws per frame it reads, given the search setting R.
        chains: its frames form a chain that samplers' per-step noise can follow.
        strength: which schedule sets its strength: ``"lambda"`` (λ_i) or ``"alpha"`` (α_i).
    """

    name: str
    chain: ChainFunction
    candidates: Callable[[int], int]
    chains: bool
    strength: str


MODELS: Mapping[str, NoiseModel] = MappingProxyType(
    {
        model.name: model
        for model in (
            NoiseModel(
                "dependency",
                lambda draws, strengths, *, state, solver, debias: dependency_chain(
                    draws, strengths, prev=state, solver=solver, debias=debias
                ),
                candidates=lambda search: search,
                chains=True,
                strength="lambda",
            ),
            NoiseModel(
                "mixed",
                lambda draws, strengths, *, state, solver, debias: mixed_chain(
                    draws, strengths, shared=state
                ),
                candidates=lambda search: 2,
                chains=False,
                strength="alpha",
            ),
            NoiseModel(
                "progressive",
                lambda draws, strengths, *, state, solver, debias: progressive_chain(
                    draws, strengths, prev=state
                ),
                candidates=lambda search: 1,
                chains=True,
                strength="alpha",
            ),
            NoiseModel(
                "independent",
                lambda draws, strengths, *, state, solver, debias: independent_chain(draws),
                candidates=lambda search: 1,
                chains=False,
                strength="alpha",
            ),
        )
    }
)
"""The noise models by name, in the order the UI lists them."""

NOISE_MODELS = tuple(MODELS)


def noise_chain(
    model: str,
    draws: torch.Tensor,
    strengths: float | Sequence[float],
    *,
    state: torch.Tensor | None = None,
    solver: str = "exact",
    debias: bool = True,
) -> NoiseChain:
    """Any noise model by name, one signature: ``strengths`` is λ for "dependency", else α.

    ``state`` is the ``NoiseChain.state`` of the previous chunk (None for the first).
    """
    if model not in MODELS:
        raise ValueError(f"noise model: {model!r} is not one of {', '.join(NOISE_MODELS)}")
    return MODELS[model].chain(draws, strengths, state=state, solver=solver, debias=debias)


def draws_needed(model: str, search: int) -> int:
    """How many candidate draws per frame a noise model reads (R)."""
    return MODELS[model].candidates(search)
