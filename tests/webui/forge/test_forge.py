"""ZS² Video in Forge main and Forge Classic: off is Forge untouched, on is a consistent video.

Each test runs against every Forge named by its environment variable (``conftest.py``). Momentum in
Forge follows Forge's own batch layout (chunks of the batch's frames named by ``cond_or_uncond``,
uncond first), so frame 1 of every stream is untouched by momentum: a layout that mixed cond frames
with uncond frames, or one stream into another, would change frame 1.
"""

from __future__ import annotations

import pytest

from tests.webui.test_webui_long_videos import HIRES_REQUEST, signal_during_chunk
from tests.webui.test_webui_off_and_recovery import HOOK_COUNTS
from tests.webui.webui_client import (
    FAULT_TITLE,
    consecutive_change,
    max_abs_diff,
    mean_abs_diff,
    txt2img_request,
    zs2_args,
    zs2_infotext_value,
)

FRAMES = 8
STEPS = 10  # as the A1111 consistency tests
MAX_RATIO = 0.25  # consecutive-frame change with ZS² on / off (A1111 measured 0.13-0.16)
INDEPENDENT_FACTOR = 0.6  # chained sampler noise changes frames less than this x independent noise
# Mean levels by which μ = 0.98 moves frames 2.. from μ = 0; without momentum acting they are
# bit-identical (0). Measured 1.01 (CFG scale 1, both Forges) to 4.67 (Forge main, AND prompt).
MOMENTUM_EFFECT = 0.5
JOIN_TOLERANCE = 1  # a batch-size-dependent kernel may move a pixel by one level (A1111: 0 or 1)
TRACE = [False, 2, True]  # the fault injector records every UNet call's rows and cond_or_uncond


def traced(**values):
    return {FAULT_TITLE: {"args": list(TRACE), **values}}


def log_since(server, start: int) -> str:
    return server.log_text()[start:]


def assert_clean_log(server, start: int) -> None:
    """No traceback and no error line from ZS² in the server log since ``start``."""
    text = log_since(server, start)
    assert "Traceback" not in text, text[-3000:]
    assert "Error" not in text, text[-3000:]


def hook_counts(server) -> dict[str, int]:
    report = server.hooks()
    return {key: report[key] for key in HOOK_COUNTS}


@pytest.mark.parametrize("sampler", ["Euler a", "DDIM"])
def test_zs2_off_is_forge_without_the_extension_also_after_a_zs2_run(forge, sampler, measure):
    start = len(forge.zs2.log_text())
    body = txt2img_request(batch_size=4, sampler_name=sampler, seed=31337)
    reference = forge.baseline.ok(body)
    assert len(reference.frames) == 4
    off_requests = {
        "no alwayson_scripts": body,
        "enabled false": txt2img_request({"enabled": False, "frames": 8}, **body),
    }
    for label, request in off_requests.items():
        result = forge.zs2.ok(request)
        assert max_abs_diff(result.frames, reference.frames) == 0, label
        assert "zs2_videos" not in result.info, label
    video = forge.zs2.ok(txt2img_request(zs2_args(), sampler_name=sampler, seed=31337))
    assert len(video.frames) == FRAMES
    after = forge.zs2.ok(body)
    diff = max_abs_diff(after.frames, reference.frames)
    measure(f"Forge {forge.variant}, {sampler}: ZS² off after a ZS² run vs no extension: max diff {diff}")
    assert diff == 0
    assert_clean_log(forge.zs2, start)


@pytest.mark.parametrize(
    ("label", "overrides", "chunks"),
    [
        ("plain prompt", {}, [1, 0]),
        ("AND prompt", {"prompt": "a cat AND a dog"}, [1, 0, 0]),
        ("CFG scale 1", {"cfg_scale": 1}, [0]),
    ],
)
def test_momentum_acts_in_forges_layout_and_never_mixes_streams(forge, label, overrides, chunks, measure):
    """μ 0.98 moves frames 2.. away from μ 0 and leaves frame 1 as it is, in every layout."""
    start = len(forge.zs2.log_text())
    body = {"steps": STEPS, "seed": 77, **overrides}
    on = forge.zs2.ok(txt2img_request(zs2_args(), alwayson_scripts=traced(), **body))
    seen = forge.zs2.hooks()["injector"]["last_chunks"]
    plain = forge.zs2.ok(txt2img_request(zs2_args(mu=0), **body))
    first = max_abs_diff(on.frames[:1], plain.frames[:1])
    effect = mean_abs_diff(on.frames[1:], plain.frames[1:])
    measure(
        f"Forge {forge.variant}, {label} (UNet calls {sorted(map(str, {str(c) for c in seen}))}): "
        f"μ 0.98 vs 0: frame 1 max diff {first}, frames 2.. mean diff {effect:.2f}"
    )
    assert chunks in seen  # the layout under test is the one Forge ran
    assert first == 0
    assert effect > MOMENTUM_EFFECT
    assert_clean_log(forge.zs2, start)


def test_at_mu_zero_only_the_dependency_noise_acts(forge, measure):
    """μ 0 with independent noise is Forge's own batch (Euler a: its step noise too); with dependency
    noise (DDIM, no step noise: the search draws extra candidates from each frame's generator) frame 1
    is its seed's own image and the other frames move."""
    body = {"steps": STEPS, "seed": 78}
    off = forge.zs2.ok(txt2img_request(batch_size=FRAMES, **body))
    nothing = forge.zs2.ok(txt2img_request(zs2_args(mu=0, noise_model="independent"), **body))
    off_ddim = forge.zs2.ok(txt2img_request(batch_size=FRAMES, sampler_name="DDIM", **body))
    noise = forge.zs2.ok(txt2img_request(zs2_args(mu=0), sampler_name="DDIM", **body))
    moved = mean_abs_diff(noise.frames[1:], off_ddim.frames[1:])
    measure(
        f"Forge {forge.variant}: μ 0 + independent noise vs off max diff "
        f"{max_abs_diff(nothing.frames, off.frames)}; μ 0 + dependency noise (DDIM): frame 1 max diff "
        f"{max_abs_diff(noise.frames[:1], off_ddim.frames[:1])}, frames 2.. moved {moved:.2f}"
    )
    assert max_abs_diff(nothing.frames, off.frames) == 0
    assert max_abs_diff(noise.frames[:1], off_ddim.frames[:1]) == 0
    assert moved > MOMENTUM_EFFECT


@pytest.mark.parametrize("sampler", ["Euler a", "DPM++ 2M SDE"])
def test_zs2_is_much_more_consistent_than_off_with_the_samplers_noise_chained(forge, sampler, measure):
    body = {"steps": STEPS, "seed": 1234, "sampler_name": sampler}
    on = forge.zs2.ok(txt2img_request(zs2_args(), **body))
    off = forge.zs2.ok(txt2img_request(batch_size=FRAMES, **body))
    independent = forge.zs2.ok(txt2img_request(zs2_args(step_noise="independent"), **body))
    change_off = consecutive_change(off.frames)
    ratio = consecutive_change(on.frames) / change_off
    ratio_independent = consecutive_change(independent.frames) / change_off
    measure(
        f"Forge {forge.variant}, {sampler}: consecutive-frame change on/off {ratio:.3f}; "
        f"independent sampler noise {ratio_independent:.3f}"
    )
    assert ratio < MAX_RATIO
    assert ratio < INDEPENDENT_FACTOR * ratio_independent


def test_24_frames_in_chunks_of_8_equal_one_batch_with_videos_and_infotext(forge, measure):
    body = {"sampler_name": "Euler a", "steps": 6, "seed": 2024}
    whole = forge.zs2.ok(txt2img_request(zs2_args(frames=24, chunk=24), **body))
    chunked = forge.zs2.ok(txt2img_request(zs2_args(frames=24, chunk=8), **body))
    assert len(whole.frames) == len(chunked.frames) == 24
    diff = max_abs_diff(chunked.frames, whole.frames)
    measure(f"Forge {forge.variant}: 24 frames in 3 chunks of 8 vs one batch: max diff {diff}")
    assert diff <= JOIN_TOLERANCE
    assert [v["format"] for v in chunked.info["zs2_videos"]] == ["mp4", "gif"]
    assert zs2_infotext_value(chunked.info["infotexts"][0]) is not None


def test_hires_fix_in_chunks_joins_and_is_consistent(forge, measure):
    """Forge main announces its hires pass twice; the hires noise is still chained once."""
    hires = dict(HIRES_REQUEST)
    if forge.variant == "main":  # its API leaves these None, which its hires pass cannot read
        hires.update(hr_additional_modules=["Use same choices"], hr_cfg=7)
    whole = forge.zs2.ok(txt2img_request(zs2_args(frames=16, chunk=16), **hires))
    chunked = forge.zs2.ok(txt2img_request(zs2_args(frames=16, chunk=8), **hires))
    off = forge.zs2.ok(txt2img_request(batch_size=16, **hires))
    assert whole.frames[0].shape == (128, 128, 3)
    diff = max_abs_diff(chunked.frames, whole.frames)
    ratio = consecutive_change(chunked.frames) / consecutive_change(off.frames)
    measure(f"Forge {forge.variant}: hires, chunks of 8 vs one batch: max diff {diff}; on/off {ratio:.3f}")
    assert diff <= JOIN_TOLERANCE
    assert ratio < 0.5


def test_interrupt_and_an_exception_leave_no_hooks_and_forge_as_it_was(forge, measure):
    server = forge.zs2
    clean = hook_counts(server)
    reference = server.ok(txt2img_request(zs2_args(), seed=555))
    assert hook_counts(server) == clean
    body = txt2img_request(zs2_args(frames=16), seed=556, steps=30, alwayson_scripts=traced())
    signal_during_chunk(server, body, 0, "/sdapi/v1/interrupt")  # one chunk of 16: at its step 2
    calls = len(server.hooks()["injector"]["last_rows"])
    measure(f"Forge {forge.variant}: interrupt after {calls} UNet calls of 30 steps")
    assert calls < 30
    assert not server.hooks()["injector_hook_present"]
    assert hook_counts(server) == clean
    off = txt2img_request(batch_size=4, seed=557)
    assert max_abs_diff(server.ok(off).frames, forge.baseline.ok(off).frames) == 0
    assert max_abs_diff(server.ok(txt2img_request(zs2_args(), seed=555)).frames, reference.frames) == 0
    assert hook_counts(server) == clean

    # A ZS² run whose UNet raises at its second call.
    failed = server.txt2img(
        txt2img_request(zs2_args(), seed=558, alwayson_scripts={FAULT_TITLE: {"args": [True, 2]}})
    )
    assert failed.status == 500, failed.describe()
    assert "injected failure at UNet call 2" in str(failed.body), failed.describe()
    assert not server.hooks()["injector_hook_present"]
    assert hook_counts(server) == clean
    assert max_abs_diff(server.ok(off).frames, forge.baseline.ok(off).frames) == 0
    assert max_abs_diff(server.ok(txt2img_request(zs2_args(), seed=555)).frames, reference.frames) == 0


def test_an_attn1_replacement_by_another_extension_is_refused_before_sampling(forge, measure):
    server = forge.zs2
    clean = hook_counts(server)
    replace = {FAULT_TITLE: {"args": [False, 2, True, True]}}
    alone = server.ok(txt2img_request(batch_size=2, alwayson_scripts=replace))  # the patch itself works
    assert len(alone.frames) == 2
    refused = server.txt2img(txt2img_request(zs2_args(), alwayson_scripts=replace))
    calls = server.hooks()["injector"]["last_rows"]
    measure(f"Forge {forge.variant}: attn1 replaced: HTTP {refused.status}, {refused.detail[:120]!r}")
    assert refused.status == 422, refused.describe()
    assert "attn1" in refused.detail
    assert "middle" in refused.detail
    assert len(calls) <= 1  # refused at the first UNet call, before its attention ran
    assert hook_counts(server) == clean
    again = server.ok(txt2img_request(zs2_args(mu=0), alwayson_scripts=replace))  # μ 0 needs no attn1
    assert len(again.frames) == FRAMES


def test_rife_from_the_models_folder_interpolates_and_without_it_is_refused(forge, tmp_path, measure):
    """The interpolator's folder and device come from Forge as from A1111 (``modules.paths``, ``shared``)."""
    import base64

    from tests.test_rife import write_random_weights
    from tests.webui.test_webui_video import decode_mp4

    args = zs2_args(interpolate=2, interpolator="rife", loop="once", formats="mp4")
    refused = forge.zs2.txt2img(txt2img_request(args))
    assert refused.status == 422, refused.describe()
    assert refused.detail.startswith('ZS² Video: Interpolator (interpolator): "rife" needs RIFE weights')

    folder = forge.zs2.data_dir / "models" / "RIFE"
    weights = write_random_weights(folder / "flownet.pkl", seed=3)
    try:
        result = forge.zs2.ok(txt2img_request(args))
    finally:
        weights.unlink()
        folder.rmdir()
    (tmp_path / "rife.mp4").write_bytes(base64.b64decode(result.info["zs2_videos"][0]["data"]))
    mp4 = decode_mp4(tmp_path / "rife.mp4")
    measure(f"Forge {forge.variant}: rife x2 of {FRAMES} frames: {len(mp4)} in the MP4")
    assert len(mp4) == 2 * FRAMES - 1
    assert mean_abs_diff(mp4[::2], result.frames) < 40
