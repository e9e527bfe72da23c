"""Video-to-video in img2img: consistency, exact chunks, reproducibility, sources, audio, refusals, undo."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from typing import Any

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from tests.webui.webui_client import (
    BASE_REQUEST,
    FAULT_TITLE,
    ZS2_TITLE,
    Result,
    consecutive_change,
    decode_png,
    max_abs_diff,
    txt2img_request,
    zs2_infotext_value,
)
from zs2_lib.audio import has_audio
from zs2_lib.params import FIELD_BY_NAME
from zs2_lib.video_input import read_frames

SIZE = 64
STRENGTH = 0.6


def source_frames(count: int) -> list[np.ndarray]:
    """A disc moving right over a slowly shifting colour gradient: uint8 [64, 64, 3] frames."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    frames = []
    for index in range(count):
        t = index / 24
        image = np.stack([0.5 + 0.4 * np.sin(2 * np.pi * (x + t)), 0.3 + 0.3 * y, 0.6 - 0.3 * x], axis=-1)
        disc = (x - 0.2 - 0.6 * t) ** 2 + (y - 0.5) ** 2 < 0.03
        image[disc] = (0.95, 0.9, 0.2)
        frames.append((255 * image.clip(0, 1)).round().astype(np.uint8))
    return frames


def warp_error(outputs: list[np.ndarray], sources: list[np.ndarray]) -> float:
    """Mean |out[k+1] - out[k] warped by the source's optical flow from k+1 to k| (Farneback, OpenCV)."""
    import cv2

    errors = []
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    for k in range(len(outputs) - 1):
        previous, current = (cv2.cvtColor(sources[i], cv2.COLOR_RGB2GRAY) for i in (k, k + 1))
        flow = cv2.calcOpticalFlowFarneback(current, previous, None, 0.5, 3, 9, 3, 5, 1.2, 0)
        warped = cv2.remap(outputs[k], grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        errors.append(np.abs(warped.astype(np.float64) - outputs[k + 1].astype(np.float64)).mean())
    return float(np.mean(errors))


def png_b64(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def img2img_body(
    frames: list[np.ndarray] | None, zs2: dict[str, Any] | None = None, **overrides: Any
) -> dict:
    body = {**BASE_REQUEST, "denoising_strength": STRENGTH, **overrides}
    body["init_images"] = [png_b64(frame) for frame in frames] if frames is not None else []
    if zs2 is not None:
        body["alwayson_scripts"] = {**body.get("alwayson_scripts", {}), ZS2_TITLE: {"args": [zs2]}}
    return body


def img2img(server, body: dict) -> Result:
    status, data = server.post("/sdapi/v1/img2img", body, timeout=600)
    result = Result(status, data)
    if status == 200 and isinstance(data, dict):
        result.info = json.loads(data["info"])
        result.images = [decode_png(image) for image in data.get("images") or []]
    return result


def ok(server, body: dict) -> Result:
    result = img2img(server, body)
    assert result.status == 200, f"{result.describe()}\n{server.log_tail(30)}"
    return result


def v2v(**values: Any) -> dict[str, Any]:
    return {"enabled": True, "lambda": 0.01, "mu": 0.98, **values}


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Any]:
    """24 source frames, as arrays, a PNG folder and an MP4 with a sine-tone audio track (10 fps)."""
    root = tmp_path_factory.mktemp("v2v")
    frames = source_frames(24)
    folder = root / "frames"
    folder.mkdir()
    for index, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{index:03d}.png")
    mp4 = root / "clip.mp4"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-framerate", "10",
        "-i", str(folder / "%03d.png"), "-f", "lavfi", "-i", "sine=frequency=330", "-t", "2.4",
        "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(mp4),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return {"frames": frames, "folder": folder, "mp4": mp4}


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_v2v_with_zs2_changes_less_from_frame_to_frame_than_without(zs2_server, clip, sampler, measure):
    frames = clip["frames"][:16]
    on = ok(zs2_server, img2img_body(frames, v2v(chunk=16), sampler_name=sampler))
    off = ok(zs2_server, img2img_body(frames, batch_size=16, sampler_name=sampler))
    assert len(on.frames) == len(off.frames) == 16
    change_on, change_off = consecutive_change(on.frames), consecutive_change(off.frames)
    source = consecutive_change(frames)
    ratio = change_on / change_off
    warp_on, warp_off = warp_error(on.frames, frames), warp_error(off.frames, frames)
    measure(
        f"v2v {sampler}, 16 frames, strength {STRENGTH}: consecutive change on {change_on:.2f} / off "
        f"{change_off:.2f} = {ratio:.3f} (source {source:.2f}); "
        f"warp error on {warp_on:.2f} / off {warp_off:.2f}"
    )
    assert ratio < 0.9
    assert warp_on < 0.9 * warp_off
    assert change_on > 0


@pytest.mark.parametrize("sampler", ["DDIM", "Euler a"])
def test_24_frames_in_chunks_of_8_equal_one_batch(zs2_server, clip, sampler, measure):
    frames = clip["frames"]
    whole = ok(zs2_server, img2img_body(frames, v2v(chunk=24), sampler_name=sampler))
    chunked = ok(zs2_server, img2img_body(frames, v2v(chunk=8), sampler_name=sampler))
    assert len(whole.frames) == len(chunked.frames) == 24
    difference = max_abs_diff(whole.frames, chunked.frames)
    measure(f"v2v {sampler}: 24 frames in chunks of 8 vs one batch: max difference {difference} levels")
    assert difference <= 1


def test_the_init_images_list_and_the_video_arg_give_the_same_video(zs2_server, clip):
    frames = clip["frames"][:12]
    listed = ok(zs2_server, img2img_body(frames, v2v(chunk=6)))
    from_path = ok(zs2_server, img2img_body(None, v2v(chunk=6, video=str(clip["folder"]), video_frames=12)))
    assert max_abs_diff(listed.frames, from_path.frames) == 0
    # base64 data and the server path of one MP4 give the same frames as well
    data = base64.b64encode(clip["mp4"].read_bytes()).decode("ascii")
    by_path = ok(zs2_server, img2img_body(None, v2v(chunk=6, video=str(clip["mp4"]), video_frames=12)))
    by_data = ok(zs2_server, img2img_body(None, v2v(chunk=6, video=data, video_frames=12)))
    assert max_abs_diff(by_path.frames, by_data.frames) == 0
    assert max_abs_diff(by_path.frames, listed.frames) > 0  # the MP4's frames are not the PNGs


def test_start_and_step_pick_the_source_frames_and_set_the_fps(zs2_server, clip):
    picked = clip["frames"][2:14:3]
    listed = ok(zs2_server, img2img_body(picked, v2v(chunk=4)))
    stepped = ok(
        zs2_server, img2img_body(None, v2v(chunk=4, video=str(clip["folder"]), video_start=2, video_step=3))
    )
    assert len(stepped.frames) == 8  # 2, 5, ..., 23
    assert max_abs_diff(listed.frames, stepped.frames[:4]) == 0
    timed = ok(
        zs2_server, img2img_body(None, v2v(chunk=4, video=str(clip["mp4"]), video_step=2, video_frames=4))
    )
    infotext = zs2_infotext_value(timed.info["infotexts"][0])
    assert "fps=5;" in infotext  # 10 fps / 2
    assert "video=clip.mp4; video_start=0; video_frames=4; video_step=2;" in infotext


def test_zs2_off_in_img2img_is_pixel_identical_to_no_extension(zs2_server, baseline_server):
    """A1111 samples the VAE posterior from the global RNG, left as the previous request left it; the same
    request twice puts every server in the same state before the second."""
    body = img2img_body(source_frames(4), batch_size=4, seed=4242)
    variants = [
        body,
        img2img_body(source_frames(4), {"enabled": False, "frames": 4}, batch_size=4, seed=4242),
    ]
    ok(baseline_server, body)
    reference = ok(baseline_server, body)
    for variant in variants:
        ok(zs2_server, variant)
        assert max_abs_diff(ok(zs2_server, variant).frames, reference.frames) == 0


def test_identical_v2v_requests_give_identical_frames_whatever_ran_between(zs2_server, clip, measure):
    body = img2img_body(clip["frames"][:8], v2v(chunk=8), seed=777)
    first = ok(zs2_server, body)
    zs2_server.ok(txt2img_request(seed=5, batch_size=3))
    ok(zs2_server, img2img_body(clip["frames"][3:5], batch_size=2, seed=9))
    second = ok(zs2_server, body)
    assert max_abs_diff(first.frames, second.frames) == 0
    mean_encoding = ok(
        zs2_server, img2img_body(clip["frames"][:8], v2v(chunk=8, init_encoding="mean"), seed=777)
    )
    assert max_abs_diff(mean_encoding.frames, first.frames) > 0
    # A1111's own img2img, for comparison: the same request after a different one differs.
    plain = img2img_body(clip["frames"][:8], batch_size=8, seed=777)
    a = ok(zs2_server, plain)
    ok(zs2_server, img2img_body(clip["frames"][3:5], batch_size=2, seed=9))
    b = ok(zs2_server, plain)
    differs = max_abs_diff(a.frames, b.frames)
    measure(f"A1111 img2img (ZS² off), the same request after another: max difference {differs} levels")


def test_the_sources_audio_is_carried_and_dropped_on_request(zs2_server, clip, tmp_path):
    for keep in (True, False):
        args = v2v(chunk=8, video=str(clip["mp4"]), video_frames=16, formats=["mp4"], keep_audio=keep)
        result = ok(zs2_server, img2img_body(None, args))
        (entry,) = result.info["zs2_videos"]
        path = tmp_path / f"out-{keep}.mp4"
        path.write_bytes(base64.b64decode(entry["data"]))
        assert has_audio(path) is keep
        assert read_frames(path).frames.shape[0] == 16


@pytest.mark.parametrize(
    ("args", "init", "field"),
    [
        ({"frames": 5}, 4, "frames"),
        ({"video": "/no/such/clip.mp4"}, 0, "video"),
        ({"video_start": 30}, 0, "video_start"),
        ({"video_frames": 20, "video_start": 10}, 0, "video_frames"),
    ],
)
def test_bad_sources_are_refused_with_422_naming_the_field(zs2_server, clip, args, init, field):
    if init == 0:
        args = {"video": str(clip["folder"]), **args}
    result = img2img(zs2_server, img2img_body(clip["frames"][:init] if init else None, v2v(**args)))
    assert result.status == 422, result.describe()
    assert f"ZS² Video: {FIELD_BY_NAME[field].called}: " in result.detail  # "Video input (video)"


HOOK_COUNTS = (
    "unet_forward_pre_hooks",
    "module_forward_pre_hooks",
    "cfg_denoiser_callbacks",
    "cfg_denoised_callbacks",
)


def hook_counts(server) -> dict[str, Any]:
    report = server.hooks()
    return {key: report[key] for key in HOOK_COUNTS}


def test_undo_after_an_exception_mid_v2v_leaves_nothing_behind(zs2_server, baseline_server, clip):
    body = img2img_body(clip["frames"][:8], v2v(chunk=4), seed=31)
    clean = hook_counts(zs2_server)
    reference = ok(zs2_server, body)
    faulty = {**body, "alwayson_scripts": {**body["alwayson_scripts"], FAULT_TITLE: {"args": [True, 5]}}}
    failed = img2img(zs2_server, faulty)
    assert failed.status == 500, failed.describe()
    assert "injected failure" in failed.detail or "injected failure" in zs2_server.log_tail(60)
    assert not zs2_server.hooks()["injector_hook_present"]
    assert hook_counts(zs2_server) == clean
    assert max_abs_diff(ok(zs2_server, body).frames, reference.frames) == 0
    plain = img2img_body(clip["frames"][:4], batch_size=4, seed=31)
    ok(zs2_server, plain)
    ok(baseline_server, plain)
    assert max_abs_diff(ok(zs2_server, plain).frames, ok(baseline_server, plain).frames) == 0
