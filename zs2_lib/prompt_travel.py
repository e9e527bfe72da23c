"""Prompt travel: a prompt written as keyframe lines, and the conditioning of every frame between them.

A travel prompt has keyframe lines ``N: text`` (N a frame index from 0), optionally head lines
before the first keyframe (added to every frame) and tail lines after the last one::

    masterpiece, best quality
    0: a red fox sitting in snow
    16: a red fox running, snow flying
    , detailed fur

Keyframe j's prompt is ``head, text_j, tail``. Frame k between keyframes a and b gets the
interpolation of their conditionings at ``t = (k - a) / (b - a)``; frames before the first keyframe
hold the first, frames after the last hold the last. A prompt without keyframe lines is not a
travel (:func:`parse` returns None) and stays an ordinary prompt.

Token embeddings are interpolated spherically, per token (:func:`slerp`): a linear mix of two
directions is shorter than either, so a per-token lerp dips in norm between keyframes, while the
UNet saw only CLIP's norms in training (``benchmarks/bench_prompt_travel.py`` measures both).
Vectors whose parts may coincide (SDXL's pooled text and size embeddings) are mixed linearly, so
equal parts stay equal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

_KEYFRAME = re.compile(r"^\s*(\d+)\s*:(?!\d)(.*)$")
"""``N: text``; a colon followed by a digit (``16:9``, ``12:30``) is not a keyframe."""


class TravelError(ValueError):
    """A travel prompt that cannot be sampled; the message names the line."""


@dataclass(frozen=True)
class Keyframe:
    """One keyframe line: its frame index, its text and its line number (from 1) in the prompt."""

    frame: int
    text: str
    line: int


@dataclass(frozen=True)
class Travel:
    """A parsed travel prompt: head and tail text and the keyframes, in ascending frame order."""

    head: str
    keyframes: tuple[Keyframe, ...]
    tail: str
    what: str = "prompt"

    def prompt(self, index: int) -> str:
        """Keyframe ``index``'s full prompt: head, text, tail joined by commas."""
        return _join(self.head, self.keyframes[index].text, self.tail)

    def prompts(self) -> list[str]:
        """Every keyframe's full prompt, in order."""
        return [self.prompt(index) for index in range(len(self.keyframes))]

    def validate(self, frames: int) -> None:
        """Refuse keyframes a video of ``frames`` frames never reaches."""
        for keyframe in self.keyframes:
            if keyframe.frame >= frames:
                raise TravelError(
                    f"{self.what} travel, line {keyframe.line}: keyframe {keyframe.frame} is beyond the "
                    f"last frame of the video ({frames - 1}; frames are counted from 0)"
                )

    def segment(self, frame: int) -> tuple[int, int, float]:
        """``(a, b, t)``: frame ``frame`` is keyframe a's conditioning mixed with keyframe b's at t."""
        frames = [keyframe.frame for keyframe in self.keyframes]
        if frame <= frames[0]:
            return 0, 0, 0.0
        for a in range(len(frames) - 1):
            if frames[a] <= frame < frames[a + 1]:
                t = (frame - frames[a]) / (frames[a + 1] - frames[a])
                return (a, a, 0.0) if t == 0 else (a, a + 1, t)
        last = len(frames) - 1
        return last, last, 0.0


def _join(*parts: str) -> str:
    cleaned = [part.strip().strip(",").strip() for part in parts]
    return ", ".join(part for part in cleaned if part)


def parse(prompt: str, what: str = "prompt") -> Travel | None:
    """The travel of ``prompt``, or None if it has no keyframe lines (an ordinary prompt).

    Raises:
        TravelError: keyframes not ascending, a keyframe without text, or text between keyframes
            that is not a keyframe line; the message names the line.
    """
    lines = prompt.splitlines()
    numbered = [(number, _KEYFRAME.match(line)) for number, line in enumerate(lines, start=1)]
    keyframe_lines = [number for number, match in numbered if match]
    if not keyframe_lines:
        return None
    first, last = keyframe_lines[0], keyframe_lines[-1]
    keyframes: list[Keyframe] = []
    for number, match in numbered[first - 1 : last]:
        text = lines[number - 1].strip()
        if match is None:
            if text:
                raise TravelError(
                    f"{what} travel, line {number} ({text!r}): text between keyframes must be a keyframe "
                    "line 'N: text'; head lines go before the first keyframe, tail lines after the last"
                )
            continue
        frame, body = int(match.group(1)), match.group(2).strip()
        if not _join(body):
            raise TravelError(f"{what} travel, line {number} ({text!r}): keyframe {frame} has no text")
        if keyframes and frame <= keyframes[-1].frame:
            raise TravelError(
                f"{what} travel, line {number} ({text!r}): keyframe {frame} is not after keyframe "
                f"{keyframes[-1].frame} on line {keyframes[-1].line}; keyframes must ascend"
            )
        keyframes.append(Keyframe(frame, body, number))
    head = _join(*(line for line in lines[: first - 1]))
    tail = _join(*(line for line in lines[last:]))
    return Travel(head, tuple(keyframes), tail, what)


# interpolation -----------------------------------------------------------------------------------


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """``(1 - t) a + t b``; exactly ``a`` at t = 0 and ``b`` at t = 1."""
    if t == 0:
        return a
    if t == 1:
        return b
    return torch.lerp(a, b, t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-6) -> torch.Tensor:
    """Spherical interpolation of each vector along the last axis (each token), norms mixed linearly.

    The direction moves along the great circle from ``a``'s to ``b``'s at constant angular speed
    and the norm goes linearly from ``|a|`` to ``|b|``; nearly parallel (or zero) vectors fall back
    to :func:`lerp`. Exactly ``a`` at t = 0 and ``b`` at t = 1. Computed in float64.
    """
    if t == 0:
        return a
    if t == 1:
        return b
    x, y = a.double(), b.double()
    norm_x, norm_y = x.norm(dim=-1, keepdim=True), y.norm(dim=-1, keepdim=True)
    unit_x, unit_y = x / norm_x.clamp_min(eps), y / norm_y.clamp_min(eps)
    omega = (unit_x * unit_y).sum(-1, keepdim=True).clamp(-1.0, 1.0).acos()
    sin_omega = omega.sin()
    safe = sin_omega.abs() > eps
    denominator = torch.where(safe, sin_omega, torch.ones_like(sin_omega))
    direction = (((1 - t) * omega).sin() * unit_x + (t * omega).sin() * unit_y) / denominator
    spherical = direction * ((1 - t) * norm_x + t * norm_y)
    result = torch.where(safe & (norm_x > eps) & (norm_y > eps), spherical, torch.lerp(x, y, t))
    return result.to(a.dtype)


INTERPOLATIONS: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    "slerp": slerp,
    "lerp": lerp,
}
TOKEN_INTERPOLATION = "slerp"
"""How token embeddings are mixed (chosen by measurement, see the module docstring)."""

VECTOR_INTERPOLATION = "lerp"
"""How pooled/size vectors (SDXL's ``vector``) are mixed: linearly, so equal parts stay equal."""


def pad_tokens(cond: torch.Tensor, tokens: int, empty: torch.Tensor) -> torch.Tensor:
    """Pad ``cond`` (tokens × width) to ``tokens`` rows with the empty prompt's 77-token chunk.

    This is how A1111 pads a cond and an uncond of different lengths (``pad_cond``), so a short
    keyframe next to a long one reads as that prompt followed by empty chunks.
    """
    missing = tokens - cond.shape[0]
    if missing == 0:
        return cond
    if missing < 0 or missing % empty.shape[0]:
        raise ValueError(f"cannot pad {cond.shape[0]} tokens to {tokens} with chunks of {empty.shape[0]}")
    return torch.cat([cond, empty.to(cond).repeat(missing // empty.shape[0], 1)])


def interpolate(
    a: torch.Tensor | dict[str, torch.Tensor],
    b: torch.Tensor | dict[str, torch.Tensor],
    t: float,
) -> torch.Tensor | dict[str, torch.Tensor]:
    """Mix two conditionings: tensors of tokens, or SDXL dicts (``crossattn`` tokens, ``vector``)."""
    if isinstance(a, dict):
        return {
            key: interpolate(value, b[key], t)
            if key == "crossattn"
            else INTERPOLATIONS[VECTOR_INTERPOLATION](value, b[key], t)
            for key, value in a.items()
        }
    return INTERPOLATIONS[TOKEN_INTERPOLATION](a, b, t)


Schedule = list[tuple[int, object]]
"""A prompt-editing schedule: ``(end_at_step, cond)`` entries, as A1111's ``ScheduledPromptConditioning``."""


def merge_schedules(a: Schedule, b: Schedule) -> list[tuple[int, object, object]]:
    """Two prompt-editing schedules ``[(end_at_step, cond)]`` on the union of their step boundaries.

    Each entry is ``(end_at_step, cond of a, cond of b)`` for the steps up to ``end_at_step``, as
    A1111 picks a schedule's entry: the first whose ``end_at_step`` is not before the step.
    """

    def at(schedule: Schedule, step: int) -> object:
        return next((cond for end, cond in schedule if step <= end), schedule[-1][1])

    ends = sorted({end for end, _ in a} | {end for end, _ in b})
    return [(end, at(a, end), at(b, end)) for end in ends]
