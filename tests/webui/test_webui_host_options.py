"""Host features ZS² must coexist with: token merging, Hypertile, a refiner that swaps the UNet."""

from __future__ import annotations

import pytest

from tests.webui.test_webui_off_and_recovery import HOOK_COUNTS
from tests.webui.webui_client import FAULT_TITLE, consecutive_change, max_abs_diff, txt2img_request, zs2_args

REQUEST = {"steps": 6, "seed": 4242, "sampler_name": "DDIM"}


# 256x64 (latents 32x8): Hypertile's smallest U-Net tile is 16 latents, so the 32-wide depth-0
# attention splits into 2 tiles (at 64x64 and 128x128 it never tiles and changes nothing).
OPTION_SIZE = {"width": 256, "height": 64}


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"token_merging_ratio": 0.5}, "token_merging_ratio"),
        ({"hypertile_enable_unet": True, "hypertile_max_tile_unet": 64}, "hypertile_enable_unet"),
    ],
    ids=["token merging", "hypertile"],
)
def test_incompatible_options_are_turned_off_for_the_run(zs2_server, settings, name, measure):
    """Both rearrange the rows attn1 sees; ZS² turns them off for its run, so the result is as without."""
    request = {**REQUEST, **OPTION_SIZE}
    # At this size the option changes the frames when ZS² is off: the equality below means something.
    off_plain = zs2_server.ok(txt2img_request(batch_size=8, **request))
    off_with_option = zs2_server.ok(txt2img_request(batch_size=8, override_settings=settings, **request))
    effect = max_abs_diff(off_with_option.frames, off_plain.frames)
    plain = zs2_server.ok(txt2img_request(zs2_args(), **request))
    log_start = len(zs2_server.log_text())
    with_option = zs2_server.ok(txt2img_request(zs2_args(), override_settings=settings, **request))
    log = zs2_server.log_text()[log_start:]  # this request's lines only
    diff = max_abs_diff(with_option.frames, plain.frames)
    measure(f"{name}: changes the frames by up to {effect} with ZS² off; ZS² on with vs without: {diff}")
    assert effect > 0
    assert diff == 0
    turned_off = [line for line in log.splitlines() if "turned off for this run" in line]
    assert len(turned_off) == 1, log[-2000:]
    assert name in turned_off[0]


def test_momentum_follows_the_unet_when_a_refiner_swaps_it(zs2_server, measure):
    """A refiner with the same weights, loaded as a second model object (checkpoint limit 2), must
    give the same video: the hooks move to the new UNet at the switch."""
    clean = {key: zs2_server.hooks()[key] for key in HOOK_COUNTS}
    plain = zs2_server.ok(txt2img_request(zs2_args(), **REQUEST))
    traced = {FAULT_TITLE: {"args": [False, 2, True]}}  # records which UNet object each call ran on
    refined = zs2_server.ok(
        txt2img_request(
            zs2_args(),
            refiner_checkpoint="tiny-b",
            refiner_switch_at=0.5,
            override_settings={"sd_checkpoints_limit": 2},
            alwayson_scripts=traced,
            **REQUEST,
        )
    )
    unet_calls = zs2_server.hooks()["injector"]["unet_calls"]
    off = zs2_server.ok(
        txt2img_request(
            batch_size=8,
            refiner_checkpoint="tiny-b",
            refiner_switch_at=0.5,
            override_settings={"sd_checkpoints_limit": 2},
            **REQUEST,
        )
    )
    diff = max_abs_diff(refined.frames, plain.frames)
    ratio = consecutive_change(refined.frames) / consecutive_change(off.frames)
    unets = list(dict.fromkeys(unet for unet, _ in unet_calls))
    hooks = {unet: sorted({count for u, count in unet_calls if u == unet}) for unet in unets}
    order = "".join(str(unets.index(unet)) for unet, _ in unet_calls)
    measure(
        f"refiner swapping the UNet mid-run: max diff vs no refiner {diff}; change ratio on/off {ratio:.3f}; "
        f"UNet object per call {order}, attn1 pre-hooks on each {list(hooks.values())}"
    )
    # The refiner really ran: A1111 names it in the infotext, and a second UNet object sampled the
    # second half, after the first, each with ZS²'s hooks (one per attn1) on it while it ran.
    assert "Refiner: tiny-b" in refined.info["infotexts"][0], refined.info["infotexts"][0]
    assert len(unets) == 2, unet_calls
    assert order == "".join(sorted(order)), order  # first the base UNet, then the refiner's
    assert hooks[unets[0]] == hooks[unets[1]], hooks
    assert len(hooks[unets[0]]) == 1, hooks
    assert hooks[unets[0]][0] > 0
    assert diff == 0
    assert ratio < 0.5
    assert {key: zs2_server.hooks()[key] for key in HOOK_COUNTS} == clean


def test_a_lora_applies_and_zs2_keeps_its_frames_consistent(zs2_server, baseline_server, measure):
    lora = {"prompt": "a red fox running through fresh snow <lora:tiny-lora:1>", **REQUEST}
    with_lora = zs2_server.ok(txt2img_request(zs2_args(), **lora))
    without = zs2_server.ok(txt2img_request(zs2_args(), **REQUEST))
    off = zs2_server.ok(txt2img_request(batch_size=8, **lora))
    reference = baseline_server.ok(txt2img_request(batch_size=8, **lora))
    ratio = consecutive_change(with_lora.frames) / consecutive_change(off.frames)
    effect = max_abs_diff(with_lora.frames, without.frames)
    measure(f"LoRA: changes the ZS² video by up to {effect}; change ratio on/off {ratio:.3f}")
    assert "tiny-lora" in with_lora.info["infotexts"][0]
    assert effect > 10  # the LoRA is really applied
    assert ratio < 0.5
    assert max_abs_diff(off.frames, reference.frames) == 0  # ZS² off with a LoRA: as without the extension


@pytest.mark.parametrize("sampler", ["DPM++ 2M SDE", "DPM++ SDE"])
def test_sde_samplers_brownian_noise_follows_the_chain(zs2_server, sampler, measure):
    """Their per-image Brownian trees bypass p.rng; ZS² chains each draw across frames like the rest."""
    request = {**REQUEST, "sampler_name": sampler, "seed": 99}
    chained = zs2_server.ok(txt2img_request(zs2_args(frames=16, chunk=16), **request))
    chunked = zs2_server.ok(txt2img_request(zs2_args(frames=16, chunk=4), **request))
    independent = zs2_server.ok(txt2img_request(zs2_args(frames=16, step_noise="independent"), **request))
    off = zs2_server.ok(txt2img_request(batch_size=16, **request))
    ratio = consecutive_change(chained.frames) / consecutive_change(off.frames)
    ratio_independent = consecutive_change(independent.frames) / consecutive_change(off.frames)
    diff = max_abs_diff(chunked.frames, chained.frames)
    measure(
        f"{sampler}: change ratio on/off {ratio:.3f} chained, {ratio_independent:.3f} independent; "
        f"chunks of 4 vs one batch max diff {diff}"
    )
    assert ratio < 0.5
    assert ratio < 0.6 * ratio_independent
    assert diff <= 1
