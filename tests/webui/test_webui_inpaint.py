"""Video inpainting in img2img: one mask for every frame, a mask video, and an inpainting checkpoint.

A1111 composites each output over its init image outside the mask (``overlay_images``); with mask blur 0
the mask is binary, so outside it every frame must be exactly its source frame, inside it repainted.
The tiny inpainting checkpoint (a 9-channel UNet input) is built by this repository's
``make_tiny_checkpoint.py --layout inpaint`` into the zs2 server's data dir the first time a test here
needs it; the server is switched to it for the last tests of this module and back afterwards.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.webui.conftest import webui_python, webui_root
from tests.webui.test_webui_img2img import SIZE, img2img, img2img_body, ok, png_b64, source_frames, v2v
from tests.webui.webui_client import FAULT_TITLE, REPO_ROOT, consecutive_change, max_abs_diff

CHECKPOINT = "tiny_inpaint.safetensors"
STRENGTH = 0.75


def rectangle(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """A binary mask image (white is repainted): uint8 [64, 64, 3]."""
    mask = np.zeros((SIZE, SIZE, 3), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


ONE_MASK = rectangle(16, 16, 48, 48)


def masked(full_res: bool = False, mask: np.ndarray | None = ONE_MASK) -> dict[str, Any]:
    """A1111's inpainting fields: binary mask, no blur, original content under the mask."""
    fields = {"mask_blur": 0, "inpainting_fill": 1, "inpaint_full_res": full_res, "inpainting_mask_invert": 0}
    if mask is not None:
        fields["mask"] = png_b64(mask)
    return {**fields, "denoising_strength": STRENGTH, "inpaint_full_res_padding": 4}


def inside(mask: np.ndarray) -> np.ndarray:
    return mask[..., 0] > 127


def outside_and_inside(outputs: list[np.ndarray], sources: list[np.ndarray], masks: list[np.ndarray]):
    """Max |output - source| outside each frame's mask, and the mean inside it."""
    outside_max, inside_mean = 0, []
    for output, source, mask in zip(outputs, sources, masks, strict=True):
        difference = np.abs(output.astype(np.int16) - source.astype(np.int16))
        outside_max = max(outside_max, int(difference[~inside(mask)].max()))
        inside_mean.append(float(difference[inside(mask)].mean()))
    return outside_max, float(np.mean(inside_mean))


def change_inside(frames: list[np.ndarray], mask: np.ndarray) -> float:
    """Mean consecutive-frame change inside the mask (outside, every frame is its source)."""
    return consecutive_change([frame * inside(mask)[..., None] for frame in frames])


@pytest.mark.parametrize("full_res", [False, True], ids=["whole picture", "only masked"])
def test_one_mask_keeps_every_frame_outside_it_and_repaints_inside_more_consistently_with_zs2(
    zs2_server, full_res, measure
):
    frames = source_frames(16)
    on = ok(zs2_server, img2img_body(frames, v2v(chunk=16), **masked(full_res)))
    off = ok(zs2_server, img2img_body(frames, batch_size=16, **masked(full_res)))
    assert len(on.frames) == len(off.frames) == 16
    outside_on, inside_on = outside_and_inside(on.frames, frames, [ONE_MASK] * 16)
    outside_off, inside_off = outside_and_inside(off.frames, frames, [ONE_MASK] * 16)
    ratio = change_inside(on.frames, ONE_MASK) / change_inside(off.frames, ONE_MASK)
    area = "only masked" if full_res else "whole picture"
    measure(
        f"inpaint v2v ({area}), 16 frames, strength {STRENGTH}: max |out - source| outside the mask on "
        f"{outside_on} / off {outside_off}; mean inside on {inside_on:.1f} / off {inside_off:.1f}; "
        f"consecutive change inside on/off = {ratio:.3f}"
    )
    assert outside_on == outside_off == 0
    assert inside_on > 5
    assert ratio < 0.9


@pytest.mark.parametrize("full_res", [False, True], ids=["whole picture", "only masked"])
def test_a_masked_video_in_chunks_equals_one_batch(zs2_server, full_res, measure):
    frames = source_frames(12)
    body = {"sampler_name": "Euler a", **masked(full_res)}
    whole = ok(zs2_server, img2img_body(frames, v2v(chunk=12), **body))
    chunked = ok(zs2_server, img2img_body(frames, v2v(chunk=4), **body))
    difference = max_abs_diff(whole.frames, chunked.frames)
    area = "only masked" if full_res else "whole picture"
    measure(
        f"inpaint v2v ({area}) Euler a: 12 frames in chunks of 4 vs one batch: max difference {difference}"
    )
    assert difference <= 1


def test_latent_noise_under_the_mask_follows_the_video_noise_chain_in_chunks_too(zs2_server, measure):
    """A1111 fills the mask with each frame's seed noise, i.e. its initial noise: ZS²'s chained noise.

    At low strength the fill is most of what the masked area shows, so chained fill noise makes
    consecutive frames there far more alike than independent noise does (μ = 0: noise alone).
    """
    frames = source_frames(12)
    fill = {**masked(), "inpainting_fill": 2, "denoising_strength": 0.3}
    whole = ok(zs2_server, img2img_body(frames, v2v(chunk=12, mu=0), **fill))
    chunked = ok(zs2_server, img2img_body(frames, v2v(chunk=4, mu=0), **fill))
    independent = ok(zs2_server, img2img_body(frames, v2v(chunk=12, mu=0, noise_model="independent"), **fill))
    ratio = change_inside(whole.frames, ONE_MASK) / change_inside(independent.frames, ONE_MASK)
    difference = max_abs_diff(whole.frames, chunked.frames)
    measure(
        f"inpaint v2v, latent noise fill, strength 0.3, μ 0: consecutive change inside dependent/independent "
        f"noise = {ratio:.3f}; chunks of 4 vs one batch: max difference {difference}"
    )
    assert difference <= 1
    assert ratio < 0.5


def moving_masks(count: int) -> list[np.ndarray]:
    """A 20x20 square moving right by 4 pixels a frame."""
    return [rectangle(4 + 4 * k, 22, 24 + 4 * k, 42) for k in range(count)]


def mask_folder(folder: Path, masks: list[np.ndarray]) -> str:
    folder.mkdir()
    for index, mask in enumerate(masks):
        Image.fromarray(mask).save(folder / f"{index:03d}.png")
    return str(folder)


def test_a_mask_video_repaints_frame_k_under_mask_k(zs2_server, tmp_path, measure):
    frames, masks = source_frames(8), moving_masks(8)
    result = ok(
        zs2_server,
        img2img_body(
            frames, v2v(chunk=4, mask_video=mask_folder(tmp_path / "m", masks)), **masked(mask=None)
        ),
    )
    outside, inside_mean = outside_and_inside(result.frames, frames, masks)
    swapped = list(masks)
    swapped[2], swapped[5] = masks[5], masks[2]
    other = ok(
        zs2_server,
        img2img_body(
            frames, v2v(chunk=4, mask_video=mask_folder(tmp_path / "s", swapped)), **masked(mask=None)
        ),
    )
    changes = [max_abs_diff([a], [b]) for a, b in zip(result.frames, other.frames, strict=True)]
    measure(
        f"mask video, 8 frames: max |out - source| outside mask k {outside}, mean inside {inside_mean:.1f}; "
        f"masks 2 and 5 swapped: max change per frame {changes}"
    )
    assert outside == 0
    assert inside_mean > 5
    assert outside_and_inside(other.frames, frames, swapped)[0] == 0
    assert sorted(np.argsort(changes)[-2:].tolist()) == [2, 5]


def test_a_mask_video_with_too_few_masks_or_with_a_mask_is_refused_naming_the_field(zs2_server, tmp_path):
    folder = mask_folder(tmp_path / "m", moving_masks(3))
    for extra in (masked(mask=None), masked()):
        frames = source_frames(4) if extra.get("mask") is None else source_frames(2)
        result = img2img(zs2_server, img2img_body(frames, v2v(mask_video=folder), **extra))
        assert result.status == 422, result.describe()
        assert "mask_video" in result.detail


def test_zs2_off_with_a_mask_is_pixel_identical_to_no_extension(zs2_server, baseline_server):
    """The same request twice puts every server's global RNG (A1111's VAE posterior) in the same state."""
    frames = source_frames(4)
    body = img2img_body(frames, batch_size=4, seed=4242, **masked())
    variants = [
        body,
        img2img_body(frames, {"enabled": False, "frames": 4}, batch_size=4, seed=4242, **masked()),
    ]
    ok(baseline_server, body)
    reference = ok(baseline_server, body)
    assert outside_and_inside(reference.frames, frames, [ONE_MASK] * 4)[0] == 0
    for variant in variants:
        ok(zs2_server, variant)
        assert max_abs_diff(ok(zs2_server, variant).frames, reference.frames) == 0


# the inpainting checkpoint (keep these last: the module's server switches checkpoints) ----------------


def traced(body: dict) -> dict:
    return {
        **body,
        "alwayson_scripts": {**body.get("alwayson_scripts", {}), FAULT_TITLE: {"args": [False, 0, True]}},
    }


INPAINT_BODY = {"seed": 31, "prompt": "a cat", "negative_prompt": "", **masked()}
"""A short prompt: on this host the tiny inpainting checkpoint's random text encoder gives NaN in the UNet
for the usual test prompt even without ZS² (HTTP 500 from A1111's NaN check), as the plain one does for
prompts over 75 tokens."""


@pytest.fixture(scope="module")
def inpaint_server(zs2_server):
    """The zs2 server on the tiny inpainting checkpoint; yields it with the plain model's result first."""
    plain = ok(zs2_server, img2img_body(source_frames(8), v2v(chunk=8), **INPAINT_BODY))
    models = zs2_server.data_dir / "models"
    if not (models / "Stable-diffusion" / CHECKPOINT).is_file():
        builder = REPO_ROOT / "tests" / "webui" / "make_tiny_checkpoint.py"
        command = [webui_python(), str(builder), "--out", str(models), "--webui", str(webui_root())]
        subprocess.run([*command, "--layout", "inpaint"], check=True, capture_output=True, timeout=600)
    assert zs2_server.post("/sdapi/v1/refresh-checkpoints")[0] == 200
    _, options = zs2_server.get("/sdapi/v1/options")
    previous = options["sd_model_checkpoint"]
    assert zs2_server.post("/sdapi/v1/options", {"sd_model_checkpoint": CHECKPOINT}, timeout=300)[0] == 200
    try:
        yield zs2_server, plain
    finally:
        zs2_server.post("/sdapi/v1/options", {"sd_model_checkpoint": previous}, timeout=300)


def test_the_inpainting_checkpoint_samples_with_its_nine_channel_input_and_keeps_outside_the_mask(
    inpaint_server, measure
):
    server, plain = inpaint_server
    frames = source_frames(8)
    result = ok(server, traced(img2img_body(frames, v2v(chunk=4), **INPAINT_BODY)))
    injector = server.hooks()["injector"]
    assert set(injector["last_channels"]) == {9}, injector["last_channels"]
    assert set(injector["last_rows"]) == {2 * 4}  # cond and uncond of a 4-frame chunk
    assert "Conditional mask weight" in result.info["infotexts"][0]
    assert "tiny_inpaint" in result.info["infotexts"][0]
    outside, inside_mean = outside_and_inside(result.frames, frames, [ONE_MASK] * 8)
    versus_plain = max_abs_diff(result.frames, plain.frames)
    measure(
        f"inpainting checkpoint, 8 frames: UNet input channels {sorted(set(injector['last_channels']))}; "
        f"max |out - source| outside {outside}, mean inside {inside_mean:.1f}; max |inpaint - plain model| "
        f"{versus_plain}"
    )
    assert outside == 0
    assert inside_mean > 5
    assert versus_plain > 10


def test_the_inpainting_checkpoint_is_consistent_with_zs2_and_chunks_equal_one_batch(inpaint_server, measure):
    server, _ = inpaint_server
    frames = source_frames(12)
    on = ok(server, img2img_body(frames, v2v(chunk=12), **INPAINT_BODY))
    chunked = ok(server, img2img_body(frames, v2v(chunk=4), **INPAINT_BODY))
    off = ok(server, img2img_body(frames, batch_size=12, **INPAINT_BODY))
    ratio = change_inside(on.frames, ONE_MASK) / change_inside(off.frames, ONE_MASK)
    difference = max_abs_diff(on.frames, chunked.frames)
    measure(
        f"inpainting checkpoint, 12 frames: consecutive change inside on/off = {ratio:.3f}; "
        f"chunks of 4 vs one batch: max difference {difference}"
    )
    assert ratio < 1
    assert difference <= 1
