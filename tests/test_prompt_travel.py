"""Prompt travel's core: keyframe lines parsed, bad keyframes refused naming the line, interpolation."""

from __future__ import annotations

import pytest
import torch

from zs2_lib.prompt_travel import (
    TravelError,
    interpolate,
    lerp,
    merge_schedules,
    pad_tokens,
    parse,
    slerp,
)

EXAMPLE = """masterpiece, best quality
<lora:tiny-lora:0.8>
0: a red fox sitting in snow
16: a red fox running, snow flying

32: a red fox leaping
, detailed fur"""


def test_a_prompt_without_keyframe_lines_is_an_ordinary_prompt():
    for prompt in ("a red fox", "a fox\nin snow", "16:9 widescreen, 12:30 pm", "(fox:1.2), [a:b:3]", ""):
        assert parse(prompt) is None


def test_keyframes_head_and_tail_are_parsed_with_their_line_numbers():
    travel = parse(EXAMPLE)
    assert [(k.frame, k.text, k.line) for k in travel.keyframes] == [
        (0, "a red fox sitting in snow", 3),
        (16, "a red fox running, snow flying", 4),
        (32, "a red fox leaping", 6),
    ]
    assert travel.head == "masterpiece, best quality, <lora:tiny-lora:0.8>"
    assert travel.tail == "detailed fur"
    assert (
        travel.prompt(1)
        == "masterpiece, best quality, <lora:tiny-lora:0.8>, a red fox running, snow flying, detailed fur"
    )


def test_a_travel_without_head_or_tail_is_its_keyframe_texts():
    assert parse("0: a cat\n15: a dog").prompts() == ["a cat", "a dog"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        (
            "0: a cat\n8: a dog\n4: a bird",
            r"line 3 \('4: a bird'\): keyframe 4 is not after keyframe 8 on line 2",
        ),
        ("0: a cat\n0: a dog", r"line 2 .*keyframe 0 is not after keyframe 0 on line 1"),
        ("0: a cat\n8:   ", r"line 2 .*keyframe 8 has no text"),
        ("0: a cat\n8: ,", r"line 2 .*keyframe 8 has no text"),
        ("0: a cat\nsomething\n8: a dog", r"line 2 \('something'\): text between keyframes"),
    ],
)
def test_bad_keyframes_are_refused_naming_the_line(prompt, expected):
    with pytest.raises(TravelError, match=expected):
        parse(prompt)


def test_a_keyframe_beyond_the_last_frame_is_refused_naming_the_line():
    travel = parse("0: a cat\n15: a dog", what="negative prompt")
    travel.validate(16)
    with pytest.raises(
        TravelError, match=r"negative prompt travel, line 2: keyframe 15 is beyond the last frame .*14"
    ):
        travel.validate(15)


def test_frames_hold_before_the_first_keyframe_and_after_the_last_and_move_linearly_between():
    travel = parse("4: a\n8: b\n16: c")
    assert travel.segment(0) == (0, 0, 0.0)
    assert travel.segment(4) == (0, 0, 0.0)
    assert travel.segment(6) == (0, 1, 0.5)
    assert travel.segment(8) == (1, 1, 0.0)
    assert travel.segment(10) == (1, 2, 0.25)
    assert travel.segment(16) == (2, 2, 0.0)
    assert travel.segment(99) == (2, 2, 0.0)


def test_interpolation_is_exact_at_the_keyframes():
    a, b = torch.randn(77, 32), torch.randn(77, 32)
    for mix in (lerp, slerp):
        assert mix(a, b, 0.0) is a
        assert mix(a, b, 1.0) is b
        assert torch.allclose(mix(a, b, 1 - 1e-9), b, atol=1e-6)


def test_slerp_keeps_each_tokens_norm_where_lerp_dips():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(77, 768, generator=generator), torch.randn(77, 768, generator=generator)
    expected = 0.5 * (a.norm(dim=-1) + b.norm(dim=-1))
    spherical, linear = slerp(a, b, 0.5).norm(dim=-1), lerp(a, b, 0.5).norm(dim=-1)
    assert torch.allclose(spherical, expected, rtol=1e-5)
    # independent directions: the linear midpoint is about 1/sqrt(2) as long
    assert (linear / expected).mean() == pytest.approx(0.5**0.5, abs=0.03)


def test_slerp_moves_each_token_at_constant_angular_speed():
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    for t in (0.25, 0.5, 0.75):
        point = slerp(a, b, t)[0]
        assert float(torch.atan2(point[1], point[0])) == pytest.approx(t * torch.pi / 2, abs=1e-6)
        assert float(point.norm()) == pytest.approx(1 + t, abs=1e-6)


def test_slerp_of_parallel_or_zero_tokens_falls_back_to_lerp():
    a = torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    b = torch.tensor([[2.0, 2.0], [3.0, 4.0]])
    assert torch.allclose(slerp(a, b, 0.5), lerp(a, b, 0.5))


def test_sdxl_conditioning_mixes_tokens_spherically_and_the_vector_linearly():
    generator = torch.Generator().manual_seed(1)
    size = torch.randn(1536, generator=generator)  # the size embeddings both keyframes share
    a = {"crossattn": torch.randn(77, 96, generator=generator), "vector": torch.cat([torch.randn(64), size])}
    b = {"crossattn": torch.randn(77, 96, generator=generator), "vector": torch.cat([torch.randn(64), size])}
    mixed = interpolate(a, b, 0.3)
    assert torch.allclose(mixed["crossattn"], slerp(a["crossattn"], b["crossattn"], 0.3))
    assert torch.allclose(mixed["vector"], torch.lerp(a["vector"], b["vector"], 0.3))
    assert torch.allclose(mixed["vector"][64:], size, atol=1e-6)  # the shared size part is untouched


def test_shorter_conditionings_are_padded_with_empty_prompt_chunks():
    empty = torch.randn(77, 8)
    cond = torch.randn(77, 8)
    padded = pad_tokens(cond, 154, empty)
    assert padded.shape == (154, 8)
    assert torch.equal(padded[:77], cond)
    assert torch.equal(padded[77:], empty)
    assert pad_tokens(cond, 77, empty) is cond
    with pytest.raises(ValueError, match="cannot pad"):
        pad_tokens(cond, 100, empty)


def test_prompt_editing_schedules_are_merged_on_the_union_of_their_steps():
    a = [(3, "a1"), (10, "a2")]
    b = [(5, "b1"), (10, "b2")]
    assert merge_schedules(a, b) == [(3, "a1", "b1"), (5, "a2", "b1"), (10, "a2", "b2")]
    assert merge_schedules([(10, "a")], [(10, "b")]) == [(10, "a", "b")]
