"""Prompt travel on the tiny SD1 and SDXL checkpoints: keyframes, interpolation, chunks, refusals, infotext.

With μ = 0 (no temporal momentum) frame k of a video depends only on its noise and its
conditioning, and the noise does not depend on the prompt; so frame k of a travel can be compared
with frame k of plain-prompt videos at the same seed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.webui.webui_client import ZS2_TITLE, max_abs_diff, mean_abs_diff, txt2img_request, zs2_args

A = "a red fox sitting in fresh snow, morning light"
B = "a blue bird flying over a stormy sea at night"
TRAVEL = f"0: {A}\n15: {B}"
FRAMES = 16
LONG = ", ".join(["a very detailed painting of a lighthouse on a cliff above the waves"] * 8)  # > 75 tokens


@pytest.fixture(params=["sd1", "sdxl"])
def server(request):
    return request.getfixturevalue({"sd1": "zs2_server", "sdxl": "sdxl_server"}[request.param])


def _video(server, prompt: str, request: dict | None = None, **values):
    """A 16-frame DDIM video of ``prompt``; ``values`` are ZS² settings, ``request`` txt2img fields."""
    body = txt2img_request(
        zs2_args(frames=FRAMES, **values), prompt=prompt, sampler_name="DDIM", **(request or {})
    )
    return server.ok(body).frames


def test_frame_0_of_a_travel_is_frame_0_of_its_first_keyframes_video(server):
    travel, plain = _video(server, TRAVEL), _video(server, A)
    assert max_abs_diff(travel[:1], plain[:1]) <= 1
    assert mean_abs_diff(travel[-4:], plain[-4:]) > 1.0  # and the travel does move away from A


def test_keyframes_have_their_prompts_conditioning_and_frames_between_move_from_a_to_b(server, measure):
    travel, plain_a, plain_b = (_video(server, prompt, mu=0.0) for prompt in (TRAVEL, A, B))
    assert max_abs_diff(travel[:1], plain_a[:1]) <= 1
    assert max_abs_diff(travel[-1:], plain_b[-1:]) <= 1
    to_a = np.array([mean_abs_diff([t], [a]) for t, a in zip(travel, plain_a, strict=True)])
    to_b = np.array([mean_abs_diff([t], [b]) for t, b in zip(travel, plain_b, strict=True)])
    share = to_a / (to_a + to_b)  # 0 at A, 1 at B
    steps = np.diff(share)
    measure(f"{server.name} travel A→B, share of the way to B per frame: {np.round(share, 2).tolist()}")
    assert share[0] < 0.01
    assert share[-1] > 0.99
    assert steps.min() > -0.05  # monotonic within measurement noise
    assert np.corrcoef(share, np.arange(FRAMES))[0, 1] > 0.95


def test_a_travel_in_chunks_equals_one_batch(server, measure):
    whole, chunked = _video(server, TRAVEL), _video(server, TRAVEL, chunk=4)
    difference = max_abs_diff(whole, chunked)
    measure(f"{server.name} travel, 16 frames in chunks of 4 vs one batch: max difference {difference}/255")
    assert difference <= 1


def test_hires_fix_travels_in_both_passes(server):
    hires = {"enable_hr": True, "hr_scale": 1.5, "hr_upscaler": "Latent", "denoising_strength": 0.6}
    travel, plain_a, plain_b = (_video(server, prompt, hires, mu=0.0) for prompt in (TRAVEL, A, B))
    chunked = _video(server, TRAVEL, hires, chunk=8, mu=0.0)
    assert travel[0].shape == (96, 96, 3)
    assert max_abs_diff(travel[:1], plain_a[:1]) <= 1
    assert max_abs_diff(travel[-1:], plain_b[-1:]) <= 1
    assert max_abs_diff(travel, chunked) <= 1


def test_a_negative_prompt_travels_too(server):
    def video(negative):
        body = txt2img_request(zs2_args(frames=FRAMES, mu=0.0), prompt=A, negative_prompt=negative)
        return server.ok(body).frames

    travel, first, last = (
        video("0: blurry, dark\n15: bright, oversaturated"),
        video("blurry, dark"),
        video("bright, oversaturated"),
    )
    assert max_abs_diff(travel[:1], first[:1]) <= 1
    assert max_abs_diff(travel[-1:], last[-1:]) <= 1
    assert mean_abs_diff(travel[-1:], first[-1:]) > 0.5


def test_a_single_keyframe_is_the_plain_prompt_on_every_frame(server):
    assert max_abs_diff(_video(server, f"0: {A}"), _video(server, A)) <= 1


def test_keyframes_of_different_token_lengths_work_in_every_cfg_layout(sdxl_server, measure):
    """A 1-chunk and a 2-chunk keyframe (77 and 154 tokens): chunk-invariant in every CFG layout.

    ``pad_cond_uncond`` pads the uncond to the cond's length, which changes the images (as it does
    without ZS²), so only the cond/uncond batching layouts must agree with each other.
    """
    travel = f"0: {A}\n15: {LONG}"
    results = {}
    for layout in ({"batch_cond_uncond": True}, {"batch_cond_uncond": False}, {"pad_cond_uncond": True}):
        body = txt2img_request(zs2_args(frames=FRAMES), prompt=travel, override_settings=layout)
        whole = sdxl_server.ok(body).frames
        chunked = sdxl_server.ok(
            txt2img_request(zs2_args(frames=FRAMES, chunk=8), prompt=travel, override_settings=layout)
        ).frames
        assert max_abs_diff(whole, chunked) <= 1, layout
        results[str(layout)] = whole
    batched, separate, _ = results.values()
    difference = max_abs_diff(batched, separate)
    measure(f"SDXL travel 77→154 tokens: cond/uncond batched vs separate differ by {difference}/255")
    assert difference <= 1
    # the long keyframe, the longest, is exactly its own prompt's conditioning at its frame
    ends = [_video(sdxl_server, prompt, mu=0.0)[-1:] for prompt in (travel, LONG)]
    assert max_abs_diff(*ends) <= 1


def test_lora_syntax_in_the_head_applies_to_every_frame(zs2_server):
    head = "<lora:tiny-lora:1>\n"
    with_lora, plain_lora = _video(zs2_server, head + TRAVEL), _video(zs2_server, f"<lora:tiny-lora:1> {A}")
    without = _video(zs2_server, TRAVEL)
    assert max_abs_diff(with_lora[:1], plain_lora[:1]) <= 1
    assert mean_abs_diff(with_lora, without) > 1.0


def test_the_infotext_keeps_the_travel_prompt_and_paste_restores_it(zs2_server):
    result = zs2_server.ok(txt2img_request(zs2_args(frames=FRAMES), prompt=TRAVEL))
    assert result.info["infotexts"][0].startswith(TRAVEL + "\n")
    status, parsed = zs2_server.post("/sdapi/v1/png-info", {"image": result.raw_images[0]})
    assert status == 200
    assert parsed["parameters"]["Prompt"] == TRAVEL


@pytest.mark.parametrize(
    ("prompt", "negative", "expected"),
    [
        (f"0: {A}\n16: {B}", "", "prompt travel, line 2: keyframe 16 is beyond the last frame"),
        (
            f"0: {A}\n9: {B}\n5: {A}",
            "",
            "prompt travel, line 3 .*keyframe 5 is not after keyframe 9 on line 2",
        ),
        (f"0: {A}\n8:", "", "prompt travel, line 2 .*keyframe 8 has no text"),
        (f"0: {A} AND {B}\n8: {B}", "", "prompt travel, line 1: AND"),
        (A, "0: blurry\n3: dark\n2: grey", "negative prompt travel, line 3 .*not after keyframe 3"),
    ],
)
def test_bad_keyframes_are_refused_before_sampling_naming_the_line(zs2_server, prompt, negative, expected):
    result = zs2_server.txt2img(
        txt2img_request(zs2_args(frames=FRAMES), prompt=prompt, negative_prompt=negative)
    )
    assert result.status == 422, result.describe()
    assert re.search(expected, result.detail), result.detail


def test_with_zs2_off_a_keyframed_prompt_is_an_ordinary_prompt(zs2_server, baseline_server):
    body = txt2img_request(prompt=TRAVEL, batch_size=2)
    off = zs2_server.ok({**body, "alwayson_scripts": {ZS2_TITLE: {"args": [{"enabled": False}]}}})
    assert max_abs_diff(off.frames, baseline_server.ok(body).frames) == 0
