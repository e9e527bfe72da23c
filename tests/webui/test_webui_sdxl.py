"""SDXL checkpoints (sgm UNet, crossattn + vector conditioning) under ZS²: a tiny random SDXL base.

The checkpoint comes from ``make_tiny_sdxl.py`` (built by the conftest); ``tiny_sdxl-b`` is the same
weights under a second name, so a refiner switch reloads the model (a new UNet object) without
changing what it computes.
"""

from __future__ import annotations

import pytest

from tests.webui.conftest import SDXL_REFINER
from tests.webui.test_webui_img2img import img2img_body, ok, source_frames, v2v
from tests.webui.webui_client import (
    consecutive_change,
    max_abs_diff,
    mean_abs_diff,
    txt2img_request,
    zs2_args,
)

FRAMES = 8
MAX_RATIO = 0.5  # consecutive-frame change with ZS² on / off at the same seed


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_sdxl_frames_change_far_less_with_zs2(sdxl_server, measure, sampler):
    on = sdxl_server.ok(txt2img_request(zs2_args(), sampler_name=sampler))
    off = sdxl_server.ok(txt2img_request(batch_size=FRAMES, sampler_name=sampler))
    assert len(on.frames) == FRAMES
    change_on, change_off = consecutive_change(on.frames), consecutive_change(off.frames)
    ratio = change_on / change_off
    measure(
        f"SDXL {sampler}: consecutive-frame change on {change_on:.2f} / off {change_off:.2f} = {ratio:.3f}"
    )
    assert ratio < MAX_RATIO


def test_sdxl_24_frames_in_chunks_of_8_equal_one_batch(sdxl_server, measure):
    args = zs2_args(frames=24)
    whole = sdxl_server.ok(txt2img_request(args))
    chunked = sdxl_server.ok(txt2img_request({**args, "chunk": 8}))
    assert len(whole.frames) == len(chunked.frames) == 24
    difference = max_abs_diff(whole.frames, chunked.frames)
    measure(f"SDXL 24 frames, chunks of 8 vs one batch (Euler a): max difference {difference}/255")
    assert difference <= 1


def test_sdxl_with_zs2_off_equals_a_webui_without_the_extension(sdxl_server, sdxl_baseline_server):
    body = txt2img_request(
        batch_size=4, enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.5
    )
    off = sdxl_server.ok({**body, "alwayson_scripts": {"ZS2 Video": {"args": [{"enabled": False}]}}})
    baseline = sdxl_baseline_server.ok(body)
    assert max_abs_diff(off.frames, baseline.frames) == 0


def test_sdxl_img2img_with_zs2_off_equals_a_webui_without_the_extension(sdxl_server, sdxl_baseline_server):
    """The same request twice puts both servers' global RNG (A1111's VAE posterior) in the same state.

    Kept before the refiner tests: after a refiner run, A1111 itself (no extension) returns this
    img2img 1 level apart from a server that never ran one (measured), so the servers' histories
    must match up to here.
    """
    body = img2img_body(source_frames(4), batch_size=4, seed=4242)
    off = img2img_body(source_frames(4), {"enabled": False, "frames": 4}, batch_size=4, seed=4242)
    ok(sdxl_baseline_server, body)
    reference = ok(sdxl_baseline_server, body)
    ok(sdxl_server, off)
    assert max_abs_diff(ok(sdxl_server, off).frames, reference.frames) == 0


def test_sdxl_momentum_hooks_fire_on_the_sgm_attention_layers(sdxl_server, measure):
    """μ = 0.98 and μ = 0 share frame 0 and the noise; every later frame differs only through attn1."""
    momentum = sdxl_server.ok(txt2img_request(zs2_args(mu=0.98), sampler_name="DDIM"))
    plain = sdxl_server.ok(txt2img_request(zs2_args(mu=0.0), sampler_name="DDIM"))
    assert max_abs_diff(momentum.frames[:1], plain.frames[:1]) <= 1
    later = mean_abs_diff(momentum.frames[1:], plain.frames[1:])
    measure(f"SDXL: frames 2-8 with μ 0.98 vs μ 0 differ by {later:.2f}/255 on average")
    assert later > 1.0


def test_sdxl_refiner_switch_moves_the_hooks_to_the_refiner(sdxl_server, measure):
    """The refiner has the same weights: if the hooks did not follow, frames after the switch would change."""
    args = zs2_args()
    plain = sdxl_server.ok(txt2img_request(args, sampler_name="DDIM", steps=6))
    refined = sdxl_server.ok(
        txt2img_request(
            args, sampler_name="DDIM", steps=6, refiner_checkpoint=SDXL_REFINER, refiner_switch_at=0.5
        )
    )
    assert f"Refiner: {SDXL_REFINER}" in refined.info["infotexts"][0]
    difference = max_abs_diff(plain.frames, refined.frames)
    off = sdxl_server.ok(
        txt2img_request(
            batch_size=FRAMES,
            sampler_name="DDIM",
            steps=6,
            refiner_checkpoint=SDXL_REFINER,
            refiner_switch_at=0.5,
        )
    )
    ratio = consecutive_change(refined.frames) / consecutive_change(off.frames)
    measure(f"SDXL refiner at 0.5: max difference to no refiner {difference}/255, on/off change {ratio:.3f}")
    assert difference <= 1
    assert ratio < MAX_RATIO


def test_sdxl_hires_fix_keeps_frames_consistent_and_chunks_exact(sdxl_server, measure):
    hires = {"enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent", "denoising_strength": 0.6}
    on = sdxl_server.ok(txt2img_request(zs2_args(), **hires))
    chunked = sdxl_server.ok(txt2img_request(zs2_args(chunk=4), **hires))
    off = sdxl_server.ok(txt2img_request(batch_size=FRAMES, **hires))
    assert on.frames[0].shape == (96, 96, 3)
    ratio = consecutive_change(on.frames) / consecutive_change(off.frames)
    difference = max_abs_diff(on.frames, chunked.frames)
    measure(f"SDXL hires fix 1.5x: on/off change {ratio:.3f}; chunks of 4 vs one batch {difference}/255")
    assert ratio < MAX_RATIO
    assert difference <= 1


def test_sdxl_refiner_in_a_chunked_video_equals_one_batch(sdxl_server, measure):
    """Every chunk switches to the refiner mid-sampling; the carried attention state must still line up."""
    args = zs2_args(frames=8)
    refiner = {
        "sampler_name": "DDIM",
        "steps": 6,
        "refiner_checkpoint": SDXL_REFINER,
        "refiner_switch_at": 0.5,
    }
    whole = sdxl_server.ok(txt2img_request(args, **refiner))
    chunked = sdxl_server.ok(txt2img_request({**args, "chunk": 4}, **refiner))
    difference = max_abs_diff(whole.frames, chunked.frames)
    measure(f"SDXL refiner at 0.5, chunks of 4 vs one batch: max difference {difference}/255")
    assert difference <= 1


# video to video (img2img) on SDXL: sgm's VAE samples its posterior inside the regulariser --------------


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_sdxl_video_to_video_is_consistent_and_chunks_equal_one_batch(sdxl_server, measure, sampler):
    frames = source_frames(12)
    body = {"sampler_name": sampler}
    on = ok(sdxl_server, img2img_body(frames, v2v(chunk=12), **body))
    chunked = ok(sdxl_server, img2img_body(frames, v2v(chunk=4), **body))
    off = ok(sdxl_server, img2img_body(frames, batch_size=12, **body))
    assert len(on.frames) == len(chunked.frames) == 12
    ratio = consecutive_change(on.frames) / consecutive_change(off.frames)
    difference = max_abs_diff(on.frames, chunked.frames)
    measure(
        f"SDXL v2v {sampler}, 12 frames: consecutive change on/off {ratio:.3f}; "
        f"chunks of 4 vs one batch: max difference {difference}/255"
    )
    assert ratio < 0.9
    assert difference <= 1


def test_sdxl_video_to_video_repeats_itself_whatever_ran_between(sdxl_server):
    """Each frame's posterior sample is drawn under its own seed, not from the global RNG."""
    frames = source_frames(4)
    body = img2img_body(frames, v2v(), seed=77)
    first = ok(sdxl_server, body)
    ok(sdxl_server, img2img_body(frames[:2], batch_size=2, seed=5))  # moves the global RNG
    again = ok(sdxl_server, body)
    assert max_abs_diff(first.frames, again.frames) == 0
