"""Video editing with an InstructPix2Pix checkpoint: the 3-stream CFG layout, consistency, exact chunks.

The tiny InstructPix2Pix checkpoint is built by this repository's ``make_tiny_checkpoint.py --layout
ip2p`` into the zs2 server's data dir the first time a test here needs it; the server is switched to
it for this module and back afterwards.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.webui.conftest import webui_python, webui_root
from tests.webui.test_webui_img2img import img2img_body, ok, source_frames, v2v
from tests.webui.webui_client import FAULT_TITLE, REPO_ROOT, consecutive_change, max_abs_diff, mean_abs_diff

CHECKPOINT = "tiny_ip2p.safetensors"
EDIT = {"prompt": "make it snowy", "cfg_scale": 5, "image_cfg_scale": 1.5, "denoising_strength": 1.0}


@pytest.fixture(scope="module")
def ip2p_server(zs2_server):
    models = zs2_server.data_dir / "models"
    if not (models / "Stable-diffusion" / CHECKPOINT).is_file():
        builder = REPO_ROOT / "tests" / "webui" / "make_tiny_checkpoint.py"
        command = [
            webui_python(),
            str(builder),
            "--out",
            str(models),
            "--webui",
            str(webui_root()),
            "--layout",
            "ip2p",
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    assert zs2_server.post("/sdapi/v1/refresh-checkpoints")[0] == 200
    _, options = zs2_server.get("/sdapi/v1/options")
    previous = options["sd_model_checkpoint"]
    assert zs2_server.post("/sdapi/v1/options", {"sd_model_checkpoint": CHECKPOINT}, timeout=300)[0] == 200
    try:
        yield zs2_server
    finally:
        zs2_server.post("/sdapi/v1/options", {"sd_model_checkpoint": previous}, timeout=300)


def traced(body: dict) -> dict:
    return {
        **body,
        "alwayson_scripts": {**body.get("alwayson_scripts", {}), FAULT_TITLE: {"args": [False, 0, True]}},
    }


@pytest.mark.parametrize(("image_cfg", "streams"), [(1.5, 3), (1.0, 2)])
def test_every_unet_call_has_the_edit_models_cfg_streams_for_each_frame(ip2p_server, image_cfg, streams):
    body = img2img_body(source_frames(8), v2v(chunk=4), **{**EDIT, "image_cfg_scale": image_cfg})
    result = ok(ip2p_server, traced(body))
    assert len(result.frames) == 8
    rows = ip2p_server.hooks()["injector"]["last_rows"]
    assert set(rows) == {streams * 4}, rows
    assert len(rows) == 2 * 4  # two chunks of 4 steps (denoising 1.0)
    assert f"Image CFG scale: {image_cfg}" in result.info["infotexts"][0]


def test_edited_frames_change_less_with_zs2(ip2p_server, measure):
    frames = source_frames(12)
    on = ok(ip2p_server, img2img_body(frames, v2v(chunk=12), **EDIT))
    off = ok(ip2p_server, img2img_body(frames, batch_size=12, **EDIT))
    change_on, change_off = consecutive_change(on.frames), consecutive_change(off.frames)
    ratio = change_on / change_off
    changes = f"on {change_on:.2f} / off {change_off:.2f} = {ratio:.3f}"
    measure(f"InstructPix2Pix v2v, 12 frames: consecutive change {changes}")
    assert ratio < 0.9
    # the init images matter: another source gives other frames
    shifted = ok(ip2p_server, img2img_body(source_frames(20)[8:], v2v(chunk=12), **EDIT))
    assert max_abs_diff(shifted.frames, on.frames) > 10


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_edited_video_in_chunks_equals_one_batch(ip2p_server, sampler, measure):
    frames = source_frames(12)
    whole = ok(ip2p_server, img2img_body(frames, v2v(chunk=12), sampler_name=sampler, **EDIT))
    chunked = ok(ip2p_server, img2img_body(frames, v2v(chunk=4), sampler_name=sampler, **EDIT))
    difference = max_abs_diff(whole.frames, chunked.frames)
    measure(
        f"InstructPix2Pix v2v {sampler}: 12 frames in chunks of 4 vs one batch: max difference {difference}"
    )
    assert difference <= 1


def test_low_strength_frames_stay_close_to_the_source(ip2p_server, measure):
    """The tiny SD1 checkpoint's encoder gives latents of std 0.06, below the lowest noise level, so this
    uses the InstructPix2Pix one, whose encoder is calibrated. With random VAE weights decode(encode(x)) is
    not x: "the source" is its VAE round trip, which img2img tends to as the strength goes to 0 (strength
    0.05 of 20 steps: one step at the lowest noise)."""
    frames = source_frames(8)
    edit = {**EDIT, "steps": 20, "sampler_name": "DDIM"}
    round_trip = ok(ip2p_server, img2img_body(frames, v2v(chunk=8), **{**edit, "denoising_strength": 0.05}))
    distances, raw = {}, {}
    for strength in (0.1, 0.3, 0.6, 0.9):
        result = ok(
            ip2p_server, img2img_body(frames, v2v(chunk=8), **{**edit, "denoising_strength": strength})
        )
        distances[strength] = mean_abs_diff(result.frames, round_trip.frames)
        raw[strength] = mean_abs_diff(result.frames, frames)
    shown = ", ".join(f"{s}: {d:.1f} ({raw[s]:.1f})" for s, d in distances.items())
    measure(
        f"InstructPix2Pix v2v, DDIM 20 steps, |output - round trip| (|output - source|) by strength: {shown}"
    )
    assert distances[0.1] < distances[0.3] < distances[0.6] < distances[0.9]
    assert distances[0.1] < 0.5 * distances[0.9]
