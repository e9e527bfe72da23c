"""ZS² off leaves A1111 untouched, also right after interrupted and failed ZS² runs."""

from __future__ import annotations

import threading
import time

import pytest

from tests.webui.webui_client import (
    FAULT_TITLE,
    ZS2_TITLE,
    max_abs_diff,
    txt2img_request,
    zs2_args,
)

SAMPLERS = ["Euler a", "DPM++ 2M", "DDIM", "UniPC"]
HOOK_COUNTS = (
    "unet_forward_pre_hooks",
    "unet_forward_hooks",
    "module_forward_pre_hooks",
    "module_forward_hooks",
    "global_forward_pre_hooks",
    "global_forward_hooks",
    "cfg_denoiser_callbacks",
    "cfg_denoised_callbacks",
)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_zs2_off_is_pixel_identical_to_no_extension(zs2_server, baseline_server, sampler):
    body = txt2img_request(batch_size=4, sampler_name=sampler, seed=31337)
    reference = baseline_server.ok(body)
    assert len(reference.frames) == 4
    variants = {
        "no alwayson_scripts": body,
        "enabled false (dict)": txt2img_request({"enabled": False, "frames": 8}, **body),
        "enabled false (positional)": txt2img_request([False, 8], **body),
    }
    for label, request in variants.items():
        result = zs2_server.ok(request)
        assert len(result.frames) == 4, label
        assert max_abs_diff(result.frames, reference.frames) == 0, label
        assert "zs2_videos" not in result.info, label
        assert result.info["infotexts"] == reference.info["infotexts"], label


def _hook_counts(server) -> dict[str, int]:
    report = server.hooks()
    return {key: report[key] for key in HOOK_COUNTS}


def _progress(server) -> dict:
    status, data = server.get("/sdapi/v1/progress?skip_current_image=true", timeout=10)
    assert status == 200, data
    return data


def _check_nothing_left_behind(server, baseline_server, clean_hooks, reference_zs2, event, measure):
    """Hooks as before, ZS² off equals the server without the extension, ZS² equals the reference."""
    hooks = server.hooks()
    assert not hooks["injector_hook_present"], f"after {event}: {hooks}"
    assert _hook_counts(server) == clean_hooks, f"after {event}: hooks left behind: {hooks}"
    body = txt2img_request(batch_size=4, seed=555)
    off = server.ok(body)
    expected = baseline_server.ok(body)
    off_diff = max_abs_diff(off.frames, expected.frames)
    again = server.ok(txt2img_request(zs2_args(), seed=555))
    zs2_diff = max_abs_diff(again.frames, reference_zs2.frames)
    measure(f"after {event}: ZS² off vs no extension max diff {off_diff}; ZS² vs before max diff {zs2_diff}")
    assert off_diff == 0, f"after {event}: ZS² off differs from a server without the extension"
    assert zs2_diff == 0, f"after {event}: a ZS² request differs from the same request before"
    assert _hook_counts(server) == clean_hooks, f"after {event}: hooks left behind by the next requests"


def test_no_hook_left_after_interrupt_and_fault(zs2_server, baseline_server, measure):
    server = zs2_server
    clean_hooks = _hook_counts(server)
    reference_zs2 = server.ok(txt2img_request(zs2_args(), seed=555))
    assert len(reference_zs2.frames) == 8
    assert _hook_counts(server) == clean_hooks, "hooks left behind after a successful ZS² run"

    # 1. Interrupt a long ZS² run (16 frames, 30 steps) from a second thread once it is sampling.
    traced = {FAULT_TITLE: {"args": [False, 2, True]}}  # record the UNet calls, raise nothing
    long_body = txt2img_request(zs2_args(frames=16), seed=556, steps=30, alwayson_scripts=traced)
    outcome: dict = {}

    def run() -> None:
        outcome["result"] = server.txt2img(long_body, timeout=600)

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    step = 0
    while time.monotonic() - started < 120:
        state = _progress(server)["state"]
        step = state.get("sampling_step", 0)
        if state.get("job_count", 0) > 0 and step >= 2:
            break
        assert thread.is_alive(), f"the long run ended before it could be interrupted: {outcome}"
        time.sleep(0.05)
    status, answer = server.post("/sdapi/v1/interrupt", timeout=10)
    assert status == 200, answer
    thread.join(300)
    assert not thread.is_alive()
    interrupted = outcome["result"]
    elapsed = time.monotonic() - started
    assert interrupted.status == 200, interrupted.describe()
    unet_calls = len(server.hooks()["injector"]["last_rows"])
    videos = len(interrupted.info.get("zs2_videos", []))
    measure(
        f"interrupt: sent at sampling step {step}/30, answer after {elapsed:.1f} s after {unet_calls} UNet "
        f"calls, with {len(interrupted.frames)} frames and {videos} videos"
    )
    assert 2 <= unet_calls < 30, unet_calls  # sampling really stopped early
    _check_nothing_left_behind(server, baseline_server, clean_hooks, reference_zs2, "an interrupt", measure)

    # 2. A ZS² run whose UNet raises at its second call (sampling step 2).
    before = server.hooks()["injector"]
    faulty = txt2img_request(zs2_args(), seed=557, alwayson_scripts={FAULT_TITLE: {"args": [True, 2]}})
    failed = server.txt2img(faulty)
    assert ZS2_TITLE in faulty["alwayson_scripts"]
    assert failed.status == 500, failed.describe()
    assert "injected failure at UNet call 2" in str(failed.body), failed.describe()
    after = server.hooks()["injector"]
    assert after["raised"] == before["raised"] + 1
    assert after["removed_in_close"] == before["removed_in_close"] + 1  # p.close ran after the exception
    _check_nothing_left_behind(
        server, baseline_server, clean_hooks, reference_zs2, "a UNet exception", measure
    )

    # 3. The fault injector on a successful ZS² run (raising after the last call) is removed normally.
    harmless = txt2img_request(zs2_args(), seed=555, alwayson_scripts={FAULT_TITLE: {"args": [True, 1000]}})
    passed = server.ok(harmless)
    assert max_abs_diff(passed.frames, reference_zs2.frames) == 0  # an inert pre-hook changes nothing
    assert not server.hooks()["injector_hook_present"]
    assert _hook_counts(server) == clean_hooks


@pytest.mark.parametrize("enabled", [False, True], ids=["zs2 off", "zs2 on"])
def test_another_scripts_close_wrapper_still_runs(zs2_server, enabled, measure):
    """A script that wraps ``p.close`` in ``process`` (after ZS²'s ``before_process``) must still be closed.

    The fault injector in trace mode wraps ``p.close`` on the instance, as ZS² does; A1111's
    ``closing(p)`` calls ``p.close()`` once after every txt2img API request.
    """
    before = zs2_server.hooks()["injector"]["close_calls"]
    traced = {FAULT_TITLE: {"args": [False, 2, True]}}
    zs2 = zs2_args() if enabled else {"enabled": False}
    result = zs2_server.ok(txt2img_request(zs2, seed=558, alwayson_scripts=traced))
    assert len(result.frames) == (8 if enabled else 1)
    after = zs2_server.hooks()
    calls = after["injector"]["close_calls"] - before
    measure(f"{'ZS² on' if enabled else 'ZS² off'}: another script's p.close wrapper ran {calls} time(s)")
    assert not after["injector_hook_present"]
    assert calls == 1, (
        "the other script's p.close wrapper did not run: ZS² Video's Run.finish (from postprocess) "
        "deletes p.close from the instance whoever set it, dropping wrappers installed after its own"
    )
