"""The prompt-travel feature on a fake ``p``: A1111's conditioning types, chunks, padding, undo.

The fakes mirror A1111's ``prompt_parser`` (``ScheduledPromptConditioning``, composable and
multicond conditionings, ``SdConditioning``) and ``get_conds_with_caching``; the "text encoder"
gives each prompt a fixed random conditioning, 77 tokens per 40 characters or part of it.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import torch

from zs2_lib.chunking import ChunkPlan
from zs2_lib.params import ZS2Params
from zs2_lib.prompt_travel import slerp
from zs2_lib.webui.features.prompt_travel import PromptTravel
from zs2_lib.webui.run import Run

WIDTH = 8
EMPTY = torch.randn(77, WIDTH, generator=torch.Generator().manual_seed(99))
Scheduled = namedtuple("Scheduled", ["end_at_step", "cond"])


class Composable:
    def __init__(self, schedules: list[Any], weight: float = 1.0) -> None:
        self.schedules = schedules
        self.weight = weight


class Multicond:
    def __init__(self, shape: tuple, batch: list[list[Composable]]) -> None:
        self.shape = shape
        self.batch = batch


class SdConditioning(list):
    def __init__(self, prompts: list[str], is_negative_prompt: bool = False, copy_from: Any = None) -> None:
        super().__init__(prompts)
        self.is_negative_prompt = is_negative_prompt or getattr(copy_from, "is_negative_prompt", False)


def encode(prompt: str) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(map(ord, prompt)))
    return torch.randn(77 * (1 + (len(prompt) - 1) // 40), WIDTH, generator=generator)


def learned(model: Any, prompts: list[str], steps: int, *args: Any) -> list[list[Scheduled]]:
    return [[Scheduled(steps, encode(prompt))] for prompt in prompts]


def multicond(model: Any, prompts: list[str], steps: int, *args: Any) -> Multicond:
    return Multicond((len(prompts),), [[Composable(schedule)] for schedule in learned(model, prompts, steps)])


class FakeProcessing:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def get_conds_with_caching(self, function, prompts, steps, caches, extra_network_data, hires_steps=None):
        self.calls.append(list(prompts))
        return function(None, prompts, steps, hires_steps, False)

    def close(self) -> None:
        pass


class FakeHost:
    def empty_cond(self) -> torch.Tensor:
        return EMPTY


def conds(prompt: str, frames: int = 16, chunk: int = 16, negative: bool = False) -> list[torch.Tensor]:
    """Every frame's conditioning, made chunk by chunk through the feature."""
    p = FakeProcessing()
    params = ZS2Params(enabled=True, frames=frames, chunk=chunk)
    plan = ChunkPlan(params.frames, params.chunk)
    run = Run(p, FakeHost(), [PromptTravel()], params=params, plan=plan)
    run.start()
    out = []
    try:
        for batch in range(plan.batches):
            run.begin_batch(batch)
            prompts = SdConditioning([prompt] * plan.batch_size, is_negative_prompt=negative)
            if negative:
                rows = p.get_conds_with_caching(learned, prompts, 20, [None], None)
                out += [row[0].cond for row in rows]
            else:
                result = p.get_conds_with_caching(multicond, prompts, 20, [None], None)
                out += [row[0].schedules[0].cond for row in result.batch]
    finally:
        run.finish()
    assert "get_conds_with_caching" not in vars(p)  # undone
    return out[:frames]


A, B = "a red fox in snow", "a blue bird over the sea"


def test_an_ordinary_prompt_goes_through_untouched():
    p = FakeProcessing()
    params = ZS2Params(enabled=True, frames=4)
    run = Run(p, FakeHost(), [PromptTravel()], params=params, plan=ChunkPlan(4, 16))
    run.start()
    run.begin_batch(0)
    prompts = SdConditioning([A] * 4)
    result = p.get_conds_with_caching(multicond, prompts, 20, [None], None)
    run.finish()
    assert p.calls == [[A] * 4]
    assert all(torch.equal(row[0].schedules[0].cond, encode(A)) for row in result.batch)


def test_each_frame_is_the_slerp_of_its_keyframes_and_keyframes_are_exact():
    frames = conds(f"0: {A}\n15: {B}")
    assert torch.equal(frames[0], encode(A))
    assert torch.equal(frames[15], encode(B))
    for k in range(1, 15):
        assert torch.allclose(frames[k], slerp(encode(A), encode(B), k / 15), atol=1e-6)


def test_frame_conditioning_does_not_depend_on_the_chunking():
    prompt = f"best quality\n2: {A}\n9: {B}\n13: {A}, smiling"
    whole = conds(prompt, frames=16, chunk=16)
    for chunk in (1, 3, 5, 8):
        chunked = conds(prompt, frames=16, chunk=chunk)
        assert all(torch.equal(x, y) for x, y in zip(whole, chunked, strict=True)), chunk


def test_keyframes_are_encoded_once_per_chunk_request_not_per_frame():
    p = FakeProcessing()
    run = Run(
        p, FakeHost(), [PromptTravel()], params=ZS2Params(enabled=True, frames=8), plan=ChunkPlan(8, 16)
    )
    run.start()
    run.begin_batch(0)
    p.get_conds_with_caching(multicond, SdConditioning([f"0: {A}\n7: {B}"] * 8), 20, [None], None)
    run.finish()
    assert p.calls == [[A, B]]


def test_a_shorter_keyframe_is_padded_with_empty_prompt_chunks():
    long = "a very long description of a lighthouse on a cliff"  # 2 chunks of 77
    frames = conds(f"0: {A}\n15: {long}")
    assert frames[0].shape == frames[15].shape == (154, WIDTH)
    assert torch.equal(frames[0][:77], encode(A))
    assert torch.equal(frames[0][77:], EMPTY)
    assert torch.equal(frames[15], encode(long))


def test_a_keyframed_negative_prompt_travels():
    frames = conds(f"0: {A}\n15: {B}", negative=True)
    assert torch.equal(frames[0], encode(A))
    assert torch.equal(frames[15], encode(B))
    assert torch.allclose(frames[5], slerp(encode(A), encode(B), 5 / 15), atol=1e-6)
