"""attn1 hooks on the real ldm UNet: Eq. 2 through the context, streams, chunks, clean removal."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from ldm.modules.attention import CrossAttention

from tests.helpers import CONTEXT_DIM, make_unet
from zs2_lib.attention import FrameLayout, MomentumHooks, TemporalMomentum, attn1_modules, momentum_attention
from zs2_lib.momentum import momentum_weights

FRAMES = 6


@pytest.fixture(scope="module")
def unet():
    return make_unet(seed=0)


def cfg_inputs(frames: int = FRAMES, seed: int = 0, size: int = 8):
    """A CFG batch: cond rows (frames 0..F-1) then uncond rows, as A1111 stacks them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(frames, 4, size, size, generator=g)
    cond, uncond = torch.randn(2, 1, 7, CONTEXT_DIM, generator=g)
    context = torch.cat([cond.expand(frames, -1, -1), uncond.expand(frames, -1, -1)])
    return torch.cat([x, x]), torch.full((2 * frames,), 500), context


def cfg_layout(first: int = 0, frames: int = FRAMES) -> FrameLayout:
    return FrameLayout.blocks([("cond", first, frames), ("uncond", first, frames)])


@torch.no_grad()
def test_mu_zero_is_bit_identical_to_no_hooks(unet):
    x, t, context = cfg_inputs()
    plain = unet(x, t, context=context)
    with momentum_attention(unet, 0.0, cfg_layout()):
        hooked = unet(x, t, context=context)
    assert torch.equal(hooked, plain)


def capture_keys(unet, fn):
    """Run fn and return each attn1's to_k output, by layer name."""
    keys, handles = {}, []
    for name, module in attn1_modules(unet):
        handles.append(
            module.to_k.register_forward_hook(lambda m, a, out, name=name: keys.__setitem__(name, out))
        )
    try:
        fn()
    finally:
        for handle in handles:
            handle.remove()
    return keys


@torch.no_grad()
def test_mu_one_gives_every_frame_the_first_frames_keys(unet):
    x, t, context = cfg_inputs()
    with momentum_attention(unet, 1.0, cfg_layout()):
        keys = capture_keys(unet, lambda: unet(x, t, context=context))
    assert len(keys) == len(attn1_modules(unet)) > 0
    for k in keys.values():
        for stream_start in (0, FRAMES):
            first = k[stream_start]
            for row in range(stream_start, stream_start + FRAMES):
                torch.testing.assert_close(k[row], first, rtol=0, atol=1e-6)


@torch.no_grad()
def test_hooked_attention_is_eq2_on_keys_and_values():
    """softmax(Q K̈ᵀ/√d) V̈ with K̈ = W K, V̈ = W V: the context trick equals Eq. 2 itself."""
    torch.manual_seed(0)
    attn = CrossAttention(query_dim=16, heads=2, dim_head=8).eval()
    model = torch.nn.Module()
    model.attn1 = attn
    x = torch.randn(5, 9, 16)
    mus = [0.0, 0.3, 0.9, 0.5, 0.99]
    with momentum_attention(model, mus, FrameLayout.blocks([("s", 0, 5)])):
        hooked = model.attn1(x, context=None)
    weights = momentum_weights(mus, 5).float()
    k = torch.einsum("ij,jnc->inc", weights, attn.to_k(x))
    v = torch.einsum("ij,jnc->inc", weights, attn.to_v(x))
    q = attn.to_q(x)

    def heads(t):
        return t.view(5, 9, 2, 8).transpose(1, 2)

    out = F.softmax(heads(q) @ heads(k).transpose(-1, -2) * 8**-0.5, -1) @ heads(v)
    expected = attn.to_out(out.transpose(1, 2).reshape(5, 9, 16))
    torch.testing.assert_close(hooked, expected, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_streams_never_mix(unet):
    x, t, context = cfg_inputs()
    with momentum_attention(unet, 0.9, cfg_layout()):
        out = unet(x, t, context=context)
        x2 = x.clone()
        x2[FRAMES:] += torch.randn(FRAMES, 4, 8, 8)  # change only the uncond stream
        out2 = unet(x2, t, context=context)
    assert torch.equal(out[:FRAMES], out2[:FRAMES])
    assert not torch.allclose(out[FRAMES:], out2[FRAMES:])
    # and each stream alone gives what it gives inside the shared batch
    with momentum_attention(unet, 0.9, FrameLayout.blocks([("cond", 0, FRAMES)])):
        alone = unet(x[:FRAMES], t[:FRAMES], context=context[:FRAMES])
    torch.testing.assert_close(alone, out[:FRAMES], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_rows_outside_the_layout_pass_through(unet):
    x, t, context = cfg_inputs()
    plain = unet(x, t, context=context)
    layout = FrameLayout(tuple(("cond", f) for f in range(FRAMES)) + (None,) * FRAMES)
    with momentum_attention(unet, 0.9, layout):
        hooked = unet(x, t, context=context)
    torch.testing.assert_close(hooked[FRAMES:], plain[FRAMES:], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(hooked[:FRAMES], plain[:FRAMES], atol=1e-4)


@torch.no_grad()
def test_a_video_in_chunks_equals_one_batch(unet):
    """24 frames in one forward equal three forwards of 8 with the carried state (DESIGN.md §1.3)."""
    x, t, context = cfg_inputs(frames=24, seed=1)
    mus = torch.linspace(0.6, 0.99, 24).tolist()
    with momentum_attention(unet, mus, cfg_layout(0, 24)):
        whole = unet(x, t, context=context)
    state, parts = {}, []
    cond, uncond = x[:24], x[24:]
    for start in range(0, 24, 8):
        chunk_x = torch.cat([cond[start : start + 8], uncond[start : start + 8]])
        chunk_context = torch.cat([context[start : start + 8], context[24 + start : 24 + start + 8]])
        with momentum_attention(unet, mus, cfg_layout(start, 8), state=state):
            parts.append(unet(chunk_x, t[:16], context=chunk_context))
    chunked = torch.cat([torch.cat([p[:8] for p in parts]), torch.cat([p[8:] for p in parts])])
    torch.testing.assert_close(chunked, whole, rtol=1e-5, atol=1e-5)
    # without the carried state the chunks would restart the average: clearly different
    with momentum_attention(unet, mus, cfg_layout(8, 8)):
        fresh = unet(torch.cat([cond[8:16], uncond[8:16]]), t[:16], context=chunk_context)
    assert not torch.allclose(fresh, parts[1], atol=1e-3)


@torch.no_grad()
def test_a_stream_split_over_two_calls_continues(unet):
    """A1111 splits a batch into several UNet calls (batch_cond_uncond off, AND prompts)."""
    x, t, context = cfg_inputs()
    layout = cfg_layout()
    with momentum_attention(unet, 0.8, layout):
        whole = unet(x, t, context=context)
    momentum = TemporalMomentum(0.8)
    with MomentumHooks(unet, momentum):
        parts = []
        for start, stop in ((0, 4), (4, 9), (9, 12)):
            momentum.layout = layout.slice(start, stop)
            parts.append(unet(x[start:stop], t[start:stop], context=context[start:stop]))
    torch.testing.assert_close(torch.cat(parts), whole, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_interleaved_rows_and_stale_state():
    layout = FrameLayout((("a", 3), ("b", 0), ("a", 4), ("b", 1)))
    assert [(s.key, s.rows, s.first_frame) for s in layout.streams] == [("a", (0, 2), 3), ("b", (1, 3), 0)]
    with pytest.raises(ValueError, match="consecutive"):
        FrameLayout((("a", 0), ("a", 2)))
    momentum = TemporalMomentum(1.0, state={("l", "a"): (7, torch.zeros(2))})
    momentum.layout = FrameLayout((("a", 3), ("a", 4)))
    context = torch.arange(4.0).view(2, 2)
    # the carried frame is 7, not 2: it is not the predecessor of frame 3 and must not be mixed in
    assert torch.equal(momentum.mix("l", context), torch.tensor([[0.0, 1.0], [0.0, 1.0]]))
    assert momentum.state[("l", "a")][0] == 4


class ExplodingBlock(torch.nn.Module):
    def forward(self, *args, **kwargs):
        raise RuntimeError("boom")


@torch.no_grad()
def test_hooks_are_gone_after_an_exception_mid_forward(unet):
    x, t, context = cfg_inputs()
    before = unet(x, t, context=context)
    middle = unet.middle_block[1]
    handle = middle.register_forward_pre_hook(lambda *a: ExplodingBlock()())
    try:
        with pytest.raises(RuntimeError, match="boom"), momentum_attention(unet, 0.9, cfg_layout()):
            unet(x, t, context=context)
    finally:
        handle.remove()
    assert all(not module._forward_pre_hooks for _, module in attn1_modules(unet))
    assert torch.equal(unet(x, t, context=context), before)


@torch.no_grad()
def test_hooks_survive_a_replaced_attention_forward(unet, monkeypatch):
    """A1111 swaps CrossAttention.forward for its optimisations; the instance hooks still apply."""
    x, t, context = cfg_inputs()
    with momentum_attention(unet, 0.9, cfg_layout()):
        reference = unet(x, t, context=context)

    def sdp_forward(self, x, context=None, mask=None, **kwargs):
        context = x if context is None else context
        q, k, v = (
            t.view(t.shape[0], t.shape[1], self.heads, -1).transpose(1, 2)
            for t in (self.to_q(x), self.to_k(context), self.to_v(context))
        )
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).flatten(2)
        return self.to_out(out)

    monkeypatch.setattr(CrossAttention, "forward", sdp_forward)
    with momentum_attention(unet, 0.9, cfg_layout()):
        swapped = unet(x, t, context=context)
    torch.testing.assert_close(swapped, reference, rtol=1e-4, atol=1e-4)


def test_sgm_calling_convention_is_kept():
    """sgm calls attn1(x, context=None, additional_tokens=..., n_times_crossframe_attn_in_self=...)."""
    seen = {}

    class SgmAttention(torch.nn.Module):
        def forward(
            self, x, context=None, mask=None, additional_tokens=None, n_times_crossframe_attn_in_self=0
        ):
            seen.update(context=context, extra=(additional_tokens, n_times_crossframe_attn_in_self))
            return x

    model = torch.nn.Module()
    model.block = torch.nn.Module()
    model.block.attn1 = SgmAttention()
    x = torch.randn(3, 4, 2)
    with momentum_attention(model, 1.0, FrameLayout.blocks([("s", 0, 3)])):
        model.block.attn1(x, context=None, additional_tokens="tok", n_times_crossframe_attn_in_self=2)
    assert seen["extra"] == ("tok", 2)
    assert torch.equal(seen["context"], x[:1].expand(3, -1, -1))


def test_layout_mismatch_passes_through_and_is_counted():
    momentum = TemporalMomentum(0.9)
    momentum.layout = cfg_layout()
    context = torch.randn(5, 3, 2)
    assert momentum.mix("l", context) is context
    assert momentum.mismatches == 1


def test_a_model_without_attn1_is_refused():
    with pytest.raises(ValueError, match="attn1"):
        MomentumHooks(torch.nn.Linear(2, 2), TemporalMomentum(0.5))


@torch.no_grad()
def test_the_dense_mix_gives_the_recurrences_frames_in_chunks(unet):
    """What accelerators run (one matrix product per stream) equals the CPU's recurrence, chunked too."""
    x, t, context = cfg_inputs(frames=12, seed=2)
    mus = torch.linspace(0.6, 0.99, 12).tolist()
    chunks = [torch.cat([torch.arange(s, s + 4), torch.arange(12 + s, 12 + s + 4)]) for s in range(0, 12, 4)]
    results = {}
    for dense in (False, True):
        state, parts = {}, []
        for start, rows in zip(range(0, 12, 4), chunks, strict=True):
            momentum = TemporalMomentum(mus, state=state, dense=dense)
            momentum.layout = cfg_layout(start, 4)
            with MomentumHooks(unet, momentum):
                parts.append(unet(x[rows], t[:8], context=context[rows]))
        results[dense] = torch.cat(parts)
    torch.testing.assert_close(results[True], results[False], rtol=1e-5, atol=1e-5)
    plain = torch.cat([unet(x[rows], t[:8], context=context[rows]) for rows in chunks])
    assert not torch.allclose(results[True], plain, atol=1e-3)
