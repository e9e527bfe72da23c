"""Host features ZS² must coexist with: token merging, Hypertile, a refiner that swaps the UNet."""

from __future__ import annotations

import pytest

from tests.webui.test_webui_off_and_recovery import HOOK_COUNTS
from tests.webui.webui_client import consecutive_change, max_abs_diff, txt2img_request, zs2_args

REQUEST = {"steps": 6, "seed": 4242, "sampler_name": "DDIM"}


@pytest.mark.parametrize(
    "settings",
    [{"token_merging_ratio": 0.5}, {"hypertile_enable_unet": True, "hypertile_max_tile_unet": 64}],
    ids=["token merging", "hypertile"],
)
def test_incompatible_options_are_turned_off_for_the_run(zs2_server, settings):
    """Both rearrange the rows attn1 sees; ZS² turns them off for its run, so the result is as without."""
    plain = zs2_server.ok(txt2img_request(zs2_args(), **REQUEST))
    with_option = zs2_server.ok(txt2img_request(zs2_args(), override_settings=settings, **REQUEST))
    assert max_abs_diff(with_option.frames, plain.frames) == 0
    assert "turned off for this run" in zs2_server.log_tail(40)


def test_momentum_follows_the_unet_when_a_refiner_swaps_it(zs2_server, measure):
    """A refiner with the same weights, loaded as a second model object (checkpoint limit 2), must
    give the same video: the hooks move to the new UNet at the switch."""
    clean = {key: zs2_server.hooks()[key] for key in HOOK_COUNTS}
    plain = zs2_server.ok(txt2img_request(zs2_args(), **REQUEST))
    refined = zs2_server.ok(
        txt2img_request(
            zs2_args(),
            refiner_checkpoint="tiny-b",
            refiner_switch_at=0.5,
            override_settings={"sd_checkpoints_limit": 2},
            **REQUEST,
        )
    )
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
    measure(
        f"refiner swapping the UNet mid-run: max diff vs no refiner {diff}; change ratio on/off {ratio:.3f}"
    )
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
