"""The noise honours every A1111 seed option, frames are causal, and skipped uncond steps work."""

from __future__ import annotations

import pytest

from tests.webui.test_webui_long_videos import JOIN_TOLERANCE
from tests.webui.webui_client import FAULT_TITLE, consecutive_change, max_abs_diff, txt2img_request, zs2_args

DDIM = {"sampler_name": "DDIM", "steps": 6, "seed": 1357}

SEED_OPTIONS = {
    "plain": {},
    "variation seed": {"subseed": 2468, "subseed_strength": 0.4},
    "seed resize": {"seed_resize_from_w": 48, "seed_resize_from_h": 40},
    "CPU noise": {"override_settings": {"randn_source": "CPU"}},
    "NV noise": {"override_settings": {"randn_source": "NV"}},
}


@pytest.mark.parametrize("options", SEED_OPTIONS.values(), ids=SEED_OPTIONS.keys())
def test_the_first_frame_is_the_ordinary_image_of_its_seed(zs2_server, options):
    """Frame 1 keeps its ordinary noise (variation, resize and noise source included) and attends to
    itself only, so it is the image A1111 makes without ZS²; later frames move away from it."""
    zs2 = zs2_server.ok(txt2img_request(zs2_args(), **DDIM, **options))
    off = zs2_server.ok(txt2img_request(batch_size=8, **DDIM, **options))
    assert max_abs_diff(zs2.frames[:1], off.frames[:1]) == 0
    assert max_abs_diff(zs2.frames[1:], off.frames[1:]) > 0


def test_seed_options_change_the_video(zs2_server):
    # "CPU noise" is left out: on a CPU-only server the default source draws on the CPU as well
    videos = {
        name: zs2_server.ok(txt2img_request(zs2_args(), **DDIM, **o)).frames
        for name, o in SEED_OPTIONS.items()
        if name != "CPU noise"
    }
    names = list(videos)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert max_abs_diff(videos[a], videos[b]) > 0, (a, b)


def test_frames_depend_only_on_the_frames_before_them(zs2_server):
    short = zs2_server.ok(txt2img_request(zs2_args(frames=4), **DDIM))
    long = zs2_server.ok(txt2img_request(zs2_args(frames=8), **DDIM))
    assert max_abs_diff(short.frames, long.frames[:4]) <= JOIN_TOLERANCE


def test_skipped_uncond_steps_keep_the_row_layout(zs2_server, measure):
    """skip_early_cond drops the uncond rows for early steps: those UNet calls get 8 rows, not 16."""
    trace = {FAULT_TITLE: {"args": [False, 2, True]}}
    settings = {"override_settings": {"skip_early_cond": 0.5}}
    zs2 = zs2_server.ok(txt2img_request(zs2_args(), alwayson_scripts=trace, **DDIM, **settings))
    rows = zs2_server.hooks()["injector"]["last_rows"]
    off = zs2_server.ok(txt2img_request(batch_size=8, **DDIM, **settings))
    ratio = consecutive_change(zs2.frames) / consecutive_change(off.frames)
    measure(f"skip_early_cond 0.5: UNet rows per call {rows}; change ratio on/off {ratio:.3f}")
    assert 8 in rows
    assert 16 in rows
    assert ratio < 0.5
    assert "not a layout ZS² knows" not in zs2_server.log_text()
    assert "unexpected UNet call" not in zs2_server.log_text()
