"""Forge's CFG batch layout: chunks of B frames named by ``cond_or_uncond``, uncond first, split calls.

Forge's ``calc_cond_uncond_batch`` stacks whole chunks (every frame of the batch, in order), one per
condition; ``[1, 0]`` is uncond then cond, ``[1, 0, 0]`` has an AND prompt, ``[0]`` is CFG scale 1,
and the chunks of one evaluation may come in separate UNet calls.
"""

from __future__ import annotations

import torch

from zs2_lib.attention import TemporalMomentum
from zs2_lib.cfg_layout import ChunkCounter, chunked_layout, denoiser_layout
from zs2_lib.momentum import momentum_mix

B = 4
MU = 0.9


def streams(layout):
    return [(s.key[1:], s.rows, s.first_frame) for s in layout.streams]


def test_uncond_first_is_an_uncond_stream_then_a_cond_stream_of_the_same_frames():
    layout = chunked_layout([1, 0], B, first_frame=8)
    assert streams(layout) == [(("uncond", 0), (0, 1, 2, 3), 8), (("cond", 0), (4, 5, 6, 7), 8)]


def test_cfg_scale_one_has_only_the_cond_stream():
    assert streams(chunked_layout([0], B)) == [(("cond", 0), (0, 1, 2, 3), 0)]


def test_an_and_prompt_gives_each_cond_chunk_its_own_stream():
    layout = chunked_layout([1, 0, 0], 2, tag=("pass", 3))
    assert [s.key for s in layout.streams] == [
        (("pass", 3), "uncond", 0),
        (("pass", 3), "cond", 0),
        (("pass", 3), "cond", 1),
    ]
    assert [s.rows for s in layout.streams] == [(0, 1), (2, 3), (4, 5)]


def test_separate_calls_of_one_evaluation_name_their_chunks_as_one_call_would():
    """Memory-short Forge runs [1, 0, 0] as [1, 0] then [0]: the third chunk is still cond 1."""
    counter = ChunkCounter()
    first = chunked_layout([1, 0], B, counter=counter)
    second = chunked_layout([0], B, counter=counter)
    whole = chunked_layout([1, 0, 0], B)
    assert [s.key for s in first.streams + second.streams] == [s.key for s in whole.streams]


def contexts(marks, seed=0):
    """A UNet call's attn1 input: one [B, tokens, dim] block per chunk, each chunk different."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(marks) * B, 5, 3, generator=g)


def mixed(marks, x, layout=None):
    momentum = TemporalMomentum(MU, dense=False)
    momentum.layout = chunked_layout(marks, B) if layout is None else layout
    return momentum.mix("attn1", x)


def test_each_chunk_is_mixed_along_its_frames_alone():
    x = contexts([1, 0, 0])
    out = mixed([1, 0, 0], x)
    for chunk in range(3):
        rows = slice(chunk * B, (chunk + 1) * B)
        assert torch.equal(out[rows], momentum_mix(x[rows], MU)[0])


def test_cond_frames_never_mix_with_uncond_frames():
    """Changing the uncond chunk leaves the cond chunks' mix as it was, and the reverse.

    The check has teeth: with A1111's row order (frames interleaved by sub-prompt, cond first) read
    over Forge's batch, the cond rows would change with the uncond rows.
    """
    marks = [1, 0, 0]
    x = contexts(marks)
    other = x.clone()
    other[:B] += 1.0  # another uncond chunk
    assert torch.equal(mixed(marks, x)[B:], mixed(marks, other)[B:])
    other_cond = x.clone()
    other_cond[B:] -= 1.0
    assert torch.equal(mixed(marks, x)[:B], mixed(marks, other_cond)[:B])
    a1111 = denoiser_layout([2] * B)
    assert not torch.equal(mixed(marks, x, a1111)[B:], mixed(marks, other, a1111)[B:])


def test_an_evaluation_split_over_calls_equals_one_call():
    marks = [1, 0, 0]
    x = contexts(marks)
    one = mixed(marks, x)
    momentum = TemporalMomentum(MU, dense=False)
    counter = ChunkCounter()
    parts = []
    for call, rows in (([1], slice(0, B)), ([0, 0], slice(B, 3 * B))):
        momentum.layout = chunked_layout(call, B, counter=counter)
        parts.append(momentum.mix("attn1", x[rows]))
    assert torch.equal(torch.cat(parts), one)


def test_a_video_in_two_chunks_equals_one_batch_of_its_frames():
    """Frames 0..7 as one batch of 8, or as chunks of 4 whose state carries over: the same mix."""
    g = torch.Generator().manual_seed(1)
    uncond, cond = torch.randn(2, 2 * B, 5, 3, generator=g)
    whole = TemporalMomentum(MU, dense=False)
    whole.layout = chunked_layout([1, 0], 2 * B)
    expected = whole.mix("attn1", torch.cat([uncond, cond]))
    chunked = TemporalMomentum(MU, dense=False)
    outs = []
    for first in (0, B):
        chunked.layout = chunked_layout([1, 0], B, first_frame=first)
        outs.append(chunked.mix("attn1", torch.cat([uncond[first : first + B], cond[first : first + B]])))
    got_uncond = torch.cat([out[:B] for out in outs])
    got_cond = torch.cat([out[B:] for out in outs])
    assert torch.allclose(got_uncond, expected[: 2 * B], atol=1e-6)
    assert torch.allclose(got_cond, expected[2 * B :], atol=1e-6)


class ForgeAttn1(torch.nn.Module):
    """Forge's attn1 signature: ``to_v`` reads ``value`` when an attn1 patch set it."""

    def forward(self, x, context=None, value=None, transformer_options=None):
        return context, value


def test_a_value_set_by_an_attn1_patch_is_mixed_like_the_context():
    attn1 = ForgeAttn1()
    momentum = TemporalMomentum(MU, dense=False)
    attn1.register_forward_pre_hook(momentum.pre_hook("attn1"), with_kwargs=True)
    x = contexts([1, 0])
    momentum.layout = chunked_layout([1, 0], B)
    context, value = attn1(x, context=None, value=x * 2, transformer_options={})
    assert torch.allclose(value, context * 2, atol=1e-6)
    assert not torch.equal(context, x)
    context, value = attn1(x, context=None, value=None, transformer_options={})
    assert value is None
