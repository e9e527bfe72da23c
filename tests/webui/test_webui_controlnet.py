"""ControlNet per frame against a real A1111 + sd-webui-controlnet with the project's tiny ControlNet.

Skipped unless ``ZS2_WEBUI`` and ``ZS2_CONTROLNET`` are set (see ``conftest.py``). A tiny model that
silently failed to load would give images identical to no unit, so every test also checks that the
unit changed the output.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.webui.test_webui_img2img import img2img_body, ok, png_b64, source_frames
from tests.webui.test_webui_off_and_recovery import HOOK_COUNTS
from tests.webui.webui_client import (
    FAULT_TITLE,
    consecutive_change,
    max_abs_diff,
    mean_abs_diff,
    txt2img_request,
    zs2_args,
)

JOIN_TOLERANCE = 1  # as for chunked videos without ControlNet: at most one level after rounding
BODY = {"sampler_name": "DDIM", "steps": 4, "seed": 4242}
UNIT_EFFECT = 1.0  # mean pixel change a working unit must make (the tiny ControlNet makes about 5-15)


def pattern(i: int, size: int = 64) -> np.ndarray:
    """Control frame i: a white bar moving right over black, with an i-dependent checker, two colours."""
    y, x = np.mgrid[0:size, 0:size]
    bar = np.abs(x - (4 + 7 * i) % size) < 6
    checker = ((y // (4 + i % 5)) + (x // 8)) % 2 == 0
    on = bar ^ (checker & (y > size // 2))
    return np.repeat((on * 255).astype(np.uint8)[..., None], 3, axis=2)


def png64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def gif64(images: list[np.ndarray]) -> str:
    buffer = io.BytesIO()
    frames = [Image.fromarray(image) for image in images]
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return base64.b64encode(buffer.getvalue()).decode()


def frames64(count: int, start: int = 0) -> list[str]:
    return [png64(pattern(start + i)) for i in range(count)]


def unit(**values) -> dict:
    return {
        "enabled": True,
        "module": "none",
        "model": "tiny_cn",
        "weight": 1.0,
        "save_detected_map": False,
        **values,
    }


def request(zs2: dict | None, units: list[dict] | None, **body) -> dict:
    scripts = {"controlnet": {"args": units}} if units else {}
    return txt2img_request(zs2, alwayson_scripts=scripts, **{**BODY, **body})


def test_frame_i_follows_control_frame_i_and_the_infotext_names_the_source(cn_server, measure):
    frames = frames64(8)
    swapped = list(frames)
    swapped[2], swapped[5] = frames[5], frames[2]
    plain = cn_server.ok(request(zs2_args(frames=8), None))
    driven = cn_server.ok(request(zs2_args(frames=8, control_video=frames), [unit()]))
    other = cn_server.ok(request(zs2_args(frames=8, control_video=swapped), [unit()]))
    effect = mean_abs_diff(driven.frames, plain.frames)
    change = [mean_abs_diff([a], [b]) for a, b in zip(driven.frames, other.frames, strict=True)]
    measure(
        f"ControlNet per frame: unit effect {effect:.2f}; change per frame after swapping 2 and 5: "
        + ", ".join(f"{c:.2f}" for c in change)
    )
    assert effect > UNIT_EFFECT
    assert sorted(range(8), key=change.__getitem__)[-2:] in ([2, 5], [5, 2])
    assert change[0] == change[1] == 0  # frames before the first swapped one are untouched (causal)
    assert "ZS2 control: " in driven.info["infotexts"][0]
    assert "unit 0: 8 base64 frames" in driven.info["infotexts"][0]


def test_a_constant_control_video_equals_the_single_image_unit(cn_server, measure):
    image = png64(pattern(3))
    single = cn_server.ok(request(zs2_args(frames=8), [unit(image=image)]))
    constant = cn_server.ok(request(zs2_args(frames=8, control_video=[image] * 8), [unit()]))
    plain = cn_server.ok(request(zs2_args(frames=8), None))
    diff = max_abs_diff(constant.frames, single.frames)
    measure(f"ControlNet constant control video vs single-image unit: max diff {diff}")
    assert diff <= JOIN_TOLERANCE
    assert mean_abs_diff(single.frames, plain.frames) > UNIT_EFFECT


def test_every_frame_goes_through_the_unit_s_own_preprocessor_and_its_cost_is_reported(cn_server, measure):
    images = [pattern(i) for i in range(8)]
    raw = [png64(image) for image in images]
    inverted = [png64(255 - image) for image in images]
    by_preprocessor = cn_server.ok(request(zs2_args(frames=8, control_video=raw), [unit(module="invert")]))
    ready_made = cn_server.ok(request(zs2_args(frames=8, control_video=inverted), [unit()]))
    unprocessed = cn_server.ok(request(zs2_args(frames=8, control_video=raw), [unit()]))
    diff = max_abs_diff(by_preprocessor.frames, ready_made.frames)
    skipped = mean_abs_diff(by_preprocessor.frames, unprocessed.frames)
    measure(
        f"ControlNet invert preprocessor per frame vs inverted maps: max diff {diff}; vs raw {skipped:.2f}"
    )
    assert diff == 0
    assert skipped > UNIT_EFFECT
    assert "ControlNet unit 0 (invert): frames 1-8 preprocessed" in cn_server.log_text()


CHUNK_CASES = {
    "one unit": ({}, 1),
    "one unit, batch cond/uncond off": ({"override_settings": {"batch_cond_uncond": False}}, 1),
    "two units": ({}, 2),
    "two units, batch cond/uncond off": ({"override_settings": {"batch_cond_uncond": False}}, 2),
    "hires fix": (
        {
            "enable_hr": True,
            "hr_scale": 2,
            "hr_upscaler": "Latent",
            "denoising_strength": 0.6,
            "hr_second_pass_steps": 2,
        },
        1,
    ),
}


@pytest.mark.parametrize("case", list(CHUNK_CASES))
def test_twenty_four_frames_in_chunks_of_eight_equal_one_batch(cn_server, case, measure):
    body, units = CHUNK_CASES[case]
    zs2 = {"control_video": frames64(24)}
    if units == 2:
        zs2["control_videos"] = [None, frames64(24, start=30)]
    cn_units = [unit(), unit(weight=0.7)][:units]
    whole = cn_server.ok(request(zs2_args(frames=24, chunk=24, **zs2), cn_units, **body))
    chunked = cn_server.ok(request(zs2_args(frames=24, chunk=8, **zs2), cn_units, **body))
    plain = cn_server.ok(request(zs2_args(frames=24, chunk=8), None, **body))
    diff = max_abs_diff(chunked.frames, whole.frames)
    effect = mean_abs_diff(chunked.frames, plain.frames)
    measure(
        f"ControlNet {case}: 24 frames in chunks of 8 vs one batch max diff {diff}; unit effect {effect:.2f}"
    )
    assert len(chunked.frames) == 24
    assert diff <= JOIN_TOLERANCE
    assert effect > UNIT_EFFECT


def test_base64_frames_a_base64_video_and_folders_give_the_same_frames(cn_server, tmp_path: Path, measure):
    images = [pattern(i) for i in range(8)]
    folder = tmp_path / "control"
    folder.mkdir()
    for i, image in enumerate(images):  # natural order: frame10 would come after frame9
        Image.fromarray(image).save(folder / f"frame{i}.png")
    by_frames = cn_server.ok(request(zs2_args(frames=8, control_video=[png64(i) for i in images]), [unit()]))
    variants = {
        "base64 GIF video": request(zs2_args(frames=8, control_video=gif64(images)), [unit()]),
        "control_video folder": request(zs2_args(frames=8, control_video=str(folder)), [unit()]),
        "unit Batch-tab folder": request(
            zs2_args(frames=8), [unit(input_mode="batch", batch_images=str(folder))]
        ),
    }
    plain = cn_server.ok(request(zs2_args(frames=8), None))
    assert mean_abs_diff(by_frames.frames, plain.frames) > UNIT_EFFECT
    for label, body in variants.items():
        result = cn_server.ok(body)
        diff = max_abs_diff(result.frames, by_frames.frames)
        measure(f"ControlNet {label} vs base64 frames: max diff {diff}")
        assert len(result.frames) == 8, label
        assert diff == 0, label


def test_a_base64_mp4_gives_the_frames_it_decodes_to(cn_server, tmp_path: Path, measure):
    import imageio.v3 as iio

    images = np.stack([pattern(i) for i in range(8)])
    data = iio.imwrite("<bytes>", images, extension=".mp4", plugin="FFMPEG", fps=8)
    folder = tmp_path / "decoded"
    folder.mkdir()
    for i, image in enumerate(iio.imread(data, index=None, extension=".mp4", plugin="FFMPEG")):
        Image.fromarray(image).save(folder / f"{i}.png")
    assert len(list(folder.iterdir())) == 8
    video = cn_server.ok(request(zs2_args(frames=8, control_video=base64.b64encode(data).decode()), [unit()]))
    frames = cn_server.ok(request(zs2_args(frames=8, control_video=str(folder)), [unit()]))
    plain = cn_server.ok(request(zs2_args(frames=8), None))
    diff = max_abs_diff(video.frames, frames.frames)
    measure(f"ControlNet base64 MP4 vs its decoded frames in a folder: max diff {diff}")
    assert diff == 0
    assert mean_abs_diff(video.frames, plain.frames) > UNIT_EFFECT
    assert "base64 video (8 frames)" in video.info["infotexts"][0]


def test_a_short_control_video_is_refused_or_holds_its_last_frame(cn_server, measure):
    short = frames64(5)
    refused = cn_server.txt2img(request(zs2_args(frames=8, control_video=short), [unit()]))
    assert refused.status == 422, refused.describe()
    for word in ("control_video", "hold_last", "5 frames"):
        assert word in refused.detail
    held = cn_server.ok(request(zs2_args(frames=8, control_video=short, hold_last=True), [unit()]))
    explicit = cn_server.ok(request(zs2_args(frames=8, control_video=short + [short[-1]] * 3), [unit()]))
    assert max_abs_diff(held.frames, explicit.frames) == 0
    looped = cn_server.ok(request(zs2_args(frames=8, control_video=short + short[:3]), [unit()]))
    assert mean_abs_diff(looped.frames[5:], held.frames[5:]) > 0  # held, not looped


@pytest.mark.parametrize(
    ("zs2", "units", "field"),
    [
        ({"control_videos": [frames64(8), frames64(8)]}, [unit()], "control_videos"),
        ({"control_videos": [None, frames64(8)]}, [unit(), unit(enabled=False)], "control_videos[1]"),
        ({"control_video": frames64(8)}, [unit(enabled=False)], "control_video"),
        ({"control_video": frames64(8)}, [unit(image=png64(pattern(0)))], "control_video"),
        ({"control_video": "bm90IGFuIGltYWdl"}, [unit()], "control_video"),
        ({"control_video": "/no/such/folder"}, [unit()], "control_video"),
        ({"control_video": 42}, [unit()], "control_video"),
    ],
    ids=[
        "too many entries",
        "disabled unit",
        "no enabled unit",
        "every unit has an image",
        "not media",
        "missing folder",
        "not a video",
    ],
)
def test_bad_control_videos_answer_422_naming_the_field(cn_server, zs2, units, field):
    result = cn_server.txt2img(request(zs2_args(frames=8, **zs2), units))
    assert result.status == 422, result.describe()
    assert field in result.detail, result.detail


def _hooks(server) -> dict:
    report = server.hooks()
    return {key: report[key] for key in HOOK_COUNTS}


def test_nothing_is_left_behind_after_an_exception_mid_run(cn_server, cn_baseline_server, measure):
    single = request(None, [unit(image=png64(pattern(1)))], batch_size=4)
    video = request(zs2_args(frames=8, chunk=4, control_video=frames64(8)), [unit()])
    fault = {FAULT_TITLE: {"args": [True, 2]}}  # raise at the 2nd UNet call (4 steps, one call each)
    cn_server.ok(single)
    clean = _hooks(cn_server)
    # ControlNet alone leaves its own CFG callback behind after a failed run (it removes it in its
    # postprocess, or at the start of its next run): the same count with ZS² off is the reference
    failed_alone = cn_server.txt2img(dict(single, alwayson_scripts={**single["alwayson_scripts"], **fault}))
    assert failed_alone.status == 500, failed_alone.describe()
    after_controlnet_alone = _hooks(cn_server)
    before = cn_server.ok(video)
    in_second_chunk = {FAULT_TITLE: {"args": [True, 6]}}  # 4 calls per chunk: the 2nd step of chunk 2
    failed = cn_server.txt2img(dict(video, alwayson_scripts={**video["alwayson_scripts"], **in_second_chunk}))
    assert failed.status == 500, failed.describe()
    assert _hooks(cn_server) == after_controlnet_alone
    off = cn_server.ok(single)
    assert _hooks(cn_server) == clean
    expected = cn_baseline_server.ok(single)
    again = cn_server.ok(video)
    off_diff, video_diff = (
        max_abs_diff(off.frames, expected.frames),
        max_abs_diff(again.frames, before.frames),
    )
    measure(
        f"ControlNet after an exception: ZS² off vs no extension {off_diff}, video vs before {video_diff}"
    )
    assert off_diff == 0
    assert video_diff == 0
    assert (
        mean_abs_diff(before.frames, cn_server.ok(request(zs2_args(frames=8, chunk=4), None)).frames)
        > UNIT_EFFECT
    )
    assert _hooks(cn_server) == clean


def test_zs2_off_with_a_unit_is_pixel_identical_to_no_extension(cn_server, cn_baseline_server):
    with_unit = request(None, [unit(image=png64(pattern(2)))], batch_size=4)
    without = request(None, None, batch_size=4)
    for body in (
        with_unit,
        request(
            {"enabled": False, "control_video": frames64(4)},
            with_unit["alwayson_scripts"]["controlnet"]["args"],
            batch_size=4,
        ),
    ):
        assert max_abs_diff(cn_server.ok(body).frames, cn_baseline_server.ok(with_unit).frames) == 0
    assert (
        mean_abs_diff(cn_baseline_server.ok(with_unit).frames, cn_baseline_server.ok(without).frames)
        > UNIT_EFFECT
    )


def test_momentum_in_controlnet_is_measured_joins_chunks_exactly_and_leaves_no_hook(cn_server, measure):
    video = frames64(16)
    swapped = list(video)
    swapped[6], swapped[11] = video[11], video[6]
    runs = {}
    for momentum in (False, True):
        for label, control in (("", video), (" swapped", swapped)):
            zs2 = zs2_args(frames=16, chunk=16, control_video=control, control_momentum=momentum)
            runs[f"{momentum}{label}"] = cn_server.ok(request(zs2, [unit()])).frames
    chunked = cn_server.ok(
        request(zs2_args(frames=16, chunk=8, control_video=video, control_momentum=True), [unit()])
    )
    off_again = cn_server.ok(request(zs2_args(frames=16, chunk=16, control_video=video), [unit()]))
    for momentum in (False, True):
        frames, other = runs[f"{momentum}"], runs[f"{momentum} swapped"]
        change = [mean_abs_diff([a], [b]) for a, b in zip(frames, other, strict=True)]
        targeted = (change[6] + change[11]) / 2
        elsewhere = float(np.mean([c for i, c in enumerate(change) if i not in (6, 11)]))
        measure(
            f"ControlNet momentum {'on' if momentum else 'off'}: consecutive change "
            f"{consecutive_change(frames):.2f}; swapping control frames 6 and 11 moves them {targeted:.2f}, "
            f"the other frames by {elsewhere:.2f}"
        )
    assert mean_abs_diff(runs["True"], runs["False"]) > 0  # the hooks did act on ControlNet's attention
    assert max_abs_diff(chunked.frames, runs["True"]) <= JOIN_TOLERANCE
    assert max_abs_diff(off_again.frames, runs["False"]) == 0  # no hook left on ControlNet's cached model


def test_in_img2img_a_unit_without_input_takes_the_source_video_frame_by_frame(cn_server, measure):
    sources = source_frames(8)
    scripts = {"controlnet": {"args": [unit()]}}

    def run(zs2: dict, with_unit: bool = True):
        body = img2img_body(sources, zs2_args(**zs2), **BODY)
        if with_unit:
            body["alwayson_scripts"] = {**body["alwayson_scripts"], **scripts}
        return ok(cn_server, body)

    from_source = run({"chunk": 8})
    as_control_video = run({"chunk": 8, "control_video": [png_b64(frame) for frame in sources]})
    first_frame_only = run({"chunk": 8, "control_video": [png_b64(sources[0])] * 8})
    chunked = run({"chunk": 4})
    plain = run({"chunk": 8}, with_unit=False)
    same = max_abs_diff(from_source.frames, as_control_video.frames)
    per_frame = mean_abs_diff(from_source.frames, first_frame_only.frames)
    joins = max_abs_diff(chunked.frames, from_source.frames)
    effect = mean_abs_diff(from_source.frames, plain.frames)
    measure(
        f"ControlNet img2img source as control: vs control_video of the same frames max diff {same}; "
        f"vs frame 0 for every frame mean diff {per_frame:.2f}; chunks of 4 vs one batch max diff "
        f"{joins}; unit effect {effect:.2f}"
    )
    assert len(from_source.frames) == 8
    assert same <= 1
    assert joins <= JOIN_TOLERANCE
    assert effect > UNIT_EFFECT
    assert per_frame > UNIT_EFFECT / 4  # frame k's control is source frame k, not the first frame again
    assert "img2img source init images (8 frames)" in from_source.info["infotexts"][0]
